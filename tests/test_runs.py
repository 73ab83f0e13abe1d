import json

import numpy as np
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


def test_validation_loss_from_records_and_runs_table(tmp_path):
    """--loss-col 'Val Loss' fits the held-out loss: the runs table's column, or the records' val_loss."""
    folder = tmp_path / "records"
    folder.mkdir()
    for i in range(2):
        (folder / f"r{i}.json").write_text(json.dumps({"params": 1e6, "tokens": 2e7 * (i + 1), "smoothed_loss": 4 - i,
                                                       "val_loss": 4.5 - i}))
    assert list(read_runs(folder).loss) == [4, 3]
    assert list(read_runs(folder, loss_col="Val Loss").loss) == [4.5, 3.5]
    table = _csv(tmp_path, "Parameters,Tokens,Smoothed Loss,Val Loss\n1e6,2e7,4,4.5\n1e6,4e7,3,\n")
    with pytest.raises(InputError, match="row 3, column 'Val Loss'"):  # a run without a val split: said, not skipped
        read_runs(table, loss_col="Val Loss")
    (folder / "r1.json").write_text(json.dumps({"params": 1e6, "tokens": 4e7, "smoothed_loss": 3, "val_loss": None}))
    with pytest.raises(InputError, match="'val_loss' must be a number"):
        read_runs(folder, loss_col="Val Loss")


def test_run_folders_as_beyond_train_writes_them(tmp_path):
    for i in range(2):
        run = tmp_path / f"mpt-tiny-r{10 * (i + 1)}"
        run.mkdir()
        (run / "record.json").write_text(json.dumps(
            {"run_name": run.name, "params": 348480, "tokens": 348480 * 10 * (i + 1), "smoothed_loss": 4.0 - i}))
        (run / "config.yaml").write_text("model: {}\n")
    t = read_runs(tmp_path)
    assert t.labels == ["mpt-tiny-r10", "mpt-tiny-r20"] and list(t.loss) == [4.0, 3.0]


# --- nominal (planned) ratios: runs rounded up to whole batches keep their cut-off ------------------

def _rounded_up_records(folder, requested: bool):
    """Six runs planned at 20 and 100 tokens/param, trained on tokens rounded up to whole batches
    (as `beyond train` does: 100.0003-100.0024 tokens/param for the paper's sizes)."""
    folder.mkdir()
    for i, (n, r, extra) in enumerate([(151e6, 20, 1.00001), (151e6, 100, 1.0000031), (370e6, 20, 1.00002),
                                       (370e6, 100, 1.000024), (750e6, 100, 1.0000150), (750e6, 500, 1.0)]):
        rec = {"run_name": f"r{i}", "params": n, "tokens": n * r * extra, "smoothed_loss": 3.0 - 0.1 * i}
        if requested:
            rec["tokens_per_param_requested"] = r
        (folder / f"r{i}.json").write_text(json.dumps(rec))
    return read_runs(folder)


def test_nominal_ratio_keeps_rounded_up_runs_at_the_cutoff(tmp_path):
    t = _rounded_up_records(tmp_path / "with", requested=True)
    assert (t.tokens_per_param[[1, 3, 4]] > 100).all()  # every 100-ratio run sits above 100
    assert list(t.nominal_tokens_per_param) == [20, 100, 20, 100, 100, 500]
    assert t.filter_tokens_per_param(100).labels == ["r0", "r1", "r2", "r3", "r4"]
    assert t.filter_tokens_per_param(99.99).labels == ["r0", "r2"]
    assert t.filter_tokens_per_param(20).labels == ["r0", "r2"]


def test_without_nominal_ratio_a_stated_tolerance_applies(tmp_path):
    from scaling.runs import NOMINAL_RTOL

    t = _rounded_up_records(tmp_path / "without", requested=False)
    assert t.nominal is not None and np.isnan(t.nominal).all()
    assert t.filter_tokens_per_param(100).labels == ["r0", "r1", "r2", "r3", "r4"]
    assert NOMINAL_RTOL == 0.01
    rows = "\n".join(f"{n},{n * r},{3 - 0.01 * i}" for i, (n, r) in enumerate([(1e8, 100.9), (1e8, 101.1)]))
    csv_t = read_runs(_csv(tmp_path, "Parameters,Tokens,Smoothed Loss\n" + rows + "\n"))
    assert csv_t.nominal is None and csv_t.filter_tokens_per_param(100).loss.size == 1


def test_runs_table_tokens_params_column_is_the_nominal_ratio(tmp_path):
    rows = "150M,151000000,100,15100453000,160,3.0\n150M,151000000,250,37750000000,160,2.9\n"
    t = read_runs(_csv(tmp_path, "Model Name,Parameters,Tokens/Params,Tokens,Batch Size,Smoothed Loss\n" + rows))
    assert t.tokens_per_param[0] > 100.002 and list(t.nominal_tokens_per_param) == [100, 250]
    assert t.filter_tokens_per_param(100).labels == ["150M"] and t.select(np.array([False, True])).nominal[0] == 250


def test_holdout_rules_use_the_nominal_ratio(tmp_path):
    from scaling.holdout import parse_holdout

    for requested in (True, False):
        t = _rounded_up_records(tmp_path / str(requested), requested=requested)
        assert list(parse_holdout("tokens_per_param>100").mask(t)) == [False] * 5 + [True]
        assert list(parse_holdout("tokens_per_param<=100").mask(t)) == [True] * 5 + [False]
