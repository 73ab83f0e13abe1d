"""Check an llm-foundry train config before anything is scheduled.

Two layers, both llm-foundry's own code and signatures:
1. llm-foundry 0.22's train entry point checks: the ``TrainConfig`` dataclass build with all of
   its transforms (``make_dataclass_and_log_config``: unknown top-level keys, missing mandatory
   values, batch size / microbatch arithmetic for the world size) and ``validate_config``.
2. Every named component against llm-foundry's registries, and its keys against the signature of
   the class the registry builds. llm-foundry itself lets unknown keys through silently in several
   places (``model.*`` ends up as an unused attribute of ``MPTConfig``, unknown
   ``train_loader.dataset`` keys are dropped), so a typo such as ``model.n_layer=4`` would train the
   default model. We reject it instead.

Errors are one line (``InputError``) naming the key and where it belongs.
"""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import Callable, Iterable
from typing import Any

from ioutil import one_line
from scaling.errors import InputError

# ComposerMPTCausalLM's own keyword arguments, besides those of MPTConfig
_MPT_WRAPPER_KEYS = {"name", "loss_fn", "use_train_metrics", "additional_train_metrics", "tokenizer"}


def validate_train_config(cfg: dict[str, Any], world_size: int = 1) -> None:
    """Raise ``InputError`` (one line) unless llm-foundry would accept ``cfg`` as a train config
    for ``world_size`` processes and every key names something that is used."""
    _foundry_entry_point_checks(cfg, world_size)
    _check_components(cfg)


def validate_early(cfg: dict[str, Any], world_size: int = 1) -> None:
    """The checks that need no data and no filled-in duration: component names and keys, and
    the global batch against the world size (llm-foundry's own arithmetic). Run before any data
    is tokenised, so a typo costs a second, not a tokenisation."""
    _check_components(cfg)
    from llmfoundry.utils.config_utils import calculate_batch_size_info

    with _world_size_env(world_size):
        try:
            calculate_batch_size_info(cfg["global_train_batch_size"], cfg.get("device_train_microbatch_size", "auto"))
        except Exception as exc:  # noqa: BLE001 - llm-foundry's ValueError: one line
            raise InputError(f"llm-foundry rejects the config: {one_line(exc)}") from None


@contextlib.contextmanager
def _world_size_env(world_size: int):
    """WORLD_SIZE as composer.utils.dist reads it for the batch arithmetic, meanwhile."""
    saved = os.environ.get("WORLD_SIZE")
    os.environ["WORLD_SIZE"] = str(world_size)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("WORLD_SIZE", None)
        else:
            os.environ["WORLD_SIZE"] = saved


def _foundry_entry_point_checks(cfg: dict[str, Any], world_size: int) -> None:
    from llmfoundry.command_utils.train import validate_config
    from llmfoundry.utils.config_utils import TRAIN_CONFIG_KEYS, TrainConfig, make_dataclass_and_log_config
    from omegaconf import OmegaConf

    with _world_size_env(world_size):
        try:
            _, train_cfg = make_dataclass_and_log_config(OmegaConf.create(cfg), TrainConfig, TRAIN_CONFIG_KEYS,
                                                         transforms="all")
            validate_config(train_cfg)
        except Exception as exc:  # noqa: BLE001 - llm-foundry raises ValueError, omegaconf errors, ...
            raise InputError(f"llm-foundry rejects the config: {one_line(exc)}") from None


def _check_components(cfg: dict[str, Any]) -> None:
    from llmfoundry import registry

    model = dict(cfg.get("model") or {})
    if model.get("name") != "mpt_causal_lm":
        raise InputError(f"model.name must be mpt_causal_lm, not {model.get('name')!r}")
    _check_mpt_model(model)
    _check_named(cfg.get("optimizer"), "optimizer", registry.optimizers)
    _check_named(cfg.get("scheduler"), "scheduler", registry.schedulers)
    for section, reg in (("algorithms", registry.algorithms), ("callbacks", registry.callbacks),
                         ("loggers", registry.loggers)):
        for name, kwargs in (cfg.get(section) or {}).items():
            _check_kwargs(f"{section}.{name}", _lookup(reg, name, f"{section}.{name}"), kwargs or {})
    _check_loader(cfg.get("train_loader") or {}, "train_loader", registry)
    for i, loader in enumerate(_as_list(cfg.get("eval_loader"))):
        _check_loader(loader, f"eval_loader[{i}]" if isinstance(cfg.get("eval_loader"), list) else "eval_loader",
                      registry)
    fsdp = cfg.get("fsdp_config")
    if fsdp:
        import dataclasses

        from composer.utils.parallelism import FSDPConfig

        _check_keys("fsdp_config", fsdp, {f.name for f in dataclasses.fields(FSDPConfig)})


