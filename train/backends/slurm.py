"""slurm: one sbatch script per run (``<out>/slurm/<run>.sbatch``); srun starts Composer's launcher
once per node, with world size, node rank and master address from Slurm. Runs queued or running
in Slurm are left alone on relaunch.

Preemptible: the scripts say ``--requeue`` (a preempted job, or one ``scontrol requeue`` names, goes
back to the queue) and ``--signal=USR1@<lead>`` (SIGUSR1 ``lead`` seconds before the time limit).
On SIGTERM (preemption, requeue, scancel) or SIGUSR1 every rank checkpoints the batch it reached
and stops (``train/preemption.py``; after SIGUSR1 rank 0 requeues the job itself); the requeued job
resumes from that checkpoint. Composer's launcher ignores both signals (``trap ''``), so it stays
to collect its ranks instead of dying first and orphaning them."""

from __future__ import annotations

import argparse
import re
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ioutil import write_atomic
from scaling.errors import InputError
from train.backends.base import Backend, Outcome, RunState
from train.folder import RunFolder
from train.launch import composer_launcher, job_name, run_dir, train_args, write_launch

if TYPE_CHECKING:
    from train.sweep import SweepSpec


def slurm_jobs() -> dict[str, tuple[str, str]]:
    """Slurm jobs in the queue, by job name: (job id, state). Empty if Slurm is not reachable."""
    if shutil.which("squeue") is None:
        return {}
    proc = subprocess.run(["squeue", "-h", "-o", "%i|%j|%T"], capture_output=True, text=True)
    if proc.returncode != 0:
        return {}
    jobs = {}
    for line in proc.stdout.splitlines():
        job_id, name, state = line.split("|", 2)
        jobs[name] = (job_id, state)
    return jobs


def jobs_visible() -> bool:
    """True when squeue answers (so a job missing from the queue has really ended)."""
    return shutil.which("squeue") is not None and subprocess.run(
        ["squeue", "-h"], capture_output=True).returncode == 0


@dataclass(frozen=True)
class SlurmOptions:
    nodes: int = 1
    gpus_per_node: int = 8
    cpus_per_task: int | None = None
    partition: str | None = None
    time: str | None = None
    account: str | None = None
    extra: tuple[str, ...] = ()
    master_port: int = 20000
    procs_per_node: int | None = None  # default: one per GPU, or 1 on a CPU partition
    signal_lead: int = 300  # seconds before the time limit that SIGUSR1 comes (checkpoint, requeue)

    def __post_init__(self):
        if self.nodes < 1 or self.gpus_per_node < 0:
            raise InputError("--nodes must be >= 1 and --gpus-per-node >= 0")
        if self.procs_per_node is not None and self.procs_per_node < 1:
            raise InputError(f"--procs-per-node must be >= 1, got {self.procs_per_node}")
        if self.procs_per_node is not None and self.gpus_per_node and self.procs_per_node != self.gpus_per_node:
            raise InputError(f"--procs-per-node {self.procs_per_node} differs from --gpus-per-node {self.gpus_per_node}: "
                             "Composer runs one process per GPU")
        if self.signal_lead < 1 or self.signal_lead > 65535:
            raise InputError(f"--signal-lead must be 1 to 65535 seconds, got {self.signal_lead}")
        if self.time is not None and not re.fullmatch(r"(\d+-)?\d+(:\d{1,2}){0,2}", self.time):
            raise InputError(f"--time {self.time!r} is not a Slurm time (minutes, HH:MM:SS or D-HH:MM:SS)")

    @property
    def procs(self) -> int:
        """Training processes per node: one per GPU, or ``procs_per_node`` gloo processes on CPUs."""
        return self.procs_per_node or max(self.gpus_per_node, 1)


def sbatch_script(spec: SweepSpec, name: str, opts: SlurmOptions) -> str:
    """An sbatch script for one run: srun starts Composer's launcher once per node."""
    folder = run_dir(spec, name).resolve()
    procs = opts.procs
    lines = ["#!/bin/bash", f"#SBATCH --job-name={job_name(spec, name)}", f"#SBATCH --nodes={opts.nodes}",
             "#SBATCH --ntasks-per-node=1", f"#SBATCH --output={folder}/slurm-%j.out", "#SBATCH --open-mode=append",
             "#SBATCH --requeue", f"#SBATCH --signal=USR1@{opts.signal_lead}"]
    if opts.gpus_per_node:
        lines.append(f"#SBATCH --gpus-per-node={opts.gpus_per_node}")
    if opts.cpus_per_task:
        lines.append(f"#SBATCH --cpus-per-task={opts.cpus_per_task}")
    for key, value in (("partition", opts.partition), ("time", opts.time), ("account", opts.account)):
        if value:
            lines.append(f"#SBATCH --{key}={value}")
    lines += [f"#SBATCH {arg}" for arg in opts.extra]
    lines += [
        "# written by `beyond sweep launch --backend slurm`; rerunning it resumes from the latest checkpoint",
        "set -euo pipefail",
        f"cd {shlex.quote(str(Path.cwd().resolve()))}",
        'export MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"',
        # a port per job, so that several jobs sharing a node do not collide
        f'export MASTER_PORT="${{MASTER_PORT:-$(( {opts.master_port} + SLURM_JOB_ID % 10000 ))}}"',
        f"export WORLD_SIZE=$(( SLURM_NNODES * {procs} ))",
        f"mkdir -p {shlex.quote(str(folder / 'logs'))}",
        "srun --ntasks-per-node=1 --kill-on-bad-exit=1 bash -c \\",
        f"  {shlex.quote(node_launch_line(folder, procs))}",
    ]
    return "\n".join(lines) + "\n"


