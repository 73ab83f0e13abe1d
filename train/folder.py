"""One run folder, one layout: every stage (train, sweep, eval, demo, collect) finds a run's files
through ``RunFolder`` instead of spelling the names out.

    <run>/config.yaml                  the resolved llm-foundry config (train writes it)
    <run>/record.json                  the run record (train's callback writes it, nobody else)
    <run>/checkpoints/latest-rank0.pt  Composer's latest checkpoint (autoresume)
    <run>/train.log, <run>/logs/       console log (local backend), other ranks' logs
    <run>/launch.json                  how and when a backend launched it
    <run>/.lock                        held by the one launch training the run (train/lock.py)
    <run>/eval/gauntlet.json           eval's results (eval writes it; collect joins it in)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunFolder:
    """The files of one run, under ``path``."""

    path: Path

    @property
    def config(self) -> Path:
        return self.path / "config.yaml"

    @property
    def record(self) -> Path:
        return self.path / "record.json"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def latest_checkpoint(self) -> Path:
        return self.checkpoints / "latest-rank0.pt"

    @property
    def train_log(self) -> Path:
        return self.path / "train.log"

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    @property
    def launch(self) -> Path:
        return self.path / "launch.json"

    @property
    def lock(self) -> Path:
        return self.path / ".lock"

    @property
    def eval_dir(self) -> Path:
        return self.path / "eval"

    @property
    def eval_results(self) -> Path:
        return self.eval_dir / "gauntlet.json"

    def read_record(self) -> dict | None:
        """The run record if the run finished (None otherwise, or when it is unreadable)."""
        return _read_json(self.record)

    def read_eval(self, eval_dir: Path | None = None) -> dict | None:
        """Eval's results (``gauntlet.json``) if the run was evaluated."""
        return _read_json((eval_dir or self.eval_dir) / "gauntlet.json")


def _read_json(path: Path) -> dict | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None