def _check_mpt_model(model: dict[str, Any]) -> None:
    from llmfoundry import registry
    from llmfoundry.models.mpt import MPTConfig
    from llmfoundry.models.utils.config_defaults import (
        attn_config_defaults,
        ffn_config_defaults,
        init_config_defaults,
    )

    _check_keys("model", model, _parameters(MPTConfig.__init__) | _MPT_WRAPPER_KEYS)
    attn = model.get("attn_config") or {}
    attn_type = attn.get("attn_type", attn_config_defaults["attn_type"])
    attn_class = _lookup(registry.attention_classes, attn_type, "model.attn_config.attn_type")
    # MPTConfig's defaults, plus what the chosen attention class takes (kv_n_heads for GQA)
    _check_keys("model.attn_config", attn, set(attn_config_defaults) | (_parameters(attn_class) or set()))
    _check_keys("model.init_config", model.get("init_config") or {}, set(init_config_defaults))
    ffn = model.get("ffn_config") or {}
    if ffn.get("ffn_type", "mptmlp") in ("mptmlp", "mptglu"):
        _check_keys("model.ffn_config", ffn, set(ffn_config_defaults) | {"ffn_type", "ffn_act_fn", "ffn_hidden_size"})


def _check_named(section: Any, where: str, reg) -> None:
    if section is None:
        return
    if not isinstance(section, dict) or "name" not in section:
        raise InputError(f"{where} needs a name")
    kwargs = {k: v for k, v in section.items() if k != "name"}
    _check_kwargs(where, _lookup(reg, section["name"], f"{where}.name"), kwargs)


def _check_loader(loader: dict[str, Any], where: str, registry) -> None:
    if not loader:
        return
    builder = _lookup(registry.dataloaders, loader.get("name"), f"{where}.name")
    _check_kwargs(where, builder, {k: v for k, v in loader.items() if k != "name"},
                  ignore={"tokenizer", "device_batch_size"})
    if loader.get("name") == "text":
        from llmfoundry.data.text_data import StreamingTextDataset
        from streaming import StreamingDataset

        allowed = _parameters(StreamingTextDataset) | _parameters(StreamingDataset) | {"streams"}
        _check_keys(f"{where}.dataset", loader.get("dataset") or {}, allowed)


def _lookup(reg, name: Any, where: str) -> Callable:
    try:
        return reg.get(name)
    except Exception:  # noqa: BLE001 - catalogue raises its own error type for unknown names
        known = ", ".join(sorted(reg.get_all()))
        raise InputError(f"{where}: unknown {name!r} (llm-foundry knows {known})") from None


def _check_kwargs(where: str, target: Callable, kwargs: Any, ignore: Iterable[str] = ()) -> None:
    if not isinstance(kwargs, dict):
        raise InputError(f"{where} must be a mapping of settings, got {kwargs!r}")
    params = _parameters(target, accept_any=True)
    if params is None:  # the target takes **kwargs: nothing more to check
        return
    _check_keys(where, kwargs, params | set(ignore))


def _check_keys(where: str, section: Any, allowed: set[str] | None) -> None:
    if not isinstance(section, dict):
        raise InputError(f"{where} must be a mapping of settings, got {section!r}")
    if allowed is None:
        return
    unknown = sorted(set(section) - allowed)
    if unknown:
        raise InputError(f"unknown setting {where}.{unknown[0]}" + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1
                         else "") + f": {where} accepts {', '.join(sorted(allowed - {'self'}))}")


def _parameters(target: Callable, accept_any: bool = False) -> set[str] | None:
    """Keyword names ``target`` accepts; None if it takes ``**kwargs`` and ``accept_any``."""
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return None
    names = set()
    for p in sig.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            if accept_any:
                return None
            continue
        if p.kind is not p.VAR_POSITIONAL:
            names.add(p.name)
    return names - {"self"}


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
