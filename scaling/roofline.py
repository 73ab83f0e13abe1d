"""A memory-aware ("roofline") inference cost model, and Eq. 6 with it in place of a fixed MFU.

The paper's Eq. 6 prices generation at a fixed 1% MFU whatever the model and the serving batch.
Here a request's GPU time follows from the hardware instead:

- **prefill** is compute-bound at a stated MFU: a batch of ``b`` prompts of ``input`` tokens takes
  ``2 N input b / (peak x prefill MFU)`` seconds;
- **each decode step** of the batch takes the larger of its compute time ``2 N b / peak`` and the time
  to stream the weights and the batch's KV cache from memory,
  ``(N x weight bytes + b x context x KV bytes per token) / bandwidth``. The context is the mean
  over the generation, ``input + output / 2`` tokens (step ``j`` reads ``input + j`` cached tokens, so
  the exact mean is ``input + (output - 1) / 2``; the half-token difference is noise next to the
  model's other approximations). Taking the max of the means, not the mean of the per-step maxima,
  is exact whenever the whole generation stays on one side of the roofline's ridge;
- **the batch is capped by memory**: weights plus the KV cache of every sequence's full context
  (``input + output`` tokens) must fit in ``gpus x memory x memory_fraction``.

KV bytes per token = 2 (K and V) x n_layers x kv_n_heads x head_dim x bytes per element; by default
the layers and KV width are the Table 4 family's for N (``scaling.shape.family_kv_shape``, a smooth
approximation of ``choose_shape``), or pass ``kv_elements_per_token`` for another shape. FLOPs are
the paper's ``2 N`` per token (attention's context-dependent FLOPs are left out, as in Eq. 6).

Units in names: params (count), tokens, bytes, seconds, dollars; FLOP/s are dense (no sparsity).
Everything is vectorised over arrays of N (and of loss targets and demands in the optimizer).

``gpus`` > 1 is ideal tensor parallelism: peak, bandwidth and memory scale with the GPU count and
communication is free, so GPU-seconds per request do not depend on it for a fixed per-replica
batch; it only decides what fits (``gpus=None``: the fewest GPUs that hold weights plus the batch's
KV cache).

**Eq. 6 with the roofline.** Eq. 6's inference term ``2 N C_inf [D_inp / MFU_inp + D_out / MFU_out]``
becomes ``requests x dollars_per_request(N)``; in the memory-bound regime this is Eq. 6 with a
size-dependent generation MFU, ``MFU_out(N) = 2 N b x bandwidth / (peak x (N w + b c K(N)))``.
The cost-optimal model minimises over N

    k_tr x 6 N D(N) + requests x dollars_per_request(N),    D(N) = scaling.law.tokens_for_loss(N, loss),

with ``k_tr`` the dollars per training FLOP (``scaling.optimal.CostSettings``). Every N between
N_min (D -> inf) and the Chinchilla-style N (where d(6 N D)/dN = 0 and the increasing inference
term makes the sum rise beyond) is a candidate: ``roofline_cost_optimal`` scans a grid in
log(log(N / N_min)) and refines the best cell by golden-section search, all points at once.

GPU figures (dense tensor-core peaks; sparse figures in the datasheets are twice these):

- A100 SXM 40GB / 80GB: NVIDIA A100 Tensor Core GPU datasheet (nvidia-a100-datasheet-us-nvidia-
  1758950-r4-web.pdf, the paper's reference for its peaks): BF16/FP16 312 TFLOPS, INT8 624 TOPS,
  HBM bandwidth 1,555 GB/s (40GB) and 2,039 GB/s (80GB SXM), 40 / 80 GB. No FP8.
- H100 SXM: NVIDIA H100 Tensor Core GPU datasheet: BF16/FP16 1,979 TFLOPS, FP8 3,958 TFLOPS, INT8
  3,958 TOPS (all "with sparsity", so 989 / 1,979 / 1,979 dense), 80 GB HBM3 at 3.35 TB/s.
- H200 (SXM): NVIDIA H200 Tensor Core GPU datasheet / product page: the same Hopper tensor cores
  as H100 SXM, 141 GB HBM3e at 4.8 TB/s.

Memory sizes are the datasheets' decimal gigabytes (as llm-analysis uses them): the physical A100
and H100 parts hold 40 / 80 GiB, ~7% more; ``memory_fraction`` (default 0.9) then leaves room for
activations, the runtime and fragmentation.
Prices: ``scaling.optimal.PRICE_PER_HOUR`` (the paper's A100 prices, the authors' H100 price); the
H200 has no default price, so give ``price_per_hour``. Sources and checks: docs/roofline.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from scaling.coefficients import LawCoefficients
from scaling.errors import InputError
from scaling.law import INFERENCE_FLOPS_PER_PARAM_TOKEN, TRAIN_FLOPS_PER_PARAM_TOKEN, check_loss_reachable
from scaling.optimal import PAPER_INPUT_TOKENS, PAPER_OUTPUT_TOKENS, PRICE_PER_HOUR, CostSettings
from scaling.shape import family_kv_shape

SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True)
class GPU:
    """One accelerator: dense peak FLOP/s (or OP/s) by dtype, HBM bandwidth and size."""

    label: str
    peak_flops: dict[str, float]  # FLOP/s per dtype, dense
    bandwidth_bytes_per_second: float
    memory_bytes: float
    source: str


GPUS: dict[str, GPU] = {
    "a100-40": GPU("A100 SXM 40GB", {"bf16": 3.12e14, "fp16": 3.12e14, "int8": 6.24e14}, 1.555e12, 40e9,
                   "NVIDIA A100 datasheet (2021)"),
    "a100-80": GPU("A100 SXM 80GB", {"bf16": 3.12e14, "fp16": 3.12e14, "int8": 6.24e14}, 2.039e12, 80e9,
                   "NVIDIA A100 datasheet (2021)"),
    "h100": GPU("H100 SXM 80GB", {"bf16": 9.89e14, "fp16": 9.89e14, "fp8": 1.978e15, "int8": 1.978e15}, 3.35e12, 80e9,
                "NVIDIA H100 datasheet (dense = half the sparse figures)"),
    "h200": GPU("H200 SXM 141GB", {"bf16": 9.89e14, "fp16": 9.89e14, "fp8": 1.978e15, "int8": 1.978e15}, 4.8e12, 141e9,
                "NVIDIA H200 datasheet (Hopper tensor cores as H100 SXM)"),
}
DTYPE_BYTES: dict[str, float] = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0}


def gpu_spec(name: str) -> GPU:
    """The GPU called ``name`` (a key of ``GPUS``); InputError naming the known ones otherwise."""
    if name not in GPUS:
        raise InputError(f"unknown GPU {name!r}; known: {', '.join(GPUS)}")
    return GPUS[name]


def _positive(name: str, value, allow_zero: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None
    if not (math.isfinite(v) and (v >= 0 if allow_zero else v > 0)):
        raise InputError(f"{name} must be a finite number {'>=' if allow_zero else '>'} 0, got {value!r}")
    return v


@dataclass(frozen=True)
class RooflineSettings:
    """How a model is served.

    ``dtype`` picks the GPU's peak rate (the paper's serving: A100-40GB after INT8 quantisation);
    ``weight_bytes`` per param defaults to that dtype's width; ``kv_bytes`` per cached element
    defaults to 2 (an FP16/BF16 KV cache). ``batch``: sequences decoded together per model replica,
    or None for the largest that fits. ``gpus``: GPUs per replica (ideal tensor parallelism), or None
    for the fewest that hold the weights and the batch's KV cache (needs an integer batch).
    ``memory_fraction``: the share of HBM the weights and KV cache may use (0.9, vLLM's default
    ``gpu_memory_utilization``). ``price_per_hour``: dollars per GPU-hour (default: the GPU's price in
    ``scaling.optimal.PRICE_PER_HOUR``).
    """

    gpu: str = "a100-40"
    dtype: str = "int8"
    batch: int | None = None
    weight_bytes: float | None = None
    kv_bytes: float = 2.0
    prefill_mfu: float = 0.5
    memory_fraction: float = 0.9
    gpus: int | None = 1
    price_per_hour: float | None = None
    spec: GPU = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        spec = gpu_spec(self.gpu)
        if self.dtype not in spec.peak_flops:
            raise InputError(f"GPU {self.gpu} has no {self.dtype} rate; known: {', '.join(spec.peak_flops)}")
        object.__setattr__(self, "spec", spec)
        for name in ("prefill_mfu", "memory_fraction"):
            v = _positive(name.replace("_", " "), getattr(self, name))
            if v > 1:
                raise InputError(f"{name.replace('_', ' ')} must be in (0, 1], got {v}")
        _positive("KV bytes per element", self.kv_bytes)
        if self.weight_bytes is not None:
            _positive("weight bytes per param", self.weight_bytes)
        for name in ("batch", "gpus"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1):
                raise InputError(f"{name} must be a whole number >= 1 (or None), got {v!r}")
        if self.batch is None and self.gpus is None:
            raise InputError("give a batch or a GPU count: with neither, the batch could grow without bound")
        if self.price_per_hour is not None:
            _positive("price per GPU-hour", self.price_per_hour)
        elif self.gpu not in PRICE_PER_HOUR:
            raise InputError(f"no default price for {self.gpu}; give a price per GPU-hour in dollars")

    def as_dict(self) -> dict:
        """The settings with defaults resolved (weight bytes, price), for reports and JSON."""
        return {"gpu": self.gpu, "dtype": self.dtype, "batch": self.batch, "gpus": self.gpus,
                "weight_bytes": self.bytes_per_param, "kv_bytes": float(self.kv_bytes),
                "prefill_mfu": float(self.prefill_mfu), "memory_fraction": float(self.memory_fraction),
                "price_per_hour": self.price}

    @property
    def peak_flops(self) -> float:
        """Dense peak FLOP/s of one GPU in ``dtype``."""
        return self.spec.peak_flops[self.dtype]

    @property
    def bandwidth(self) -> float:
        """HBM bytes/s of one GPU."""
        return self.spec.bandwidth_bytes_per_second

    @property
    def usable_memory_bytes(self) -> float:
        """Bytes per GPU the weights and KV cache may use."""
        return self.spec.memory_bytes * self.memory_fraction

    @property
    def bytes_per_param(self) -> float:
        return DTYPE_BYTES[self.dtype] if self.weight_bytes is None else float(self.weight_bytes)

    @property
    def price(self) -> float:
        """Dollars per GPU-hour."""
        return float(self.price_per_hour) if self.price_per_hour is not None else PRICE_PER_HOUR[self.gpu]


def _params(params) -> np.ndarray:
    n = np.asarray(params, float)
    if not np.all(np.isfinite(n) & (n > 0)):
        raise InputError("params must be finite numbers > 0")
    return n


def kv_bytes_per_token(params, settings: RooflineSettings, kv_elements_per_token=None) -> np.ndarray:
    """Bytes of KV cache per token of context: 2 x n_layers x KV width x ``settings.kv_bytes``.

    ``kv_elements_per_token`` (2 x n_layers x kv_n_heads x head_dim) overrides the Table 4 family's
    (``scaling.shape.family_kv_shape``); it broadcasts against ``params``."""
    n = _params(params)
    if kv_elements_per_token is None:
        elements = family_kv_shape(n).kv_elements_per_token
    else:
        elements = np.broadcast_to(np.asarray(kv_elements_per_token, float), n.shape)
        if not np.all(np.isfinite(elements) & (elements >= 0)):
            raise InputError("KV elements per token must be finite and >= 0")
    return elements * settings.kv_bytes


def _tokens(input_tokens, output_tokens) -> tuple[float, float]:
    inp = _positive("input tokens per request", input_tokens, allow_zero=True)
    out = _positive("output tokens per request", output_tokens)
    return inp, out


def max_batch(params, settings: RooflineSettings, context_tokens, kv_elements_per_token=None, gpus: int | None = None):
    """Largest batch (sequences, int array) whose weights plus full-context KV cache fit on ``gpus``
    GPUs (default ``settings.gpus``, or 1 when that is None); 0 where the weights alone do not fit."""
    n = _params(params)
    ctx = _positive("context tokens", context_tokens)
    g = gpus if gpus is not None else (settings.gpus or 1)
    free = g * settings.usable_memory_bytes - n * settings.bytes_per_param
    per_seq = ctx * kv_bytes_per_token(n, settings, kv_elements_per_token)
    with np.errstate(divide="ignore", invalid="ignore"):
        b = np.where(per_seq > 0, np.floor(free / np.where(per_seq > 0, per_seq, 1.0)), np.inf)
    return np.where(free < 0, 0, np.minimum(b, np.iinfo(np.int64).max)).astype(np.int64)


@dataclass(frozen=True)
class RequestCost:
    """Per model size (arrays): the batch and GPUs serving it, timings, cost, throughput.

    ``prefill_seconds`` and ``decode_step_seconds`` are wall-clock for the whole batch on its GPUs;
    ``seconds_per_request`` is GPU-seconds (wall time x GPUs / batch) and prices the request.
    """

    batch: np.ndarray
    gpus: np.ndarray
    prefill_seconds: np.ndarray
    decode_step_seconds: np.ndarray
    seconds_per_request: np.ndarray
    dollars_per_request: np.ndarray
    output_tokens_per_second_per_gpu: np.ndarray  # generated tokens over the request's GPU time
    tokens_per_second_per_gpu: np.ndarray  # input + output tokens over the request's GPU time
    decode_tokens_per_second_per_gpu: np.ndarray  # generated tokens during decode alone
    generation_mfu: np.ndarray  # 2 N x batch / (decode step x peak x gpus)
    memory_bound: np.ndarray  # decode step limited by bandwidth, not compute


def _fit_message(n, settings, batch, gpus, ctx, kvb, need, fits_batch) -> str:
    usable = gpus * settings.usable_memory_bytes
    return (f"batch {batch} of a {n:.3g}-param model does not fit on {gpus} {settings.gpu} "
            f"({usable / 1e9:.4g} GB usable = {gpus} x {settings.spec.memory_bytes / 1e9:g} GB x "
            f"{settings.memory_fraction:g}): weights {n * settings.bytes_per_param / 1e9:.4g} GB + KV cache "
            f"{batch} x {ctx:g} tokens x {kvb / 1e6:.4g} MB = {need / 1e9:.4g} GB; "
            + (f"at most {fits_batch} sequences fit" if fits_batch > 0 else "the weights alone do not fit"))


def _serving(n, settings, inp, out, kvb, strict):
    """(batch, gpus, feasible) arrays for sizes n with KV bytes/token kvb."""
    full_ctx = inp + out
    weights = n * settings.bytes_per_param
    per_seq = full_ctx * kvb
    usable = settings.usable_memory_bytes
    if settings.batch is None:
        if strict and np.any(per_seq <= 0):
            raise InputError("with no KV cache the largest batch is unbounded; give a batch")
        gpus = np.full(n.shape, float(settings.gpus))
        with np.errstate(divide="ignore", invalid="ignore"):
            batch = np.floor((gpus * usable - weights) / np.where(per_seq > 0, per_seq, 1.0))
        batch = np.where(per_seq > 0, batch, np.inf)
        feasible = batch >= 1
        if strict and not np.all(feasible):
            i = int(np.flatnonzero(~feasible.ravel())[0])
            raise InputError(_fit_message(float(n.flat[i]), settings, 1, settings.gpus, full_ctx, float(kvb.flat[i]),
                                          float(weights.flat[i] + per_seq.flat[i]), 0))
        return np.where(feasible, batch, 1.0), gpus, feasible
    batch = np.full(n.shape, float(settings.batch))
    need = weights + batch * per_seq
    if settings.gpus is None:
        return batch, np.maximum(1.0, np.ceil(need / usable)), np.ones(n.shape, bool)
    gpus = np.full(n.shape, float(settings.gpus))
    feasible = need <= gpus * usable
    if strict and not np.all(feasible):
        i = int(np.flatnonzero(~feasible.ravel())[0])
        fits = int(max(0.0, math.floor((settings.gpus * usable - float(weights.flat[i])) / float(per_seq.flat[i]))))
        raise InputError(_fit_message(float(n.flat[i]), settings, settings.batch, settings.gpus, full_ctx,
                                      float(kvb.flat[i]), float(need.flat[i]), fits))
    return batch, gpus, feasible


def request_cost(params, settings: RooflineSettings, input_tokens=PAPER_INPUT_TOKENS,
                 output_tokens=PAPER_OUTPUT_TOKENS, kv_elements_per_token=None) -> RequestCost:
    """The roofline for models of ``params`` (array) serving requests of ``input_tokens`` prompt and
    ``output_tokens`` generated tokens. InputError if the batch does not fit in memory."""
    n = _params(params)
    inp, out = _tokens(input_tokens, output_tokens)
    kvb = kv_bytes_per_token(n, settings, kv_elements_per_token)
    batch, gpus, _ = _serving(n, settings, inp, out, kvb, strict=True)
    peak, bw = settings.peak_flops, settings.bandwidth
    flops_per_token = INFERENCE_FLOPS_PER_PARAM_TOKEN * n
    prefill = flops_per_token * inp * batch / (peak * settings.prefill_mfu * gpus)
    compute = flops_per_token * batch / (peak * gpus)
    memory = (n * settings.bytes_per_param + batch * (inp + out / 2.0) * kvb) / (bw * gpus)
    step = np.maximum(compute, memory)
    seconds = (prefill + out * step) * gpus / batch
    return RequestCost(
        batch=batch.astype(np.int64), gpus=gpus.astype(np.int64), prefill_seconds=prefill, decode_step_seconds=step,
        seconds_per_request=seconds, dollars_per_request=seconds * settings.price / SECONDS_PER_HOUR,
        output_tokens_per_second_per_gpu=out / seconds, tokens_per_second_per_gpu=(inp + out) / seconds,
        decode_tokens_per_second_per_gpu=batch / (step * gpus), generation_mfu=compute / step,
        memory_bound=memory > compute)


def decode_step_seconds(params, settings: RooflineSettings, input_tokens=PAPER_INPUT_TOKENS,
                        output_tokens=PAPER_OUTPUT_TOKENS, kv_elements_per_token=None) -> np.ndarray:
    """Seconds per decode step of the whole batch: max(2 N b / peak, (N w + b c K) / bandwidth),
    c = input + output / 2 (per GPU count: both terms divide by ``gpus``)."""
    return request_cost(params, settings, input_tokens, output_tokens, kv_elements_per_token).decode_step_seconds


def prefill_seconds(params, settings: RooflineSettings, input_tokens=PAPER_INPUT_TOKENS,
                    output_tokens=PAPER_OUTPUT_TOKENS, kv_elements_per_token=None) -> np.ndarray:
    """Seconds to prefill the batch's prompts: 2 N x input x batch / (peak x prefill MFU)."""
    return request_cost(params, settings, input_tokens, output_tokens, kv_elements_per_token).prefill_seconds


