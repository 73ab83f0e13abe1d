"""Run one training job through llm-foundry's own training path (``command_utils.train``)."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from pathlib import Path

from omegaconf import OmegaConf

from ioutil import stdout_to_stderr, write_atomic
from train.checkpoints import set_aside_unfinished
from train.config import RunPlan, launched_world_size
from train.folder import RunFolder


def existing_record(run_dir: Path) -> dict | None:
    """The run record in ``run_dir`` if that run already finished (then training is a no-op)."""
    return RunFolder(run_dir).read_record()


def global_rank() -> int:
    """RANK as a multi-process launcher sets it; 0 in a single process."""
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def write_config(plan: RunPlan) -> None:
    """Save the resolved llm-foundry YAML as ``<run_dir>/config.yaml`` (atomically)."""
    if global_rank() == 0:  # every rank of a launch resolves the same config; one writes it
        folder = RunFolder(plan.run_dir)
        write_atomic(folder.config, OmegaConf.to_yaml(plan.config))
        folder.checkpoints.mkdir(exist_ok=True)  # a requeued job checks it is there (check_requeued)


def run_training(plan: RunPlan) -> dict | None:
    """Train (resuming from the run's latest checkpoint if any) and return the run record; None on
    ranks other than 0 of a multi-process launch (rank 0 writes the record)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from llmfoundry.command_utils import train

    write_config(plan)
    if global_rank() == 0:
        report_set_aside(plan.run_dir)
    if launched_world_size() > 1:
        per_node_signal_files()
    with stdout_to_stderr():  # llm-foundry's console logging must not mix with our --json output
        train(OmegaConf.create(OmegaConf.to_container(plan.config)))
    if global_rank() != 0:
        return None
    record = existing_record(plan.run_dir)
    if record is None:
        raise RuntimeError(f"training finished but wrote no run record at {plan.record_path}")
    return record


def run_launcher(plan: RunPlan, nproc: int) -> dict:
    """Train on ``nproc`` local processes through Composer's launcher (the same command the local
    sweep backend runs) and return the run record. The config is resolved and written here once;
    each rank only reads it. Rank output goes to stderr (rank 0) and ``<run>/logs`` (the rest)."""
    from train.launch import train_command

    write_config(plan)
    report_set_aside(plan.run_dir)
    folder = RunFolder(plan.run_dir)
    folder.logs.mkdir(parents=True, exist_ok=True)
    code = _run_ranks(train_command(folder.config, plan.run_dir, nproc))
    record = existing_record(plan.run_dir)
    if record is None and code - 128 in STOP_SIGNALS:
        from train.checkpoints import resumable_batch
        from train.preemption import Preempted

        batch = resumable_batch(folder)
        raise Preempted(code - 128, batch, checkpointed=batch > 0, requeued=None)
    if code != 0 or record is None:
        raise RuntimeError(f"Composer's launcher exited with code {code} (rank logs in {plan.run_dir / 'logs'})")
    return record


STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
REPORTING_PARENT = "BEYOND_REPORTING_PARENT"


def _run_ranks(cmd: list[str]) -> int:
    """Run Composer's launcher with SIGTERM and SIGUSR1 ignored by the launcher itself (it would die
    at once and orphan its ranks); this process forwards those signals to the ranks, so that every
    rank checkpoints and stops together (train/preemption.py) and the launcher reports their exit.
    The launcher stays in this process group: a signal to the group (Ctrl-C, a scheduler) still
    reaches every rank directly. Returns the launcher's exit code."""
    import subprocess

    import psutil

    def ignore_stop_signals() -> None:  # in the child, before exec: the launcher inherits SIG_IGN
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)

    env = {**os.environ, REPORTING_PARENT: str(os.getpid())}  # the ranks leave reporting a stop to this process
    proc = subprocess.Popen(cmd, stdout=sys.stderr, preexec_fn=ignore_stop_signals, env=env)

    def forward(signum: int, frame) -> None:
        with contextlib.suppress(psutil.Error):
            for child in psutil.Process(proc.pid).children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    child.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in STOP_SIGNALS}
    try:
        return proc.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def report_set_aside(run_dir: Path) -> None:
    """Set aside checkpoints an interrupted save left unfinished, and say so on stderr."""
    for path in set_aside_unfinished(RunFolder(run_dir)):
        print(f"beyond: set aside {path.name}, a checkpoint no latest-rank0.pt points at (an interrupted "
              f"save); the run resumes from its last complete checkpoint. It is now {path}", file=sys.stderr)


def per_node_signal_files() -> None:
    """Give each node its own signal-file names (a known Composer/llm-foundry bug, llm-foundry
    issues #1736 and #1848). ``composer.utils.dist.get_node_signal_file_name`` broadcasts rank 0's
    name, ``._signal_file_node0_<random>``, to every rank, so on a filesystem the nodes share (a
    Slurm job's working directory, a shared save folder) every node's local rank 0 creates and then
    deletes the same file, and all but the first delete fail with FileNotFoundError. Appending the
    node's own rank after the broadcast keeps the name identical within a node and distinct across
    nodes. Single-node runs are unaffected."""
    from composer.utils import dist

    original = dist.get_node_signal_file_name
    if getattr(original, "per_node", False):
        return

    def get_node_signal_file_name(rng=None) -> str:
        return f"{original(rng)}_of_node{dist.get_node_rank()}"

    get_node_signal_file_name.per_node = True
    dist.get_node_signal_file_name = get_node_signal_file_name
