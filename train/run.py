"""Run one training job through llm-foundry's own training path (``command_utils.train``)."""

from __future__ import annotations

import contextlib
import json
import os
import sys

from omegaconf import OmegaConf

from beyond.output import write_atomic
from train.config import RunPlan


def existing_record(plan: RunPlan) -> dict | None:
    """The run record if this run already finished (then training is a no-op)."""
    if plan.record_path.is_file():
        try:
            return json.loads(plan.record_path.read_text())
        except json.JSONDecodeError:
            return None
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
    record = existing_record(plan)
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
