"""local: the runs one after another on this machine, each through ``beyond train`` (Composer's
launcher with ``--nproc N`` ranks when N > 1), log in ``<run>/train.log``, a progress bar over runs
and the current run's batches."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from scaling.errors import InputError
from train.backends.base import Backend, Outcome, RunState
from train.folder import RunFolder
from train.launch import run_dir, train_command, write_launch
from train.lock import RunBusy, run_lock

if TYPE_CHECKING:
    from train.sweep import SweepSpec


@dataclass(frozen=True)
class LocalOptions:
    nproc: int = 1

    def __post_init__(self):
        if self.nproc < 1:
            raise InputError(f"--nproc must be at least 1, got {self.nproc}")


class LocalBackend(Backend):
    name = "local"
    help = "this machine, one run after another"
    verb = "trained"

    def add_arguments(self, parser: argparse.ArgumentParser, launching: bool = True) -> None:
        if not launching:
            return
        group = parser.add_argument_group("local")
        group.add_argument("--nproc", type=int, default=1, metavar="N",
                           help="processes per run on this machine (default 1): N > 1 runs Composer's launcher with "
                           "N ranks, one per GPU where there are GPUs, gloo CPU processes elsewhere")

    def options(self, args: argparse.Namespace) -> LocalOptions:
        return LocalOptions(nproc=getattr(args, "nproc", 1))

    def world_size(self, opts: LocalOptions) -> int:
        return opts.nproc

    def launch(self, spec, names, opts, *, dry_run=False, test_only=False) -> Outcome:
        outcome = Outcome()
        if dry_run or test_only:
            return outcome
        outcome.exit_codes = dict(launch_local(spec, names, nproc=opts.nproc))
        outcome.code = 1 if any(outcome.exit_codes.values()) else 0
        return outcome

    def run_state(self, name, folder, launch, has_checkpoint, snapshot) -> RunState | None:
        if launch.get("exit_code") not in (None, 0):
            return RunState(name, "failed", f"exit code {launch['exit_code']}, see {folder / 'train.log'}")
        return None


_BATCH_RE = re.compile(rb"\[batch=(\d+)/(\d+)\]")


def launch_local(spec: SweepSpec, pending: list[str], nproc: int = 1) -> list[tuple[str, int]]:
    """Train the pending runs one after another, each on ``nproc`` processes; returns (run, exit
    code) per run. Shows a bar over runs and, inside it, the current run's batches (from
    llm-foundry's console log)."""
    from tqdm import tqdm

    results = []
    bar = tqdm(pending, desc=f"sweep {spec.name}", unit="run", file=sys.stderr, position=0)
    for name in bar:
        bar.set_postfix_str(name)
        folder = run_dir(spec, name)
        try:
            with run_lock(folder):  # one launch per run: a run another launch is training is skipped
                results.append((name, _train_one(name, folder, nproc)))
        except RunBusy as busy:
            tqdm.write(f"skipped {name}: {busy}", file=sys.stderr)
    return results


def _train_one(name: str, folder: Path, nproc: int) -> int:
    """Train one run in its own process, logging to ``<run>/train.log``; returns its exit code."""
    from tqdm import tqdm

    started = time.time()
    write_launch(folder, {"backend": "local", "nproc": nproc, "started_at": started, "exit_code": None})
    files = RunFolder(folder)
    files.logs.mkdir(parents=True, exist_ok=True)
    inner = tqdm(desc=f"  {name}", unit="batch", file=sys.stderr, position=1, leave=False)
    with open(files.train_log, "ab") as log:
        proc = subprocess.Popen(train_command(files.config, folder, nproc), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, cwd=Path.cwd())
        for line in proc.stdout:
            log.write(line)
            m = _BATCH_RE.search(line)
            if m:
                inner.total = int(m.group(2))
                inner.n = int(m.group(1))
                inner.refresh()
        code = proc.wait()
    inner.close()
    write_launch(folder, {"backend": "local", "nproc": nproc, "started_at": started, "finished_at": time.time(),
                          "exit_code": code})
    return code


BACKEND = LocalBackend()
