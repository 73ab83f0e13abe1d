"""Build one run's llm-foundry train config from (model YAML, tokens per parameter, data).

Duration = ratio x N tokens and warmup = 3 x N tokens (the paper's Appendix C), both rounded to
whole batches of global_train_batch_size x max_seq_len tokens; autoresume with checkpoints in
the run folder; the run-record callback added. The result is a plain llm-foundry config, written
to ``<run_dir>/config.yaml`` so the run can be inspected or launched by hand.
"""

from __future__ import annotations

import math
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ioutil import one_line
from scaling.errors import InputError
from train.corpus import DEFAULT_CORPUS, DEFAULT_CORPUS_BYTES, corpus_files, is_mds_dataset
from train.folder import RunFolder
from train.zoo import model_yaml, params_of

WARMUP_TOKENS_PER_PARAM = 3.0


@dataclass
class RunPlan:
    """A resolved run: its llm-foundry config and the numbers the record will carry."""

    config: DictConfig
    run_dir: Path
    params: int
    batches: int | None
    tokens: int | None

    @property
    def record_path(self) -> Path:
        return RunFolder(self.run_dir).record


def load_yaml(path: Path) -> DictConfig:
    """Read an llm-foundry YAML; one clear error if it is missing or malformed."""
    try:
        cfg = OmegaConf.load(path)
    except FileNotFoundError:
        raise InputError(f"YAML not found: {path}") from None
    except Exception as exc:  # noqa: BLE001 - yaml.YAMLError, OmegaConf errors, OSError: one line
        first = one_line(exc)
        raise InputError(f"cannot read YAML {path}: {first}") from None
    if not isinstance(cfg, DictConfig):
        raise InputError(f"YAML {path} is not a mapping of llm-foundry settings")
    return cfg