def generation_mfu(params, settings: RooflineSettings, input_tokens=PAPER_INPUT_TOKENS,
                   output_tokens=PAPER_OUTPUT_TOKENS, kv_elements_per_token=None) -> np.ndarray:
    """The generation MFU the roofline implies (Eq. 6's MFU_out): 2 N b / (decode step x peak)."""
    return request_cost(params, settings, input_tokens, output_tokens, kv_elements_per_token).generation_mfu


def dollars_per_request(params, settings: RooflineSettings, input_tokens=PAPER_INPUT_TOKENS,
                        output_tokens=PAPER_OUTPUT_TOKENS, kv_elements_per_token=None) -> np.ndarray:
    """Dollars per request as a function of N (array): what replaces Eq. 6's inference term
    (``requests x dollars_per_request(N)``; see the module docstring)."""
    return request_cost(params, settings, input_tokens, output_tokens, kv_elements_per_token).dollars_per_request


def batch_for_generation_mfu(params, settings: RooflineSettings, input_tokens=PAPER_INPUT_TOKENS,
                             output_tokens=PAPER_OUTPUT_TOKENS, mfu: float = 0.01, kv_elements_per_token=None):
    """The (real) serving batch at which the roofline's generation MFU equals ``mfu`` (the paper's 1%).

    In the memory-bound regime MFU(b) = 2 N b BW / (peak (N w + b c K)) rises with b towards
    2 N BW / (peak c K), so b = mfu peak N w / (2 N BW - mfu peak c K); inf where the KV traffic
    caps MFU below ``mfu``. Memory is not checked here (compare with ``max_batch``)."""
    n = _params(params)
    inp, out = _tokens(input_tokens, output_tokens)
    m = _positive("MFU", mfu)
    if m >= 1:
        raise InputError(f"MFU must be in (0, 1), got {mfu}")
    kvb = kv_bytes_per_token(n, settings, kv_elements_per_token)
    peak, bw = settings.peak_flops, settings.bandwidth
    denom = INFERENCE_FLOPS_PER_PARAM_TOKEN * n * bw - m * peak * (inp + out / 2.0) * kvb
    with np.errstate(divide="ignore"):
        return np.where(denom > 0, m * peak * n * settings.bytes_per_param / np.where(denom > 0, denom, 1.0), np.inf)


