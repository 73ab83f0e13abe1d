"""Fit the Chinchilla loss law (the paper's Eq. 4) by Huber regression on log-loss.

Objective (summed over runs i, Huber delta = 1e-3 by default):

    sum_i Huber_delta( LSE(a - alpha*log N_i, b - beta*log D_i, e) - log L_i )

with A, B, E = exp(a), exp(b), exp(e). Minimised with L-BFGS from a grid of starts.
All starts are optimised together: one batched L-BFGS in numpy evaluates every start's
objective and analytic gradient in a few array passes, and the starts are shared out to one
process per core (see docs/fitter.md and benchmarks/bench_fit.py).
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from scaling.coefficients import LawCoefficients
from scaling.errors import InputError
from scaling.parallel import map_shards, usable_workers

# Parameter order inside the fitter: (alpha, beta, e, a, b), as in the paper's huber_optimize.py.
PARAM_NAMES = ("alpha", "beta", "e", "a", "b")
DEFAULT_DELTA = 1e-3
STANDARD_GRID = {
    "alpha": (0.0, 0.5, 1.0, 1.5, 2.0),
    "beta": (0.0, 0.5, 1.0, 1.5, 2.0),
    "e": (-1.0, -0.5, 0.0, 0.5, 1.0),
    "a": (0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
    "b": (0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
}


def standard_grid() -> np.ndarray:
    """The 4,500 standard starting points, shape (4500, 5), columns (alpha, beta, e, a, b)."""
    axes = [STANDARD_GRID[name] for name in PARAM_NAMES]
    return np.array(list(itertools.product(*axes)), dtype=np.float64)


_EXP_LIMIT = 700.0  # e is clamped to +-700 so exp(e) stays finite and positive
_CHUNK_ROWS = 256  # starts per block: keeps the (rows x runs) work arrays in cache
_LOCAL = threading.local()


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
        """Objective and analytic gradient for a batch theta[S, 5] of (alpha, beta, e, a, b).

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
        rows = theta.shape[0]
        t1, t2, s, r, c = (buf[:rows] for buf in buffers)
        # a - alpha x and b - beta y. Elementwise (an einsum outer product is ~2x faster than a
        # broadcast multiply); not matmul: BLAS rounds a row differently depending on the rows
        # around it, and results must not depend on how the starts are batched or sharded
        np.einsum("i,j->ij", theta[:, 0], self._neg_x, out=t1)
        t1 += theta[:, 3:4]
        np.einsum("i,j->ij", theta[:, 1], self._neg_y, out=t2)
        t2 += theta[:, 4:5]
        np.exp(t1, out=t1)
        np.exp(t2, out=t2)
        t3 = np.exp(np.clip(theta[:, 2], -_EXP_LIMIT, _EXP_LIMIT))  # > 0: s never underflows to 0
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
        g_out[:, 0] = -np.einsum("ij,j->i", t1, x)
        g_out[:, 1] = -np.einsum("ij,j->i", t2, y)
        g_out[:, 2] = t3 * np.einsum("ij->i", c)
        g_out[:, 3] = np.einsum("ij->i", t1)
        g_out[:, 4] = np.einsum("ij->i", t2)

    @cached_property
    def _neg_x(self) -> np.ndarray:
        return -self.log_params

    @cached_property
    def _neg_y(self) -> np.ndarray:
        return -self.log_tokens


@dataclass
class BatchResult:
    """Per-start outcome of the batched L-BFGS: final points, objectives, iterations."""

    theta: np.ndarray
    objective: np.ndarray
    iterations: np.ndarray
    converged: np.ndarray


@dataclass(frozen=True)
class StopRule:
    """When one start stops: f_k - f_k+1 <= ftol * max(|f_k|, |f_k+1|, floor), or max |grad| <= gtol."""

    ftol: float
    gtol: float
    floor: float = 0.0


# scipy's L-BFGS-B defaults (factr = 1e7 times machine epsilon, pgtol = 1e-5): the baseline's own rule
SCIPY_RULE = StopRule(ftol=1e7 * np.finfo(float).eps, gtol=1e-5, floor=1.0)
# relative decrease 1e-10: what the reported optimum is polished to
STRICT_RULE = StopRule(ftol=1e-10, gtol=1e-9, floor=0.0)