def node_launch_line(folder: Path, procs: int) -> str:
    """The shell line srun runs once per node: Composer's launcher with ``procs`` local ranks,
    world size, node rank and rendezvous from the job's environment (WORLD_SIZE, SLURM_NODEID,
    MASTER_ADDR, MASTER_PORT, exported by the sbatch script)."""
    args = " ".join(shlex.quote(a) for a in train_args(RunFolder(folder).config, folder))
    logs = shlex.quote(str(RunFolder(folder).logs / "rank{rank}"))
    return (f"trap '' TERM USR1; exec {shlex.quote(composer_launcher())} -n {procs} --world_size \"$WORLD_SIZE\" "
            f"--node_rank \"$SLURM_NODEID\" --master_addr \"$MASTER_ADDR\" --master_port \"$MASTER_PORT\" "
            f"--stdout {logs}.stdout.log --stderr {logs}.stderr.log {args}")


def write_sbatch(spec: SweepSpec, names: list[str], opts: SlurmOptions) -> list[Path]:
    folder = spec.out / "slurm"
    paths = []
    for name in names:
        RunFolder(run_dir(spec, name)).checkpoints.mkdir(parents=True, exist_ok=True)  # check_requeued looks for it
        path = folder / f"{name}.sbatch"
        write_atomic(path, sbatch_script(spec, name, opts))
        path.chmod(0o755)
        paths.append(path)
    return paths


def submit_sbatch(spec: SweepSpec, scripts: list[Path], test_only: bool = False) -> list[tuple[str, str]]:
    """sbatch each script; returns (run, job id). ``test_only`` validates without submitting."""
    if shutil.which("sbatch") is None:
        raise InputError("sbatch not found: run on a Slurm login node, or use --dry-run to only write the scripts")
    out = []
    for script in scripts:
        name = script.stem
        cmd = ["sbatch", "--test-only", str(script)] if test_only else ["sbatch", "--parsable", str(script)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise InputError(f"sbatch {script.name} failed: {(proc.stderr or proc.stdout).strip().splitlines()[-1:]}")
        if test_only:
            out.append((name, (proc.stderr or proc.stdout).strip()))
            continue
        job_id = proc.stdout.strip().split(";")[0]
        write_launch(run_dir(spec, name), {"backend": "slurm", "job_id": job_id, "script": str(script),
                                           "submitted_at": time.time()})
        out.append((name, job_id))
    return out


class SlurmBackend(Backend):
    name = "slurm"
    trains_here = False
    files_key = "scripts"
    submitted_key = "jobs"
    help = "sbatch jobs, Composer's launcher on every node"

    def add_arguments(self, parser: argparse.ArgumentParser, launching: bool = True) -> None:
        sl = parser.add_argument_group("slurm")
        sl.add_argument("--nodes", type=int, default=1, help="nodes per run (default 1)")
        sl.add_argument("--gpus-per-node", type=int, default=8, help="GPUs per node (default 8; 0 for CPU nodes)")
        sl.add_argument("--procs-per-node", type=int, metavar="N",
                        help="training processes per node (default: one per GPU; on CPU nodes, --gpus-per-node 0, "
                        "N gloo processes)")
        sl.add_argument("--cpus-per-task", type=int, help="CPUs per node task")
        sl.add_argument("--partition", help="Slurm partition")
        sl.add_argument("--time", help="time limit (e.g. 24:00:00)")
        sl.add_argument("--account", help="Slurm account")
        sl.add_argument("--signal-lead", type=int, default=300, metavar="SECONDS",
                        help="send SIGUSR1 this long before the time limit: every rank checkpoints, and the job "
                        "requeues itself and resumes (default 300)")
        sl.add_argument("--sbatch-arg", action="append", default=[], metavar="ARG",
                        help="extra #SBATCH line, e.g. --sbatch-arg=--exclusive (repeatable)")
        if launching:
            sl.add_argument("--test-only", action="store_true",
                            help="check the scripts with `sbatch --test-only`, submit nothing")

    def options(self, args: argparse.Namespace) -> SlurmOptions:
        return SlurmOptions(nodes=args.nodes, gpus_per_node=args.gpus_per_node, cpus_per_task=args.cpus_per_task,
                            partition=args.partition, time=args.time, account=args.account,
                            extra=tuple(args.sbatch_arg), procs_per_node=args.procs_per_node,
                            signal_lead=args.signal_lead)

    def world_size(self, opts: SlurmOptions) -> int:
        return opts.nodes * opts.procs

    def prepare(self, spec, names, opts) -> list[Path]:
        return write_sbatch(spec, names, opts)

    def launch(self, spec, names, opts, *, dry_run=False, test_only=False) -> Outcome:
        outcome = Outcome(files=self.prepare(spec, names, opts))
        if test_only:
            outcome.checked = dict(submit_sbatch(spec, outcome.files, test_only=True))
        elif not dry_run:
            outcome.submitted = dict(submit_sbatch(spec, outcome.files))
        return outcome

    def snapshot(self) -> tuple[dict[str, tuple[str, str]], bool]:
        return slurm_jobs(), jobs_visible()

    def run_state(self, name, folder, launch, has_checkpoint, snapshot) -> RunState | None:
        jobs, visible = snapshot
        job = jobs.get(launch.get("job_name", ""))
        if job is not None:
            return RunState(name, "running" if job[1] in ("RUNNING", "COMPLETING") else "queued",
                            f"slurm job {job[0]} {job[1]}")
        if not has_checkpoint and visible:
            return RunState(name, "failed", f"slurm job {launch.get('job_id')} ended without a record; "
                            f"see {folder}/slurm-{launch.get('job_id')}.out")
        return None


BACKEND = SlurmBackend()
