"""From an optimizer answer to a trainable run: pick the Table 4-family shape closest to the
recommended size, give it the tokens that reach the target loss, write its model YAML, its
llm-foundry run config and launch files (the sweep backends), with GPU-hour and dollar estimates."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import yaml

from ioutil import write_atomic
from scaling.coefficients import LawCoefficients
from scaling.errors import InputError
from scaling.law import tokens_for_loss
from scaling.shape import Shape, choose_shape
from train.zoo import MODELS_DIR, PAPER_PARAMS, PAPER_SIZES


@dataclass
class PlannedModel:
    shape: Shape
    tokens: float  # training tokens that reach the target loss with this shape's params
    model_yaml: Path
    sweep_yaml: Path
    run_name: str


def plan_model(coeffs: LawCoefficients, target_loss: float, recommended_params: float, out: Path,
               data: str, name: str = "planned") -> PlannedModel:
    """Write ``<out>/<name>.yaml`` (the nearest zoo YAML with the chosen shape, learning rate and
    batch size) and ``<out>/sweep.yaml`` (a one-run sweep of it)."""
    shape = choose_shape(recommended_params)
    tokens = float(tokens_for_loss(coeffs, shape.params, target_loss))
    if not math.isfinite(tokens):
        raise InputError(f"a {shape.params:.3g}-param model never reaches loss {target_loss} under these coefficients")
    nearest = min(PAPER_PARAMS, key=lambda k: abs(math.log(PAPER_PARAMS[k] / shape.params)))
    with open(MODELS_DIR / f"{PAPER_SIZES[nearest]}.yaml") as fh:
        cfg = yaml.safe_load(fh)
    cfg["variables"]["zoo_name"] = name
    cfg["variables"]["paper_params"] = None
    cfg["model"].update(d_model=shape.d_model, n_heads=shape.n_heads, n_layers=shape.n_layers)
    cfg["model"]["attn_config"]["kv_n_heads"] = shape.kv_n_heads
    cfg["optimizer"].update(lr=shape.learning_rate, weight_decay=shape.learning_rate)
    cfg["global_train_batch_size"] = shape.batch_size
    header = (f"# Planned by `beyond plan`: {shape.params:,} params (d_model {shape.d_model}, {shape.n_heads} heads, "
              f"{shape.kv_n_heads} KV heads, {shape.n_layers} layers),\n# learning rate and batch size from Table 4 "
              f"(interpolated), everything else from {PAPER_SIZES[nearest]}.yaml.\n")
    model_yaml = out / f"{name}.yaml"
    write_atomic(model_yaml, header + yaml.safe_dump(cfg, sort_keys=False))
    ratio = tokens / shape.params
    run_name = f"{name}-r{ratio:.4g}"
    sweep = {"name": name, "data": data, "out": str(out), "seed": 17, "set": [],
             "grid": [{"model": str(model_yaml), "tokens_per_param": [float(f"{ratio:.6g}")]}]}
    sweep_yaml = out / "sweep.yaml"
    write_atomic(sweep_yaml, yaml.safe_dump(sweep, sort_keys=False))
    return PlannedModel(shape, tokens, model_yaml, sweep_yaml, run_name)