def build_run(
    model: str,
    run_dir: Path,
    *,
    tokens_per_param: float | None = None,
    data: str | None = None,
    cache_dir: Path | None = None,
    overrides: list[str] | None = None,
    run_name: str | None = None,
    corpus_bytes: int = DEFAULT_CORPUS_BYTES,
    loggers: dict | None = None,
    model_name: str | None = None,
    allow_repeat: bool = False,
    world_size: int = 1,
) -> RunPlan:
    """Resolve a model YAML + ratio + data into a runnable llm-foundry config (tokenising the
    data and training a local tokenizer first if needed).

    ``data``: "stdlib", a text file or folder, a local MDS dataset, or a remote MDS URI
    (s3://, gs://, oci://, ...; streamed by mosaicml-streaming). None: the YAML's own
    ``train_loader.dataset`` if it names one, else "stdlib". A YAML that ``build_run`` wrote
    (``<run_dir>/config.yaml``) therefore runs again as is.

    Single epoch (the paper's Sec. 3): a run whose tokens exceed the tokens the data holds is
    refused unless ``allow_repeat``; the record then stores the number of epochs. ``world_size``:
    the processes the run will use (llm-foundry's batch arithmetic is checked for it). Inside a
    multi-process launch (WORLD_SIZE > 1 in the environment) the config must already be resolved:
    nothing is tokenised or loaded, each rank only reads it."""
    launched = launched_world_size()
    if launched > 1:
        world_size = launched
    cfg = load_yaml(model_yaml(model))
    if overrides:
        try:
            cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
        except OmegaConfBaseException as exc:
            raise InputError(f"bad --set override: {one_line(exc)}") from None
    try:
        container = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as exc:
        raise InputError(f"cannot resolve the YAML: {one_line(exc)}") from None
    for key in ("model", "tokenizer", "train_loader", "global_train_batch_size", "max_seq_len"):
        if key not in container or container[key] is None:
            raise InputError(f"the YAML lacks {key}")
    params = params_of(container["model"])
    seq = int(container["max_seq_len"])
    _check_seq_len(container, seq)
    from train.validate import validate_early, validate_train_config

    validate_early(container, world_size=max(world_size, launched))

    run_dir = Path(run_dir)
    # resolved, so the same cache reached through another path (a symlink) gives the same keys
    cache_dir = (Path(cache_dir) if cache_dir else run_dir.parent / ".cache").resolve()
    dataset_cfg = container["train_loader"].setdefault("dataset", {})
    previous = (container.get("callbacks") or {}).get("run_record", {}).get("run_info", {})
    if data is None:
        data = dataset_cfg.get("remote") or dataset_cfg.get("local") or DEFAULT_CORPUS
    if launched > 1 and not (is_remote(data) or is_mds_dataset(Path(data))):
        raise InputError(f"under a {launched}-process launch the data must be a prepared MDS dataset, not {data!r}: "
                         "resolve the run in one process first (beyond train ... --dry-run, or --nproc N)")
    tokenizer_cfg = _resolve_tokenizer(container["tokenizer"], data, cache_dir, corpus_bytes)
    if launched <= 1:  # loading a tokenizer needs torch.distributed once several ranks run
        _check_vocab(tokenizer_cfg, int(container["model"]["vocab_size"]))
    if is_remote(data):
        dataset_cfg["remote"] = data
        dataset_cfg["local"] = str((cache_dir / "streaming" / _short_hash(data)).resolve())
        dataset = data
    else:
        dataset_cfg.pop("remote", None)
        dataset = str(_resolve_data(data, tokenizer_cfg, seq, cache_dir, corpus_bytes))
        dataset_cfg["local"] = dataset

    batch_tokens = int(container["global_train_batch_size"]) * seq
    batches = tokens = None
    if tokens_per_param is not None:
        if not (tokens_per_param > 0 and math.isfinite(tokens_per_param)):
            raise InputError(f"tokens per parameter must be positive, got {tokens_per_param}")
        batches = max(1, math.ceil(tokens_per_param * params / batch_tokens))
        tokens = batches * batch_tokens
        warmup = round(WARMUP_TOKENS_PER_PARAM * params / batch_tokens)
        given = container.get("scheduler", {}).get("t_warmup")
        if given not in (None, "???"):  # a warmup set by hand (--set scheduler.t_warmup=40ba)
            m = re.fullmatch(r"(\d+)ba", str(given))
            if m and int(m.group(1)) >= batches:
                raise InputError(f"scheduler.t_warmup={given} is not shorter than the run ({batches} batches "
                                 f"at {tokens_per_param:g} tokens/param)")
        elif warmup >= batches:
            raise InputError(f"{tokens_per_param:g} tokens/param is within the warmup (3 x params tokens): "
                             "use a larger ratio or set scheduler.t_warmup with --set")
        container["max_duration"] = f"{batches}ba"
        if given in (None, "???"):
            container["scheduler"]["t_warmup"] = f"{max(warmup, 1)}ba"
    elif container.get("max_duration") in (None, "???"):
        raise InputError("give --tokens-per-param, or a YAML with max_duration set")
    else:
        if container.get("scheduler", {}).get("t_warmup") in (None, "???"):
            warmup = max(1, round(WARMUP_TOKENS_PER_PARAM * params / batch_tokens))
            container["scheduler"]["t_warmup"] = f"{warmup}ba"
        m = re.fullmatch(r"(\d+)ba", str(container["max_duration"]))
        if m:
            batches = int(m.group(1))
            tokens = batches * batch_tokens

    from train.validation import add_validation

    val_info = add_validation(container, dataset, seq, world_size=max(world_size, launched), launched=launched,
                              run_tokens=tokens)
    val_info = {key: val_info.get(key, previous.get(key)) for key in ("val_split_tokens", "val_tokens_per_pass")}
    data_tokens = previous.get("data_tokens") if launched > 1 else _data_tokens(dataset, seq)
    if tokens is not None and data_tokens and tokens > data_tokens and not allow_repeat:
        raise InputError(
            f"the run trains on {tokens:,} tokens but the data ({dataset}) holds {data_tokens:,}: that repeats it "
            f"{tokens / data_tokens:.2f} times, and the paper trains a single epoch. Use more data or a smaller "
            "ratio, or pass --allow-repeat (the record then stores the epochs)")

    name = run_name or container.get("run_name") or run_dir.name
    container["run_name"] = name
    container["tokenizer"] = tokenizer_cfg
    container["save_folder"] = str(run_dir / "checkpoints")
    container["autoresume"] = True
    container.pop("variables", None)
    callbacks = container.get("callbacks") or {}
    callbacks["run_record"] = {
        "path": str(RunFolder(run_dir).record),
        "params": params,
        "run_info": {
            "run_name": name,
            "model": model_name or previous.get("model") or Path(model_yaml(model)).stem,
            "tokens_per_param_requested": tokens_per_param if tokens_per_param is not None
            else previous.get("tokens_per_param_requested"),
            "global_train_batch_size": int(container["global_train_batch_size"]),
            "max_seq_len": seq,
            "tokenizer": _tokenizer_note(tokenizer_cfg),
            "data": dataset,
            "data_tokens": data_tokens,
            "allow_repeat": bool(allow_repeat or previous.get("allow_repeat")),
            "checkpoint_folder": str(run_dir / "checkpoints"),
            **val_info,
        },
    }
    callbacks.setdefault("preemption", {})  # checkpoint and stop on SIGTERM/SIGUSR1 (train/preemption.py)
    container["callbacks"] = callbacks
    if loggers:
        container["loggers"] = {**(container.get("loggers") or {}), **loggers}
    validate_train_config(container, world_size=world_size)
    return RunPlan(OmegaConf.create(container), run_dir, params, batches, tokens)


