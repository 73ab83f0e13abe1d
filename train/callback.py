"""Composer callback that writes the run record at the end of training.

Registered with llm-foundry's callback registry through the ``llmfoundry_callbacks`` entry
point (see pyproject.toml), so any llm-foundry YAML can use it:

    callbacks:
      run_record: {path: runs/x/record.json, params: 151407360}

Smoothed final loss = mean of the last ``window`` (10, as in the paper) batch losses, averaged
over ranks. The loss window, the first batch's loss and the resume count are checkpointed with
the trainer, so a resumed run reports the same numbers as an uninterrupted one.
"""

from __future__ import annotations

import json
import math
import time
from collections import deque
from pathlib import Path
from typing import Any

from composer.core import Callback, State
from composer.loggers import Logger
from composer.utils import dist

from beyond.output import write_atomic
from scaling.law import training_flops

RECORD_VERSION = 1


class RunRecordCallback(Callback):
    """Write ``path`` (JSON) on rank 0 when training ends. Units: params (count), tokens
    (count), FLOPs (6·N·D), seconds."""

    def __init__(self, path: str, params: int, window: int = 10, run_info: dict[str, Any] | None = None):
        self.path = str(path)  # a local path or an object-store URI (s3://, gs://, oci://, ...)
        self.params = int(params)
        self.window = int(window)
        self.run_info = dict(run_info or {})
        self.losses: deque[float] = deque(maxlen=self.window)
        self.first_loss: float | None = None
        self.resumes = 0
        self._started = time.time()

    def fit_start(self, state: State, logger: Logger) -> None:
        if int(state.timestamp.batch) > 0:
            self.resumes += 1

    def batch_end(self, state: State, logger: Logger) -> None:
        loss = _scalar_loss(state.loss)
        if dist.get_world_size() > 1:
            import torch
            t = torch.tensor([loss], dtype=torch.float64, device=state.device.name if hasattr(state.device, "name") else "cpu")
            dist.all_reduce(t)
            loss = float(t.item()) / dist.get_world_size()
        if self.first_loss is None:
            self.first_loss = loss
        self.losses.append(loss)

    def fit_end(self, state: State, logger: Logger) -> None:
        if dist.get_global_rank() != 0:
            return
        losses = list(self.losses)
        smoothed = sum(losses) / len(losses) if losses else math.nan
        tokens = int(state.timestamp.token)
        record = {
            "record_version": RECORD_VERSION,
            **self.run_info,
            "params": self.params,
            "tokens": tokens,
            "tokens_per_param": tokens / self.params,
            "batches": int(state.timestamp.batch),
            "samples": int(state.timestamp.sample),
            "smoothed_loss": smoothed,
            "smoothing_window_batches": self.window,
            "final_batch_losses": losses,
            "initial_loss": self.first_loss,
            "flops": float(training_flops(self.params, tokens)),
            "wall_time_s": state.timestamp.total_wct.total_seconds(),
            "resumes": self.resumes,
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        _write_record(self.path, json.dumps(record, indent=2) + "\n")

    def state_dict(self) -> dict[str, Any]:
        return {"losses": list(self.losses), "first_loss": self.first_loss, "resumes": self.resumes}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.losses = deque(state.get("losses", []), maxlen=self.window)
        self.first_loss = state.get("first_loss")
        self.resumes = int(state.get("resumes", 0))


def _write_record(path: str, text: str) -> None:
    """Write atomically to a local path, or upload to an object store (Composer's own clients)."""
    if "://" not in path:
        write_atomic(Path(path), text)
        return
    import tempfile

    from composer.utils import maybe_create_object_store_from_uri, parse_uri

    store = maybe_create_object_store_from_uri(path)
    _, _, object_name = parse_uri(path)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        fh.write(text)
    try:
        store.upload_object(object_name, fh.name)  # object stores replace objects whole
    finally:
        Path(fh.name).unlink(missing_ok=True)


def _scalar_loss(loss: Any) -> float:
    """The total loss of a batch as a float (Composer may hold a tensor, a dict or a tuple)."""
    if isinstance(loss, dict):
        loss = loss.get("total", sum(loss.values()))
    elif isinstance(loss, (tuple, list)):
        loss = sum(loss)
    return float(loss.detach().item() if hasattr(loss, "detach") else loss)
