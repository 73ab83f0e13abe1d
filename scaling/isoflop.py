"""Chinchilla's Approach 2 (IsoFLOP profiles), a cross-check on the parametric Eq. 4 fit.

Hoffmann et al. (2022, Sec. 3.2, Fig. 3) train several model sizes at each of nine fixed training
budgets (6e18 ... 3e21 FLOPs), fit a parabola of final loss against log N per budget, take each
parabola's minimum as that budget's loss-optimal size N_opt(C), and fit power laws
N_opt = k C**a and D_opt = C / (6 N_opt) = k' C**b through the minima (their Table 2: a = 0.49,
b = 0.51; the parametric Approach 3 gives a = beta / (alpha + beta) = 0.46).

This module plans such sweeps (``isoflop_grid``), fits them (``fit_isoflop``, ``fit_isoflop_runs``:
runs binned to the nearest budget in log FLOPs, C = 6 N D; bootstrap intervals on a and b from
resampling runs within each budget) and compares the result with a coefficient set's parametric
allocation (``parametric_allocation``, ``compare_with_parametric``). See docs/isoflop.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from scaling.coefficients import NAMED_SETS, LawCoefficients
from scaling.errors import InputError
from scaling.law import TRAIN_FLOPS_PER_PARAM_TOKEN, chinchilla_for_compute, training_flops
from scaling.runs import RunTable

# The nine IsoFLOP budgets of Hoffmann et al. (2022), Fig. 3 (legend) and Sec. 3.2 ("9 different
# training FLOP counts (ranging from 6 x 10^18 to 3 x 10^21 FLOPs)").
CHINCHILLA_BUDGETS = (6e18, 1e19, 3e19, 6e19, 1e20, 3e20, 6e20, 1e21, 3e21)
# Their Table 2: exponent (10th, 90th percentile over 100 bootstraps of 80% of the data) per approach.
CHINCHILLA_TABLE2 = {
    "approach 1 (training-curve envelope)": {"a": (0.50, (0.488, 0.502)), "b": (0.50, (0.501, 0.512))},
    "approach 2 (IsoFLOP profiles)": {"a": (0.49, (0.462, 0.534)), "b": (0.51, (0.483, 0.529))},
    "approach 3 (parametric fit)": {"a": (0.46, (0.454, 0.455)), "b": (0.54, (0.542, 0.543))},
}
MIN_SIZES = 3  # a parabola needs three distinct sizes
MIN_BUDGETS = 2  # a power law through the minima needs two budgets
DEFAULT_WIDTH = 10.0  # isoflop_grid: largest / smallest size of a budget (one decade around the centre)
DEFAULT_RESAMPLES = 1000
DEFAULT_LEVEL = 0.95
SAME_SIZE_RTOL = 1e-9  # sizes closer than this (relative) are one size
MAX_CONDITION = 1e10  # a least-squares system worse conditioned than this has no unique parabola


# --- planning ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IsoflopPoint:
    """One planned run: its budget C (FLOPs), params N and tokens D = C / (6 N)."""

    budget: float
    params: float
    tokens: float

    def as_dict(self) -> dict[str, float]:
        return {"budget": self.budget, "params": self.params, "tokens": self.tokens}


def isoflop_grid(
    budgets,
    sizes_per_budget: int,
    *,
    coefficients: LawCoefficients | None = None,
    width: float = DEFAULT_WIDTH,
    params_range: tuple[float, float] | None = None,
) -> list[IsoflopPoint]:
    """An IsoFLOP sweep plan: for each budget C, ``sizes_per_budget`` param counts evenly spaced in
    log N, each trained on D = C / (6 N) tokens.

    The sizes of a budget span a factor ``width`` (largest / smallest) centred in log N on the
    Chinchilla-style optimum of ``coefficients`` at that budget (the ``chinchilla`` set when
    neither ``coefficients`` nor ``params_range`` is given), or span ``params_range`` = (lo, hi)
    at every budget. Points are in ascending budget order, then ascending size.
    """
    c = _budgets(budgets)
    if isinstance(sizes_per_budget, bool) or not isinstance(sizes_per_budget, (int, np.integer)):
        raise InputError(f"isoflop grid: sizes per budget must be a whole number, got {sizes_per_budget!r}")
    if sizes_per_budget < MIN_SIZES:
        raise InputError(f"isoflop grid: {sizes_per_budget} sizes per budget, need at least {MIN_SIZES} "
                         "for a parabola")
    if params_range is not None and coefficients is not None:
        raise InputError("isoflop grid: give either coefficients (a centre) or params_range, not both")
    if params_range is not None:
        lo, hi = (_positive(v, "params_range") for v in params_range)
        if not hi > lo:
            raise InputError(f"isoflop grid: params_range ({lo:g}, {hi:g}) must have lo < hi")
        log_n = np.tile(np.linspace(math.log(lo), math.log(hi), sizes_per_budget), (c.size, 1))
    else:
        w = _positive(width, "width")
        if not w > 1:
            raise InputError(f"isoflop grid: width {w:g} must be > 1 (largest / smallest size)")
        law = coefficients if coefficients is not None else NAMED_SETS["chinchilla"]
        centre = np.log(chinchilla_for_compute(law, c)[0])
        log_n = centre[:, None] + np.linspace(-0.5, 0.5, sizes_per_budget)[None, :] * math.log(w)
    params = np.exp(log_n)
    tokens = c[:, None] / (TRAIN_FLOPS_PER_PARAM_TOKEN * params)
    return [IsoflopPoint(float(c[i]), float(params[i, j]), float(tokens[i, j]))
            for i in range(c.size) for j in range(sizes_per_budget)]


# --- fitting ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetProfile:
    """One budget's parabola L = L_opt + curvature / 2 (ln N - ln N_opt)**2 (+ a FLOPs term).

    ``has_minimum`` is False for a parabola that opens downwards (a maximum, not a minimum): then
    N_opt is NaN and the budget is not used. ``extrapolated``: N_opt lies outside the sizes run.
    """

    budget: float
    n_runs: int
    n_sizes: int
    params_min: float
    params_max: float
    flops_min: float  # the runs' own 6 N D (they differ from the budget when runs were binned)
    flops_max: float
    curvature: float  # d2 L / d(ln N)2 at the budget
    has_minimum: bool
    params_opt: float
    tokens_opt: float
    loss_opt: float
    extrapolated: bool
    rms_residual: float
    flops_term: float | None = None  # dL / d ln C within the bin, when fitted

    def as_dict(self) -> dict:
        """Plain values; NaN (no minimum) as None."""
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in out.items()}


@dataclass(frozen=True)
class DroppedBudget:
    """A budget left out of the power law, and why."""

    budget: float
    n_runs: int
    n_sizes: int
    reason: str

    def as_dict(self) -> dict:
        return {"budget": self.budget, "n_runs": self.n_runs, "n_sizes": self.n_sizes, "reason": self.reason}


@dataclass
class IsoflopFit:
    """Approach 2: N_opt = k C**a and D_opt = k_d C**b through the budgets' parabola minima.

    ``profiles``: every budget with enough sizes for a parabola (used or not); ``dropped``: the
    budgets not in the power law and why. Bootstrap intervals are percentile intervals at
    ``level`` over resamples (runs resampled with replacement within each budget); a resample in
    which some budget has fewer than 3 distinct sizes or no minimum is left out (``bootstrap_dropped``).
    """

    a: float
    b: float
    k: float  # N_opt = k C**a (C in FLOPs)
    k_tokens: float  # D_opt = k_tokens C**b
    budgets_used: list[float]
    profiles: list[BudgetProfile]
    dropped: list[DroppedBudget]
    n_runs: int
    n_runs_outside: int = 0  # runs farther than max_log10_distance from every budget
    max_log10_distance: float | None = None
    fit_flops_term: bool = False
    rms_log_residual: float = 0.0  # of ln N_opt about the power law
    level: float = DEFAULT_LEVEL
    bootstrap_resamples: int = 0
    bootstrap_a: np.ndarray = field(default_factory=lambda: np.empty(0))
    bootstrap_b: np.ndarray = field(default_factory=lambda: np.empty(0))
    seed: int = 0

    @property
    def a_plus_b(self) -> float:
        """a + b: 1 by construction (D_opt = C / (6 N_opt)); a check on the arithmetic."""
        return self.a + self.b

    @property
    def bootstrap_dropped(self) -> int:
        return self.bootstrap_resamples - self.bootstrap_a.size

    @property
    def a_interval(self) -> tuple[float, float] | None:
        return _percentiles(self.bootstrap_a, self.level)

    @property
    def b_interval(self) -> tuple[float, float] | None:
        return _percentiles(self.bootstrap_b, self.level)

    @property
    def flagged(self) -> list[BudgetProfile]:
        """Profiles with no minimum or an extrapolated one."""
        return [p for p in self.profiles if not p.has_minimum or p.extrapolated]

    def params_opt(self, flops) -> np.ndarray:
        """N_opt at C FLOPs on the fitted power law."""
        return self.k * np.asarray(flops, float) ** self.a

    def as_dict(self) -> dict:
        out = {
            "approach": "isoflop",
            "a": self.a, "b": self.b, "a_plus_b": self.a_plus_b, "k": self.k, "k_tokens": self.k_tokens,
            "budgets_used": self.budgets_used, "n_runs": self.n_runs, "n_runs_outside": self.n_runs_outside,
            "max_log10_distance": self.max_log10_distance, "fit_flops_term": self.fit_flops_term,
            "rms_log_residual": self.rms_log_residual,
            "profiles": [p.as_dict() for p in self.profiles],
            "dropped": [d.as_dict() for d in self.dropped],
            "bootstrap_resamples": self.bootstrap_resamples, "bootstrap_dropped": self.bootstrap_dropped,
            "bootstrap_level": self.level, "bootstrap_seed": self.seed,
        }
        if self.bootstrap_a.size:
            out["a_interval"], out["b_interval"] = list(self.a_interval), list(self.b_interval)
        return out

    def describe(self) -> list[str]:
        """Plain-text lines: the exponents, the budgets dropped and flagged, and why."""
        lines = [f"IsoFLOP (Approach 2): a = {self.a:.4f}, b = {self.b:.4f} over {len(self.budgets_used)} budgets, "
                 f"{self.n_runs} runs"]
        if self.bootstrap_a.size:
            (alo, ahi), (blo, bhi) = self.a_interval, self.b_interval
            lines.append(f"  {self.level:.0%} bootstrap intervals: a ({alo:.4f}, {ahi:.4f}), b ({blo:.4f}, {bhi:.4f}) "
                         f"over {self.bootstrap_a.size} of {self.bootstrap_resamples} resamples")
        if self.n_runs_outside:
            lines.append(f"  {self.n_runs_outside} runs farther than {self.max_log10_distance:g} decades from every "
                         "budget left out")
        lines += [f"  budget {d.budget:.3g} dropped: {d.reason}" for d in self.dropped]
        lines += [f"  budget {p.budget:.3g}: minimum N_opt = {p.params_opt:.3g} outside the sizes run "
                  f"({p.params_min:.3g} to {p.params_max:.3g}), extrapolated" for p in self.profiles if p.extrapolated]
        return lines


def bin_to_budgets(flops, budgets) -> tuple[np.ndarray, np.ndarray]:
    """Each run's nearest budget in log FLOPs: (index into ``budgets`` as given, |log10(C / budget)|)."""
    _budgets(budgets)
    c = np.atleast_1d(np.asarray(budgets, dtype=float))
    f = np.asarray(flops, float)
    dist = np.abs(np.log10(f)[:, None] - np.log10(c)[None, :])
    idx = np.argmin(dist, axis=1)
    return idx, dist[np.arange(f.size), idx]


