"""The optimizer's issue-17 options, shared by `optimize`, `plan` and `report`: --inference-model and
the roofline serving settings, --unique-tokens, --gauntlet-target (argparse types, registration, checks)."""

from __future__ import annotations

import argparse
import math

from beyond.cli import quantity
from scaling.errors import InputError

# --- issue 17 options, shared with `plan` and `report` ------------------------------------------

SERVING_BATCH_DEFAULT = 64  # sequences decoded together per replica under --inference-model roofline
DOWNSTREAM_RESAMPLES_DEFAULT = 200  # downstream bootstrap when the law carries no bootstrap sets
GAUNTLET_RUNS_FILE = "sardana2024_trainingresults.csv"  # the default runs table, in $REFERENCE_DATA_DIR
_ROOFLINE_ONLY = ("serving_batch", "serving_gpus", "kv_dtype", "weight_dtype", "memory_fraction")


def unique_tokens_type(text: str) -> float:
    """``--unique-tokens``: a quantity (1T, 5e11) or ``inf`` (no budget)."""
    if text.strip().lower() in ("inf", "infinity"):
        return math.inf
    return quantity(text)


def _count_or(word: str):
    """argparse type: a whole number >= 1, or ``word`` itself (``max`` batch, ``auto`` GPUs)."""

    def parse(text: str):
        if text.strip().lower() == word:
            return word
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value < 1:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1 or {word!r}")
        return value

    return parse


_serving_batch_type = _count_or("max")
_serving_gpus_type = _count_or("auto")


def add_unique_tokens_arg(p) -> None:
    p.add_argument("--unique-tokens", type=unique_tokens_type, metavar="U",
                   help="unique training tokens available (e.g. 1T): apply the data-constrained law (Muennighoff "
                   "et al. 2023) on top of --coefficients, so the optimum repeats data when it needs more than U "
                   "(default: unlimited, the paper's law)")


def add_gauntlet_args(p, group) -> None:
    """``--gauntlet-target`` in the quality group ``group``, and its options on ``p``."""
    group.add_argument("--gauntlet-target", type=float, metavar="G",
                       help="target Gauntlet core average (e.g. 0.30): turned into a loss target by a downstream "
                       "fit on --gauntlet-runs")
    p.add_argument("--gauntlet-runs", metavar="CSV",
                   help="runs table with eval_gauntlet/core_average and the loss the law was fitted on (Smoothed "
                   f"Loss) for --gauntlet-target (default: $REFERENCE_DATA_DIR/{GAUNTLET_RUNS_FILE})")
    p.add_argument("--gauntlet-bootstrap", type=int, metavar="N",
                   help="downstream bootstrap resamples (default: as many as the --coefficients fit's bootstrap, "
                   f"paired set by set; {DOWNSTREAM_RESAMPLES_DEFAULT} without one; 0: none)")


def add_inference_args(p, group, *, generation: bool = True) -> None:
    """The inference cost model and its hardware: the paper's MFU model (default) or the roofline."""
    from scaling.optimal import PEAK_FLOPS, CostSettings
    from scaling.roofline import DTYPE_BYTES, GPUS

    d = CostSettings()
    group.add_argument("--inference-model", choices=("paper", "roofline"), default="paper",
                       help="paper: Eq. 6 with fixed prefill/generation MFU (default); roofline: each request's GPU "
                       "time from peak FLOP/s, HBM bandwidth and size at a serving batch (docs/roofline.md)")
    group.add_argument("--inference-gpu", choices=sorted(set(PEAK_FLOPS) | set(GPUS)), default=d.inference_gpu,
                       help=f"(default {d.inference_gpu}; h200 with --inference-model roofline and --inference-price)")
    group.add_argument("--inference-dtype", default=d.inference_dtype,
                       help=f"int8 | fp8 | bf16 | fp16 (default {d.inference_dtype})")
    group.add_argument("--inference-price", type=float, metavar="USD_PER_HOUR", default=d.inference_price_per_hour,
                       help="default: the GPU's list price")
    group.add_argument("--prefill-mfu", type=float, default=d.prefill_mfu, help=f"input-token MFU (default {d.prefill_mfu:g})")
    if generation:
        group.add_argument("--generation-mfu", type=float, default=d.generation_mfu,
                           help=f"output-token MFU, paper model only (default {d.generation_mfu:g})")
    r = p.add_argument_group("serving (--inference-model roofline)")
    r.add_argument("--serving-batch", type=_serving_batch_type, metavar="B",
                   help=f"sequences decoded together per replica, or 'max': the largest that fits on --serving-gpus "
                   f"(default {SERVING_BATCH_DEFAULT})")
    r.add_argument("--serving-gpus", type=_serving_gpus_type, metavar="G",
                   help="GPUs per replica (ideal tensor parallelism), or 'auto': the fewest that hold the weights "
                   "and the batch's KV cache (default auto)")
    dtypes = sorted(DTYPE_BYTES)
    r.add_argument("--kv-dtype", choices=dtypes, help="KV cache element type (default bf16: 2 bytes)")
    r.add_argument("--weight-dtype", choices=dtypes, help="weight storage type (default: --inference-dtype)")
    r.add_argument("--memory-fraction", type=float, metavar="F",
                   help="share of HBM for weights + KV cache (default 0.9)")


def check_inference_args(args) -> None:
    """One line for options that do not belong to the chosen inference model."""
    if getattr(args, "inference_model", "paper") == "roofline":
        from scaling.optimal import CostSettings

        if getattr(args, "generation_mfu", None) not in (None, CostSettings().generation_mfu):
            raise InputError("--generation-mfu is the paper model's; the roofline derives the generation MFU from "
                             "the serving batch and the GPU (use --serving-batch)")
        return
    given = [k for k in _ROOFLINE_ONLY if getattr(args, k, None) is not None]
    if given:
        raise InputError(f"--{given[0].replace('_', '-')} applies to --inference-model roofline only")


def serving_settings(args):
    """RooflineSettings from the command's options (defaults: the paper's serving GPU and dtype,
    batch SERVING_BATCH_DEFAULT, auto GPUs, a bf16 KV cache, 90% of HBM)."""
    from scaling.optimal import PRICE_PER_HOUR
    from scaling.roofline import DTYPE_BYTES, RooflineSettings

    if args.inference_price is None and args.inference_gpu not in PRICE_PER_HOUR:
        raise InputError(f"no default price for {args.inference_gpu}: give --inference-price USD_PER_HOUR")
    batch = SERVING_BATCH_DEFAULT if args.serving_batch is None else args.serving_batch
    gpus = None if args.serving_gpus in (None, "auto") else args.serving_gpus
    if batch == "max" and gpus is None:
        raise InputError("--serving-batch max needs a GPU count: give --serving-gpus G")
    return RooflineSettings(
        gpu=args.inference_gpu, dtype=args.inference_dtype, batch=None if batch == "max" else batch,
        weight_bytes=None if args.weight_dtype is None else DTYPE_BYTES[args.weight_dtype],
        kv_bytes=DTYPE_BYTES[args.kv_dtype or "bf16"], prefill_mfu=args.prefill_mfu,
        memory_fraction=0.9 if args.memory_fraction is None else args.memory_fraction, gpus=gpus,
        price_per_hour=args.inference_price)


def unique_tokens(args) -> float | None:
    """The unique-token budget, or None when not given (or inf: the paper's law, unchanged)."""
    u = getattr(args, "unique_tokens", None)
    if u is None:
        return None
    if not u > 0:
        raise InputError(f"--unique-tokens must be > 0 (or inf), got {u:g}")
    return None if math.isinf(u) else float(u)