# --- Eq. 6 with the roofline: the cost-optimal model ------------------------------------------

_GRID = 24  # points in y = log(log(N / N_min)) per target
_Y_SPAN = 28.0  # the grid reaches N / N_min - 1 ~ e^-28 x (N_chin / N_min - 1)
_GOLDEN_TOL = 1e-9  # final bracket width in y (relative width in N: at most ~2e-9)
_INV_PHI = (math.sqrt(5.0) - 1.0) / 2.0
_CHUNK = 1 << 14  # targets solved together (a chunk's arrays stay in cache)


@dataclass(frozen=True)
class RooflineChoice:
    """Arrays: the cost-optimal params (N*) and training tokens (D*), and its dollars (training,
    serving the demand, total)."""

    params: np.ndarray
    tokens: np.ndarray
    dollars: np.ndarray
    train_dollars: np.ndarray
    inference_dollars: np.ndarray


class _Objective:
    """Training + serving dollars as a function of t = log(N / N_min) for a chunk of targets."""

    def __init__(self, c, gap, requests, settings, inp, out, k_tr):
        self.c, self.gap, self.requests, self.s = c, gap, requests, settings
        self.inp, self.out, self.k_tr = inp, out, k_tr
        self.n_min = (c.A / gap) ** (1.0 / c.alpha)

    def params(self, t):
        return self.n_min * np.exp(t)

    def tokens(self, t):
        # D = (B / (gap - A N^-alpha))^(1/beta), with gap - A N^-alpha = gap (1 - e^(-alpha t)) exactly
        with np.errstate(divide="ignore"):
            return (self.c.B / (self.gap * -np.expm1(-self.c.alpha * t))) ** (1.0 / self.c.beta)

    def parts(self, t):
        n = self.params(t)
        train = self.k_tr * TRAIN_FLOPS_PER_PARAM_TOKEN * n * self.tokens(t)
        serve = self.requests * _dollars_unchecked(n, self.s, self.inp, self.out)
        return n, train, serve

    def __call__(self, y):
        _, train, serve = self.parts(np.exp(y))
        total = train + serve
        return np.where(np.isfinite(total), total, np.inf)


