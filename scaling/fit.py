"""Fit the Chinchilla loss law (the paper's Eq. 4) on runs: the best of the grid's optima.

The problem (Huber on log-loss, the 4,500-point grid, the two-pass grid minimisation) is
``scaling.eq4``, the batched L-BFGS under it ``scaling.lbfgs``, the bootstrap
``scaling.bootstrap``. This module picks the best start that forms a valid law and reports it
with its diagnostics (see docs/fitter.md and benchmarks/bench_fit.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scaling.bootstrap import bootstrap_intervals
from scaling.coefficients import LawCoefficients
from scaling.eq4 import (
    DEFAULT_DELTA,
    centred_problem,
    from_centred,
    grid_optima,
    law_values,
    standard_grid,
    to_centred,
    valid_law,
)
from scaling.errors import InputError
from scaling.lbfgs import BatchResult

AT_BEST_RTOL = 1e-6  # a start "reached the best" if its objective is within this of the best


@dataclass
class FitResult:
    """Best Eq. 4 fit and its diagnostics. Coefficients: A, B, E (loss units), alpha, beta."""

    coefficients: LawCoefficients
    objective: float
    n_runs: int
    n_starts: int
    n_starts_at_best: int
    n_starts_converged: int
    delta: float
    bootstrap: list[dict[str, float]] | None = None
    bootstrap_resamples: int = 0
    best_objective_any: float | None = None  # the lowest objective of any start, valid law or not

    def as_dict(self) -> dict:
        c = self.coefficients
        out = {
            "A": c.A, "B": c.B, "E": c.E, "alpha": c.alpha, "beta": c.beta,
            "objective": self.objective,
            "n_runs": self.n_runs,
            "n_starts": self.n_starts,
            "n_starts_at_best": self.n_starts_at_best,
            "n_starts_converged": self.n_starts_converged,
            "huber_delta": self.delta,
            "degenerate_optimum_excluded": bool(self.best_objective_any is not None
                                                and self.best_objective_any < self.objective * (1 - AT_BEST_RTOL)),
            "at_best_rtol": AT_BEST_RTOL,
        }
        if self.bootstrap is not None:
            out["bootstrap"] = self.bootstrap
            out["bootstrap_resamples"] = self.bootstrap_resamples
            out["bootstrap_dropped"] = self.bootstrap_resamples - len(self.bootstrap)
            if self.bootstrap:
                out["bootstrap_intervals"] = bootstrap_intervals(self.bootstrap)
        return out


def fit_law(
    params: np.ndarray,
    tokens: np.ndarray,
    losses: np.ndarray,
    *,
    delta: float = DEFAULT_DELTA,
    starts: np.ndarray | None = None,
    name: str = "fit",
) -> FitResult:
    """Fit Eq. 4 on runs (N params, D tokens, final loss) from the grid of starts."""
    params, tokens, losses = (np.asarray(v, dtype=np.float64) for v in (params, tokens, losses))
    problem, shift = centred_problem(params, tokens, losses, delta)
    grid = standard_grid() if starts is None else np.asarray(starts, dtype=np.float64)
    result = grid_optima(problem, to_centred(grid, shift), shift)
    return _summarise(result, shift, params.size, delta, name)


def _summarise(result: BatchResult, shift, n_runs: int, delta: float, name: str) -> FitResult:
    """The best start whose coefficients form a valid law (alpha, beta > 0; A, B finite and > 0;
    E finite). On well-posed data that is the overall best; on too few runs the optimum can run
    off to a degenerate point (an exponent <= 0 or exp(a) overflowing), which is not reported."""
    finite = np.isfinite(result.objective)
    if not finite.any():
        raise InputError("the fit failed from every start (non-finite objective everywhere)")
    objective = np.where(finite, result.objective, np.inf)
    theta = from_centred(result.theta, shift)
    valid = valid_law(theta, objective)
    if not valid.any():
        raise InputError("no start of the fit reached a valid law (positive exponents, finite coefficients): "
                         "the runs do not determine Eq. 4; add runs at more sizes or ratios")
    best = int(np.argmin(np.where(valid, objective, np.inf)))
    best_f = float(objective[best])
    return FitResult(
        coefficients=LawCoefficients(**law_values(theta[best]), name=name),
        objective=best_f,
        n_runs=n_runs,
        n_starts=int(result.theta.shape[0]),
        n_starts_at_best=int(np.sum(valid & (objective <= best_f * (1 + AT_BEST_RTOL)))),
        n_starts_converged=int(result.converged.sum()),
        delta=delta,
        best_objective_any=float(objective.min()),
    )