def fit_isoflop(
    params,
    tokens,
    losses,
    budgets=CHINCHILLA_BUDGETS,
    *,
    max_log10_distance: float | None = None,
    fit_flops_term: bool = False,
    drop_extrapolated: bool = False,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
) -> IsoflopFit:
    """Approach 2 on runs (N params, D tokens, final loss).

    Each run goes to the nearest budget in log FLOPs (C = 6 N D); runs farther than
    ``max_log10_distance`` decades from every budget are left out (None: none are). Per budget,
    a least-squares parabola of loss in ln N (with ``fit_flops_term``, plus a term linear in
    ln(C_run / C_budget) that absorbs the spread of the binned runs' FLOPs; the minimum is then
    read at the budget itself) gives N_opt and D_opt = C / (6 N_opt). Budgets with fewer than 3
    distinct sizes, or whose parabola has no minimum (or, with ``drop_extrapolated``, a minimum
    outside the sizes run), are dropped and listed. Then ln N_opt = ln k + a ln C by least squares
    over the budgets used, and likewise b for D_opt; ``n_resamples`` bootstrap refits give the
    intervals (seeded).
    """
    n, d, y = _runs(params, tokens, losses)
    c = _budgets(budgets)
    if max_log10_distance is not None:
        max_log10_distance = _positive(max_log10_distance, "max_log10_distance")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) or n_resamples < 0:
        raise InputError(f"isoflop fit: bootstrap resamples must be a whole number >= 0, got {n_resamples!r}")
    if not (isinstance(level, (int, float)) and 0 < level < 1):
        raise InputError(f"isoflop fit: interval level must be between 0 and 1, got {level!r}")
    flops = training_flops(n, d)
    idx, dist = bin_to_budgets(flops, c)
    inside = np.ones(n.size, bool) if max_log10_distance is None else dist <= max_log10_distance

    profiles: list[BudgetProfile] = []
    dropped: list[DroppedBudget] = []
    used: list[tuple[float, _Design]] = []
    for j, budget in enumerate(c):
        members = np.flatnonzero((idx == j) & inside)
        sizes = _distinct_sizes(n[members])
        if sizes < MIN_SIZES:
            reason = "no runs" if members.size == 0 else f"{sizes} distinct size(s), need at least {MIN_SIZES}"
            dropped.append(DroppedBudget(float(budget), int(members.size), sizes, reason))
            continue
        design = _Design(n[members], y[members], flops[members], float(budget), fit_flops_term)
        sol = design.solve(np.ones((1, members.size)))
        profile = design.profile(sol, sizes)
        profiles.append(profile)
        if not profile.has_minimum:
            why = ("the parabola has no unique solution" if not np.isfinite(profile.curvature)
                   else f"no minimum: curvature {profile.curvature:.3g} <= 0 (the parabola opens downwards: a maximum)")
            dropped.append(DroppedBudget(float(budget), int(members.size), sizes, why))
        elif drop_extrapolated and profile.extrapolated:
            dropped.append(DroppedBudget(float(budget), int(members.size), sizes,
                                         f"minimum N_opt = {profile.params_opt:.3g} outside the sizes run "
                                         f"({profile.params_min:.3g} to {profile.params_max:.3g})"))
        else:
            used.append((float(budget), design))
    if len(used) < MIN_BUDGETS:
        why = "; ".join(f"{x.budget:.3g}: {x.reason}" for x in dropped) or "none dropped"
        raise InputError(f"isoflop fit: {len(used)} usable budget(s), need at least {MIN_BUDGETS} ({why})")
    dropped.sort(key=lambda x: x.budget)

    log_c = np.log([b for b, _ in used])
    by_budget = {p.budget: p for p in profiles}
    log_n_opt = np.log([by_budget[b].params_opt for b, _ in used])
    a, log_k = _slope_intercept(log_c, log_n_opt[None, :])
    log_d_opt = log_c - math.log(TRAIN_FLOPS_PER_PARAM_TOKEN) - log_n_opt
    b, log_k_tokens = _slope_intercept(log_c, log_d_opt[None, :])
    rms = float(np.sqrt(np.mean((log_n_opt - (log_k[0] + a[0] * log_c)) ** 2)))

    boot_a, boot_b = _bootstrap([dsg for _, dsg in used], log_c, n_resamples, seed)
    return IsoflopFit(
        a=float(a[0]), b=float(b[0]), k=float(np.exp(log_k[0])), k_tokens=float(np.exp(log_k_tokens[0])),
        budgets_used=[b_ for b_, _ in used], profiles=profiles, dropped=dropped, n_runs=int(inside.sum()),
        n_runs_outside=int((~inside).sum()), max_log10_distance=max_log10_distance,
        fit_flops_term=fit_flops_term, rms_log_residual=rms, level=float(level), bootstrap_resamples=int(n_resamples),
        bootstrap_a=boot_a, bootstrap_b=boot_b, seed=int(seed),
    )


