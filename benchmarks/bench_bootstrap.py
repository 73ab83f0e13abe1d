"""Benchmark: a 1,000-resample bootstrap of the Eq. 4 fit on the paper's 47 runs.

Ours: all resamples in one batched L-BFGS (resamples as per-row run weights), each from the 16 best
distinct optima of the full-data grid fit. Baseline, in the same run: refitting each resample from
the full 4,500-point grid (our batched fitter, one resample at a time), timed on --baseline-resamples
resamples and scaled to 1,000. Target: ours < 60 s.  Usage: python -m benchmarks.bench_bootstrap
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from scaling.bootstrap import bootstrap_fits, bootstrap_intervals
from scaling.fit import fit_law
from scaling.runs import read_runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--baseline-resamples", type=int, default=10)
    args = ap.parse_args()
    path = Path(os.environ.get("REFERENCE_DATA_DIR", ".")) / "sardana2024_trainingresults.csv"
    if not path.is_file():
        sys.exit("needs REFERENCE_DATA_DIR with sardana2024_trainingresults.csv")
    runs = read_runs(path)
    t0 = time.perf_counter()
    sets = bootstrap_fits(runs.params, runs.tokens, runs.loss, args.resamples, seed=0)
    ours = time.perf_counter() - t0
    rng = np.random.default_rng(1)
    t0 = time.perf_counter()
    for _ in range(args.baseline_resamples):
        pick = rng.integers(0, len(runs.params), size=len(runs.params))
        fit_law(runs.params[pick], runs.tokens[pick], runs.loss[pick])
    baseline = (time.perf_counter() - t0) * args.resamples / args.baseline_resamples
    point = fit_law(runs.params, runs.tokens, runs.loss).coefficients
    iv = bootstrap_intervals(sets)
    inside = all(lo <= getattr(point, k) <= hi for k, (lo, hi) in iv.items())
    print(f"bootstrap, {args.resamples} resamples, batched: {ours:.2f} s (target < 60 s)")
    print(f"full-grid refit per resample: {baseline:.1f} s (scaled from {args.baseline_resamples})")
    print(f"speed-up: {baseline / ours:.1f}x; point estimate inside every 95% interval: {inside}")


if __name__ == "__main__":
    main()
