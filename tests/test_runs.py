import json

import pytest

from scaling.errors import InputError
from scaling.runs import read_runs


def _csv(tmp_path, text, name="runs.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_reads_paper_format(paper_runs_csv):
    t = read_runs(paper_runs_csv)
    assert t.loss.size == 47 and t.labels[0] == "150M"
    assert t.tokens_per_param[0] == pytest.approx(10)


@pytest.mark.parametrize("text,msg", [
    ("", "empty"),
    ("Parameters,Tokens\n1,2\n", "no column 'Smoothed Loss'"),
    ("Parameters,Tokens,Smoothed Loss\n", "no data rows"),
    ("Parameters,Tokens,Smoothed Loss\n1e9,2e10,abc\n", "not a number"),
    ("Parameters,Tokens,Smoothed Loss\n1e9,2e10,nan\n", "finite number > 0"),
    ("Parameters,Tokens,Smoothed Loss\n-1e9,2e10,3\n", "finite number > 0"),
])
def test_bad_tables(tmp_path, text, msg):
    with pytest.raises(InputError, match=msg):
        read_runs(_csv(tmp_path, text))


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_runs(tmp_path / "nope.csv")


def test_filters_and_minimum(tmp_path):
    rows = "\n".join(f"{n},{n * r},{3 - 0.01 * i}" for i, (n, r) in enumerate(
        [(1e8, 10), (1e8, 100), (1e8, 1000), (1e9, 10), (1e9, 100), (1e9, 1000), (1e10, 20)]))
    t = read_runs(_csv(tmp_path, "Parameters,Tokens,Smoothed Loss\n" + rows + "\n"))
    assert t.filter_tokens_per_param(100).loss.size == 5
    assert t.drop_highest_loss(2).loss.min() == t.loss.min()
    assert t.drop_highest_loss(2).loss.size == 5
    with pytest.raises(InputError, match="need at least 6"):
        t.filter_tokens_per_param(100).require()


def test_run_records(tmp_path):
    folder = tmp_path / "records"
    folder.mkdir()
    for i in range(3):
        (folder / f"r{i}.json").write_text(json.dumps(
            {"run_name": f"r{i}", "params": 1e6 * (i + 1), "tokens": 2e7 * (i + 1), "smoothed_loss": 4 - i}))
    t = read_runs(folder)
    assert t.labels == ["r0", "r1", "r2"] and t.tokens[2] == 6e7
    (folder / "bad.json").write_text('{"params": 1}')
    with pytest.raises(InputError, match="tokens"):
        read_runs(folder)


def test_run_folders_as_beyond_train_writes_them(tmp_path):
    for i in range(2):
        run = tmp_path / f"mpt-tiny-r{10 * (i + 1)}"
        run.mkdir()
        (run / "record.json").write_text(json.dumps(
            {"run_name": run.name, "params": 348480, "tokens": 348480 * 10 * (i + 1), "smoothed_loss": 4.0 - i}))
        (run / "config.yaml").write_text("model: {}\n")
    t = read_runs(tmp_path)
    assert t.labels == ["mpt-tiny-r10", "mpt-tiny-r20"] and list(t.loss) == [4.0, 3.0]
