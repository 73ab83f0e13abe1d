"""How many training tokens an MDS dataset holds, from its ``index.json`` (no shard is read
unless the sequence length is nowhere else to be found).

Layout (llm-foundry's, as ``train.data`` writes it): ``<dataset>/train/index.json`` written by
mosaicml-streaming's ``MDSWriter``, samples ``tokens`` (int32 arrays of max_seq_len tokens), and
optionally ``<dataset>/dataset.json`` with ``{"max_seq_len": ...}``. A split-less dataset with
``<dataset>/index.json`` is accepted too. Remote datasets (s3://, gs://, oci://, ...) are counted
from their downloaded index alone.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ioutil import error_line
from scaling.errors import InputError
from train.config import is_remote

TOKEN_COLUMNS = ("tokens", "input_ids")  # the columns llm-foundry's text loader reads as token ids
LEGACY_BYTES_DTYPE_SIZE = 8  # a ``bytes``-encoded tokens column holds int64 ids (llm-foundry's default)


@dataclass(frozen=True)
class DatasetSize:
    """Training tokens of a dataset: ``tokens`` = ``sequences`` x ``seq_len`` (tokens per sample).

    ``bytes`` is the size of the shard files as stored (compressed where they are), which is what
    a streaming cache of a remote dataset fills on local disk."""

    tokens: int
    sequences: int | None
    source: str
    seq_len: int | None = None
    bytes: int | None = None


def dataset_tokens(data: str, *, max_seq_len: int | None = None, split: str = "train",
                   strict: bool = False) -> DatasetSize:
    """Count the training tokens (samples x max_seq_len) of a local or remote MDS dataset.

    ``max_seq_len`` (tokens per sample): from the argument, else the dataset's ``dataset.json``,
    else the fixed shape of the token column, else the length of the first sample (which reads,
    and for a remote dataset downloads, one shard). Raises ``InputError`` naming the path when the
    dataset, its index or its sequence length cannot be read. ``strict``: only ``<split>/index.json``
    counts (no fallback to a split-less ``index.json``), so a missing split is an error."""
    if max_seq_len is not None and int(max_seq_len) <= 0:
        raise InputError(f"max_seq_len must be positive, got {max_seq_len}")
    if is_remote(data):
        return _remote_tokens(data.rstrip("/"), max_seq_len, split, strict)
    root = Path(data)
    if not root.exists():
        raise InputError(f"dataset not found: {data}")
    if not root.is_dir():
        raise InputError(f"not an MDS dataset folder: {data}")
    index = root / split / "index.json"
    if not index.is_file() and not strict:
        index = root / "index.json"
    if not index.is_file():
        raise InputError(f"no MDS index in {data} (looked for {_looked_for(split, strict)})")
    return _count(index, root / "dataset.json", max_seq_len, "MDS index", fetch=lambda name, dest: None)


# --- remote -------------------------------------------------------------------------------------


def _download(uri: str, dest: Path) -> None:
    """Download one object at ``uri`` to ``dest`` with Composer's object-store helpers.
    Raises FileNotFoundError when the object does not exist."""
    from composer.utils import get_file

    get_file(uri, str(dest), overwrite=True, progress_bar=False)


def _looked_for(split: str, strict: bool) -> str:
    return f"{split}/index.json" if strict else f"{split}/index.json and index.json"


def _remote_tokens(uri: str, max_seq_len: int | None, split: str, strict: bool = False) -> DatasetSize:
    tmp = Path(tempfile.mkdtemp(prefix="beyond-index-"))
    try:
        index = None
        for rel in (f"{split}/index.json",) if strict else (f"{split}/index.json", "index.json"):
            dest = tmp / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                _download(f"{uri}/{rel}", dest)
            except FileNotFoundError:
                continue
            except Exception as exc:  # noqa: BLE001 - credentials, network, unknown scheme: one line
                raise InputError(f"cannot download {uri}/{rel}: {error_line(exc)}") from None
            index = dest
            break
        if index is None:
            raise InputError(f"no MDS index at {uri} (looked for {_looked_for(split, strict)})")
        info = tmp / "dataset.json"
        if max_seq_len is None:
            try:
                _download(f"{uri}/dataset.json", info)
            except Exception:  # noqa: BLE001 - optional file: the index or a sample still tells
                info.unlink(missing_ok=True)
        prefix = uri if index.parent == tmp else f"{uri}/{split}"

        def fetch(name: str, dest: Path) -> None:
            try:
                _download(f"{prefix}/{name}", dest)
            except Exception as exc:  # noqa: BLE001
                raise InputError(f"cannot download {prefix}/{name}: {error_line(exc)}") from None

        size = _count(index, info, max_seq_len, "remote MDS index", fetch)
        return DatasetSize(size.tokens, size.sequences, f"{size.source} ({uri})", size.seq_len, size.bytes)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)



# --- counting -----------------------------------------------------------------------------------


def _count(index: Path, info: Path, max_seq_len: int | None, source: str,
           fetch: Callable[[str, Path], None]) -> DatasetSize:
    shards = _read_index(index)
    sequences = sum(int(s["samples"]) for s in shards)
    stored = sum(int((s.get("zip_data") or s.get("raw_data") or {}).get("bytes") or 0) for s in shards)
    if max_seq_len is not None:
        seq, how = int(max_seq_len), "x max_seq_len given"
    else:
        seq, how = _seq_len(index, info, shards, fetch)
    return DatasetSize(sequences * seq, sequences, f"{source}: {sequences:,} samples {how}", seq, stored or None)


def _read_index(index: Path) -> list[dict]:
    """The shard entries of an MDS index.json, validated."""
    try:
        obj = json.loads(index.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"malformed MDS index {index}: {exc}") from None
    except OSError as exc:
        raise InputError(f"cannot read MDS index {index}: {exc.strerror or exc}") from None
    shards = obj.get("shards") if isinstance(obj, dict) else None
    if not isinstance(shards, list):
        raise InputError(f"malformed MDS index {index}: no 'shards' list")
    for i, shard in enumerate(shards):
        samples = shard.get("samples") if isinstance(shard, dict) else None
        if not isinstance(samples, int) or isinstance(samples, bool) or samples < 0:
            raise InputError(f"malformed MDS index {index}: shard {i} has no sample count")
    return shards


def _seq_len(index: Path, info: Path, shards: list[dict], fetch: Callable[[str, Path], None]) -> tuple[int, str]:
    """Tokens per sample, and how it was found."""
    known = _declared_seq_len(index, info, shards)
    if known is not None:
        return known
    shard = next((s for s in shards if s["samples"] > 0), None)
    if shard is None:
        return 0, "(empty)"
    column, encoding = _token_column(index, shard)
    sample = _first_sample(index, shard, fetch)[column]
    seq = len(sample) // LEGACY_BYTES_DTYPE_SIZE if encoding == "bytes" else int(sample.size)
    if seq <= 0:
        raise InputError(f"the first sample of {index.parent} has no tokens")
    return seq, "x the first sample's length"


def _declared_seq_len(index: Path, info: Path, shards: list[dict]) -> tuple[int, str] | None:
    """Tokens per sample from dataset.json or the token column's fixed shape, without reading a shard."""
    if info.is_file():
        try:
            seq = json.loads(info.read_text()).get("max_seq_len")
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError, OSError):
            seq = None
        if isinstance(seq, int) and seq > 0:
            return seq, "x max_seq_len from dataset.json"
    shard = next((s for s in shards if s["samples"] > 0), None)
    if shard is None:
        return None
    column, encoding = _token_column(index, shard)
    parts = encoding.split(":")
    if parts[0] == "ndarray" and len(parts) == 3:  # ndarray:<dtype>:<shape>, fixed shape
        try:
            return math.prod(int(d) for d in parts[2].split(",")), "x the token column's fixed shape"
        except ValueError:
            return None
    return None


