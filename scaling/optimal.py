"""Inference-aware optimal models: the paper's Sec. 2 (FLOPs) and Sec. 6 / Eq. 6 (dollars).

Compute-optimal: minimise 6 N D_tr + 2 N D_inf subject to L(N, D_tr) = loss.
With y = B / D_tr**beta (the data term of the loss), the Lagrange condition (the paper's
Eq. 12) becomes

    (1 + beta/alpha) y + D_inf beta / (3 alpha) B**(-1/beta) y**(1 + 1/beta) = loss - E,

a sum of two increasing powers of y. In t = log y the left side's logarithm is convex and
increasing, so Newton's method started to the right of the root (at the smaller of the two
single-term solutions, where the residual is >= 0) decreases monotonically to the root: no
divergence, no bracketing failures, and ~6 iterations to machine precision. Everything is
vectorised over arrays of (loss, demand).

Cost-optimal (Eq. 6) is the same problem with inference demand replaced by its
training-token equivalent: cost = k_tr (6 N D_tr + 2 N D_eq), where k_tr is dollars per
training FLOP and D_eq = (dollars of inference per 2 N) / (k_tr).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from scaling.coefficients import LawCoefficients
from scaling.errors import InputError
from scaling.law import (
    INFERENCE_FLOPS_PER_PARAM_TOKEN,
    TRAIN_FLOPS_PER_PARAM_TOKEN,
    check_loss_reachable,
    chinchilla_for_loss,
)

_NEWTON_ITERATIONS = 60
_NEWTON_RTOL = 1e-15
_CHUNK = 1 << 15  # points solved together


@dataclass(frozen=True)
class ModelChoice:
    """Arrays of params (N) and training tokens (D_tr) of the chosen models."""

    params: np.ndarray
    tokens: np.ndarray


def _check_demand(name: str, value) -> np.ndarray:
    arr = np.asarray(value, float)
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        bad = arr[~(np.isfinite(arr) & (arr >= 0))]
        raise InputError(f"{name} must be a finite number >= 0, got {float(bad.flat[0]):g}")
    return arr


def compute_optimal(c: LawCoefficients, target_loss, inference_tokens) -> ModelChoice:
    """(N*, D_tr*) minimising 6 N D_tr + 2 N D_inf at L(N, D_tr) = target_loss.

    ``target_loss`` (nats/token) and ``inference_tokens`` (lifetime tokens, input + output)
    broadcast against each other. Demand 0 gives the Chinchilla-style model exactly.
    """
    target = check_loss_reachable(c, target_loss)
    demand = _check_demand("inference tokens", inference_tokens)
    target, demand = np.broadcast_arrays(target, demand)
    if target.size <= _CHUNK:
        return _compute_optimal(c, target, demand)
    # in chunks: a chunk's temporaries stay in cache, where fresh 8 MB arrays per operation
    # would page-fault on every use (about 2x slower for 10^6 points)
    flat_target, flat_demand = target.ravel(), demand.ravel()
    params, tokens = np.empty(target.size), np.empty(target.size)
    for i in range(0, target.size, _CHUNK):
        part = _compute_optimal(c, flat_target[i : i + _CHUNK], flat_demand[i : i + _CHUNK])
        params[i : i + _CHUNK], tokens[i : i + _CHUNK] = part.params, part.tokens
    return ModelChoice(params=params.reshape(target.shape), tokens=tokens.reshape(target.shape))


def _compute_optimal(c: LawCoefficients, target: np.ndarray, demand: np.ndarray) -> ModelChoice:
    """compute_optimal on checked, broadcast arrays."""
    gap = target - c.E
    c1 = 1.0 + c.beta / c.alpha
    c2 = demand * c.beta / (3.0 * c.alpha) * c.B ** (-1.0 / c.beta)
    p = 1.0 + 1.0 / c.beta
    log_gap = np.log(gap)
    with np.errstate(divide="ignore"):
        t = np.minimum(log_gap - np.log(c1), (log_gap - np.log(c2)) / p)
    solved = c2 > 0
    t = np.where(solved, t, log_gap - np.log(c1))  # demand 0: exact closed form
    if np.any(solved):
        ts, lg, c2s = t[solved], log_gap[solved], c2[solved]
        log_c1, log_c2 = np.log(c1), np.log(c2s)
        for _ in range(_NEWTON_ITERATIONS):
            # h(t) = log(c1 e^t + c2 e^{p t}) - log gap, convex and increasing in t
            u1 = log_c1 + ts
            u2 = log_c2 + p * ts
            m = np.maximum(u1, u2)
            e1, e2 = np.exp(u1 - m), np.exp(u2 - m)
            h = m + np.log(e1 + e2) - lg
            step = h * (e1 + e2) / (e1 + p * e2)
            ts = ts - step
            if np.all(np.abs(step) <= _NEWTON_RTOL * np.maximum(1.0, np.abs(ts))):
                break
        t = t.copy()
        t[solved] = ts
    y = np.exp(t)
    tokens = (c.B / y) ** (1.0 / c.beta)
    params = (c.A / (gap - y)) ** (1.0 / c.alpha)
    if not np.all(solved):  # demand 0: bit-for-bit the Chinchilla-style closed form
        ref_params, ref_tokens = chinchilla_for_loss(c, target)
        params = np.where(solved, params, ref_params)
        tokens = np.where(solved, tokens, ref_tokens)
    return ModelChoice(params=params, tokens=tokens)


# --- real-world cost (Sec. 6, Eq. 6) ---------------------------------------------------------

# Dense peak throughput (FLOP/s or OP/s) by GPU and dtype, and on-demand prices ($/GPU-hour).
# A100 prices are the paper's App. B.3 (Lambda Labs, 2023); H100 from the authors' calculator.
PEAK_FLOPS: dict[str, dict[str, float]] = {
    "a100-40": {"bf16": 3.12e14, "fp16": 3.12e14, "int8": 6.24e14},
    "a100-80": {"bf16": 3.12e14, "fp16": 3.12e14, "int8": 6.24e14},
    "h100": {"bf16": 9.89e14, "fp16": 9.89e14, "fp8": 1.978e15, "int8": 1.978e15},
}
PRICE_PER_HOUR: dict[str, float] = {"a100-40": 1.10, "a100-80": 1.50, "h100": 2.00}


@dataclass(frozen=True)
class CostSettings:
    """Hardware and utilisation for Eq. 6. Prices in US dollars per GPU-hour, MFU in (0, 1].

    Defaults are the paper's Table 3 / Fig. 6 settings: train on A100-80GB in bf16 at 50% MFU,
    serve on A100-40GB after INT8 quantisation, prefill at 50% MFU, generation at 1% MFU.
    """

    train_gpu: str = "a100-80"
    train_dtype: str = "bf16"
    train_price_per_hour: float | None = None
    train_mfu: float = 0.5
    inference_gpu: str = "a100-40"
    inference_dtype: str = "int8"
    inference_price_per_hour: float | None = None
    prefill_mfu: float = 0.5
    generation_mfu: float = 0.01

    def __post_init__(self) -> None:
        for name in ("train_mfu", "prefill_mfu", "generation_mfu"):
            v = getattr(self, name)
            if not (np.isfinite(v) and 0 < v <= 1):
                raise InputError(f"{name.replace('_', ' ')} must be in (0, 1], got {v}")
        for gpu, dtype in ((self.train_gpu, self.train_dtype), (self.inference_gpu, self.inference_dtype)):
            if gpu not in PEAK_FLOPS:
                raise InputError(f"unknown GPU {gpu!r}; known: {', '.join(PEAK_FLOPS)}")
            if dtype not in PEAK_FLOPS[gpu]:
                raise InputError(f"GPU {gpu} has no {dtype} rate; known: {', '.join(PEAK_FLOPS[gpu])}")
        for name in ("train_price_per_hour", "inference_price_per_hour"):
            v = getattr(self, name)
            if v is not None and not (np.isfinite(v) and v > 0):
                raise InputError(f"{name.replace('_', ' ')} must be > 0 dollars, got {v}")

    def as_dict(self) -> dict:
        out = asdict(self)
        out["train_price_per_hour"] = self.train_price
        out["inference_price_per_hour"] = self.inference_price
        return out

    @property
    def train_price(self) -> float:
        return self.train_price_per_hour or PRICE_PER_HOUR[self.train_gpu]

    @property
    def inference_price(self) -> float:
        return self.inference_price_per_hour or PRICE_PER_HOUR[self.inference_gpu]

    @property
    def dollars_per_train_flop(self) -> float:
        """k_tr = price / (3600 s * peak FLOP/s * MFU): dollars per training FLOP."""
        peak = PEAK_FLOPS[self.train_gpu][self.train_dtype]
        return self.train_price / (3600.0 * peak * self.train_mfu)

    @property
    def dollars_per_inference_op(self) -> float:
        """Dollars per inference operation at 100% utilisation."""
        return self.inference_price / (3600.0 * PEAK_FLOPS[self.inference_gpu][self.inference_dtype])


PAPER_INPUT_TOKENS = 70.0  # prompt tokens per request (the paper's Sec. 6, LMSYS-Chat mean)
PAPER_OUTPUT_TOKENS = 215.0  # generated tokens per request


@dataclass(frozen=True)
class InferenceDemand:
    """Lifetime demand: requests x (input tokens, output tokens) per request."""

    requests: np.ndarray | float
    input_tokens: float
    output_tokens: float

    def __post_init__(self) -> None:
        _check_demand("requests", self.requests)
        _check_demand("input tokens per request", self.input_tokens)
        _check_demand("output tokens per request", self.output_tokens)

    @property
    def total_tokens(self):
        return np.asarray(self.requests, float) * (self.input_tokens + self.output_tokens)


def train_token_equivalent(settings: CostSettings, demand: InferenceDemand):
    """D_eq: training tokens whose cost (6 N D_eq k_tr / 3) equals the inference bill per 2N."""
    per_op = settings.dollars_per_inference_op
    weighted = np.asarray(demand.requests, float) * (
        demand.input_tokens / settings.prefill_mfu + demand.output_tokens / settings.generation_mfu
    )
    return per_op * weighted / settings.dollars_per_train_flop


def total_cost(settings: CostSettings, demand: InferenceDemand, params, tokens):
    """Dollars to train N params on D_tr tokens and serve the demand (Eq. 6)."""
    d_eq = train_token_equivalent(settings, demand)
    n = np.asarray(params, float)
    return settings.dollars_per_train_flop * (TRAIN_FLOPS_PER_PARAM_TOKEN * n * np.asarray(tokens, float)
                                              + INFERENCE_FLOPS_PER_PARAM_TOKEN * n * d_eq)


def cost_optimal(c: LawCoefficients, target_loss, settings: CostSettings, demand: InferenceDemand) -> ModelChoice:
    """(N*, D_tr*) minimising Eq. 6's dollars at L(N, D_tr) = target_loss."""
    return compute_optimal(c, target_loss, train_token_equivalent(settings, demand))


