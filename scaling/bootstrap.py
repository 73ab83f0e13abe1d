"""Bootstrap of the Eq. 4 fit: refits on resamples of the runs, and percentile intervals over them.

A resample is the same runs with multinomial counts as weights on their Huber terms, so all
resamples are fitted in one batched L-BFGS (``scaling.lbfgs``), each from the few best distinct
optima that the full grid reached on all the runs (docs/uncertainty-and-plan.md).
"""

from __future__ import annotations

import numpy as np

from scaling import eq4
from scaling.lbfgs import sharded_lbfgs

BOOTSTRAP_STARTS = 16  # distinct optima of the full-data grid fit used as starts for every resample
DISTINCT_ATOL = 1e-3  # final points closer than this in every coordinate are one optimum
LAW_KEYS = ("A", "B", "E", "alpha", "beta")  # the coefficients a bootstrap set holds (and its objective)


def bootstrap_fits(
    params: np.ndarray,
    tokens: np.ndarray,
    losses: np.ndarray,
    n_resamples: int,
    *,
    seed: int = 0,
    delta: float = eq4.DEFAULT_DELTA,
    starts: np.ndarray | None = None,
    progress=None,
    n_starts: int = BOOTSTRAP_STARTS,
) -> list[dict[str, float]]:
    """Refit on ``n_resamples`` resamples of the runs (with replacement, seeded). Resamples whose
    best fit is not a valid law (non-positive exponent, overflowing coefficient) are left out.

    A resample is the same runs with multinomial counts as weights, so all resamples are fitted
    in one batched L-BFGS. Each starts from the ``n_starts`` best distinct optima that the full
    grid reached on all the runs (rather than from all 4,500 grid points again): a resample's
    optimum lies in one of those basins, and this is what makes 1,000 resamples take seconds.
    """
    params, tokens, losses = (np.asarray(v, dtype=np.float64) for v in (params, tokens, losses))
    problem, shift = eq4.centred_problem(params, tokens, losses, delta)
    grid = eq4.standard_grid() if starts is None else np.asarray(starts, dtype=np.float64)
    full = eq4.grid_optima(problem, eq4.to_centred(grid, shift), shift)
    basins = _distinct_best(full.theta, full.objective, n_starts)
    rng = np.random.default_rng(seed)
    n = len(params)
    counts = np.stack([np.bincount(rng.integers(0, n, size=n), minlength=n) for _ in range(n_resamples)])
    k = basins.shape[0]
    result = sharded_lbfgs(problem.value_and_grad, np.tile(basins, (n_resamples, 1)),
                           row_data=np.repeat(counts.astype(np.float64), k, axis=0))
    objective = np.where(np.isfinite(result.objective), result.objective, np.inf).reshape(n_resamples, k)
    best = objective.argmin(axis=1)
    theta = eq4.from_centred(result.theta.reshape(n_resamples, k, len(eq4.PARAM_NAMES))[np.arange(n_resamples), best], shift)
    sets = []
    for i in range(n_resamples):
        s = {**eq4.law_values(theta[i]), "objective": float(objective[i, best[i]])}
        # a resample whose best fit is not a valid law (an exponent <= 0, or A/B/E overflowing) has no
        # Chinchilla law to report: it is left out, and callers report how many were
        if all(np.isfinite(v) for v in s.values()) and min(s["alpha"], s["beta"], s["A"], s["B"]) > 0:
            sets.append(s)
    if progress is not None:
        progress(n_resamples)
    return sets


def _distinct_best(theta: np.ndarray, objective: np.ndarray, k: int) -> np.ndarray:
    """Up to ``k`` final points with the lowest objectives, one per distinct optimum."""
    order = np.argsort(np.where(np.isfinite(objective), objective, np.inf))
    picked: list[np.ndarray] = []
    for i in order:
        if not np.isfinite(objective[i]):
            break
        if all(np.max(np.abs(theta[i] - p)) > DISTINCT_ATOL for p in picked):
            picked.append(theta[i])
            if len(picked) == k:
                break
    return np.array(picked)


def bootstrap_intervals(sets: list[dict[str, float]], level: float = 0.95) -> dict[str, list[float]]:
    """Percentile intervals (default 2.5%-97.5%) of each coefficient over bootstrap sets."""
    lo, hi = 50 * (1 - level), 100 - 50 * (1 - level)
    return {
        k: [float(np.percentile([s[k] for s in sets], lo)), float(np.percentile([s[k] for s in sets], hi))]
        for k in LAW_KEYS
    }
