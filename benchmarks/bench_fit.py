"""Benchmark: the full 4,500-start Eq. 4 fit on Epoch's 240 runs, batched vs scipy per start.

Baseline: scipy.optimize.minimize(method="L-BFGS-B", jac=True) with the same analytic gradient
and the same centred parameterisation, started from every grid point one at a time (as the
authors' huber_optimize.py does, minus its numerical gradient). Ours runs with one worker process
per core ($BEYOND_FIT_WORKERS) and is also timed in one process. Targets: ours <= 1 s, >= 20x
faster, same best objective.  Usage: python benchmarks/bench_fit.py [--scipy-starts N]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from scipy.optimize import minimize

from scaling.eq4 import centred_problem, standard_grid, to_centred
from scaling.fit import fit_law
from scaling.parallel import WORKERS_ENV, available_workers

try:
    from benchmarks._data import epoch_runs
except ImportError:  # run as a script
    from _data import epoch_runs


def scipy_grid_fit(params, tokens, losses, starts):
    problem, shift = centred_problem(params, tokens, losses, 1e-3)
    best = np.inf

    def fun(theta):
        f, g = problem.value_and_grad(theta[None])
        return f[0], g[0]

    for x0 in to_centred(starts, shift):
        res = minimize(fun, x0, jac=True, method="L-BFGS-B")
        best = min(best, float(res.fun))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scipy-starts", type=int, default=4500,
                    help="run the scipy baseline on every k-th start to total about N (default all 4500); "
                         "its time is scaled to 4,500 starts")
    ap.add_argument("--repeats", type=int, default=3, help="repeats of our fit (best time is reported)")
    args = ap.parse_args()
    runs = epoch_runs()
    grid = standard_grid()
    workers = available_workers()

    def best_time(n_workers: int):
        os.environ[WORKERS_ENV] = str(n_workers)
        fit_law(runs.params, runs.tokens, runs.loss)  # warm-up (imports, scratch buffers)
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            fit = fit_law(runs.params, runs.tokens, runs.loss)
            times.append(time.perf_counter() - t0)
        return min(times), fit

    one_process, fit_one = best_time(1)
    ours, fit = best_time(workers)
    assert fit.as_dict() == fit_one.as_dict(), "the fit must not depend on the number of worker processes"
    stride = max(1, round(len(grid) / args.scipy_starts))
    sub = grid[::stride]
    t0 = time.perf_counter()
    scipy_best = scipy_grid_fit(runs.params, runs.tokens, runs.loss, sub)
    scipy_time = (time.perf_counter() - t0) * len(grid) / len(sub)
    print(f"batched L-BFGS, 4500 starts, {workers} worker process{'es' if workers > 1 else ''}: {ours:.3f} s "
          f"(best of {args.repeats}; target <= 1 s) objective {fit.objective:.10g}, "
          f"{fit.n_starts_at_best} starts at best")
    print(f"same fit in one process: {one_process:.3f} s (identical result)")
    print(f"scipy L-BFGS-B one start at a time: {scipy_time:.2f} s for 4500 starts "
          f"({len(sub)} run{'' if stride == 1 else ', scaled'}), best objective {scipy_best:.10g}")
    print(f"speed-up: {scipy_time / ours:.1f}x (target >= 20x); "
          f"objective ours - scipy = {fit.objective - scipy_best:.3e} (<= 0 means ours is as good or better)")


if __name__ == "__main__":
    main()