def _dollars_unchecked(n, settings, inp, out):
    """dollars_per_request without input checks (the optimizer's inner loop): inf where the batch
    does not fit. Same arithmetic as ``request_cost``, GPU-seconds per request directly."""
    kvb = family_kv_shape(n).kv_elements_per_token * settings.kv_bytes
    weights = n * settings.bytes_per_param
    usable = settings.usable_memory_bytes
    per_seq = (inp + out) * kvb
    if settings.batch is None:
        batch = np.floor((settings.gpus * usable - weights) / per_seq)
        feasible = batch >= 1
        batch = np.maximum(batch, 1.0)
    else:
        batch = float(settings.batch)
        feasible = True if settings.gpus is None else weights + batch * per_seq <= settings.gpus * usable
    peak = settings.peak_flops
    flops = INFERENCE_FLOPS_PER_PARAM_TOKEN * n
    step = np.maximum(flops * batch / peak, (weights + batch * (inp + out / 2.0) * kvb) / settings.bandwidth)
    seconds = flops * (inp / (peak * settings.prefill_mfu)) + out * step / batch
    dollars = seconds * (settings.price / SECONDS_PER_HOUR)
    return dollars if feasible is True else np.where(feasible, dollars, np.inf)


def roofline_cost_optimal(c: LawCoefficients, target_loss, settings: RooflineSettings, requests,
                          input_tokens=PAPER_INPUT_TOKENS, output_tokens=PAPER_OUTPUT_TOKENS,
                          train: CostSettings | None = None) -> RooflineChoice:
    """(N*, D*) minimising k_tr 6 N D(N) + requests x dollars_per_request(N) at L(N, D) = target_loss.

    ``target_loss`` and ``requests`` (lifetime requests) broadcast; the training side (GPU, dtype,
    MFU, price) is ``train`` (default: the paper's A100-80GB bf16 at 50% MFU). The search covers
    N_min < N <= N_chinchilla (see the module docstring): a 24-point grid in log(log(N / N_min))
    then golden-section refinement of the best cell, for all points at once. Sizes whose batch does
    not fit (integer ``settings.gpus``) are excluded; InputError if none fits.
    """
    target = check_loss_reachable(c, target_loss)
    req = np.asarray(requests, float)
    if not np.all(np.isfinite(req) & (req >= 0)):
        raise InputError("requests must be finite numbers >= 0")
    inp, out = _tokens(input_tokens, output_tokens)
    k_tr = (train or CostSettings()).dollars_per_train_flop
    target, req = np.broadcast_arrays(target, req)
    shape = target.shape
    flat_t, flat_r = target.ravel(), req.ravel()
    res = {k: np.empty(flat_t.size) for k in ("params", "tokens", "dollars", "train", "serve")}
    # t_chin = log(N_chin / N_min) is the same for every target: N_chin / N_min = ((alpha + beta) / beta)^(1/alpha)
    y_hi = math.log(math.log((c.alpha + c.beta) / c.beta) / c.alpha)
    grid = np.linspace(y_hi - _Y_SPAN, y_hi, _GRID)
    for i in range(0, flat_t.size, _CHUNK):
        sl = slice(i, i + _CHUNK)
        f = _Objective(c, flat_t[sl] - c.E, flat_r[sl], settings, inp, out, k_tr)
        y = _minimise(f, grid, flat_t[sl].size)
        n, tr, sv = f.parts(np.exp(y))
        if not np.all(np.isfinite(tr + sv)):
            raise InputError(f"no model size reaching the loss fits on {settings.gpus} {settings.gpu} "
                             f"with batch {settings.batch}; allow more GPUs (gpus=None) or a smaller batch")
        res["params"][sl], res["tokens"][sl] = n, f.tokens(np.exp(y))
        res["train"][sl], res["serve"][sl], res["dollars"][sl] = tr, sv, tr + sv
    return RooflineChoice(params=res["params"].reshape(shape), tokens=res["tokens"].reshape(shape),
                          dollars=res["dollars"].reshape(shape), train_dollars=res["train"].reshape(shape),
                          inference_dollars=res["serve"].reshape(shape))


