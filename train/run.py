"""Run one training job through llm-foundry's own training path (``command_utils.train``)."""

from __future__ import annotations

import os
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
        write_atomic(RunFolder(plan.run_dir).config, OmegaConf.to_yaml(plan.config))


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
    import subprocess

    from train.launch import train_command

    write_config(plan)
    report_set_aside(plan.run_dir)
    folder = RunFolder(plan.run_dir)
    folder.logs.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(train_command(folder.config, plan.run_dir, nproc), stdout=sys.stderr)
    record = existing_record(plan.run_dir)
    if proc.returncode != 0 or record is None:
        raise RuntimeError(f"Composer's launcher exited with code {proc.returncode} "
                           f"(rank logs in {plan.run_dir / 'logs'})")
    return record


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