def launched_world_size() -> int:
    """WORLD_SIZE as a multi-process launcher (Composer's, torchrun) sets it; 1 otherwise."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


_DATA_TOKENS: dict[tuple[str, int], int | None] = {}


def _data_tokens(dataset: str, seq: int) -> int | None:
    """Training tokens the dataset holds (MDS index, local or remote), cached per dataset; None
    (with a warning on stderr) when a remote index cannot be read from here."""
    key = (dataset, seq)
    if key not in _DATA_TOKENS:
        from train.dataset_size import dataset_tokens

        try:
            _DATA_TOKENS[key] = dataset_tokens(dataset, max_seq_len=seq).tokens
        except InputError as exc:
            if not is_remote(dataset):
                raise
            sys.stderr.write(f"beyond: warning: cannot count the tokens of {dataset} from here ({exc}); "
                             "the single-epoch check is left to `beyond check` where the data is reachable\n")
            _DATA_TOKENS[key] = None
    return _DATA_TOKENS[key]


def _check_seq_len(container: dict, seq: int) -> None:
    model_seq = container["model"].get("max_seq_len", seq)
    data_seq = (container["train_loader"].get("dataset") or {}).get("max_seq_len", seq)
    if seq <= 0:
        raise InputError(f"max_seq_len must be positive, got {seq}")
    if model_seq is not None and int(model_seq) < seq:
        raise InputError(f"the model's max_seq_len {model_seq} cannot fit the requested sequence length {seq}")
    if data_seq is not None and int(data_seq) != seq:
        raise InputError(f"train_loader.dataset.max_seq_len {data_seq} differs from max_seq_len {seq}")


def is_remote(data: str) -> bool:
    """True for an object-store URI (s3://, gs://, oci://, dbfs:/, ...)."""
    return "://" in data or data.startswith("dbfs:/")


def _short_hash(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _resolve_tokenizer(tok: dict, data: str, cache_dir: Path, corpus_bytes: int) -> dict:
    from train.tokenizer import LOCAL_BPE, train_local_bpe

    tok = {"name": tok.get("name"), "kwargs": dict(tok.get("kwargs") or {})}
    if tok["name"] != LOCAL_BPE:
        return tok
    if is_remote(data) or is_mds_dataset(Path(data)):
        raise InputError("a local-bpe model needs a text corpus to train its tokenizer, not an MDS dataset")
    vocab = int(tok["kwargs"].pop("vocab_size", 4096))
    path = train_local_bpe(corpus_files(data, corpus_bytes), vocab, cache_dir / "tokenizers")
    return {"name": str(path), "kwargs": tok["kwargs"]}


_TOKENIZER_SIZES: dict[str, int] = {}


def _check_vocab(tokenizer_cfg: dict, model_vocab: int) -> None:
    import json

    key = json.dumps(tokenizer_cfg, sort_keys=True, default=str)
    if key not in _TOKENIZER_SIZES:
        from llmfoundry.utils.builders import build_tokenizer

        try:
            tokenizer = build_tokenizer(tokenizer_cfg["name"], dict(tokenizer_cfg["kwargs"]))
        except Exception as exc:  # noqa: BLE001 - any failure to load is one user-facing line
            raise InputError(f"cannot load tokenizer {tokenizer_cfg['name']!r} offline: "
                             f"{type(exc).__name__}: {one_line(exc)}") from None
        _TOKENIZER_SIZES[key] = len(tokenizer)
    if _TOKENIZER_SIZES[key] > model_vocab:
        raise InputError(f"tokenizer has {_TOKENIZER_SIZES[key]} tokens but the model's vocab_size is {model_vocab}")


def _resolve_data(data: str, tokenizer_cfg: dict, seq: int, cache_dir: Path, corpus_bytes: int) -> Path:
    from train.data import prepare_mds

    path = Path(data)
    if data != "stdlib" and path.is_dir() and is_mds_dataset(path):
        return path.resolve()
    return prepare_mds(corpus_files(data, corpus_bytes), tokenizer_cfg, seq, cache_dir / "data").resolve()


def _tokenizer_note(tokenizer_cfg: dict) -> dict:
    from train.tokenizer import tokenizer_description

    note = tokenizer_description(tokenizer_cfg)
    if note["kind"] == "local-bpe":
        note["note"] = "byte-level BPE trained locally on the training corpus (CPU smoke model), not the paper's cl100k_base"
    return note
