"""The paper's Table 4 model family: a shape for a parameter count (pure Python and numpy).

Family (Table 4): head dimension 64 below d_model 1536 and 128 from there, n_heads / 4 KV heads
(GQA), expansion ratio 4, tied cl100k_base embeddings (vocab 100,352), d_model / n_layers between
32 and 128 (Table 4 spans 43-128). Learning rate: log-log interpolation of Table 4's rates against
params (extrapolated linearly in log space beyond 151M-6.05B); batch size: Table 4's steps.

``choose_shape`` picks one integer shape (what ``beyond plan`` trains). ``family_kv_shape`` is its
smooth, vectorised counterpart for cost models that need the layers and KV width of many sizes
at once (``scaling.roofline``): the same family rules with d_model and n_layers left continuous.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from scaling.errors import InputError
from scaling.model_size import mpt_param_count

VOCAB = 100352
KV_GROUP = 4  # query heads per KV head: kv_n_heads = n_heads / 4
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

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def kv_width(self) -> int:
        """KV heads x head dimension: elements of K (or of V) per token per layer."""
        return self.kv_n_heads * self.head_dim


def target_aspect(params: float) -> float:
    """Table 4's d_model / n_layers for a size: 64 up to 1B params, rising log-linearly to 128
    at 6.05B and flat beyond."""
    return 64.0 * 2 ** min(1.0, max(0.0, math.log(params / 1e9) / math.log(6.05)))


def choose_shape(target_params: float, vocab: int = VOCAB, tolerance: float = 0.02) -> Shape:
    """A family shape within ``tolerance`` (relative) of ``target_params`` whose aspect ratio
    d_model / n_layers is closest to Table 4's for that size (64 up to ~1B params, rising to 128
    at 6B and beyond); failing that, the closest count. Errors if nothing is within 5%."""
    if not (target_params > 0 and math.isfinite(target_params)):
        raise InputError(f"target params must be positive, got {target_params}")
    want_aspect = target_aspect(target_params)
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


# --- the family as smooth functions of N (vectorised) ----------------------------------------


@dataclass(frozen=True)
class FamilyKVShape:
    """Arrays (one entry per param count): continuous d_model, n_layers and KV width
    (kv_n_heads x head_dim = d_model / 4 in this family)."""

    d_model: np.ndarray
    n_layers: np.ndarray
    kv_width: np.ndarray

    @property
    def kv_elements_per_token(self) -> np.ndarray:
        """2 (K and V) x n_layers x KV width: cached elements per token of context."""
        return 2.0 * self.n_layers * self.kv_width


def smooth_aspect(params) -> np.ndarray:
    """d_model / n_layers for arrays of params: 64 up to 1B, 128 from 6.05B, and between them a
    cubic smoothstep in log N (``target_aspect`` rises linearly there, with kinks at both ends; a
    kink in the aspect is a kink in the KV cache size and in every cost built on it)."""
    n = np.asarray(params, float)
    x = np.clip(np.log(n / 1e9) / math.log(6.05), 0.0, 1.0)
    return 64.0 * 2.0 ** (x * x * (3.0 - 2.0 * x))


def family_kv_shape(params, vocab: int = VOCAB) -> FamilyKVShape:
    """The Table 4 family's shape for arrays of params, as a smooth approximation.

    Exact MPT count with kv_n_heads = n_heads / 4 and expansion 4 (``scaling.model_size``):
    N = n_layers (10.5 d^2 + 2 d) + (vocab + 1) d. With n_layers = d / a, a = ``smooth_aspect(N)``
    (the aspect ``choose_shape`` aims for, smoothed), N = (10.5 d^3 + 2 d^2) / a + (vocab + 1) d, an increasing
    cubic in d solved by Newton's method; d_model and n_layers are left continuous (no rounding to
    multiples of 64 or to whole layers), so the KV width d / 4 and the layers are smooth in N.
    Against ``choose_shape`` at Table 4's six sizes, KV elements per token agree within ~15%
    (``choose_shape`` trades aspect for a count within 2%; tests/test_roofline.py pins the gap).
    """
    n = np.asarray(params, float)
    if not np.all(np.isfinite(n) & (n > 0)):
        raise InputError("params must be finite and > 0")
    a = smooth_aspect(n)
    v = float(vocab) + 1.0
    # start at the root of the cubic without its 2 d^2 / a term, in closed form (Cardano, written
    # without cancellation: u^3 - w^3 = q, u w = p / 3, root = q / (u^2 + u w + w^2)); the full
    # cubic is > 0 there, so Newton's method on it (increasing and convex) decreases monotonically
    # to the root; three steps reach machine precision from this close a start
    p = v * a / 10.5
    q = n * a / 10.5
    u = np.cbrt(q / 2.0 + np.sqrt(q * q / 4.0 + (p / 3.0) ** 3))
    w = p / (3.0 * u)
    d = q / (u * u + u * w + w * w)
    for _ in range(3):  # relative error ~1e-4 at the start, then ~1e-8, ~1e-16
        d2 = d * d
        d = d - ((10.5 * d2 * d + 2.0 * d2) / a + v * d - n) / ((31.5 * d2 + 4.0 * d) / a + v)
    layers = d / a
    return FamilyKVShape(d_model=d, n_layers=layers, kv_width=d / KV_GROUP)
