"""Run one training job through llm-foundry's own training path (``command_utils.train``)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path

from omegaconf import OmegaConf

from beyond.output import write_atomic
from train.config import RECORD_NAME, RunPlan


def existing_record(run_dir: Path) -> dict | None:
    """The run record in ``run_dir`` if that run already finished (then training is a no-op)."""
    try:
        return json.loads((run_dir / RECORD_NAME).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def write_config(plan: RunPlan) -> None:
    """Save the resolved llm-foundry YAML as ``<run_dir>/config.yaml`` (atomically)."""
    write_atomic(plan.run_dir / "config.yaml", OmegaConf.to_yaml(plan.config))


def run_training(plan: RunPlan) -> dict:
    """Train (resuming from the run's latest checkpoint if any) and return the run record."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from llmfoundry.command_utils import train

    write_config(plan)
    with _stdout_to_stderr():  # llm-foundry's console logging must not mix with our --json output
        train(OmegaConf.create(OmegaConf.to_container(plan.config)))
    record = existing_record(plan.run_dir)
    if record is None:
        raise RuntimeError(f"training finished but wrote no run record at {plan.record_path}")
    return record


@contextlib.contextmanager
def _stdout_to_stderr():
    """Send everything written to file descriptor 1 (Python or native code) to 2 meanwhile."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
