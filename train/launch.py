"""What every launch backend shares: a run's folder and launch log, each run's state, and the
one command that trains a planned run. The backends themselves (local, slurm, mcli) live in
``train/backends``, one module each.

Relaunching is idempotent: finished runs (record.json) are skipped, runs a backend reports as
queued or running are left alone, everything else is (re)started and resumes from its latest
checkpoint.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ioutil import write_atomic
from train.folder import RunFolder

if TYPE_CHECKING:
    from train.sweep import SweepSpec



def run_dir(spec: SweepSpec, name: str) -> Path:
    return spec.out / name


def read_launch(folder: Path) -> dict:
    try:
        return json.loads(RunFolder(folder).launch.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def write_launch(folder: Path, info: dict) -> None:
    write_atomic(RunFolder(folder).launch, json.dumps(info, indent=2) + "\n")


def job_name(spec: SweepSpec, name: str) -> str:
    """The scheduler's name for a run's job: ``<sweep>.<run>``."""
    return f"{spec.name}.{name}"


def states(spec: SweepSpec) -> list:
    """The state of every run of the sweep: done (a record), what the backend that launched it
    knows (queued, running, failed), else interrupted (a checkpoint), launched, planned, missing."""
    from train.backends import BACKENDS, RunState

    launches = {run.name: read_launch(run_dir(spec, run.name)) for run in spec.runs}
    used = {info.get("backend") for info in launches.values()} & set(BACKENDS)
    snapshots = {name: BACKENDS[name].snapshot() for name in used}  # e.g. one squeue call, only if used
    out = []
    for run in spec.runs:
        folder, launch = run_dir(spec, run.name), launches[run.name]
        files = RunFolder(folder)
        has_checkpoint = files.latest_checkpoint.exists()
        backend = launch.get("backend")
        known = None
        if not files.record.is_file() and backend in used:
            launch.setdefault("job_name", job_name(spec, run.name))
            known = BACKENDS[backend].run_state(run.name, folder, launch, has_checkpoint, snapshots[backend])
        if files.record.is_file():
            out.append(RunState(run.name, "done"))
        elif known is not None:
            out.append(known)
        elif has_checkpoint:
            out.append(RunState(run.name, "interrupted", "will resume from its latest checkpoint"))
        elif files.config.is_file():
            detail = f"{backend} {launch.get('job_id', '')}".strip() if launch else ""
            out.append(RunState(run.name, "planned" if not launch else "launched", detail))
        else:
            out.append(RunState(run.name, "missing", "not planned yet"))
    return out


def composer_launcher() -> str:
    """Composer's multi-process launcher, from this Python's environment."""
    path = Path(sys.executable).parent / "composer"
    return str(path) if path.exists() else (shutil.which("composer") or "composer")


def train_args(config: str | Path, folder: str | Path) -> list[str]:
    """The arguments after the Python (or launcher) that train one planned run, for every backend:
    ``-m beyond train CONFIG --run-dir FOLDER``."""
    return ["-m", "beyond", "train", str(config), "--run-dir", str(folder)]


def train_command(config: Path, folder: Path, nproc: int = 1) -> list[str]:
    """The command that trains one planned run (the same one every backend runs): this Python,
    or Composer's launcher with ``nproc`` processes (GPUs where there are GPUs, gloo CPU
    processes elsewhere). Ranks other than local rank 0 log to ``<run>/logs/rank<N>.*.log``."""
    args = train_args(config, folder)
    if nproc <= 1:
        return [sys.executable, *args]
    logs = RunFolder(Path(folder)).logs
    return [composer_launcher(), "-n", str(nproc), "--stdout", str(logs / "rank{rank}.stdout.log"),
            "--stderr", str(logs / "rank{rank}.stderr.log"), *args]