def stored_seq_len(data: str, split: str = "train") -> int | None:
    """Tokens per sample a local MDS dataset was prepared with (dataset.json or a fixed-shape token
    column), or None when that needs reading a shard or the dataset is remote or unreadable."""
    if is_remote(data):
        return None
    root = Path(data)
    index = next((p for p in (root / split / "index.json", root / "index.json") if p.is_file()), None)
    if index is None:
        return None
    try:
        known = _declared_seq_len(index, root / "dataset.json", _read_index(index))
    except InputError:
        return None
    return known[0] if known else None


def _token_column(index: Path, shard: dict) -> tuple[str, str]:
    names, encodings = shard.get("column_names") or [], shard.get("column_encodings") or []
    if shard.get("format", "mds") != "mds":
        raise InputError(f"{index} is a {shard.get('format')!r} dataset, not MDS: give max_seq_len")
    for name, encoding in zip(names, encodings):
        if name in TOKEN_COLUMNS:
            return name, str(encoding)
    raise InputError(f"{index} has no token column ({' or '.join(TOKEN_COLUMNS)}; columns: "
                     f"{', '.join(map(str, names)) or 'none'}): give max_seq_len")


def _first_sample(index: Path, shard: dict, fetch: Callable[[str, Path], None]) -> dict:
    """Sample 0 of ``shard``, read with streaming's MDSReader (decompressing into a temp dir)."""
    from streaming.base.compression import decompress
    from streaming.base.format.mds import MDSReader

    folder = index.parent
    raw, zipped = shard.get("raw_data") or {}, shard.get("zip_data") or {}
    with tempfile.TemporaryDirectory(prefix="beyond-shard-") as tmp:
        try:
            if raw.get("basename") and not (folder / raw["basename"]).is_file() and zipped.get("basename"):
                source = folder / zipped["basename"]
                if not source.is_file():
                    fetch(zipped["basename"], source)
                (Path(tmp) / raw["basename"]).write_bytes(decompress(shard.get("compression"), source.read_bytes()))
                folder = Path(tmp)
            elif raw.get("basename") and not (folder / raw["basename"]).is_file():
                fetch(raw["basename"], folder / raw["basename"])
            return MDSReader.from_json(str(folder), None, shard).get_item(0)
        except InputError:
            raise
        except Exception as exc:  # noqa: BLE001 - missing/corrupt shard, bad encoding: one line
            raise InputError(f"cannot read the first sample of {index.parent}: {error_line(exc)}") from None
