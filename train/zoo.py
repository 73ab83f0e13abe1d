"""The model zoo: llm-foundry train YAMLs in ``yamls/models`` (Table 4 sizes + tiny CPU sizes)."""

from __future__ import annotations

import os
from pathlib import Path

from scaling.errors import InputError
from scaling.model_size import mpt_param_count

YAMLS_DIR = Path(os.environ.get("BEYOND_YAMLS_DIR", Path(__file__).resolve().parent.parent / "yamls"))
MODELS_DIR = YAMLS_DIR / "models"
# Table 4 names (and the paper's Params column) -> zoo file stems
PAPER_SIZES = {"150M": "mpt-150m", "370M": "mpt-370m", "750M": "mpt-750m", "1.3B": "mpt-1.3b",
               "2.5B": "mpt-2.5b", "6B": "mpt-6b"}
PAPER_PARAMS = {"150M": 151e6, "370M": 367e6, "750M": 749e6, "1.3B": 1.26e9, "2.5B": 2.46e9, "6B": 6.05e9}


def zoo_names() -> list[str]:
    """Stems of the model YAMLs shipped in yamls/models."""
    return sorted(p.stem for p in MODELS_DIR.glob("*.yaml"))


def model_yaml(name_or_path: str) -> Path:
    """A zoo name (``mpt-150m``, ``150M``, ``tiny``) or a path to an llm-foundry YAML."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise InputError(f"model YAML not found: {name_or_path}")
        return path
    stem = PAPER_SIZES.get(name_or_path.upper(), name_or_path.lower())
    for candidate in (stem, f"mpt-{stem}"):
        if (MODELS_DIR / f"{candidate}.yaml").is_file():
            return MODELS_DIR / f"{candidate}.yaml"
    raise InputError(f"unknown model size {name_or_path!r}: use one of {', '.join(zoo_names())}, "
                     "a Table 4 name (150M ... 6B) or a path to an llm-foundry YAML")


def params_of(model_cfg: dict) -> int:
    """N (params, embeddings included) of an ``mpt_causal_lm`` model section."""
    if model_cfg.get("name", "mpt_causal_lm") != "mpt_causal_lm":
        raise InputError(f"only mpt_causal_lm models are supported, not {model_cfg.get('name')!r}")
    attn = model_cfg.get("attn_config") or {}
    try:
        kv = attn.get("kv_n_heads") if attn.get("attn_type") == "grouped_query_attention" else None
        if attn.get("attn_type") == "multiquery_attention":
            kv = 1
        return mpt_param_count(int(model_cfg["d_model"]), int(model_cfg["n_heads"]), int(model_cfg["n_layers"]),
                               int(model_cfg["vocab_size"]), None if kv is None else int(kv),
                               float(model_cfg.get("expansion_ratio", 4)), bool(model_cfg.get("no_bias", True)))
    except KeyError as exc:
        raise InputError(f"model section lacks {exc.args[0]}") from None
    except (TypeError, ValueError) as exc:
        raise InputError(f"bad model section: {exc}") from None