def batched_lbfgs(
    value_and_grad,
    starts: np.ndarray,
    *,
    memory: int = 10,
    max_iter: int = 500,
    rule: StopRule = STRICT_RULE,
    row_data: np.ndarray | None = None,
) -> BatchResult:
    """Minimise from every start at once with L-BFGS (numpy, no per-start Python loop).

    ``value_and_grad(theta[S, P]) -> (f[S], grad[S, P])``. Each start keeps its own curvature
    pairs (stored in lock-step ring slots; a skipped update stores a null pair) and runs its own
    weak-Wolfe line search (sufficient decrease 1e-4, curvature 0.9, as in scipy's L-BFGS-B). A
    start stops by ``rule`` or when its line search finds no acceptable step; the working arrays
    are compacted as starts stop. Every start is independent of the others: the same start gives
    the same result whatever else is in the batch.

    ``row_data[S, ...]`` (optional) is per-start data passed along as
    ``value_and_grad(theta, row_data[rows])`` (the bootstrap's run weights).
    """
    S, P = starts.shape
    plain = value_and_grad
    if row_data is not None:
        def value_and_grad(theta, rows):  # noqa: F811 - rows select the per-start data
            return plain(theta, row_data[rows])
    else:
        def value_and_grad(theta, rows):  # noqa: F811
            return plain(theta)
    out_x = starts.astype(np.float64).copy()
    out_f, g = value_and_grad(out_x, np.arange(S))
    out_iters = np.zeros(S, dtype=np.int64)
    out_conv = np.zeros(S, dtype=bool)
    idx = np.flatnonzero(np.isfinite(out_f))
    x, f, g = out_x[idx], out_f[idx], g[idx]
    # slot-major history (memory, starts, P): each slot is one contiguous (starts, P) block
    s_hist = np.zeros((memory, idx.size, P))
    y_hist = np.zeros((memory, idx.size, P))
    rho = np.zeros((memory, idx.size))
    gamma = np.ones(idx.size)
    k = 0
    while idx.size and k < max_iter:
        d = _two_loop(g, s_hist, y_hist, rho, gamma, k)
        slope = np.einsum("ij,ij->i", g, d)
        uphill = ~(slope < 0)
        if uphill.any():  # stale curvature: restart those starts on steepest descent
            d[uphill] = -g[uphill]
            slope[uphill] = -np.einsum("ij,ij->i", g[uphill], g[uphill])
            rho[:, uphill] = 0.0
            gamma[uphill] = 1.0
        if k == 0:  # no curvature yet: first move is at most 1 in any coordinate
            step = np.minimum(1.0, 1.0 / np.maximum(np.abs(d).max(axis=1), 1e-300))
        else:
            step = np.ones(idx.size)
        x_new, f_new, g_new, failed = _weak_wolfe(value_and_grad, idx, x, f, d, slope, step)
        sk = x_new - x
        yk = g_new - g
        sy = np.einsum("ij,ij->i", sk, yk)
        yy = np.einsum("ij,ij->i", yk, yk)
        store = ~failed & np.isfinite(yy) & (yy > 0) & (sy > np.maximum(1e-12 * yy, 1e-300))
        slot = k % memory
        if store.all():
            s_hist[slot], y_hist[slot], rho[slot], gamma = sk, yk, 1.0 / sy, sy / yy
        else:
            s_hist[slot] = np.where(store[:, None], sk, 0.0)
            y_hist[slot] = np.where(store[:, None], yk, 0.0)
            rho[slot] = np.where(store, 1.0 / np.where(store, sy, 1.0), 0.0)
            gamma = np.where(store, sy / np.where(store, yy, 1.0), gamma)
        decrease = f - f_new
        scale = np.maximum(np.maximum(np.abs(f), np.abs(f_new)), rule.floor)
        ok = ~failed
        if ok.all():
            x, f, g = x_new, f_new, g_new
        else:
            x[ok], f[ok], g[ok] = x_new[ok], f_new[ok], g_new[ok]
        k += 1
        done = ok & ((decrease <= rule.ftol * scale) | (np.abs(g_new).max(axis=1) <= rule.gtol))
        stop = done | failed
        if stop.any():
            out_x[idx[stop]], out_f[idx[stop]] = x[stop], f[stop]
            out_iters[idx[stop]] = k
            out_conv[idx[stop]] = done[stop] | (np.abs(g[stop]).max(axis=1) <= 1e3 * rule.gtol)
            keep = ~stop
            idx, x, f, g = idx[keep], x[keep], f[keep], g[keep]
            s_hist, y_hist, rho, gamma = s_hist[:, keep], y_hist[:, keep], rho[:, keep], gamma[keep]
    out_x[idx], out_f[idx], out_iters[idx] = x, f, k
    return BatchResult(out_x, out_f, out_iters, out_conv)


