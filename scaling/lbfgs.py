"""Batched L-BFGS: minimise one smooth function from many starts at once, in numpy.

Knows nothing of what it minimises: it is given ``value_and_grad(x[S, P]) -> (f[S], grad[S, P])``
and a batch of starts ``x0[S, P]``, and runs one unconstrained L-BFGS per start (no bounds) in
lock-step arrays, with no per-start Python loop:

- **Direction.** The two-loop recursion over each start's own last ``memory`` (default 10, as
  scipy's) curvature pairs, scaled by gamma = s'y / y'y of its newest pair. A pair is stored only
  when s'y > max(1e-12 y'y, 1e-300) (else a null pair, which the recursion skips). A direction that
  is not downhill restarts that start on steepest descent with its history dropped. The first step
  is at most 1 in any coordinate; later ones start from the full step.
- **Line search.** Weak Wolfe (sufficient decrease 1e-4, curvature 0.9, as in scipy's L-BFGS-B), by
  bracketing: a step that fails sufficient decrease caps the bracket, one that passes it with the
  slope still steep raises its floor; the next trial is 4x the floor (no cap yet), a quarter of the
  cap (no floor yet) or the bracket's midpoint; at most 30 trials. A start whose bracket never
  closes takes its best step with sufficient decrease; one with no such step has failed.
- **Stopping rules** (``StopRule``). After iteration k a start stops when its line search failed, or
  when it moved and

      f_k - f_k+1 <= ftol * max(|f_k|, |f_k+1|, floor)   or   max_i |grad_i(x_k+1)| <= gtol,

  or when it has run ``max_iter`` (default 500) iterations. ``SCIPY_RULE`` is scipy L-BFGS-B's
  default (factr 1e7, i.e. ftol = 1e7 * machine epsilon with floor 1, and pgtol 1e-5);
  ``STRICT_RULE`` is a relative decrease of 1e-10 or a gradient of 1e-9. A start counts as
  converged when it stopped by the rule, or when its line search failed with its largest gradient
  entry within 1e3 * gtol (it stopped in the rounding noise of a minimum).

Every start is independent of the others: a start gives the same result, bit for bit, whatever
else is in the batch, provided ``value_and_grad`` evaluates each row on its own (no BLAS kernel
that rounds a row differently depending on its neighbours). ``sharded_lbfgs`` relies on that to
deal the starts out to worker processes (``scaling.parallel``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scaling.parallel import map_shards, usable_workers

ARMIJO = 1e-4  # sufficient decrease
CURVATURE = 0.9  # weak Wolfe curvature condition, as in scipy's L-BFGS-B
MAX_TRIALS = 30  # line-search trials per iteration
SHARD_MIN_STARTS = 256  # below this many starts per worker, forking costs more than it saves


@dataclass(frozen=True)
class StopRule:
    """When one start stops: f_k - f_k+1 <= ftol * max(|f_k|, |f_k+1|, floor), or max |grad| <= gtol."""

    ftol: float
    gtol: float
    floor: float = 0.0


# scipy's L-BFGS-B defaults (factr = 1e7 times machine epsilon, pgtol = 1e-5)
SCIPY_RULE = StopRule(ftol=1e7 * np.finfo(float).eps, gtol=1e-5, floor=1.0)
# relative decrease 1e-10
STRICT_RULE = StopRule(ftol=1e-10, gtol=1e-9, floor=0.0)


@dataclass
class BatchResult:
    """Per-start outcome of the batched L-BFGS: final points, objectives, iterations."""

    theta: np.ndarray
    objective: np.ndarray
    iterations: np.ndarray
    converged: np.ndarray


def batched_lbfgs(
    value_and_grad,
    starts: np.ndarray,
    *,
    memory: int = 10,
    max_iter: int = 500,
    rule: StopRule = STRICT_RULE,
    row_data: np.ndarray | None = None,
) -> BatchResult:
    """Minimise from every start at once with L-BFGS (see the module docstring for the rules).

    ``value_and_grad(theta[S, P]) -> (f[S], grad[S, P])``. Each start keeps its own curvature
    pairs (stored in lock-step ring slots; a skipped update stores a null pair) and runs its own
    line search; the working arrays are compacted as starts stop. A start whose objective is not
    finite at its start is returned as it is, with 0 iterations.

    ``row_data[S, ...]`` (optional) is per-start data passed along as
    ``value_and_grad(theta, row_data[rows])`` (e.g. per-start weights of the terms of a sum).
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


def _weak_wolfe(value_and_grad, idx, x, f, d, slope, step):
    """Batched weak-Wolfe line search by bracketing: a step that fails sufficient decrease caps
    the bracket, one that passes it with the slope still steep raises its floor; the next trial
    is 4x the floor (no cap yet), a quarter of the cap (no floor yet), or the bracket's midpoint.
    Returns the accepted (x, f, grad) per start and a mask of starts that found no step with
    sufficient decrease (a start whose bracket never closed keeps its best decreasing step)."""
    x_new = x + step[:, None] * d
    f_new, g_new = value_and_grad(x_new, idx)
    armijo = f_new <= f + ARMIJO * step * slope
    accept = armijo & (np.einsum("ij,ij->i", g_new, d) >= CURVATURE * slope)
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
    for _ in range(MAX_TRIALS - 1):
        lo_o, hi_o = lo[open_], hi[open_]
        t = np.where(np.isinf(hi_o), 4.0 * lo_o, np.where(have_lo[open_], 0.5 * (lo_o + hi_o), 0.25 * hi_o))
        xt = x0[open_] + t[:, None] * d0[open_]
        ft, gt = value_and_grad(xt, idx0[open_])
        armijo = ft <= f0[open_] + ARMIJO * t * slope0[open_]
        accept = armijo & (np.einsum("ij,ij->i", gt, d0[open_]) >= CURVATURE * slope0[open_])
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


def _lbfgs_shard(job: tuple) -> BatchResult:
    value_and_grad, starts, row_data, rule = job
    return batched_lbfgs(value_and_grad, starts, rule=rule, row_data=row_data)


def sharded_lbfgs(value_and_grad, starts: np.ndarray, *, rule: StopRule = STRICT_RULE,
                  row_data: np.ndarray | None = None, workers: int | None = None) -> BatchResult:
    """``batched_lbfgs`` with the starts dealt round-robin to worker processes (scaling.parallel),
    at least ``SHARD_MIN_STARTS`` per worker. ``value_and_grad`` must pickle (a module-level
    function, or a bound method of a picklable object). Starts are independent, so the result is
    the same as one batch's."""
    n = starts.shape[0]
    n_shards = max(1, min(usable_workers(workers), n // SHARD_MIN_STARTS))
    # deal a fixed shuffle round-robin: a grid of starts is systematic (neighbours cost alike)
    order = np.random.default_rng(0).permutation(n)
    shards = [np.sort(order[i::n_shards]) for i in range(n_shards)]
    jobs = [(value_and_grad, starts[rows], None if row_data is None else row_data[rows], rule) for rows in shards]
    parts = map_shards(_lbfgs_shard, jobs, n_shards)
    out = BatchResult(np.empty_like(starts, dtype=np.float64), np.empty(n), np.empty(n, dtype=np.int64),
                      np.empty(n, dtype=bool))
    for rows, part in zip(shards, parts):
        out.theta[rows], out.objective[rows] = part.theta, part.objective
        out.iterations[rows], out.converged[rows] = part.iterations, part.converged
    return out
