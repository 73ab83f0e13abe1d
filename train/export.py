"""A trained run as a Hugging Face folder (``beyond export``), made through llm-foundry's own
conversion path: the steps of llm-foundry's ``scripts/inference/convert_composer_to_hf.py`` and
of its ``hf_checkpointer`` callback, with the library pieces they call.

    checkpoint (``torch.load``, as composer's ``safe_torch_load``)
      -> config: composer's ``get_hf_config_from_composer_state_dict`` with llm-foundry's
         ``MPTConfig`` registered for ``model_type: mpt`` (the script's registration, undone after)
      -> tokenizer: llm-foundry's ``get_hf_tokenizer_from_composer_state_dict`` (the tokenizer
         files Composer saved in the checkpoint; the run's ``config.yaml`` tokenizer, through
         llm-foundry's ``build_tokenizer``, only when the checkpoint has none)
      -> model: ``MPTForCausalLM`` on the meta device (llm-foundry's ``init_empty_weights``), the
         checkpoint's ``state['model']`` weights loaded with ``assign=True`` (the callback's way)
      -> ``save_pretrained`` (safetensors; MPT registered for the auto classes so the modelling
         code is copied and ``config.json`` gets ``auto_map``) + the tokenizer's ``save_pretrained``
      -> llm-foundry's ``edit_files_for_hf_compatibility`` (flattens the modelling code's
         ``llmfoundry`` imports into the folder, so ``trust_remote_code`` needs no llm-foundry).

Why not one library call: the script is not in llm-foundry's wheel; composer's
``write_huggingface_pretrained_from_composer_checkpoint`` writes a ``pytorch_model.bin`` with
no ``auto_map`` and no modelling code (the script then loads and saves it again, holding the
weights twice), and the ``hf_checkpointer`` callback needs a live training ``State``. The steps
above are those two code paths without the intermediate file. As the script does, attention is
set to ``attn_impl: torch`` and ``init_device: cpu`` so the folder loads on any machine.

The folder is built in a temporary folder next to ``out`` and renamed into place, so a failure
leaves nothing half-written; bad input raises ``InputError`` (one line) before any heavy import.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ioutil import one_line
from scaling.errors import InputError
from train.folder import RunFolder

DTYPES = ("fp32", "bf16", "fp16")
_TOKENIZER_DIR = "beyond_export_tokenizer"


@dataclass(frozen=True)
class ExportResult:
    """What ``export_run`` wrote: the folder, the checkpoint it came from, the parameter count
    (embeddings included, tied weights once), the weight dtype and the files (names)."""

    out: Path
    checkpoint: Path
    params: int
    dtype: str
    batch: int | None
    tokenizer: str
    files: list[str]

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["out"], d["checkpoint"] = str(self.out), str(self.checkpoint)
        return d


def export_run(run_dir: Path, out: Path, *, checkpoint: Path | None = None, dtype: str = "fp32",
               force: bool = False) -> ExportResult:
    """Write the run's checkpoint (default ``<run>/checkpoints/latest-rank0.pt``) as a Hugging
    Face folder at ``out`` with weights in ``dtype`` (fp32, bf16 or fp16). ``out`` must be
    missing or empty unless ``force``; it is replaced as a whole, atomically."""
    run_dir, out = Path(run_dir), Path(out)
    ckpt = check_inputs(run_dir, out, checkpoint=checkpoint, dtype=dtype, force=force)
    state = load_checkpoint(ckpt)
    state["state"].pop("optimizers", None)  # the largest part, not needed
    with _mpt_auto_classes():
        model, tokenizer = _build(state, RunFolder(run_dir), dtype)
        batch = _batch(state)
        del state
        files = _write_folder(out, model, tokenizer, force=force)
    params = sum(p.numel() for p in model.parameters())
    return ExportResult(out, ckpt, params, dtype, batch, type(tokenizer).__name__, files)


# --- checks before any heavy import -----------------------------------------------------------


def check_inputs(run_dir: Path, out: Path, *, checkpoint: Path | None, dtype: str, force: bool) -> Path:
    """The checkpoint to export, after checking the run folder, the checkpoint's presence, the
    dtype and the output location (no torch import, nothing written)."""
    if dtype not in DTYPES:
        raise InputError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    folder = RunFolder(run_dir)
    if not run_dir.is_dir():
        raise InputError(f"run folder not found: {run_dir}")
    if not folder.config.is_file():
        raise InputError(f"{run_dir} has no config.yaml: not a run folder (beyond train writes it)")
    ckpt = Path(checkpoint) if checkpoint is not None else folder.latest_checkpoint
    if ckpt.is_dir():
        raise InputError(f"checkpoint {ckpt} is a folder (a sharded checkpoint?): export reads one Composer "
                         "checkpoint file (.pt)")
    if not ckpt.is_file():
        if checkpoint is not None:
            raise InputError(f"checkpoint not found: {ckpt}")
        raise InputError(f"{run_dir} has no checkpoint ({ckpt.relative_to(run_dir)} is missing): train it first "
                         f"(beyond train ... --run-dir {run_dir}), or name one with --checkpoint")
    _check_out(out, run_dir, ckpt, force)
    return ckpt


def _check_out(out: Path, run_dir: Path, ckpt: Path, force: bool) -> None:
    target = out.resolve()
    for precious in (run_dir.resolve(), ckpt.resolve()):
        if precious == target or target in precious.parents:
            raise InputError(f"--out {out} would replace the run's own files ({precious}); pick another folder")
    if out.is_symlink() or out.exists():
        if not out.is_dir() or out.is_symlink():
            raise InputError(f"--out {out} exists and is not a plain folder (a file or a link)")
        if any(out.iterdir()) and not force:
            raise InputError(f"--out {out} exists and is not empty (pass --force to replace it)")
    ancestor = _existing_ancestor(target.parent)
    if not ancestor.is_dir():
        raise InputError(f"cannot write --out {out}: {ancestor} is not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise InputError(f"cannot write --out {out}: {ancestor} is not writable")


def _existing_ancestor(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists (a file or a folder)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


# --- the conversion ---------------------------------------------------------------------------


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A Composer checkpoint's dictionary (on the CPU), checked to hold a model and its Hugging
    Face state; one line if the file is not one."""
    import torch

    try:  # composer's safe_torch_load is this load plus rank-0 broadcasting, which needs no process group here
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - pickle, zip and torch errors all mean "not a checkpoint"
        raise InputError(f"cannot read checkpoint {path}: {type(exc).__name__}: {one_line(exc)}") from None
    state = ckpt.get("state") if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
        raise InputError(f"{path} is not a Composer checkpoint with model weights (no state['model'])")
    hf = (state.get("integrations") or {}).get("huggingface") or {}
    if "config" not in (hf.get("model") or {}):
        raise InputError(f"{path} holds no Hugging Face model config: not a checkpoint of an llm-foundry "
                         "(mpt_causal_lm) model")
    return ckpt


