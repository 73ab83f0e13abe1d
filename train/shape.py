"""Choose an MPT shape in the paper's Table 4 family for a target parameter count.

Family (Table 4): head dimension 64 below d_model 1536 and 128 from there, n_heads / 4 KV heads
(GQA), expansion ratio 4, tied cl100k_base embeddings (vocab 100,352), d_model / n_layers between
32 and 128 (Table 4 spans 43-128). Learning rate: log-log interpolation of Table 4's rates against
params (extrapolated linearly in log space beyond 151M-6.05B); batch size: Table 4's steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scaling.errors import InputError
from scaling.model_size import mpt_param_count

VOCAB = 100352
KV_GROUP = 4
TABLE4 = [  # params, learning rate, batch size (sequences of 4096)
    (151e6, 4.603e-4, 160), (367e6, 3.453e-4, 320), (749e6, 2.302e-4, 480),
    (1.26e9, 1.726e-4, 960), (2.46e9, 1.381e-4, 960), (6.05e9, 8.632e-5, 960),
]


@dataclass(frozen=True)
class Shape:
    d_model: int
    n_heads: int
    kv_n_heads: int
    n_layers: int
    params: int
    learning_rate: float
    batch_size: int

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def choose_shape(target_params: float, vocab: int = VOCAB, tolerance: float = 0.02) -> Shape:
    """A family shape within ``tolerance`` (relative) of ``target_params`` whose aspect ratio
    d_model / n_layers is closest to Table 4's for that size (64 up to ~1B params, rising to 128
    at 6B and beyond); failing that, the closest count. Errors if nothing is within 5%."""
    if not (target_params > 0 and math.isfinite(target_params)):
        raise InputError(f"target params must be positive, got {target_params}")
    want_aspect = 64.0 * 2 ** min(1.0, max(0.0, math.log(target_params / 1e9) / math.log(6.05)))
    candidates = []
    for d_model in range(128, 32768 + 1, 64):
        head_dim = 64 if d_model < 1536 else 128
        if d_model % head_dim or (d_model // head_dim) % KV_GROUP:
            continue
        n_heads = d_model // head_dim
        for n_layers in range(max(1, math.ceil(d_model / 128)), max(1, d_model // 32) + 1):
            n = mpt_param_count(d_model, n_heads, n_layers, vocab, n_heads // KV_GROUP)
            candidates.append((abs(math.log(n / target_params)), abs(math.log(d_model / n_layers / want_aspect)),
                               d_model, n_heads, n_layers, n))
    close = [c for c in candidates if c[0] <= math.log1p(tolerance)]
    err, _, d_model, n_heads, n_layers, n = min(close, key=lambda c: (c[1], c[0])) if close else min(candidates)
    if abs(n / target_params - 1) > 0.05:
        raise InputError(f"no shape of the Table 4 family within 5% of {target_params:.3g} params "
                         f"(closest {n:.3g}; the {vocab:,}-token embedding alone is {vocab * 128:.3g} at d_model 128)")
    return Shape(d_model, n_heads, n_heads // KV_GROUP, n_layers, n, learning_rate(n), batch_size(n))


def learning_rate(params: float) -> float:
    """Table 4's learning rate, interpolated (and extrapolated) linearly in log-log."""
    xs = [math.log(p) for p, _, _ in TABLE4]
    ys = [math.log(lr) for _, lr, _ in TABLE4]
    x = math.log(params)
    i = 0 if x <= xs[1] else len(xs) - 2 if x >= xs[-2] else next(k for k in range(len(xs) - 1) if xs[k] <= x <= xs[k + 1])
    t = (x - xs[i]) / (xs[i + 1] - xs[i])
    return float(math.exp(ys[i] + t * (ys[i + 1] - ys[i])))


def batch_size(params: float) -> int:
    """Table 4's batch size (sequences) for the nearest listed model size (in log params)."""
    return min(TABLE4, key=lambda row: abs(math.log(row[0] / params)))[2]
