"""Run independent shards of numpy work in forked worker processes (one per core).

The batched fitter does many small numpy calls per iteration; two threads in one process spend
most of their time handing the GIL back and forth, while two processes each run at full speed.
Forking costs a few milliseconds and copies nothing up front; a shard's arguments and result
are pickled (they are small: starting points and final points, not the run data's products).

Work stays in this process when forking is not safe or not worth it: one worker asked for
(``BEYOND_FIT_WORKERS=1``), a platform other than Linux, a process that already runs other
Python threads, or a daemonic worker (which may not have children); and it is redone here if
a worker dies. Shards must be independent, so the result is the same whichever way they run.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

T = TypeVar("T")

WORKERS_ENV = "BEYOND_FIT_WORKERS"


def available_workers() -> int:
    """Worker processes to use: ``$BEYOND_FIT_WORKERS`` if set, else the cores this process may use."""
    raw = os.environ.get(WORKERS_ENV, "").strip()
    if raw:
        try:
            return max(1, int(raw))
        except ValueError:
            return 1
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def can_fork() -> bool:
    """True when forking workers is safe here (see the module docstring)."""
    return (sys.platform.startswith("linux")  # macOS has fork, but its system libraries are not fork-safe
            and threading.active_count() == 1
            and not multiprocessing.current_process().daemon)


def usable_workers(workers: int | None = None) -> int:
    """How many processes work will actually run on: ``workers`` (default: available_workers())
    when forking is possible here, else 1."""
    if not can_fork():
        return 1
    return available_workers() if workers is None else max(1, workers)


def map_shards(fn: Callable[[Any], T], shards: Sequence[Any], workers: int | None = None) -> list[T]:
    """``[fn(s) for s in shards]``, the shards spread over up to ``workers`` forked processes.

    ``fn`` must be a module-level function (it is pickled by name)."""
    workers = min(usable_workers(workers), len(shards))
    if workers <= 1:
        return [fn(s) for s in shards]
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
            return list(pool.map(fn, shards))
    except (BrokenProcessPool, OSError):  # a worker was killed, or no process could be started
        return [fn(s) for s in shards]
