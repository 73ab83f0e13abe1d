"""Composer callback: on SIGTERM or SIGUSR1, checkpoint at the end of the current batch and stop.

Registered with llm-foundry's callback registry through the ``llmfoundry_callbacks`` entry point
(``preemption``); ``beyond train`` adds it to every run. Slurm sends SIGTERM to every process of a
job it preempts, requeues (``scontrol requeue``) or cancels, and KillWait seconds later SIGKILL;
the sbatch scripts ask for SIGUSR1 a few minutes before the time limit (``--signal=USR1@...``).
Composer itself turns SIGTERM into an exit with no checkpoint (``composer.core.engine``).

Here the handler only notes the signal. At the end of each batch the ranks agree on it (one
all-reduce of one number when several ranks train, none otherwise), because they must save the
same batch together: then Composer's own ``CheckpointSaver`` saves that batch (its
``save_interval`` is wrapped to say yes once), and at the next step the run raises ``Preempted``
instead of training on. The autoresume of the relaunched or requeued job resumes from that
checkpoint (``resumes`` goes up by one). After SIGUSR1 inside a Slurm job, rank 0 also asks Slurm
to requeue the job (``scontrol requeue``), since a job that reaches its time limit is not requeued
by itself. A signal during the last batch changes nothing: the run finishes and writes its record.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Any

import torch
from composer.core import Callback, Event, State
from composer.loggers import Logger
from composer.utils import dist

from train.callback import reduction_device

SIGNALS = ("SIGTERM", "SIGUSR1")


class Preempted(Exception):
    """Training stopped on a signal after checkpointing the batch it reached."""

    def __init__(self, signum: int, batch: int, checkpointed: bool, requeued: str | None):
        self.signum, self.batch, self.checkpointed, self.requeued = signum, batch, checkpointed, requeued
        name = signal.Signals(signum).name
        saved = f"checkpointed batch {batch}" if checkpointed else f"no checkpoint (no save_folder) at batch {batch}"
        then = f"; {requeued}" if requeued else "; relaunch it to resume"
        super().__init__(f"stopped on {name}: {saved}{then}")

    @property
    def exit_code(self) -> int:
        """128 + the signal, as a process killed by it would report."""
        return 128 + self.signum


class PreemptionCallback(Callback):
    """Checkpoint and stop on ``signals`` (names, default SIGTERM and SIGUSR1)."""

    def __init__(self, signals: list[str] | tuple[str, ...] = SIGNALS, requeue_on: str | None = "SIGUSR1"):
        self.signums = [int(getattr(signal, name)) for name in signals]
        self.requeue_on = int(getattr(signal, requeue_on)) if requeue_on else None
        self._received = 0  # the signal this process got (0: none)
        self._stop = 0  # the signal the ranks agreed to stop on (0: none)
        self._previous: dict[int, Any] = {}
        self._saver: Any = None

    def fit_start(self, state: State, logger: Logger) -> None:
        from composer.callbacks import CheckpointSaver

        for signum in self.signums:
            try:
                self._previous[signum] = signal.signal(signum, self._note)
            except ValueError:  # not the main thread: leave the signal alone
                continue
        self._saver = next((cb for cb in state.callbacks if isinstance(cb, CheckpointSaver)), None)
        if self._saver is not None:
            interval = self._saver.save_interval

            def save_interval(state: State, event: Event) -> bool:
                return (self._stop and event == Event.BATCH_CHECKPOINT) or interval(state, event)

            self._saver.save_interval = save_interval

    def _note(self, signum: int, frame: Any) -> None:
        self._received = self._received or signum

    def batch_end(self, state: State, logger: Logger) -> None:
        """Agree on the signal over the ranks (max of the signal numbers, 0 for none)."""
        received = self._received
        if dist.get_world_size() > 1:
            flag = torch.tensor([received], dtype=torch.int32, device=reduction_device(state.device))
            dist.all_reduce(flag, reduce_operation="MAX")
            received = int(flag.item())
        self._stop = received

    def after_dataloader(self, state: State, logger: Logger) -> None:
        """The batch after the one the saver checkpointed: stop instead of training it."""
        if self._stop:
            self._raise(state)

    def epoch_end(self, state: State, logger: Logger) -> None:
        if self._stop and state.timestamp < state.max_duration:
            self._raise(state)

    def fit_end(self, state: State, logger: Logger) -> None:
        self._restore()

    def _raise(self, state: State) -> None:
        self._restore()
        batch = int(state.timestamp.batch)
        checkpointed = self._saver is not None and self._saver.last_checkpoint_batch == state.timestamp.batch
        requeued = self._requeue() if self._stop == self.requeue_on else None
        raise Preempted(self._stop, batch, checkpointed, requeued)

    def _requeue(self) -> str | None:
        """Inside a Slurm job, rank 0 asks Slurm to requeue it (a time limit does not)."""
        job = os.environ.get("SLURM_JOB_ID")
        if not job or dist.get_global_rank() != 0:
            return None
        proc = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"beyond: scontrol requeue {job} failed: {(proc.stderr or proc.stdout).strip()}", file=sys.stderr)
            return None
        return f"asked Slurm to requeue job {job}"

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            try:
                signal.signal(signum, handler)
            except (ValueError, TypeError):
                continue
        self._previous = {}
