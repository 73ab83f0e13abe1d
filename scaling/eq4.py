"""The paper's Eq. 4 as a minimisation problem: Huber regression on log-loss, from a grid of starts.

Objective (summed over runs i, Huber delta = 1e-3 by default):

    sum_i Huber_delta( LSE(a - alpha*log N_i, b - beta*log D_i, e) - log L_i )

with A, B, E = exp(a), exp(b), exp(e). A point is a row theta = (alpha, beta, e, a, b) (the order of
the paper's huber_optimize.py; ``COL`` names the columns). ``HuberProblem`` evaluates the objective
and its analytic gradient for a whole batch of points in a few array passes; ``grid_optima``
minimises it from the standard 4,500-point grid with the batched L-BFGS (``scaling.lbfgs``),
shared out to one process per core. The fit driver is ``scaling.fit``, the bootstrap
``scaling.bootstrap`` (see docs/fitter.md).
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from scaling.lbfgs import SCIPY_RULE, STRICT_RULE, BatchResult, sharded_lbfgs

PARAM_NAMES = ("alpha", "beta", "e", "a", "b")
COL = {name: i for i, name in enumerate(PARAM_NAMES)}  # column of each parameter in theta
DEFAULT_DELTA = 1e-3
STANDARD_GRID = {
    "alpha": (0.0, 0.5, 1.0, 1.5, 2.0),
    "beta": (0.0, 0.5, 1.0, 1.5, 2.0),
    "e": (-1.0, -0.5, 0.0, 0.5, 1.0),
    "a": (0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
    "b": (0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
}
POLISH_MARGIN = 1e-2  # starts ending within 1% of the best are polished to the strict rule

_EXP_LIMIT = 700.0  # e is clamped to +-700 so exp(e) stays finite and positive
_CHUNK_ROWS = 256  # starts per block: keeps the (rows x runs) work arrays in cache
_LOCAL = threading.local()


def standard_grid() -> np.ndarray:
    """The 4,500 standard starting points, shape (4500, 5), columns PARAM_NAMES."""
    axes = [STANDARD_GRID[name] for name in PARAM_NAMES]
    return np.array(list(itertools.product(*axes)), dtype=np.float64)


def _work_buffers(rows: int, n: int) -> list[np.ndarray]:
    """Five (rows, n) float64 scratch arrays per thread, reused across calls: allocating fresh
    ~0.5 MB temporaries on every evaluation costs more than the arithmetic (page faults)."""
    cache = getattr(_LOCAL, "buffers", None)
    if cache is None or cache[0].shape[1] != n or cache[0].shape[0] < rows:
        cache = [np.empty((max(rows, _CHUNK_ROWS), n)) for _ in range(5)]
        _LOCAL.buffers = cache
    return cache


@dataclass(frozen=True)
class HuberProblem:
    """Data of one fit: log N (params), log D (tokens), log L (loss), Huber delta.

    ``log_params`` and ``log_tokens`` may be centred (shifted by constants); the fitter does
    that to decouple a from alpha and b from beta, and maps the result back.
    """

    log_params: np.ndarray
    log_tokens: np.ndarray
    log_loss: np.ndarray
    delta: float = DEFAULT_DELTA

    def value_and_grad(self, theta: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Objective and analytic gradient for a batch theta[S, 5] (columns PARAM_NAMES).

        ``weights[S, n]`` (optional) weighs each run's Huber term per row: a bootstrap resample
        is the same runs with multinomial counts as weights, so many resamples fit in one batch.
        """
        theta = np.ascontiguousarray(theta, dtype=np.float64)
        f = np.empty(theta.shape[0])
        grad = np.empty_like(theta)
        buffers = _work_buffers(min(theta.shape[0], _CHUNK_ROWS), self.log_params.size)
        # a trial point far out (an exponent past ~709) overflows to inf: its objective is then
        # inf (or nan), which every line search rejects, so there is nothing to clamp
        with np.errstate(over="ignore", invalid="ignore"):
            for i in range(0, theta.shape[0], _CHUNK_ROWS):
                sl = slice(i, i + _CHUNK_ROWS)
                self._block(theta[sl], f[sl], grad[sl], buffers, None if weights is None else weights[sl])
        return f, grad

    def _block(self, theta: np.ndarray, f_out: np.ndarray, g_out: np.ndarray, buffers: list[np.ndarray],
               w: np.ndarray | None = None) -> None:
        x, y, delta = self.log_params, self.log_tokens, self.delta
        alpha, beta, e, a, b = (theta[:, COL[name]] for name in ("alpha", "beta", "e", "a", "b"))
        rows = theta.shape[0]
        t1, t2, s, r, c = (buf[:rows] for buf in buffers)
        # a - alpha x and b - beta y. Elementwise (an einsum outer product is ~2x faster than a
        # broadcast multiply); not matmul: BLAS rounds a row differently depending on the rows
        # around it, and results must not depend on how the starts are batched or sharded
        np.einsum("i,j->ij", alpha, self._neg_x, out=t1)
        t1 += a[:, None]
        np.einsum("i,j->ij", beta, self._neg_y, out=t2)
        t2 += b[:, None]
        np.exp(t1, out=t1)
        np.exp(t2, out=t2)
        t3 = np.exp(np.clip(e, -_EXP_LIMIT, _EXP_LIMIT))  # > 0: s never underflows to 0
        np.add(t1, t2, out=s)
        s += t3[:, None]
        np.log(s, out=r)
        r -= self.log_loss
        np.clip(r, -delta, delta, out=c)
        # Huber = c (r - c/2) with c = clip(r, -delta, delta)
        if w is None:
            f_out[:] = np.einsum("ij,ij->i", c, r) - 0.5 * np.einsum("ij,ij->i", c, c)
        else:
            r -= 0.5 * c
            r *= c
            f_out[:] = np.einsum("ij,ij->i", r, w)
            c *= w
        np.divide(c, s, out=c)  # d lse / d(term k) = t_k / s
        t1 *= c
        t2 *= c
        # einsum, not matmul, for the same reason: each row's sums independent of the other rows
        g_out[:, COL["alpha"]] = -np.einsum("ij,j->i", t1, x)
        g_out[:, COL["beta"]] = -np.einsum("ij,j->i", t2, y)
        g_out[:, COL["e"]] = t3 * np.einsum("ij->i", c)
        g_out[:, COL["a"]] = np.einsum("ij->i", t1)
        g_out[:, COL["b"]] = np.einsum("ij->i", t2)

    @cached_property
    def _neg_x(self) -> np.ndarray:
        return -self.log_params

    @cached_property
    def _neg_y(self) -> np.ndarray:
        return -self.log_tokens


