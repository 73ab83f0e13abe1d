"""Token counts of MDS datasets (train.dataset_size) on small real datasets written by MDSWriter."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from scaling.errors import InputError
from tests.conftest import require_train_extra


def write_mds(out: Path, samples: int, seq: int, *, encoding: str = "ndarray:int32", dataset_json: bool = True,
              size_limit: int | None = 1 << 12) -> Path:
    """A tokenised MDS split like train/data.py writes: ``samples`` int32 sequences of ``seq`` tokens,
    zstd shards (several, with the small size limit). ``dataset_json`` writes ../dataset.json."""
    require_train_extra()
    from streaming import MDSWriter

    rng = np.random.default_rng(0)
    with MDSWriter(out=str(out), columns={"tokens": encoding}, compression="zstd", size_limit=size_limit) as w:
        for _ in range(samples):
            w.write({"tokens": rng.integers(0, 4096, seq, dtype=np.int32)})
    if dataset_json:
        (out.parent / "dataset.json").write_text(json.dumps({"max_seq_len": seq}))
    return out.parent


def test_local_mds_count_is_exact(tmp_path):
    from train.dataset_size import dataset_tokens

    data = write_mds(tmp_path / "ds" / "train", 37, 64)
    index = json.loads((data / "train" / "index.json").read_text())
    assert len(index["shards"]) > 1  # the count sums over shards
    size = dataset_tokens(str(data))
    assert (size.tokens, size.sequences, size.seq_len) == (37 * 64, 37, 64)
    assert size.source.startswith("MDS index") and "dataset.json" in size.source
    assert size.bytes == sum(s["zip_data"]["bytes"] for s in index["shards"])
    # the run's max_seq_len, when given, is what each sample counts for
    assert dataset_tokens(str(data), max_seq_len=32).tokens == 37 * 32


def test_seq_len_from_first_sample_and_fixed_shape(tmp_path):
    from train.dataset_size import dataset_tokens, stored_seq_len

    data = write_mds(tmp_path / "a" / "train", 5, 48, dataset_json=False)
    size = dataset_tokens(str(data))  # reads and decompresses one zstd shard with streaming's MDSReader
    assert (size.tokens, size.seq_len) == (5 * 48, 48) and "first sample" in size.source
    assert stored_seq_len(str(data)) is None  # that would need a shard

    fixed = write_mds(tmp_path / "b" / "train", 6, 16, encoding="ndarray:int32:16", dataset_json=False)
    size = dataset_tokens(str(fixed))
    assert (size.tokens, size.seq_len) == (6 * 16, 16) and "fixed shape" in size.source
    assert stored_seq_len(str(fixed)) == 16


def test_split_less_dataset(tmp_path):
    from train.dataset_size import dataset_tokens

    write_mds(tmp_path / "flat", 9, 32, dataset_json=False, size_limit=None)
    assert (tmp_path / "flat" / "index.json").is_file()
    size = dataset_tokens(str(tmp_path / "flat"), max_seq_len=32)
    assert (size.tokens, size.sequences) == (9 * 32, 9)


def _fake_bucket(monkeypatch, bucket: Path, prefix: str = "s3://bucket/mds") -> list[str]:
    """Serve ``prefix/...`` from the folder ``bucket`` in place of composer's download; returns the
    URIs asked for."""
    import train.dataset_size as ds

    asked: list[str] = []

    def download(uri: str, dest: Path) -> None:
        asked.append(uri)
        assert uri.startswith(prefix + "/")
        source = bucket / uri[len(prefix) + 1:]
        if not source.is_file():
            raise FileNotFoundError(uri)
        shutil.copyfile(source, dest)

    monkeypatch.setattr(ds, "_download", download)
    return asked


def test_remote_mds_downloads_only_the_index(tmp_path, monkeypatch):
    from train.dataset_size import dataset_tokens

    data = write_mds(tmp_path / "bucket" / "train", 21, 64)
    asked = _fake_bucket(monkeypatch, data)
    size = dataset_tokens("s3://bucket/mds/", max_seq_len=64)
    assert (size.tokens, size.sequences) == (21 * 64, 21)
    assert size.source.startswith("remote MDS index") and "s3://bucket/mds" in size.source
    assert asked == ["s3://bucket/mds/train/index.json"]
    # without max_seq_len: dataset.json is fetched too, no shard
    asked.clear()
    assert dataset_tokens("s3://bucket/mds").seq_len == 64
    assert asked == ["s3://bucket/mds/train/index.json", "s3://bucket/mds/dataset.json"]


def test_remote_without_seq_len_reads_one_shard(tmp_path, monkeypatch):
    from train.dataset_size import dataset_tokens

    data = write_mds(tmp_path / "bucket" / "train", 12, 24, dataset_json=False)
    asked = _fake_bucket(monkeypatch, data)
    assert dataset_tokens("s3://bucket/mds").tokens == 12 * 24
    assert asked[-1] == "s3://bucket/mds/train/shard.00000.mds.zstd"


def test_remote_errors_are_one_line(tmp_path, monkeypatch):
    import train.dataset_size as ds

    (tmp_path / "empty").mkdir()
    _fake_bucket(monkeypatch, tmp_path / "empty")
    with pytest.raises(InputError, match=r"no MDS index at s3://bucket/mds"):
        ds.dataset_tokens("s3://bucket/mds")

    def denied(uri, dest):
        raise PermissionError("Access Denied\nrequest id ...")

    monkeypatch.setattr(ds, "_download", denied)
    with pytest.raises(InputError) as exc:
        ds.dataset_tokens("s3://bucket/mds")
    assert "s3://bucket/mds/train/index.json" in str(exc.value) and "\n" not in str(exc.value)


def test_bad_inputs_name_the_path(tmp_path):
    from train.dataset_size import dataset_tokens

    with pytest.raises(InputError, match="dataset not found: .*nowhere"):
        dataset_tokens(str(tmp_path / "nowhere"))
    (tmp_path / "plain").mkdir()
    with pytest.raises(InputError, match="no MDS index in .*plain"):
        dataset_tokens(str(tmp_path / "plain"))
    (tmp_path / "bad" / "train").mkdir(parents=True)
    (tmp_path / "bad" / "train" / "index.json").write_text("{not json")
    with pytest.raises(InputError, match=r"malformed MDS index .*bad/train/index.json"):
        dataset_tokens(str(tmp_path / "bad"))
    (tmp_path / "bad" / "train" / "index.json").write_text(json.dumps({"shards": [{"samples": "many"}]}))
    with pytest.raises(InputError, match="shard 0 has no sample count"):
        dataset_tokens(str(tmp_path / "bad"), max_seq_len=8)
    with pytest.raises(InputError, match="max_seq_len must be positive"):
        dataset_tokens(str(tmp_path / "bad"), max_seq_len=0)