@contextlib.contextmanager
def _mpt_auto_classes():
    """llm-foundry's MPT classes as the ``mpt`` model type and registered for the auto classes
    (so ``save_pretrained`` copies the modelling code and writes ``auto_map``), meanwhile: the
    registration ``convert_composer_to_hf.py`` does, and undoes, around its conversion."""
    from llmfoundry.models.mpt import MPTConfig, MPTForCausalLM
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    extra = CONFIG_MAPPING._extra_content
    saved = extra.get("mpt"), MPTConfig.__dict__.get("_auto_class"), MPTForCausalLM.__dict__.get("_auto_class")
    extra["mpt"] = MPTConfig
    MPTConfig.register_for_auto_class()
    MPTForCausalLM.register_for_auto_class("AutoModelForCausalLM")
    try:
        yield
    finally:
        if saved[0] is None:
            extra.pop("mpt", None)
        else:
            extra["mpt"] = saved[0]
        for cls, auto in ((MPTConfig, saved[1]), (MPTForCausalLM, saved[2])):
            if auto is None:
                with contextlib.suppress(AttributeError):
                    delattr(cls, "_auto_class")
            else:
                cls._auto_class = auto


def _build(state: dict[str, Any], folder: RunFolder, dtype: str):
    """(MPTForCausalLM with the checkpoint's weights in ``dtype``, the run's tokenizer)."""
    import torch
    from composer.models.huggingface import get_hf_config_from_composer_state_dict
    from llmfoundry.models.mpt import MPTForCausalLM
    from llmfoundry.models.utils import init_empty_weights

    torch_dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    try:
        config = get_hf_config_from_composer_state_dict(state)
    except Exception as exc:  # noqa: BLE001 - composer's bare Exception / transformers' ValueError: one line
        raise InputError(f"cannot rebuild the model config saved in the checkpoint: {one_line(exc)}") from None
    if getattr(config, "model_type", None) != "mpt":
        raise InputError(f"only llm-foundry MPT models can be exported, the checkpoint holds {config.model_type!r}")
    config.attn_config["attn_impl"] = "torch"  # as convert_composer_to_hf.py: loads without flash-attn
    config.init_device = "cpu"
    config.torch_dtype = torch_dtype
    weights = state["state"]["model"]
    torch.nn.modules.utils.consume_prefix_in_state_dict_if_present(weights, prefix="model.")
    weights = {k: v.to(dtype=torch_dtype) if torch.is_floating_point(v) else v for k, v in weights.items()}
    with init_empty_weights():
        model = MPTForCausalLM(config)
    try:
        model.load_state_dict(weights, strict=True, assign=True)
    except RuntimeError as exc:
        raise InputError(f"the checkpoint's weights do not fit its model config: {one_line(exc)}") from None
    model.eval()
    return model, _tokenizer(state, folder)