def fit_isoflop_runs(runs: RunTable, budgets=CHINCHILLA_BUDGETS, **kwargs) -> IsoflopFit:
    """``fit_isoflop`` on a run table (``scaling.runs.read_runs``)."""
    return fit_isoflop(runs.params, runs.tokens, runs.loss, budgets, **kwargs)


# --- comparison with the parametric fit (Approach 3) ------------------------------------------------


def parametric_allocation(c: LawCoefficients) -> tuple[float, float]:
    """The Eq. 4 law's allocation exponents (a, b) = (beta, alpha) / (alpha + beta) (Chinchilla Eq. 4)."""
    return c.beta / (c.alpha + c.beta), c.alpha / (c.alpha + c.beta)


def compare_with_parametric(fit: IsoflopFit, c: LawCoefficients) -> dict:
    """Approach 2 (``fit``) next to Approach 3 (the law ``c``): both exponents, whether the law's a
    lies in the IsoFLOP interval, and N_opt at each budget used from both."""
    a3, b3 = parametric_allocation(c)
    per_budget = []
    for budget in fit.budgets_used:
        n2 = float(fit.params_opt(budget))
        n3 = float(chinchilla_for_compute(c, budget)[0])
        per_budget.append({"budget": budget, "params_isoflop": n2, "params_parametric": n3,
                           "isoflop_over_parametric": n2 / n3})
    interval = fit.a_interval
    return {
        "isoflop": {"a": fit.a, "b": fit.b, "a_interval": None if interval is None else list(interval),
                    "b_interval": None if fit.b_interval is None else list(fit.b_interval), "level": fit.level},
        "parametric": {"name": c.name, "a": a3, "b": b3},
        "a_difference": fit.a - a3,
        "parametric_a_in_interval": None if interval is None else bool(interval[0] <= a3 <= interval[1]),
        "per_budget": per_budget,
    }