_ARMIJO = 1e-4  # sufficient decrease
_CURVATURE = 0.9  # weak Wolfe curvature condition, as in scipy's L-BFGS-B
_MAX_TRIALS = 30


def _weak_wolfe(value_and_grad, idx, x, f, d, slope, step):
    """Batched weak-Wolfe line search by bracketing: a step that fails sufficient decrease caps
    the bracket, one that passes it with the slope still steep raises its floor; the next trial
    is 4x the floor (no cap yet), a quarter of the cap (no floor yet), or the bracket's midpoint.
    Returns the accepted (x, f, grad) per start and a mask of starts that found no step with
    sufficient decrease (a start whose bracket never closed keeps its best decreasing step)."""
    x_new = x + step[:, None] * d
    f_new, g_new = value_and_grad(x_new, idx)
    armijo = f_new <= f + _ARMIJO * step * slope
    accept = armijo & (np.einsum("ij,ij->i", g_new, d) >= _CURVATURE * slope)
    failed = np.zeros(idx.size, dtype=bool)
    if accept.all():  # the usual case once curvature pairs are in: the full step is taken
        return x_new, f_new, g_new, failed
    # the rest is bookkept on the rejected rows only (positions `pos` in the batch)
    pos = np.flatnonzero(~accept)
    m = pos.size
    t, armijo = step[pos], armijo[pos]
    x0, f0, d0, slope0, idx0 = x[pos], f[pos], d[pos], slope[pos], idx[pos]
    lo, hi = np.where(armijo, t, 0.0), np.where(armijo, np.inf, t)
    have_lo = armijo.copy()
    x_lo, f_lo, g_lo = x_new[pos], f_new[pos], g_new[pos]  # valid where have_lo
    open_ = np.arange(m)  # rows of pos still searching
    for _ in range(_MAX_TRIALS - 1):
        lo_o, hi_o = lo[open_], hi[open_]
        t = np.where(np.isinf(hi_o), 4.0 * lo_o, np.where(have_lo[open_], 0.5 * (lo_o + hi_o), 0.25 * hi_o))
        xt = x0[open_] + t[:, None] * d0[open_]
        ft, gt = value_and_grad(xt, idx0[open_])
        armijo = ft <= f0[open_] + _ARMIJO * t * slope0[open_]
        accept = armijo & (np.einsum("ij,ij->i", gt, d0[open_]) >= _CURVATURE * slope0[open_])
        done = pos[open_[accept]]
        x_new[done], f_new[done], g_new[done] = xt[accept], ft[accept], gt[accept]
        short = armijo & ~accept
        rows = open_[short]
        lo[rows], have_lo[rows] = t[short], True
        x_lo[rows], f_lo[rows], g_lo[rows] = xt[short], ft[short], gt[short]
        hi[open_[~armijo]] = t[~armijo]
        open_ = open_[~accept]
        if not open_.size:
            break
    fallback = open_[have_lo[open_]]
    x_new[pos[fallback]], f_new[pos[fallback]], g_new[pos[fallback]] = x_lo[fallback], f_lo[fallback], g_lo[fallback]
    failed[pos[open_[~have_lo[open_]]]] = True
    return x_new, f_new, g_new, failed


def _two_loop(g, s_hist, y_hist, rho, gamma, k):
    """Batched L-BFGS two-loop recursion over slot-major history (memory, starts, P);
    slot (k-1) % memory holds the newest pair, null pairs have rho = 0."""
    m = s_hist.shape[0]
    q = g.copy()
    alphas = {}
    order = [(k - 1 - j) % m for j in range(min(k, m))]  # newest to oldest
    for pos in order:
        a_j = rho[pos] * np.einsum("ij,ij->i", s_hist[pos], q)
        alphas[pos] = a_j
        q -= a_j[:, None] * y_hist[pos]
    q *= gamma[:, None]
    for pos in reversed(order):
        b_j = rho[pos] * np.einsum("ij,ij->i", y_hist[pos], q)
        q += (alphas[pos] - b_j)[:, None] * s_hist[pos]
    return -q


