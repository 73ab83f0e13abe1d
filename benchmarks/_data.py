"""Shared by the benchmarks: Epoch AI's Chinchilla runs from REFERENCE_DATA_DIR, and best-of-N timing."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from scaling.runs import RunTable, read_runs


def epoch_runs() -> RunTable:
    root = os.environ.get("REFERENCE_DATA_DIR")
    path = Path(root or ".") / "epoch_chinchilla_svg_extracted.csv"
    if not root or not path.is_file():
        sys.exit("benchmarks need REFERENCE_DATA_DIR with epoch_chinchilla_svg_extracted.csv (see README, Data)")
    return read_runs(path, params_col="Model Size", tokens_col=None, flops_col="Training FLOP",
                     loss_col="loss").drop_highest_loss(5)


def best_time(fn: Callable[[], object], repeats: int = 5) -> float:
    """The fastest of ``repeats`` calls of ``fn``, in seconds."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)
