"""One launch per run folder: an exclusive ``flock`` on ``<run>/.lock``, held for the training's
life and released by the kernel when its holder exits or dies (a killed job leaves no stale lock).

The holder writes who it is into the lock file (pid, host, start time, command), so a second
launch can say by whom the run is busy. Processes the holder starts (Composer's launcher and its
ranks, the local backend's training process) find the lock's path in ``BEYOND_RUN_LOCK`` and do
not take it again. Across nodes this relies on the shared filesystem's flock (local disks, NFSv4
and Lustre with ``-o flock`` support it; see docs/multi-process.md).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from scaling.errors import InputError
from train.folder import RunFolder

LOCK_ENV = "BEYOND_RUN_LOCK"


class RunBusy(InputError):
    """The run folder is locked by another launch."""


def lock_path(folder: Path) -> Path:
    return RunFolder(Path(folder)).lock


def _held_here(path: Path) -> bool:
    """Whether this process runs under the launch that holds ``path`` (it started us)."""
    return os.environ.get(LOCK_ENV) == str(path.resolve())


def holder(folder: Path) -> dict:
    """Who holds (or last held) the run's lock, as it wrote itself into the lock file."""
    try:
        value = json.loads(lock_path(folder).read_text() or "{}")
    except (OSError, json.JSONDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def describe(info: dict) -> str:
    if not info:
        return "another process"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.get("started_at", 0)))
    return f"pid {info.get('pid')} on {info.get('host')} since {since} ({info.get('command', '?')})"


def _busy(folder: Path) -> RunBusy:
    return RunBusy(f"run {folder} is busy: it is being trained by {describe(holder(folder))}; "
                   "wait for it or stop it first")


def ensure_free(folder: Path) -> None:
    """Raise RunBusy now if another launch holds ``folder``'s lock (a cheap early check that
    creates nothing; ``run_lock`` is what actually excludes)."""
    path = lock_path(folder)
    if _held_here(path) or not path.is_file():
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        raise _busy(folder) from None
    finally:
        os.close(fd)


@contextmanager
def run_lock(folder: Path) -> Iterator[None]:
    """Hold ``folder``'s lock for the ``with`` block; raise RunBusy at once if another launch
    holds it. A no-op inside a process that the holder started."""
    path = lock_path(folder).resolve()
    if _held_here(path):
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise _busy(folder) from None
    saved = os.environ.get(LOCK_ENV)
    try:
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started_at": time.time(),
                "command": " ".join(["beyond", *sys.argv[1:]])}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        os.environ[LOCK_ENV] = str(path)
        yield
    finally:
        if saved is None:
            os.environ.pop(LOCK_ENV, None)
        else:
            os.environ[LOCK_ENV] = saved
        os.close(fd)  # releases the lock
