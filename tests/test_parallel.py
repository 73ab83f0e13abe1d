"""Forked shards (scaling.parallel): same results as in-process, and a safe fallback."""

import os
import subprocess
import sys
import threading
from pathlib import Path

from scaling.parallel import WORKERS_ENV, available_workers, can_fork, map_shards, usable_workers


def _pid_and_square(x: int) -> tuple[int, int]:
    return os.getpid(), x * x


def test_shards_run_in_worker_processes_and_keep_their_order():
    # in a fresh interpreter: this test process may already run other threads (then nothing forks)
    script = (
        "import os\n"
        "from scaling.parallel import can_fork, map_shards\n"
        "from tests.test_parallel import _pid_and_square\n"
        "assert can_fork()\n"
        "out = map_shards(_pid_and_square, [1, 2, 3, 4], workers=2)\n"
        "assert [v for _, v in out] == [1, 4, 9, 16], out\n"
        "assert os.getpid() not in {pid for pid, _ in out}, out\n"
        "print('forked')\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "forked"


def test_one_worker_or_other_threads_keep_the_work_in_this_process():
    assert {pid for pid, _ in map_shards(_pid_and_square, [1, 2], workers=1)} == {os.getpid()}
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert not can_fork() and usable_workers(2) == 1
        out = map_shards(_pid_and_square, [1, 2, 3], workers=2)
    finally:
        stop.set()
        thread.join()
    assert out == [(os.getpid(), 1), (os.getpid(), 4), (os.getpid(), 9)]


def test_worker_count_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(WORKERS_ENV, "3")
    assert available_workers() == 3
    monkeypatch.setenv(WORKERS_ENV, "nonsense")
    assert available_workers() == 1
    monkeypatch.delenv(WORKERS_ENV)
    assert available_workers() == len(os.sched_getaffinity(0))  # the cores this process may use
