"""Downstream quality: the Gauntlet core average as a function of loss, in the form of Gadre et al.
2024 ("Language models scale reliably with over-training and on downstream tasks", Eq. 5), with a
bootstrap over runs, its inverse (a Gauntlet target -> a loss target) and a held-out check.

Gadre et al. fit the average top-1 error as ``Err(L) = eps - k exp(-gamma L)`` (their
``scaling/laws.py``: ``e - a * exp(x) ** (-b)``). The Gauntlet core average is an accuracy (rescaled
above chance: 0 = chance, 1 = every answer right), i.e. ``1 - Err`` up to the rescaling, so the same
law reads

    G(L) = a + k exp(-gamma L),   a = 1 - eps (rescaled),  k, gamma > 0,

falling with loss from ``a + k`` at L = 0 to the floor ``a`` as L -> infinity (a model no better
than chance: ``a`` near 0 on the rescaled scale). See docs/downstream.md.

The fit is in centred form, ``G = a + c exp(-gamma (L - l_ref))`` with ``l_ref`` the median loss of
the runs (``k = c exp(gamma l_ref)``), which keeps k and gamma from trading off over orders of
magnitude. For a fixed gamma the law is linear in (a, c): a grid over gamma solved exactly for
(a, c) gives the starts, and scipy's bounded least squares refines the best few.

Units: loss in nats/token (whatever loss column the runs table holds), scores in core-average
units (a fraction; x100 for "points").
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

from ioutil import human
from scaling.errors import InputError
from scaling.holdout import HoldoutRule, parse_holdout
from scaling.runs import PAPER_COLUMNS, RunTable, read_runs
from scaling.uncertainty import PERCENTILES, interval

CORE_COLUMN = "eval_gauntlet/core_average"
PARTIAL_COLUMN = "Gauntlet Partial"  # our runs table: "True" when a category average is missing tasks
SCORE_CEILING = 1.0  # rescaled accuracy above chance: 1 = every answer right
FLOOR_BOUNDS = (-1.0, 1.0)  # a, the score at infinite loss: chance is 0, the rescaled scale bottoms out at -1
DEFAULT_MARGIN = 0.05  # core-average units: targets up to this far beyond the runs' scores are accepted
MIN_RUNS = 5  # three coefficients need more runs than that to say anything
GAMMA_SPAN_MAX = 60.0  # gamma * (loss span of the runs) at most this: beyond it the law is a step
GAMMA_GRID = np.geomspace(1e-3, GAMMA_SPAN_MAX, 96)  # starts, as gamma * loss span
N_REFINED = 3  # the best grid starts refined by least squares
DEFAULT_RESAMPLES = 1000
LEVEL = 0.95  # parameter and prediction intervals (as scaling.bootstrap.bootstrap_intervals)
PARAM_KEYS = ("a", "k", "gamma")


# --- the law (vectorised; parameters broadcast against the loss) -----------------------------------

def gauntlet_from_loss(loss, a, k, gamma) -> np.ndarray:
    """G(L) = a + k exp(-gamma L). Arrays broadcast: parameters of shape (B, 1) and losses of
    shape (m,) give (B, m). Computed as a + exp(log k - gamma L), so large k does not overflow."""
    loss, a, k, gamma = (np.asarray(v, dtype=np.float64) for v in (loss, a, k, gamma))
    with np.errstate(divide="ignore", invalid="ignore"):
        return a + np.exp(np.log(k) - gamma * loss)


def loss_from_gauntlet(score, a, k, gamma) -> np.ndarray:
    """The inverse, L(G) = (log k - log(G - a)) / gamma; NaN where G <= a (never reached) and where
    the loss would be negative (G above the law's value at L = 0, a + k). Broadcasts like
    ``gauntlet_from_loss``."""
    score, a, k, gamma = (np.asarray(v, dtype=np.float64) for v in (score, a, k, gamma))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (np.log(k) - np.log(score - a)) / gamma
    return np.where(np.isfinite(out) & (out >= 0), out, np.nan)


# --- fitting -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DownstreamFit:
    """G(L) = a + k exp(-gamma L) fitted on runs (loss, core average), with its diagnostics."""

    a: float  # score at infinite loss (the floor; chance = 0)
    c: float  # score above the floor at l_ref
    gamma: float  # 1 / loss units
    l_ref: float  # loss the fit is centred on (median of the runs)
    n_runs: int
    rms: float  # residual RMS, core-average units
    max_abs_residual: float
    loss_range: tuple[float, float]  # of the runs fitted
    score_range: tuple[float, float]
    at_bound: tuple[str, ...] = ()  # coefficients that ended on a bound of the fit
    column: str = CORE_COLUMN

    @property
    def k(self) -> float:
        """Gadre et al.'s k: the score above the floor at L = 0."""
        return float(self.c * math.exp(self.gamma * self.l_ref))

    @property
    def eps(self) -> float:
        """Gadre et al.'s eps on the rescaled error scale (1 - G): 1 - a."""
        return 1.0 - self.a

    def predict(self, loss) -> np.ndarray:
        """G at each loss (vectorised)."""
        return self.a + self.c * np.exp(-self.gamma * (np.asarray(loss, dtype=np.float64) - self.l_ref))

    def asymptotes(self) -> tuple[float, float]:
        """The scores the law can reach at all: (a, min(a + k, 1)), the floor at L -> infinity and
        its value at L = 0 (capped at the scale's maximum, 1)."""
        return self.a, min(self.a + self.k, SCORE_CEILING)

    def invertible_range(self, margin: float = DEFAULT_MARGIN) -> tuple[float, float]:
        """Targets the fit accepts: the runs' scores widened by ``margin`` on each side, within the
        asymptotes (a target must be strictly above the floor a)."""
        margin = _check_margin(margin)
        lo_a, hi_a = self.asymptotes()
        return max(self.score_range[0] - margin, lo_a), min(self.score_range[1] + margin, hi_a)

    def check_target(self, target: float, margin: float = DEFAULT_MARGIN) -> float:
        """``target`` as a float, or InputError (one line naming the range) if the fit cannot invert it."""
        try:
            g = float(target)
        except (TypeError, ValueError):
            raise InputError(f"Gauntlet target {target!r} is not a number") from None
        lo, hi = self.invertible_range(margin)
        if not math.isfinite(g) or not (lo <= g <= hi) or g <= self.a:
            floor, top = self.asymptotes()
            raise InputError(
                f"Gauntlet target {g:g} is outside the range the downstream fit can invert, {lo:.4g} to {hi:.4g} "
                f"({self.column} of the {self.n_runs} runs {self.score_range[0]:.4g}-{self.score_range[1]:.4g} "
                f"widened by {margin:g}, above the floor {floor:.4g} and below {top:.4g})")
        return g

    def loss_at(self, target: float, margin: float = DEFAULT_MARGIN) -> float:
        """The loss at which the fit reaches Gauntlet score ``target`` (InputError outside
        ``invertible_range``)."""
        g = self.check_target(target, margin)
        return float(self.l_ref - math.log((g - self.a) / self.c) / self.gamma)

    def as_dict(self, margin: float = DEFAULT_MARGIN) -> dict:
        lo, hi = self.invertible_range(margin)
        return {"form": "G = a + k * exp(-gamma * L)", "column": self.column, "a": self.a, "k": self.k,
                "gamma": self.gamma, "c": self.c, "l_ref": self.l_ref, "n_runs": self.n_runs, "rms": self.rms,
                "max_abs_residual": self.max_abs_residual, "loss_range": list(self.loss_range),
                "score_range": list(self.score_range), "at_bound": list(self.at_bound),
                "invertible_range": [lo, hi], "margin": margin}


def fit_downstream(loss, score, *, column: str = CORE_COLUMN, min_runs: int = MIN_RUNS) -> DownstreamFit:
    """Least-squares fit of G = a + k exp(-gamma L) on runs (loss, score), as Gadre et al. fit
    their error law (unweighted squared residuals). InputError on too few or unusable runs."""
    loss, score = _check_data(loss, score, min_runs)
    l_ref = float(np.median(loss))
    gamma_max = _gamma_max(loss)
    theta, _ = _fit_one(loss - l_ref, score, np.ones_like(loss), gamma_max)
    if theta is None:
        raise InputError(f"the downstream fit failed on the {loss.size} runs: no start gave a falling law "
                         "(the score does not rise as the loss falls)")
    a, c, gamma = (float(v) for v in theta)
    resid = a + c * np.exp(-gamma * (loss - l_ref)) - score
    at_bound = tuple(name for name, v, (lo, hi) in zip(("a", "c", "gamma"), theta, _bounds(gamma_max))
                     if np.isclose(v, lo, rtol=0, atol=1e-9) or np.isclose(v, hi, rtol=1e-9, atol=0))
    return DownstreamFit(a=a, c=c, gamma=gamma, l_ref=l_ref, n_runs=int(loss.size),
                         rms=float(np.sqrt(np.mean(resid ** 2))), max_abs_residual=float(np.max(np.abs(resid))),
                         loss_range=(float(loss.min()), float(loss.max())),
                         score_range=(float(score.min()), float(score.max())), at_bound=at_bound, column=column)


def _check_data(loss, score, min_runs: int) -> tuple[np.ndarray, np.ndarray]:
    loss, score = np.asarray(loss, dtype=np.float64).ravel(), np.asarray(score, dtype=np.float64).ravel()
    if loss.size != score.size:
        raise InputError(f"downstream fit: {loss.size} losses but {score.size} scores")
    if not (np.all(np.isfinite(loss)) and np.all(np.isfinite(score))):
        raise InputError("downstream fit: losses and scores must be finite numbers")
    if loss.size < min_runs:
        raise InputError(f"downstream fit: {loss.size} runs with a score, "
                         f"need at least {min_runs} to fit 3 coefficients")
    if np.ptp(loss) <= 0:
        raise InputError("downstream fit: every run has the same loss; the law needs a spread of losses")
    return loss, score


def _gamma_max(loss: np.ndarray) -> float:
    return GAMMA_SPAN_MAX / float(np.ptp(loss))


def _bounds(gamma_max: float) -> list[tuple[float, float]]:
    """(low, high) of a, c, gamma."""
    return [FLOOR_BOUNDS, (0.0, np.inf), (0.0, gamma_max)]


def _fit_one(x: np.ndarray, y: np.ndarray, w: np.ndarray, gamma_max: float,
             extra_start: np.ndarray | None = None) -> tuple[np.ndarray | None, float]:
    """Weighted least squares of y ~ a + c exp(-gamma x) (x = loss - l_ref; w = resample counts):
    (a, c, gamma) and the weighted residual sum of squares, or (None, inf) when no start converges
    to a falling law. Starts: the best points of the gamma grid, and ``extra_start`` if given."""
    keep = w > 0
    x, y, w = x[keep], y[keep], w[keep]
    starts = _grid_starts(x, y, w, GAMMA_GRID * (gamma_max / GAMMA_SPAN_MAX))
    if extra_start is not None:
        starts.insert(0, np.asarray(extra_start, dtype=np.float64))
    sw = np.sqrt(w)
    bounds = _bounds(gamma_max)
    lo, hi = np.array([b[0] for b in bounds]), np.array([b[1] for b in bounds])

    def residuals(t):
        return sw * (t[0] + t[1] * np.exp(-t[2] * x) - y)

    def jacobian(t):
        e = np.exp(-t[2] * x)
        return sw[:, None] * np.stack([np.ones_like(x), e, -t[1] * x * e], axis=1)

    best, best_rss = None, np.inf
    for start in starts:
        start = np.clip(start, lo + [0, 1e-12, 1e-12 * gamma_max], hi)
        try:
            r = least_squares(residuals, start, jac=jacobian, bounds=(lo, hi), x_scale="jac",
                              ftol=1e-12, xtol=1e-12, gtol=1e-12, max_nfev=2000)
        except (ValueError, FloatingPointError):
            continue
        rss = 2.0 * float(r.cost)
        if r.status > 0 and np.all(np.isfinite(r.x)) and r.x[1] > 0 and r.x[2] > 0 and rss < best_rss:
            best, best_rss = r.x, rss
    return best, best_rss


def _grid_starts(x: np.ndarray, y: np.ndarray, w: np.ndarray, gammas: np.ndarray) -> list[np.ndarray]:
    """For each gamma the exact weighted least-squares (a, c) (the law is linear in them); the
    N_REFINED best with c > 0, in order."""
    e = np.exp(-np.outer(gammas, x))  # (G, n)
    s0, s1, s2 = w.sum(), e @ w, (e * e) @ w
    ty, tey = w @ y, e @ (w * y)
    det = s0 * s2 - s1 * s1
    with np.errstate(divide="ignore", invalid="ignore"):
        c = (s0 * tey - s1 * ty) / det
        a = (ty - c * s1) / s0
        rss = ((a[:, None] + c[:, None] * e - y) ** 2) @ w
    ok = np.isfinite(rss) & (c > 0)
    order = [i for i in np.argsort(np.where(ok, rss, np.inf)) if ok[i]][:N_REFINED]
    return [np.array([a[i], c[i], gammas[i]]) for i in order]


# --- bootstrap -------------------------------------------------------------------------------------------

def resample_counts(n: int, n_resamples: int, seed: int) -> np.ndarray:
    """(n_resamples, n) multinomial counts: resample i draws ``n`` of the ``n`` runs with replacement.
    The same draws as ``scaling.bootstrap.bootstrap_fits`` with the same seed and run order, so
    resample i of both bootstraps holds the same runs."""
    rng = np.random.default_rng(seed)
    return np.stack([np.bincount(rng.integers(0, n, size=n), minlength=n) for _ in range(n_resamples)])


@dataclass(frozen=True)
class DownstreamBootstrap:
    """Refits of the downstream law on resamples of the runs: one (a, k, gamma) per kept resample."""

    a: np.ndarray
    k: np.ndarray
    gamma: np.ndarray
    n_resamples: int
    seed: int
    kept: np.ndarray = field(repr=False)  # index of each set's resample (failed resamples are left out)

    @property
    def n_sets(self) -> int:
        return int(self.a.size)

    @property
    def n_failed(self) -> int:
        return self.n_resamples - self.n_sets

    def predict(self, loss) -> np.ndarray:
        """(n_sets, m) scores at m losses."""
        loss = np.atleast_1d(np.asarray(loss, dtype=np.float64))
        return gauntlet_from_loss(loss[None, :], self.a[:, None], self.k[:, None], self.gamma[:, None])

    def intervals(self, level: float = LEVEL) -> dict[str, list[float]]:
        """Percentile intervals (default 2.5-97.5%) of a, k and gamma."""
        pct = (50 * (1 - level), 100 - 50 * (1 - level))
        return {name: interval(getattr(self, name), pct) for name in PARAM_KEYS}

    def prediction_interval(self, loss, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray]:
        """Percentile interval (default 2.5-97.5%) of the score at each loss, over the sets."""
        pred = self.predict(loss)
        return (np.percentile(pred, 50 * (1 - level), axis=0), np.percentile(pred, 100 - 50 * (1 - level), axis=0))

    def loss_targets(self, target: float) -> np.ndarray:
        """(n_sets,) the loss at which each set reaches score ``target``; NaN for a set whose law
        never reaches it (target at or below its floor a, or above its value at L = 0)."""
        return loss_from_gauntlet(float(target), self.a, self.k, self.gamma)

    def as_dict(self, level: float = LEVEL) -> dict:
        return {"n_resamples": self.n_resamples, "n_sets": self.n_sets, "n_failed": self.n_failed, "seed": self.seed,
                "level": level, "intervals": self.intervals(level) if self.n_sets else None}


def bootstrap_downstream(fit: DownstreamFit, loss, score, n_resamples: int = DEFAULT_RESAMPLES, *,
                         seed: int = 0) -> DownstreamBootstrap:
    """Refit ``fit``'s law on ``n_resamples`` resamples of the runs (with replacement, seeded;
    ``resample_counts``). A resample is the runs with multinomial counts as weights on their squared
    residuals, which is the same fit as on the drawn runs. Each starts from ``fit``'s coefficients
    and from the best points of the gamma grid; a resample on which no start converges to a falling
    law is left out (``n_failed``)."""
    loss, score = _check_data(loss, score, MIN_RUNS)
    if int(n_resamples) < 1:
        raise InputError(f"downstream bootstrap: the number of resamples must be >= 1, got {n_resamples}")
    counts = resample_counts(loss.size, int(n_resamples), seed).astype(np.float64)
    x = loss - fit.l_ref
    gamma_max = max(_gamma_max(loss), fit.gamma)
    out, kept = [], []
    start = np.array([fit.a, fit.c, fit.gamma])
    for i, w in enumerate(counts):
        theta, _ = _fit_one(x, score, w, gamma_max, start)
        if theta is not None:
            out.append(theta)
            kept.append(i)
    theta = np.array(out).reshape(-1, 3)
    a, c, gamma = theta[:, 0], theta[:, 1], theta[:, 2]
    return DownstreamBootstrap(a=a, k=c * np.exp(gamma * fit.l_ref), gamma=gamma, n_resamples=int(n_resamples),
                               seed=int(seed), kept=np.array(kept, dtype=int))


# --- a Gauntlet target as a loss target, with its uncertainty ------------------------------------------

@dataclass(frozen=True)
class LossTarget:
    """A Gauntlet target turned into a loss target: the point fit's, and one per bootstrap set."""

    gauntlet: float
    point: float  # loss (nats/token) at which the point fit reaches the target
    per_set: np.ndarray  # (n_sets,) the same under each bootstrap set; NaN where that set never reaches it

    @property
    def n_unreachable(self) -> int:
        return int(np.sum(~np.isfinite(self.per_set)))

    def for_sets(self, n: int) -> np.ndarray:
        """Loss targets to pair with ``n`` other bootstrap sets (the Eq. 4 law's): set i gets
        ``per_set[i % n_sets]``; the point loss when there are no sets."""
        if self.per_set.size == 0:
            return np.full(n, self.point)
        return self.per_set[np.arange(n) % self.per_set.size]

    def as_dict(self) -> dict:
        ok = self.per_set[np.isfinite(self.per_set)]
        return {"gauntlet_target": self.gauntlet, "loss_target": self.point, "n_sets": int(self.per_set.size),
                "n_unreachable": self.n_unreachable, "percentiles": list(PERCENTILES),
                "loss_target_interval": interval(ok) if ok.size else None}


def loss_target(fit: DownstreamFit, target: float, sets: DownstreamBootstrap | None = None, *,
                margin: float = DEFAULT_MARGIN) -> LossTarget:
    """The loss target for Gauntlet score ``target``: InputError (one line) when the point fit
    cannot invert it (``DownstreamFit.invertible_range``); per bootstrap set otherwise."""
    point = fit.loss_at(target, margin)
    per_set = np.empty(0) if sets is None else sets.loss_targets(float(target))
    return LossTarget(float(target), point, per_set)


# --- held-out check --------------------------------------------------------------------------------------

@dataclass
class DownstreamHoldout:
    """A downstream fit on the kept runs and its predictions for the held-out ones."""

    expr: str
    fit: DownstreamFit
    loss: np.ndarray  # held-out runs
    score: np.ndarray
    predicted: np.ndarray

    @property
    def error(self) -> np.ndarray:
        """predicted - actual, core-average units."""
        return self.predicted - self.score

    def summary(self) -> dict:
        err = self.error
        return {"expr": self.expr, "n_runs": int(err.size), "n_fit": self.fit.n_runs,
                "mae": float(np.mean(np.abs(err))), "rms": float(np.sqrt(np.mean(err ** 2))),
                "max_abs_error": float(np.max(np.abs(err))), "bias": float(np.mean(err)),
                "fit_rms": self.fit.rms}

    def as_dict(self) -> dict:
        runs = [{"loss": float(x), "score": float(y), "predicted": float(p)}
                for x, y, p in zip(self.loss, self.score, self.predicted)]
        return {**self.summary(), "fit": self.fit.as_dict(), "runs": runs}


def holdout_split(loss, score, held_out, expr: str, *, column: str = CORE_COLUMN) -> DownstreamHoldout:
    """Fit on the runs where ``held_out`` is False, predict the rest. InputError when nothing is
    held out or fewer than MIN_RUNS runs are left to fit."""
    loss, score = np.asarray(loss, dtype=np.float64), np.asarray(score, dtype=np.float64)
    held_out = np.asarray(held_out, dtype=bool)
    n_out = int(held_out.sum())
    if n_out == 0:
        raise InputError(f"downstream holdout {expr}: holds out none of the {held_out.size} runs")
    if held_out.size - n_out < MIN_RUNS:
        raise InputError(f"downstream holdout {expr}: leaves {held_out.size - n_out} of {held_out.size} runs to fit, "
                         f"need at least {MIN_RUNS}")
    fit = fit_downstream(loss[~held_out], score[~held_out], column=column)
    return DownstreamHoldout(expr, fit, loss[held_out], score[held_out], fit.predict(loss[held_out]))


def holdout_check(runs: GauntletRuns, rule: HoldoutRule | str) -> DownstreamHoldout:
    """Hold out the runs matching a ``scaling.holdout`` rule (``params>=2B``), fit on the others."""
    rule = parse_holdout(rule) if isinstance(rule, str) else rule
    return holdout_split(runs.runs.loss, runs.score, rule.mask(runs.runs), rule.text, column=runs.column)


def largest_sizes_rule(runs: GauntletRuns, n_sizes: int = 2) -> str:
    """The rule that holds out the ``n_sizes`` largest model sizes (fit on the smaller models)."""
    sizes = np.unique(runs.runs.params)
    if sizes.size <= n_sizes:
        raise InputError(f"downstream holdout: {sizes.size} model sizes, cannot hold out the {n_sizes} largest")
    cut = float(sizes[-n_sizes])
    rule = f"params>={human(cut)}"
    return rule if parse_holdout(rule).value <= cut else f"params>={cut:.6g}"


# --- runs with Gauntlet scores ---------------------------------------------------------------------------

@dataclass(frozen=True)
class GauntletRuns:
    """The runs of a runs table that carry a Gauntlet score, with that score."""

    runs: RunTable
    score: np.ndarray
    column: str
    n_skipped: int  # rows without a score (not evaluated yet) or with a partial one


def read_gauntlet_runs(path: str | Path, *, column: str = CORE_COLUMN, loss_col: str = PAPER_COLUMNS["loss"],
                       include_partial: bool = False) -> GauntletRuns:
    """The rows of a CSV runs table (the paper's trainingresults.csv, or ``beyond sweep collect``'s
    table) that have a number in ``column``; rows marked ``Gauntlet Partial`` are left out unless
    ``include_partial``. InputError without the column or with fewer than MIN_RUNS scored rows."""
    path = Path(path)
    if path.is_dir() or path.suffix.lower() == ".json":
        raise InputError(f"{path}: the downstream fit needs a CSV runs table with a {column!r} column "
                         "(beyond sweep collect writes one)")
    table = read_runs(path, loss_col=loss_col)
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        header, rows = reader.fieldnames or [], list(reader)
    if column not in header:
        raise InputError(f"run table {path}: no Gauntlet column {column!r} (columns: {', '.join(header)})")
    score, keep = np.full(len(rows), np.nan), np.zeros(len(rows), dtype=bool)
    for i, row in enumerate(rows):
        try:
            v = float(row.get(column) or "nan")
        except ValueError:
            raise InputError(f"run table {path}: row {i + 2}, column {column!r}: "
                             f"{row[column]!r} is not a number") from None
        partial = str(row.get(PARTIAL_COLUMN) or "").strip().lower() in ("true", "1", "yes")
        score[i], keep[i] = v, math.isfinite(v) and (include_partial or not partial)
    if keep.sum() < MIN_RUNS:
        raise InputError(f"run table {path}: {int(keep.sum())} runs with a complete {column!r}, "
                         f"need at least {MIN_RUNS} for the downstream fit")
    return GauntletRuns(table.select(keep), score[keep], column, int((~keep).sum()))


def _check_margin(margin: float) -> float:
    try:
        m = float(margin)
    except (TypeError, ValueError):
        m = math.nan
    if not (math.isfinite(m) and m >= 0):
        raise InputError(f"the Gauntlet target margin must be a finite number >= 0, got {margin!r}")
    return m