def _minimise(f: _Objective, grid: np.ndarray, m: int) -> np.ndarray:
    """Per point, the y minimising f: best grid cell, then golden-section search in its bracket."""
    k = grid.size
    values = np.empty((m, k))
    for j, y in enumerate(grid):
        values[:, j] = f(np.full(m, y))
    best = np.argmin(values, axis=1)
    lo = grid[np.maximum(best - 1, 0)]
    hi = grid[np.minimum(best + 1, k - 1)]
    x1 = hi - _INV_PHI * (hi - lo)
    x2 = lo + _INV_PHI * (hi - lo)
    f1, f2 = f(x1), f(x2)
    while np.max(hi - lo) > _GOLDEN_TOL:
        left = f1 <= f2  # the minimum lies in [lo, x2]: x1 becomes the new x2
        hi, lo = np.where(left, x2, hi), np.where(left, lo, x1)
        new = np.where(left, hi - _INV_PHI * (hi - lo), lo + _INV_PHI * (hi - lo))
        fn = f(new)
        x1, x2, f1, f2 = (np.where(left, new, x2), np.where(left, x1, new),
                          np.where(left, fn, f2), np.where(left, f1, fn))
    # the best of the bracket's points and the grid's (golden-section never does worse than the grid)
    cand = np.stack([x1, x2, grid[best]], axis=1)
    fc = np.stack([f1, f2, values[np.arange(m), best]], axis=1)
    return cand[np.arange(m), np.argmin(fc, axis=1)]