def centred_problem(params, tokens, losses, delta) -> tuple[HuberProblem, tuple[float, float]]:
    """The problem on centred log N and log D, and the shift (mean log N, mean log D)."""
    x, y = np.log(params), np.log(tokens)
    shift = (float(x.mean()), float(y.mean()))
    return HuberProblem(x - shift[0], y - shift[1], np.log(losses), delta), shift


def to_centred(theta: np.ndarray, shift: tuple[float, float]) -> np.ndarray:
    """Points in the centred coordinates: a' = a - alpha * mean log N, b' = b - beta * mean log D."""
    out = theta.copy()
    out[:, COL["a"]] -= out[:, COL["alpha"]] * shift[0]
    out[:, COL["b"]] -= out[:, COL["beta"]] * shift[1]
    return out


def from_centred(theta: np.ndarray, shift: tuple[float, float]) -> np.ndarray:
    """The inverse of ``to_centred``."""
    out = theta.copy()
    out[:, COL["a"]] += out[:, COL["alpha"]] * shift[0]
    out[:, COL["b"]] += out[:, COL["beta"]] * shift[1]
    return out


def valid_law(theta: np.ndarray, objective: np.ndarray) -> np.ndarray:
    """Rows (uncentred) that form a valid law: finite objective, alpha, beta > 0,
    A, B, E finite and A, B > 0."""
    alpha, beta, e, a, b = (theta[:, COL[name]] for name in ("alpha", "beta", "e", "a", "b"))
    with np.errstate(over="ignore"):
        A, B, E = np.exp(a), np.exp(b), np.exp(e)
    return (np.isfinite(objective) & (alpha > 0) & (beta > 0)
            & np.isfinite(A) & np.isfinite(B) & np.isfinite(E) & (A > 0) & (B > 0))


def law_values(row: np.ndarray) -> dict[str, float]:
    """A, B, E, alpha, beta of one (uncentred) point; A, B or E is inf where exp overflows."""
    p = {name: row[COL[name]] for name in PARAM_NAMES}
    with np.errstate(over="ignore"):
        return {"A": float(np.exp(p["a"])), "B": float(np.exp(p["b"])), "E": float(np.exp(p["e"])),
                "alpha": float(p["alpha"]), "beta": float(p["beta"])}


def grid_optima(problem: HuberProblem, starts: np.ndarray, shift) -> BatchResult:
    """Every start to scipy L-BFGS-B's default stopping rule, then the starts within
    ``POLISH_MARGIN`` of the best (of any start, and of those forming a valid law) on to
    ``STRICT_RULE``. Only those can be reported or counted as reaching the best; the others
    stopped, by scipy's own rule, at least 1% above it (another basin, or a flat valley where
    scipy stops them too). ``starts`` are centred; so are the returned points."""
    first = sharded_lbfgs(problem.value_and_grad, starts, rule=SCIPY_RULE)
    objective = np.where(np.isfinite(first.objective), first.objective, np.inf)
    valid = valid_law(from_centred(first.theta, shift), objective)
    near = objective <= objective.min() * (1 + POLISH_MARGIN)
    if valid.any():
        near |= valid & (objective <= objective[valid].min() * (1 + POLISH_MARGIN))
    rows = np.flatnonzero(near & np.isfinite(objective))
    if rows.size:
        second = sharded_lbfgs(problem.value_and_grad, first.theta[rows], rule=STRICT_RULE)
        first.theta[rows], first.objective[rows] = second.theta, second.objective
        first.iterations[rows] += second.iterations
        first.converged[rows] = second.converged
    return first