def _tokenizer(state: dict[str, Any], folder: RunFolder):
    """The tokenizer Composer saved in the checkpoint (llm-foundry's reader), else the run's."""
    from llmfoundry.utils.checkpoint_conversion_helpers import get_hf_tokenizer_from_composer_state_dict

    with tempfile.TemporaryDirectory(prefix="beyond-export-") as tmp:
        # a fixed folder name: a tokenizer with code (tiktoken) is imported from HF_MODULES_CACHE/<name>,
        # so every export reuses one entry there instead of leaving one per temporary folder
        try:
            tokenizer = get_hf_tokenizer_from_composer_state_dict(state, trust_remote_code=True,
                                                                  tokenizer_save_dir=str(Path(tmp) / _TOKENIZER_DIR))
        except Exception as exc:  # noqa: BLE001 - any failure to rebuild it is one line
            raise InputError(f"cannot load the tokenizer saved in the checkpoint: {type(exc).__name__}: "
                             f"{one_line(exc)}") from None
    return tokenizer if tokenizer is not None else _config_tokenizer(folder)


def _config_tokenizer(folder: RunFolder):
    from llmfoundry.utils.builders import build_tokenizer

    from train.config import load_yaml

    tok = load_yaml(folder.config).get("tokenizer") or {}
    name = tok.get("name")
    if not name:
        raise InputError(f"the checkpoint has no tokenizer and {folder.config} names none")
    try:
        return build_tokenizer(str(name), dict(tok.get("kwargs") or {}))
    except Exception as exc:  # noqa: BLE001 - any failure to load is one line
        raise InputError(f"cannot load tokenizer {name!r} offline: {type(exc).__name__}: {one_line(exc)}") from None


def _batch(state: dict[str, Any]) -> int | None:
    """The batch the checkpoint was saved at (Composer's saved ``Timestamp``; None if absent)."""
    stamp = state["state"].get("timestamp")
    if isinstance(stamp, dict):
        stamp = stamp.get("Timestamp", stamp)
        batch = stamp.get("batch") if isinstance(stamp, dict) else None
    else:
        batch = getattr(stamp, "batch", None)
    try:
        return int(getattr(batch, "value", batch)) if batch is not None else None
    except (TypeError, ValueError):
        return None


# --- writing, atomically ----------------------------------------------------------------------


def _write_folder(out: Path, model, tokenizer, *, force: bool) -> list[str]:
    """Save model, tokenizer and modelling code into a temporary folder next to ``out``, then
    rename it into place (replacing an empty or, with ``force``, any existing ``out``); on any
    failure the temporary folder and the parent folders made for it are removed."""
    created = _make_parents(out.parent)
    tmp: Path | None = None
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
        files = _save(tmp, model, tokenizer)
        _swap_in(tmp, out, force=force)
    except BaseException as exc:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        for path in reversed(created):
            with contextlib.suppress(OSError):
                path.rmdir()
        if isinstance(exc, OSError):
            raise InputError(f"cannot write --out {out}: {one_line(exc)}") from None
        raise
    return files


def _save(folder: Path, model, tokenizer) -> list[str]:
    """The Hugging Face folder's contents, as the ``hf_checkpointer`` callback saves them (shards
    of ``LLM_FOUNDRY_SAVE_FOLDER_HF_MAX_SHARD_SIZE``, default 1GB); returns the file names."""
    from llmfoundry.utils.huggingface_hub_utils import edit_files_for_hf_compatibility

    model.save_pretrained(folder, safe_serialization=True,
                          max_shard_size=os.environ.get("LLM_FOUNDRY_SAVE_FOLDER_HF_MAX_SHARD_SIZE", "1GB"))
    tokenizer.save_pretrained(folder)
    edit_files_for_hf_compatibility(str(folder))
    umask = _umask()  # the usual modes: mkdtemp's folder and safetensors' files are private (0o700, 0o600)
    os.chmod(folder, 0o777 & ~umask)
    for path in folder.iterdir():
        os.chmod(path, 0o666 & ~umask)
    return sorted(p.name for p in folder.iterdir())


def _make_parents(path: Path) -> list[Path]:
    """Create ``path`` and missing ancestors; returns those created, outermost first."""
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    created = []
    try:
        for p in reversed(missing):
            p.mkdir()
            created.append(p)
    except OSError as exc:
        for p in reversed(created):
            with contextlib.suppress(OSError):
                p.rmdir()
        raise InputError(f"cannot create {missing[0]}: {one_line(exc)}") from None
    return created


def _swap_in(tmp: Path, out: Path, *, force: bool) -> None:
    """Rename ``tmp`` to ``out``; an existing ``out`` (empty, or any with ``force``) is moved
    aside first and removed after."""
    if not (out.exists() or out.is_symlink()):
        os.rename(tmp, out)
        return
    if any(out.iterdir()) and not force:  # filled since the check
        raise InputError(f"--out {out} exists and is not empty (pass --force to replace it)")
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    os.rename(out, old / "out")
    try:
        os.rename(tmp, out)
    except OSError:
        os.rename(old / "out", out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