# --- internals --------------------------------------------------------------------------------------


class _Design:
    """One budget's least-squares parabola in standardised ln N, solved for any set of run weights
    (all ones for the fit, multinomial counts for a bootstrap resample) in one batch."""

    def __init__(self, params, losses, flops, budget: float, flops_term: bool):
        self.params, self.losses, self.budget = params, losses, budget
        self.flops = flops
        log_n = np.log(params)
        self.centre, self.scale = float(log_n.mean()), float(log_n.std()) or 1.0
        x = (log_n - self.centre) / self.scale
        z = np.log(flops / budget)
        self.flops_term = bool(flops_term and np.ptp(z) > 1e-12)  # runs all at the budget: nothing to absorb
        cols = [np.ones_like(x), x, x * x] + ([z] if self.flops_term else [])
        self.X = np.stack(cols, axis=1)
        self.size_id = np.unique(np.round(log_n / SAME_SIZE_RTOL), return_inverse=True)[1]

    def solve(self, weights: np.ndarray) -> np.ndarray:
        """Coefficients per row of ``weights`` (R, runs): NaN rows where the system is singular."""
        m = np.einsum("rn,ni,nj->rij", weights, self.X, self.X)
        v = np.einsum("rn,ni,n->ri", weights, self.X, self.losses)
        ok = np.linalg.cond(m) < MAX_CONDITION
        eye = np.broadcast_to(np.eye(m.shape[1]), m.shape)
        sol = np.linalg.solve(np.where(ok[:, None, None], m, eye), v[..., None])[..., 0]
        sol[~ok] = np.nan
        return sol

    def distinct_sizes(self, weights: np.ndarray) -> np.ndarray:
        """Distinct sizes with positive weight, per row of ``weights``."""
        per_size = np.zeros((weights.shape[0], self.size_id.max() + 1))
        np.add.at(per_size.T, self.size_id, weights.T)
        return (per_size > 0).sum(axis=1)

    def log_n_opt(self, sol: np.ndarray) -> np.ndarray:
        """ln N at each solution's minimum (NaN where there is no minimum)."""
        c1, c2 = sol[:, 1], sol[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(c2 > 0, self.centre - self.scale * c1 / (2 * c2), np.nan)

    def profile(self, sol: np.ndarray, n_sizes: int) -> BudgetProfile:
        s = sol[0]
        curvature = float(2 * s[2] / self.scale**2)
        log_opt = float(self.log_n_opt(sol)[0])
        has_min = bool(np.isfinite(log_opt))
        n_opt = math.exp(log_opt) if has_min else math.nan
        loss_opt = float(s[0] - s[1] ** 2 / (4 * s[2])) if has_min else math.nan
        resid = self.losses - self.X @ s if np.all(np.isfinite(s)) else np.full(self.losses.size, np.nan)
        return BudgetProfile(
            budget=self.budget, n_runs=int(self.params.size), n_sizes=n_sizes,
            params_min=float(self.params.min()), params_max=float(self.params.max()),
            flops_min=float(self.flops.min()), flops_max=float(self.flops.max()),
            curvature=curvature if np.isfinite(curvature) else math.nan, has_minimum=has_min,
            params_opt=n_opt, tokens_opt=self.budget / (TRAIN_FLOPS_PER_PARAM_TOKEN * n_opt) if has_min else math.nan,
            loss_opt=loss_opt,
            extrapolated=bool(has_min and not (self.params.min() <= n_opt <= self.params.max())),
            rms_residual=float(np.sqrt(np.mean(resid**2))),
            flops_term=float(s[3]) if self.flops_term else None,
        )


def _bootstrap(designs: list[_Design], log_c: np.ndarray, n_resamples: int, seed: int):
    """Bootstrap exponents (a, b) over resamples of the runs within each budget."""
    if n_resamples == 0:
        return np.empty(0), np.empty(0)
    rng = np.random.default_rng(seed)
    log_n = np.empty((n_resamples, len(designs)))
    for j, dsg in enumerate(designs):
        m = dsg.params.size
        counts = np.zeros((n_resamples, m))
        np.add.at(counts, (np.repeat(np.arange(n_resamples), m), rng.integers(0, m, size=n_resamples * m)), 1.0)
        enough = dsg.distinct_sizes(counts) >= MIN_SIZES
        log_n[:, j] = np.where(enough, dsg.log_n_opt(dsg.solve(counts)), np.nan)
    ok = np.all(np.isfinite(log_n), axis=1)
    a, _ = _slope_intercept(log_c, log_n[ok])
    log_d = log_c[None, :] - math.log(TRAIN_FLOPS_PER_PARAM_TOKEN) - log_n[ok]
    b, _ = _slope_intercept(log_c, log_d)
    return a, b


def _slope_intercept(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares line y = intercept + slope x for each row of ``y``."""
    xc = x - x.mean()
    slope = (y - y.mean(axis=1, keepdims=True)) @ xc / (xc @ xc)
    return slope, y.mean(axis=1) - slope * x.mean()


def _percentiles(values: np.ndarray, level: float) -> tuple[float, float] | None:
    if values.size == 0:
        return None
    tail = 50 * (1 - level)
    return float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))


def _distinct_sizes(params: np.ndarray) -> int:
    return int(np.unique(np.round(np.log(params) / SAME_SIZE_RTOL)).size) if params.size else 0


def _positive(value, what: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"isoflop: {what} must be a number, got {value!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise InputError(f"isoflop: {what} must be a finite number > 0, got {value!r}")
    return v


def _budgets(budgets) -> np.ndarray:
    try:
        c = np.atleast_1d(np.asarray(budgets, dtype=float))
    except (TypeError, ValueError):
        raise InputError(f"isoflop: budgets must be numbers (FLOPs), got {budgets!r}") from None
    if c.ndim != 1 or c.size < MIN_BUDGETS:
        raise InputError(f"isoflop: {c.size} budget(s) given, need at least {MIN_BUDGETS}")
    bad = [v for v in c if not (math.isfinite(v) and v > 0)]
    if bad:
        raise InputError(f"isoflop: budgets must be finite FLOP counts > 0, got {bad[0]:g}")
    c = np.sort(c)
    if np.any(np.diff(np.log(c)) < 1e-9):
        raise InputError("isoflop: budgets must be distinct")
    return c


def _runs(params, tokens, losses) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    arrays = []
    for name, values in (("params", params), ("tokens", tokens), ("loss", losses)):
        try:
            v = np.atleast_1d(np.asarray(values, dtype=float))
        except (TypeError, ValueError):
            raise InputError(f"isoflop fit: {name} must be numbers") from None
        bad = np.flatnonzero(~(np.isfinite(v) & (v > 0)))
        if v.ndim != 1:
            raise InputError(f"isoflop fit: {name} must be a flat list of numbers")
        if bad.size:
            raise InputError(f"isoflop fit: {name} must be finite numbers > 0; run {bad[0]} has {float(v[bad[0]])!r}")
        arrays.append(v)
    if not arrays[0].size == arrays[1].size == arrays[2].size:
        raise InputError(f"isoflop fit: params, tokens and loss differ in length "
                         f"({arrays[0].size}, {arrays[1].size}, {arrays[2].size})")
    return arrays[0], arrays[1], arrays[2]
