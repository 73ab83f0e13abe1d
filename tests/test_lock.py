"""One launch per run folder (train/lock.py): a second `beyond train` or local `sweep launch` on a
run that another process is training says the run is busy and by whom, and writes nothing; the
lock goes with its holder's death. (tests/test_distributed.py starts two real launches at once.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli
from train.lock import LOCK_ENV, RunBusy, holder, lock_path, run_lock

HOLD = "import sys, time; from pathlib import Path; from train.lock import run_lock\n" \
       "with run_lock(Path(sys.argv[1])):\n    time.sleep(600)\n"


@pytest.fixture
def held(tmp_path):
    """A run folder whose lock another process holds (until the test ends)."""
    folder = tmp_path / "sweep" / "mpt-tiny-r20"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], cwd=REPO, start_new_session=True)
    deadline = time.time() + 30
    while holder(folder).get("pid") != proc.pid and time.time() < deadline:
        time.sleep(0.05)
    assert holder(folder).get("pid") == proc.pid
    yield folder, proc
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_second_train_says_busy_and_by_whom(held):
    folder, proc = held
    before = sorted(p.name for p in folder.iterdir())
    out = run_cli("train", "mpt-tiny", "-r", "20", "--run-dir", str(folder))
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert "is busy" in out.stderr and f"pid {proc.pid} on " in out.stderr and "beyond" in out.stderr
    assert sorted(p.name for p in folder.iterdir()) == before  # nothing written: no config, no checkpoints


def test_lock_goes_with_its_holder(held):
    folder, proc = held
    with pytest.raises(RunBusy):
        with run_lock(folder):
            pass
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    with run_lock(folder):  # the kernel released it: no stale lock to clean up
        assert holder(folder)["pid"] == os.getpid()
        assert os.environ[LOCK_ENV] == str(lock_path(folder).resolve())
    assert LOCK_ENV not in os.environ


def test_processes_the_holder_starts_do_not_lock_again(tmp_path):
    folder = tmp_path / "run"
    with run_lock(folder):
        with run_lock(folder):  # e.g. rank 0 under `beyond train --nproc 2`
            pass
        child = subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; from train.lock import "
                                "run_lock\nwith run_lock(Path(sys.argv[1])): print('ok')", str(folder)],
                               cwd=REPO, capture_output=True, text=True, env=dict(os.environ))
        assert child.returncode == 0 and child.stdout == "ok\n", child.stderr


def test_local_sweep_skips_a_busy_run(held, capsys):
    from train.backends.local import launch_local
    from train.sweep import SweepRun, SweepSpec

    folder, proc = held
    spec = SweepSpec("s", folder.parent / "spec.yaml", folder.parent, None, 17, [SweepRun(folder.name, "mpt-tiny", 20.0)])
    assert launch_local(spec, [folder.name]) == []
    err = capsys.readouterr().err
    assert f"skipped {folder.name}: run " in err and f"pid {proc.pid}" in err
    assert not (folder / "launch.json").exists()  # the running launch's record is left alone
    assert json.loads(lock_path(folder).read_text())["pid"] == proc.pid


def test_lock_file_is_in_the_run_folder():
    assert lock_path(Path("runs/x")) == Path("runs/x/.lock")
