"""Limited unique data: the data-constrained law of Muennighoff et al. 2023 and its inference-aware optimum.

"Scaling Data-Constrained Language Models" (Muennighoff, Rush, Barak, Le Scao, Piktus, Tazi, Pyysalo,
Wolf, Raffel; NeurIPS 2023, arXiv:2305.16264), App. A ("Derivation of Data-Constrained Scaling Laws").
With U unique tokens, a model of N params trained on D tokens sees

    U_D = min(D, U)                 unique tokens used        R_D = D / U_D - 1   repetitions of the data
    U_N = min(N, (U_D G)^(beta/alpha) G)   "unique" params    R_N = N / U_N - 1   excess-param repetitions
    D'  = U_D + U_D R_D* (1 - exp(-R_D / R_D*))     effective data
    N'  = U_N + U_N R_N* (1 - exp(-R_N / R_N*))     effective params
    L   = E + A / N'^alpha + B / D'^beta

with G = (alpha A / (beta B))^(1/(alpha+beta)), so U_N is the compute-optimal N for U_D tokens. D'
saturates at U (1 + R_D*) and N' at U_N (1 + R_N*): below the loss that those caps give (``loss_floor``)
no model reaches a target with U unique tokens. Nothing decays when no token repeats and N is at
most compute-optimal for the data (then L is Eq. 4), and with R_D* = R_N* = inf the law is Eq. 4.

The optimizer minimises 6 N D + 2 N D_inf subject to L(N, D; U) = target. The law is never below
Eq. 4 (N' <= N, D' <= D) and equals it at Eq. 4's optimum when that optimum needs D* <= U tokens
(R_D = 0 and N* <= U_N there), so that optimum is kept unchanged (``binds`` False). Otherwise the
optimum repeats data (D > U; docs/data-constrained.md says why and how that is checked): on that
branch D(N) is closed form, and the minimum over log N is the root of the analytic derivative,
bracketed and found by regula falsi (Illinois), vectorised over points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from scaling import law
from scaling.coefficients import LawCoefficients
from scaling.errors import InputError
from scaling.optimal import CostSettings, InferenceDemand, compute_optimal, train_token_equivalent


@dataclass(frozen=True)
class RepetitionConstants:
    """R_D* and R_N* of the data-constrained law: the repetitions of data (and of "unique"
    params) beyond which returns diminish sharply. ``math.inf`` means no decay (Eq. 4)."""

    r_d_star: float
    r_n_star: float
    name: str = "custom"

    def __post_init__(self) -> None:
        for key in ("r_d_star", "r_n_star"):
            value = getattr(self, key)
            if not (isinstance(value, (int, float)) and value > 0 and not math.isnan(value)):
                raise InputError(f"{key.replace('_', ' ')} must be a number > 0 (or inf), got {value!r}")


# Muennighoff et al. 2023, App. A: "we are able to get a fairly stable fit resulting in R_N* = 5.309743
# and R_D* = 15.387756" (fitted on 182 runs, 7M-9B params, 1-500 epochs, with A, B, E, alpha, beta
# fixed to their C4 fit, NAMED_SETS["muennighoff2023"]); the same numbers are in their repository's
# README (huggingface/datablations, "Parametric Fit": rd_star, rn_star).
MUENNIGHOFF2023 = RepetitionConstants(r_d_star=15.387756, r_n_star=5.309743, name="muennighoff2023")
NO_DECAY = RepetitionConstants(r_d_star=math.inf, r_n_star=math.inf, name="no-decay")
REPETITION_SETS: dict[str, RepetitionConstants] = {r.name: r for r in (MUENNIGHOFF2023, NO_DECAY)}

_BISECTIONS = 200  # iteration cap: brackets close in ~12 (regula falsi) or ~55 (bisection) steps
_XTOL = 1e-15  # relative width of the final bracket in log N
_CHUNK = 1 << 14  # points solved together (temporaries stay in cache)


@dataclass(frozen=True)
class ConstrainedChoice:
    """Arrays of the chosen models under a unique-data budget: params N, training tokens D, unique
    tokens U, epochs D / U (below 1 when the model does not use all the unique data; 0 for U = inf)
    and ``binds``: whether the budget changed the answer (Eq. 4's optimum would need more than U)."""

    params: np.ndarray
    tokens: np.ndarray
    unique_tokens: np.ndarray
    epochs: np.ndarray
    binds: np.ndarray


# --- checks ---------------------------------------------------------------------------------

def check_unique_tokens(unique_tokens) -> np.ndarray:
    """U as an array of floats; InputError (one line) unless every value is > 0 (inf allowed)."""
    try:
        u = np.asarray(unique_tokens, float)
    except (TypeError, ValueError):
        raise InputError(f"unique tokens must be a number > 0 (or inf), got {unique_tokens!r}") from None
    bad = ~(u > 0)  # NaN fails too
    if np.any(bad):
        raise InputError(f"unique tokens must be a number > 0 (or inf), got {float(u[bad].flat[0]):g}")
    return u


def _check_positive(name: str, value) -> np.ndarray:
    arr = np.asarray(value, float)
    bad = ~((arr > 0) & np.isfinite(arr))
    if np.any(bad):
        raise InputError(f"{name} must be a finite number > 0, got {float(arr[bad].flat[0]):g}")
    return arr


def _check_demand(value) -> np.ndarray:
    arr = np.asarray(value, float)
    bad = ~(np.isfinite(arr) & (arr >= 0))
    if np.any(bad):
        raise InputError(f"inference tokens must be a finite number >= 0, got {float(arr[bad].flat[0]):g}")
    return arr


# --- the law --------------------------------------------------------------------------------

def _decayed(repeats, r_star: float):
    """R* (1 - exp(-R / R*)): the worth of R repetitions in fresh units (R itself when R* = inf)."""
    if math.isinf(r_star):
        return repeats
    return -r_star * np.expm1(-repeats / r_star)


def _repeats_for(worth, r_star: float):
    """The inverse of ``_decayed``: repetitions worth ``worth`` fresh units (inf at or past R*)."""
    if math.isinf(r_star):
        return worth
    with np.errstate(divide="ignore", invalid="ignore"):
        out = -r_star * np.log1p(-worth / r_star)
    return np.where(worth < r_star, out, np.inf)


def _g(c: LawCoefficients) -> float:
    return (c.alpha * c.A / (c.beta * c.B)) ** (1.0 / (c.alpha + c.beta))


def unique_params(c: LawCoefficients, unique_tokens):
    """The compute-optimal params for U_D tokens, ((U_D G)^(beta/alpha)) G (App. A's U_N before the min)."""
    g = _g(c)
    return (np.asarray(unique_tokens, float) * g) ** (c.beta / c.alpha) * g


def epochs(tokens, unique_tokens):
    """Passes over the unique data, D / U (below 1 when not all of it is used; 0 for U = inf)."""
    return np.asarray(tokens, float) / check_unique_tokens(unique_tokens)


def effective_tokens(tokens, unique_tokens, rep: RepetitionConstants = MUENNIGHOFF2023):
    """D' = U_D + U_D R_D* (1 - exp(-R_D / R_D*)), U_D = min(D, U), R_D = D / U_D - 1."""
    d = np.asarray(tokens, float)
    u_d = np.minimum(d, check_unique_tokens(unique_tokens))
    with np.errstate(invalid="ignore"):
        repeats = np.maximum(d / u_d - 1.0, 0.0)
    return u_d + u_d * _decayed(repeats, rep.r_d_star)


def _params_worth(params, base, r_n_star: float):
    """N' for N params of which ``base`` (the compute-optimal count for the unique data) count fully."""
    u_n = np.minimum(params, base)
    with np.errstate(invalid="ignore"):
        repeats = np.maximum(params / u_n - 1.0, 0.0)
    return u_n + u_n * _decayed(repeats, r_n_star)


def _params_for_worth(worth, base, r_n_star: float):
    """The inverse of ``_params_worth`` in N (inf when ``worth`` is at or past base (1 + R_N*))."""
    over = worth > base
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(over, worth / base - 1.0, 0.0)
        n_over = base * (1.0 + _repeats_for(ratio, r_n_star))
    return np.where(over, n_over, worth)


def effective_params(c: LawCoefficients, params, tokens, unique_tokens, rep: RepetitionConstants = MUENNIGHOFF2023):
    """N' = U_N + U_N R_N* (1 - exp(-R_N / R_N*)), U_N = min(N, unique_params(min(D, U))), R_N = N / U_N - 1."""
    n = np.asarray(params, float)
    u_d = np.minimum(np.asarray(tokens, float), check_unique_tokens(unique_tokens))
    return _params_worth(n, unique_params(c, u_d), rep.r_n_star)


def loss(c: LawCoefficients, params, tokens, unique_tokens, rep: RepetitionConstants = MUENNIGHOFF2023):
    """L(N, D; U) = E + A / N'^alpha + B / D'^beta (Muennighoff et al. 2023, App. A)."""
    n_eff = effective_params(c, params, tokens, unique_tokens, rep)
    d_eff = effective_tokens(tokens, unique_tokens, rep)
    return c.E + c.A * n_eff**-c.alpha + c.B * d_eff**-c.beta


def loss_floor(c: LawCoefficients, unique_tokens, rep: RepetitionConstants = MUENNIGHOFF2023):
    """The loss no model reaches with U unique tokens: D' -> U (1 + R_D*), N' -> U_N (1 + R_N*)
    with U_N = unique_params(U), as N and D grow without bound (E when U or both R* are inf)."""
    u = check_unique_tokens(unique_tokens)
    with np.errstate(divide="ignore", over="ignore"):
        n_cap = unique_params(c, u) * (1.0 + rep.r_n_star)
        d_cap = u * (1.0 + rep.r_d_star)
        return c.E + c.A * n_cap**-c.alpha + c.B * d_cap**-c.beta


def check_reachable(c: LawCoefficients, target_loss, unique_tokens, rep: RepetitionConstants = MUENNIGHOFF2023):
    """(target, U) as arrays; InputError naming the caps if a target is at or below ``loss_floor``."""
    target = law.check_loss_reachable(c, target_loss)
    u = check_unique_tokens(unique_tokens)
    floor = loss_floor(c, u, rep)
    low = np.broadcast_to(target <= floor, np.broadcast(target, u).shape)
    if np.any(low):
        i = np.flatnonzero(low)[0]
        t, uu = float(np.broadcast_to(target, low.shape).flat[i]), float(np.broadcast_to(u, low.shape).flat[i])
        raise InputError(
            f"loss {t:g} is out of reach with {uu:.4g} unique tokens ({c.name}, R_D* = {rep.r_d_star:g}, "
            f"R_N* = {rep.r_n_star:g}): repeating saturates the effective data at U (1 + R_D*) = "
            f"{uu * (1 + rep.r_d_star):.4g} tokens and the effective params at {float(unique_params(c, uu)) * (1 + rep.r_n_star):.4g}, "
            f"so no model goes below loss {float(loss_floor(c, uu, rep)):.6g}"
        )
    return target, u


# --- the inverse: training tokens for a loss -----------------------------------------------

def _repeated_tokens(c: LawCoefficients, params, gap, u, rep: RepetitionConstants):
    """D > U reaching L - E = gap with N params (U_D = U): closed form, inf where unreachable."""
    n_eff = _params_worth(params, unique_params(c, u), rep.r_n_star)
    room = gap - c.A * n_eff**-c.alpha  # what the data term may be
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        worth = (c.B / np.where(room > 0, room, np.nan)) ** (1.0 / c.beta) / u - 1.0  # D'/U - 1
        repeats = _repeats_for(np.maximum(worth, 0.0), rep.r_d_star)
        tokens = u * (1.0 + repeats)
    return np.where(room > 0, tokens, np.inf)


def tokens_for_loss(c: LawCoefficients, params, target_loss, unique_tokens, rep: RepetitionConstants = MUENNIGHOFF2023,
                    unreachable: str = "raise"):
    """Training tokens D at which N params reach the target loss with U unique tokens.

    The law falls monotonically in D, so D is unique. Where no D is enough (D' saturates at
    U (1 + R_D*)), ``unreachable="raise"`` raises InputError naming that cap; ``"inf"`` returns inf.
    """
    if unreachable not in ("raise", "inf"):
        raise ValueError(f"unreachable must be 'raise' or 'inf', got {unreachable!r}")
    target, u = law.check_loss_reachable(c, target_loss), check_unique_tokens(unique_tokens)
    n = _check_positive("params", params)
    n, target, u = np.broadcast_arrays(n, target, u)
    gap = target - c.E
    plain = law.tokens_for_loss(c, n, target)  # Eq. 4's answer; the law is never below Eq. 4
    n_eff_at_u = _params_worth(n, unique_params(c, u), rep.r_n_star)
    with np.errstate(divide="ignore"):
        repeats = c.E + c.A * n_eff_at_u**-c.alpha + c.B * u**-c.beta > target  # D = U is not enough
    with np.errstate(invalid="ignore"):
        one_pass = ~repeats & (plain <= u) & (n <= unique_params(c, plain))  # the law is Eq. 4 there
    tokens = np.where(one_pass, plain, np.nan)
    if np.any(repeats):
        tokens[repeats] = _repeated_tokens(c, n[repeats], gap[repeats], u[repeats], rep)
    rest = ~repeats & ~one_pass  # D <= U with excess params (N > U_N): bisection on log D
    if np.any(rest):
        tokens[rest] = _excess_params_tokens(c, n[rest], target[rest], u[rest], plain[rest], rep)
    if unreachable == "raise" and np.any(np.isinf(tokens)):
        i = np.flatnonzero(np.isinf(tokens))[0]
        nn, uu, tt = float(n.flat[i]), float(u.flat[i]), float(target.flat[i])
        if math.isinf(uu) or math.isinf(rep.r_d_star):
            raise InputError(f"loss {tt:g} is out of reach of {nn:.4g} params ({c.name}): its loss with unlimited "
                             f"data is {float(c.E + c.A * nn**-c.alpha):.6g}")
        cap = uu * (1.0 + rep.r_d_star)
        best = float(c.E + c.A * _params_worth(nn, unique_params(c, uu), rep.r_n_star) ** -c.alpha + c.B * cap**-c.beta)
        raise InputError(f"loss {tt:g} is out of reach of {nn:.4g} params with {uu:.4g} unique tokens ({c.name}): "
                         f"repeating saturates the effective data at U (1 + R_D*) = {cap:.4g} tokens "
                         f"(R_D* = {rep.r_d_star:g}), where the loss is {best:.6g}")
    return tokens


def _excess_params_tokens(c, n, target, u, lower, rep: RepetitionConstants):
    """D in [lower, min(U, D_opt(N))] where N is above U_N: the law there is E + A / N'(N, D)^alpha
    + B / D^beta, monotone in D; bisection on log D to adjacent doubles."""
    upper = np.minimum(u, law.chinchilla_for_params(c, n))
    lo, hi = np.log(lower), np.log(upper)
    for _ in range(_BISECTIONS):
        mid = 0.5 * (lo + hi)
        if np.all((mid <= lo) | (mid >= hi)):  # adjacent doubles
            break
        d = np.exp(mid)
        above = c.E + c.A * _params_worth(n, unique_params(c, d), rep.r_n_star) ** -c.alpha + c.B * d**-c.beta > target
        lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
    return np.exp(hi)


# --- the optimizer --------------------------------------------------------------------------

def compute_optimal_constrained(c: LawCoefficients, target_loss, inference_tokens, unique_tokens,
                                rep: RepetitionConstants = MUENNIGHOFF2023) -> ConstrainedChoice:
    """(N*, D*) minimising 6 N D + 2 N D_inf at L(N, D; U) = target_loss, with U unique tokens.

    ``target_loss``, ``inference_tokens`` and ``unique_tokens`` broadcast. Where Eq. 4's optimum
    (``scaling.optimal.compute_optimal``) needs at most U tokens it is the answer, unchanged
    (``binds`` False; always so for U = inf). InputError for U <= 0 or NaN, or a target at or below
    ``loss_floor`` (the message names the caps).
    """
    target, u = check_reachable(c, target_loss, unique_tokens, rep)
    demand = _check_demand(inference_tokens)
    target, demand, u = np.broadcast_arrays(target, demand, u)
    plain = compute_optimal(c, target, demand)
    params, tokens = np.array(plain.params, float), np.array(plain.tokens, float)
    binds = tokens > u
    if np.any(binds):
        idx = np.flatnonzero(binds)
        flat_t, flat_d, flat_u = target.ravel(), demand.ravel(), u.ravel()
        p, t = params.reshape(-1), tokens.reshape(-1)
        for i in range(0, idx.size, _CHUNK):
            part = idx[i : i + _CHUNK]
            p[part], t[part] = _repeating_optimum(c, flat_t[part] - c.E, flat_d[part], flat_u[part], rep)
    with np.errstate(divide="ignore"):
        return ConstrainedChoice(params=params, tokens=tokens, unique_tokens=np.array(u, float),
                                 epochs=tokens / u, binds=binds)


def cost_optimal_constrained(c: LawCoefficients, target_loss, settings: CostSettings, demand: InferenceDemand,
                             unique_tokens, rep: RepetitionConstants = MUENNIGHOFF2023) -> ConstrainedChoice:
    """Eq. 6's dollars minimised at L(N, D; U) = target_loss: the compute problem with the demand
    replaced by its training-token equivalent, as ``scaling.optimal.cost_optimal`` does."""
    return compute_optimal_constrained(c, target_loss, train_token_equivalent(settings, demand), unique_tokens, rep)


def _repeating_optimum(c: LawCoefficients, gap, demand, u, rep: RepetitionConstants):
    """The optimum on the D >= U branch, for points whose Eq. 4 optimum needs more than U tokens.

    With U_D = U, N' = f(N) depends on N alone and D(N) is closed form; N runs from n_lo (where D
    -> inf) to n_hi (where D = U). The total FLOPs' derivative in log N has the sign of

        s(N) = 6 D + 2 D_inf - 6 (alpha/beta) exp(R_D/R_D*) D' (a / y) (N f'(N) / f(N)),

    a = A f^-alpha, y = B D'^-beta = gap - a: -inf at n_lo, > 0 at n_hi (or as N -> inf; where it
    is not, the answer is n_hi itself), and its root closes log N to ~1e-15 relative.
    """
    base = unique_params(c, u)
    cap = u * (1.0 + rep.r_d_star)
    with np.errstate(divide="ignore", over="ignore"):
        room_inf = gap - c.B * cap**-c.beta  # > A (base (1 + R_N*))^-alpha by check_reachable
        room_u = gap - c.B * u**-c.beta
        n_lo = _params_for_worth((c.A / room_inf) ** (1.0 / c.alpha), base, rep.r_n_star)
        n_hi = np.where(room_u > 0, _params_for_worth((c.A / np.where(room_u > 0, room_u, 1.0)) ** (1.0 / c.alpha),
                                                      base, rep.r_n_star), np.inf)
    lo, hi = np.log(n_lo), np.log(n_hi)
    # no finite n_hi (D = U is never enough): widen until the FLOPs grow again
    open_top = ~np.isfinite(hi)
    if np.any(open_top):
        width = np.ones(open_top.sum())
        top = lo[open_top] + width
        for _ in range(200):
            rising = _slope_sign(c, np.exp(top), gap[open_top], demand[open_top], u[open_top], base[open_top], rep) > 0
            if np.all(rising):
                break
            width = np.where(rising, width, 2.0 * width)
            top = np.where(rising, top, lo[open_top] + width)
        hi = hi.copy()
        hi[open_top] = top
    x = _falling_to_rising(lambda v, i: _slope_sign(c, np.exp(v), gap[i], demand[i], u[i], base[i], rep), lo, hi)
    n = np.exp(x)
    tokens = np.maximum(_repeated_tokens(c, n, gap, u, rep), u)
    return n, tokens


def _falling_to_rising(f, lo, hi):
    """Where f(x, idx) (< 0 at lo, >= 0 at hi, one sign change) changes sign, for the points idx:
    the Illinois variant of regula falsi (a bisection while an end is -inf, and every 8th step),
    on the points whose bracket is still wider than ~1e-15 relative."""
    lo, hi = lo.copy(), hi.copy()
    everyone = np.arange(lo.size)
    f_lo, f_hi = np.full(lo.shape, -np.inf), f(hi, everyone)
    rising_at_top = f_hi >= 0  # else the minimum is the top end itself (hi)
    side = np.zeros(lo.shape, np.int8)  # which end moved last: -1 lo, +1 hi
    active = np.flatnonzero(rising_at_top)
    for step in range(_BISECTIONS):
        a, b, fa, fb = lo[active], hi[active], f_lo[active], f_hi[active]
        tol = _XTOL * np.maximum(1.0, np.abs(b))
        keep = b - a > tol
        if not np.all(keep):
            active, a, b, fa, fb, tol = active[keep], a[keep], b[keep], fa[keep], fb[keep], tol[keep]
        if active.size == 0:
            break
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            secant = b - fb * (b - a) / (fb - fa)
        inside = np.isfinite(fa) & (secant >= a) & (secant <= b) & (step % 8 != 7)
        # a secant within the tolerance of an end steps that far in: the bracket then closes at once
        x = np.where(inside, np.clip(secant, a + 0.4 * tol, b - 0.4 * tol), 0.5 * (a + b))
        fx = f(x, active)
        falling = fx < 0
        moved = side[active]
        # Illinois: halve the value at the end that stays put twice in a row, so both ends close in
        fb = np.where(falling & (moved == -1), 0.5 * fb, fb)
        fa = np.where(~falling & (moved == 1), 0.5 * fa, fa)
        at_root = fx == 0
        lo[active] = np.where(falling & ~at_root, x, np.where(at_root, x, a))
        hi[active] = np.where(falling | at_root, np.where(at_root, x, b), x)
        f_lo[active], f_hi[active] = np.where(falling, fx, fa), np.where(falling, fb, fx)
        side[active] = np.where(falling, -1, 1)
    return np.where(rising_at_top, 0.5 * (lo + hi), hi)


def _slope_sign(c: LawCoefficients, n, gap, demand, u, base, rep: RepetitionConstants):
    """log(6 D + 2 D_inf) - log(the pull term): the sign of d(6 N D + 2 N D_inf)/d log N on the D >= U
    branch (see above), in a form close to linear in log N."""
    n_eff = _params_worth(n, base, rep.r_n_star)
    over = n > base
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if math.isinf(rep.r_n_star):
            elastic = np.ones_like(n)
        else:
            elastic = np.where(over, n * np.exp(-(n / base - 1.0) / rep.r_n_star) / n_eff, 1.0)  # N f' / f
        a = c.A * n_eff**-c.alpha
        y = gap - a
        d_eff = (c.B / y) ** (1.0 / c.beta)
        worth = np.maximum(d_eff / u - 1.0, 0.0)
        if math.isinf(rep.r_d_star):
            stretch, tokens = np.ones_like(n), u * (1.0 + worth)
        else:
            q = 1.0 - worth / rep.r_d_star  # exp(-R_D / R_D*)
            stretch, tokens = 1.0 / q, u * (1.0 - rep.r_d_star * np.log(q))
        fixed = 6.0 * tokens + 2.0 * demand
        s = np.log(fixed) - np.log(6.0 * (c.alpha / c.beta) * stretch * d_eff * (a / y) * elastic)
    # at or past the data cap (y <= 0, or q <= 0 by rounding) D is infinite: still falling
    return np.where((y > 0) & np.isfinite(tokens) & ~np.isnan(s), s, -np.inf)