def total_flops(params, tokens, inference_tokens):
    """6 N D_tr + 2 N D_inf."""
    n = np.asarray(params, float)
    return (TRAIN_FLOPS_PER_PARAM_TOKEN * n * np.asarray(tokens, float)
            + INFERENCE_FLOPS_PER_PARAM_TOKEN * n * np.asarray(inference_tokens, float))


def chinchilla_style(c: LawCoefficients, target_loss) -> ModelChoice:
    """The training-compute-optimal model reaching the loss (what the paper compares against)."""
    params, tokens = chinchilla_for_loss(c, target_loss)
    return ModelChoice(params=np.asarray(params), tokens=np.asarray(tokens))


@dataclass(frozen=True)
class ComputeComparison:
    """The inference-aware optimum against the Chinchilla-style model at the same loss and
    lifetime inference demand (tokens): each one's params and tokens, their total FLOPs
    (6 N D_tr + 2 N D_inf) and the ratios optimal / Chinchilla-style."""

    optimal: ModelChoice
    chinchilla: ModelChoice
    optimal_flops: np.ndarray
    chinchilla_flops: np.ndarray

    @property
    def flops_ratio(self):
        return self.optimal_flops / self.chinchilla_flops

    @property
    def params_ratio(self):
        return self.optimal.params / self.chinchilla.params

    @property
    def tokens_ratio(self):
        return self.optimal.tokens / self.chinchilla.tokens


def compare_compute(c: LawCoefficients, target_loss, inference_tokens) -> ComputeComparison:
    """The compute-optimal model (Sec. 2) and the Chinchilla-style one for the same loss and
    demand, with total FLOPs: the comparison every command, table and figure reports."""
    opt, ref = compute_optimal(c, target_loss, inference_tokens), chinchilla_style(c, target_loss)
    return ComputeComparison(opt, ref, total_flops(opt.params, opt.tokens, inference_tokens),
                             total_flops(ref.params, ref.tokens, inference_tokens))
