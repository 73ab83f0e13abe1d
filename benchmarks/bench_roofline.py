"""Benchmark: Eq. 6 under the roofline serving cost (issue 17), vectorised vs scipy per point, and CLI start-up.

Targets: the whole `beyond optimize cost --inference-model roofline` process (start-up included) < 0.5 s;
10^5 (loss, requests) points solved in < 1 s. The baseline, measured in the same run, is scipy's bounded
Brent minimisation (`minimize_scalar`) of the same objective, one point at a time, on a subset,
extrapolated to 10^5 points; the two must agree on the optimum's dollars. Also printed, with no
target: the same 10^5 points with a unique-token budget that binds for some of them
(scaling/roofline_constrained.py).
Usage: python benchmarks/bench_roofline.py
"""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
from scipy.optimize import minimize_scalar

from scaling import law
from scaling.coefficients import NAMED_SETS
from scaling.optimal import CostSettings
from scaling.roofline import RooflineSettings, dollars_per_request, roofline_cost_optimal
from scaling.roofline_constrained import roofline_cost_optimal_constrained

try:
    from benchmarks._data import best_time
except ImportError:  # run as a script
    from _data import best_time

C = NAMED_SETS["chinchilla"]
SERVING = RooflineSettings(gpu="h100", dtype="int8", batch=64, gpus=None)
K_TR = CostSettings().dollars_per_train_flop


def objective(n, target, requests):
    """k_tr 6 N D(N) + requests x dollars_per_request(N): the same objective, written from the public API."""
    d = law.tokens_for_loss(C, n, target)
    return K_TR * 6.0 * n * d + requests * dollars_per_request(n, SERVING)


def scipy_point(target: float, requests: float) -> float:
    """The optimum's dollars by scipy's bounded Brent search over log N in (N_min, N_chinchilla]."""
    n_min = (C.A / (target - C.E)) ** (1 / C.alpha)
    n_chin = float(law.chinchilla_for_loss(C, target)[0])

    def f(log_n):
        return float(objective(np.exp(log_n), target, requests))

    res = minimize_scalar(f, bounds=(np.log(n_min) + 1e-9, np.log(n_chin)), method="bounded",
                          options={"xatol": 1e-12})
    return float(res.fun)


def main() -> None:
    rng = np.random.default_rng(0)
    n = 100_000
    loss = rng.uniform(1.85, 3.0, n)
    requests = 10 ** rng.uniform(6, 12, n)
    roofline_cost_optimal(C, loss[:10], SERVING, requests[:10])
    t_vec = best_time(lambda: roofline_cost_optimal(C, loss, SERVING, requests), 3)
    ours = roofline_cost_optimal(C, loss, SERVING, requests)
    k = 100
    t0 = time.perf_counter()
    ref = np.array([scipy_point(loss[i], requests[i]) for i in range(k)])
    t_scipy = (time.perf_counter() - t0) / k
    mine = objective(ours.params[:k], loss[:k], requests[:k])
    rel = np.max((mine - ref) / ref)
    print(f"roofline Eq. 6 optimum: {n:,} (loss, requests) points in {t_vec:.3f} s (target < 1 s)")
    print(f"scipy minimize_scalar per point: {t_scipy * 1e3:.2f} ms -> {t_scipy * n:.0f} s for {n:,} points, "
          f"{t_scipy / (t_vec / n):.0f}x slower per point than vectorised")
    print(f"agreement over {k} points: dollars ours vs scipy max relative {rel:.2e} (<= 0: ours lower or equal)")
    u = law.chinchilla_for_loss(C, loss)[1] * 10 ** rng.uniform(-0.3, 1.3, n)  # from D_chin / 2 to 20 x D_chin
    t_u = best_time(lambda: roofline_cost_optimal_constrained(C, loss, SERVING, requests, u), 1)
    binds = roofline_cost_optimal_constrained(C, loss, SERVING, requests, u).binds
    print(f"with a unique-token budget (no target): {n:,} points in {t_u:.3f} s, {binds.mean() * 100:.0f}% binding")
    cmd = [sys.executable, "-m", "beyond", "optimize", "cost", "--like-params", "7B", "--requests", "7.02B",
           "--inference-model", "roofline", "--inference-gpu", "h100", "--serving-batch", "64", "--json"]
    subprocess.run(cmd, check=True, capture_output=True)
    t_proc = best_time(lambda: subprocess.run(cmd, check=True, capture_output=True), 5)
    print(f"`beyond optimize cost --inference-model roofline` process: {t_proc:.3f} s (target < 0.5 s)")


if __name__ == "__main__":
    main()