_SHARD_MIN_STARTS = 256  # below this many starts per worker, forking costs more than it saves


def _lbfgs_shard(job: tuple) -> BatchResult:
    problem, starts, row_data, rule = job
    return batched_lbfgs(problem.value_and_grad, starts, rule=rule, row_data=row_data)


def sharded_lbfgs(problem: HuberProblem, starts: np.ndarray, *, rule: StopRule = STRICT_RULE,
                  row_data: np.ndarray | None = None, workers: int | None = None) -> BatchResult:
    """``batched_lbfgs`` on ``problem`` with the starts dealt round-robin to worker processes
    (scaling.parallel). Starts are independent, so the result is the same as one batch's."""
    n = starts.shape[0]
    n_shards = max(1, min(usable_workers(workers), n // _SHARD_MIN_STARTS))
    # deal a fixed shuffle round-robin: grid order is systematic (neighbouring starts cost alike)
    order = np.random.default_rng(0).permutation(n)
    shards = [np.sort(order[i::n_shards]) for i in range(n_shards)]
    jobs = [(problem, starts[rows], None if row_data is None else row_data[rows], rule) for rows in shards]
    parts = map_shards(_lbfgs_shard, jobs, n_shards)
    out = BatchResult(np.empty_like(starts, dtype=np.float64), np.empty(n), np.empty(n, dtype=np.int64),
                      np.empty(n, dtype=bool))
    for rows, part in zip(shards, parts):
        out.theta[rows], out.objective[rows] = part.theta, part.objective
        out.iterations[rows], out.converged[rows] = part.iterations, part.converged
    return out


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


AT_BEST_RTOL = 1e-6  # a start "reached the best" if its objective is within this of the best


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
    problem, shift = _centred_problem(params, tokens, losses, delta)
    grid = standard_grid() if starts is None else np.asarray(starts, dtype=np.float64)
    result = _grid_optima(problem, _to_centred(grid, shift), shift)
    return _summarise(result, shift, params.size, delta, name)


POLISH_MARGIN = 1e-2  # starts ending within 1% of the best are polished to the strict rule


def _grid_optima(problem: HuberProblem, starts: np.ndarray, shift) -> BatchResult:
    """Every start to scipy L-BFGS-B's default stopping rule, then the starts within
    ``POLISH_MARGIN`` of the best (of any start, and of those forming a valid law) on to
    ``STRICT_RULE``. Only those can be reported or counted as reaching the best; the others
    stopped, by scipy's own rule, at least 1% above it (another basin, or a flat valley where
    scipy stops them too)."""
    first = sharded_lbfgs(problem, starts, rule=SCIPY_RULE)
    objective = np.where(np.isfinite(first.objective), first.objective, np.inf)
    valid = _valid_law(_from_centred(first.theta, shift), objective)
    near = objective <= objective.min() * (1 + POLISH_MARGIN)
    if valid.any():
        near |= valid & (objective <= objective[valid].min() * (1 + POLISH_MARGIN))
    rows = np.flatnonzero(near & np.isfinite(objective))
    if rows.size:
        second = sharded_lbfgs(problem, first.theta[rows], rule=STRICT_RULE)
        first.theta[rows], first.objective[rows] = second.theta, second.objective
        first.iterations[rows] += second.iterations
        first.converged[rows] = second.converged
    return first


def _valid_law(theta: np.ndarray, objective: np.ndarray) -> np.ndarray:
    """Rows (uncentred alpha, beta, e, a, b) that form a valid law: finite objective,
    alpha, beta > 0, A, B, E finite and A, B > 0."""
    with np.errstate(over="ignore"):
        return (np.isfinite(objective) & (theta[:, 0] > 0) & (theta[:, 1] > 0)
                & np.all(np.isfinite(np.exp(theta[:, 2:])), axis=1)
                & (np.exp(theta[:, 3]) > 0) & (np.exp(theta[:, 4]) > 0))


def _centred_problem(params, tokens, losses, delta):
    x, y = np.log(params), np.log(tokens)
    shift = (float(x.mean()), float(y.mean()))
    return HuberProblem(x - shift[0], y - shift[1], np.log(losses), delta), shift


def _to_centred(theta: np.ndarray, shift: tuple[float, float]) -> np.ndarray:
    out = theta.copy()
    out[:, 3] -= out[:, 0] * shift[0]
    out[:, 4] -= out[:, 1] * shift[1]
    return out


def _from_centred(theta: np.ndarray, shift: tuple[float, float]) -> np.ndarray:
    out = theta.copy()
    out[:, 3] += out[:, 0] * shift[0]
    out[:, 4] += out[:, 1] * shift[1]
    return out


def _summarise(result: BatchResult, shift, n_runs: int, delta: float, name: str) -> FitResult:
    """The best start whose coefficients form a valid law (alpha, beta > 0; A, B finite and > 0;
    E finite). On well-posed data that is the overall best; on too few runs the optimum can run
    off to a degenerate point (an exponent <= 0 or exp(a) overflowing), which is not reported."""
    finite = np.isfinite(result.objective)
    if not finite.any():
        raise InputError("the fit failed from every start (non-finite objective everywhere)")
    objective = np.where(finite, result.objective, np.inf)
    theta = _from_centred(result.theta, shift)
    valid = _valid_law(theta, objective)
    if not valid.any():
        raise InputError("no start of the fit reached a valid law (positive exponents, finite coefficients): "
                         "the runs do not determine Eq. 4; add runs at more sizes or ratios")
    best = int(np.argmin(np.where(valid, objective, np.inf)))
    best_f = float(objective[best])
    alpha, beta, e, a, b = theta[best]
    coeffs = LawCoefficients(A=float(np.exp(a)), B=float(np.exp(b)), E=float(np.exp(e)),
                             alpha=float(alpha), beta=float(beta), name=name)
    return FitResult(
        coefficients=coeffs,
        objective=best_f,
        n_runs=n_runs,
        n_starts=int(result.theta.shape[0]),
        n_starts_at_best=int(np.sum(valid & (objective <= best_f * (1 + AT_BEST_RTOL)))),
        n_starts_converged=int(result.converged.sum()),
        delta=delta,
        best_objective_any=float(objective.min()),
    )


BOOTSTRAP_STARTS = 16  # distinct optima of the full-data grid fit used as starts for every resample


def bootstrap_fits(
    params: np.ndarray,
    tokens: np.ndarray,
    losses: np.ndarray,
    n_resamples: int,
    *,
    seed: int = 0,
    delta: float = DEFAULT_DELTA,
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
    problem, shift = _centred_problem(params, tokens, losses, delta)
    grid = standard_grid() if starts is None else np.asarray(starts, dtype=np.float64)
    full = _grid_optima(problem, _to_centred(grid, shift), shift)
    basins = _distinct_best(full.theta, full.objective, n_starts)
    rng = np.random.default_rng(seed)
    n = len(params)
    counts = np.stack([np.bincount(rng.integers(0, n, size=n), minlength=n) for _ in range(n_resamples)])
    k = basins.shape[0]
    result = sharded_lbfgs(problem, np.tile(basins, (n_resamples, 1)),
                           row_data=np.repeat(counts.astype(np.float64), k, axis=0))
    objective = np.where(np.isfinite(result.objective), result.objective, np.inf).reshape(n_resamples, k)
    best = objective.argmin(axis=1)
    theta = _from_centred(result.theta.reshape(n_resamples, k, 5)[np.arange(n_resamples), best], shift)
    sets = []
    for i in range(n_resamples):
        alpha, beta, e, a, b = theta[i]
        with np.errstate(over="ignore"):
            s = {"A": float(np.exp(a)), "B": float(np.exp(b)), "E": float(np.exp(e)), "alpha": float(alpha),
                 "beta": float(beta), "objective": float(objective[i, best[i]])}
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
        if all(np.max(np.abs(theta[i] - p)) > 1e-3 for p in picked):
            picked.append(theta[i])
            if len(picked) == k:
                break
    return np.array(picked)


def bootstrap_intervals(sets: list[dict[str, float]], level: float = 0.95) -> dict[str, list[float]]:
    """Percentile intervals (default 2.5%-97.5%) of each coefficient over bootstrap sets."""
    lo, hi = 50 * (1 - level), 100 - 50 * (1 - level)
    return {
        k: [float(np.percentile([s[k] for s in sets], lo)), float(np.percentile([s[k] for s in sets], hi))]
        for k in ("A", "B", "E", "alpha", "beta")
    }
