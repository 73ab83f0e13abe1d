"""Checkpoints an interrupted save left behind, set aside before a run resumes.

Composer writes a checkpoint straight to its final name (``ep0-ba20-rank0.pt``) and only then
points ``latest-rank0.pt`` at it. A job killed in between (preemption, a lost node, a time limit)
leaves a checkpoint that autoresume does not load (it follows ``latest-rank0.pt``) but that
Composer's folder check refuses to overwrite: the relaunch then dies at once with ``FileExistsError:
... may conflict with a future checkpoint of the current run``, and the run can never resume.
Such files may also be half written. Before training starts, rank 0 moves every checkpoint later
than the one ``latest-rank0.pt`` names (all of them when there is no such link) to
``checkpoints/unfinished/``, so the run resumes from its last complete checkpoint (or starts over)
and nothing is deleted. Names follow llm-foundry's default ``save_filename``
(``ep{epoch}-ba{batch}-rank{rank}.pt``); sharded checkpoint folders are left alone.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from scaling.errors import InputError
from train.folder import RunFolder

CHECKPOINT_NAME = re.compile(r"ep(\d+)-ba(\d+)-rank(\d+)\.pt")
UNFINISHED = "unfinished"


def checkpoint_batch(path: Path) -> int | None:
    """The batch count in a checkpoint's file name (None when the name is not a checkpoint's)."""
    m = CHECKPOINT_NAME.fullmatch(path.name)
    return int(m.group(2)) if m else None


def resumable_batch(folder: RunFolder) -> int:
    """The batch autoresume will resume from: the one ``latest-rank0.pt`` points at (0 if none)."""
    link = folder.latest_checkpoint
    if not link.exists():  # no link, or a dangling one
        return 0
    return checkpoint_batch(Path(os.path.realpath(link))) or 0


def unfinished_checkpoints(folder: RunFolder) -> list[Path]:
    """Checkpoint files later than the resumable one (sorted by name)."""
    if not folder.checkpoints.is_dir():
        return []
    resume = resumable_batch(folder)
    late = []
    for path in folder.checkpoints.iterdir():
        batch = checkpoint_batch(path)
        if batch is not None and batch > resume and not path.is_symlink() and path.is_file():
            late.append(path)
    return sorted(late)


def check_requeued(folder: RunFolder) -> None:
    """A requeued Slurm job (``SLURM_RESTART_COUNT`` >= 1) must find the checkpoint folder that the
    launch made (``write_config`` and the Slurm backend create it before the first start): without
    it the run would silently start over (a deleted folder, or one on a node-local disk)."""
    restarts = os.environ.get("SLURM_RESTART_COUNT", "0")
    if restarts.isdigit() and int(restarts) > 0 and not folder.checkpoints.is_dir():
        job = os.environ.get("SLURM_JOB_ID", "?")
        raise InputError(f"Slurm job {job} is a requeue (restart {restarts}) but its checkpoint folder "
                         f"{folder.checkpoints} is missing, so it would train from scratch: keep run folders on a "
                         "filesystem every node shares, or resubmit the run to start it over")


def set_aside_unfinished(folder: RunFolder) -> list[Path]:
    """Move unfinished checkpoints to ``checkpoints/unfinished/``; returns their new paths."""
    moved = []
    for path in unfinished_checkpoints(folder):
        target = folder.checkpoints / UNFINISHED / path.name
        target.parent.mkdir(exist_ok=True)
        try:
            os.replace(path, target)
        except FileNotFoundError:  # another node's rank 0 moved it first (shared folder)
            continue
        moved.append(target)
    return moved
