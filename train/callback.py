"""Composer callback that writes the run record at the end of training.

Registered with llm-foundry's callback registry through the ``llmfoundry_callbacks`` entry
point (see pyproject.toml), so any llm-foundry YAML can use it:

    callbacks:
      run_record: {path: runs/x/record.json, params: 151407360}

Smoothed final loss = mean of the last ``window`` (10, as in the paper) *global batch* losses: the
sample-weighted mean over every microbatch of every rank. Composer computes exactly that number
each batch (``state.total_loss_dict['loss/train/total']``: microbatch losses weighted by their
sample counts, all-reduced over ranks, already on the host), so the callback reads it and adds no
communication and no host sync. ``state.loss`` is not used: under gradient accumulation it is the
last microbatch's loss only. When Composer leaves no fresh loss for a batch (a skipped fp16 step,
another trainer), the callback falls back to its own sum: each microbatch's loss x samples,
accumulated on the device Composer trains on, all-reduced over ranks at the batch's end.
The loss window, the first batch's loss and the resume count are checkpointed with the trainer,
so a resumed run reports the same numbers as an uninterrupted one.

Validation loss (``train/validation.py``): after each pass of the evaluator labelled ``eval``
(the held-out split) the callback keeps its ``LanguageCrossEntropy`` (mean loss per held-out token,
all ranks) and the tokens it averaged over. The record's ``val_loss`` is the pass at the last
batch. When that pass runs after FIT_END (an ``eval_interval`` that does not divide the run),
the record is written once it is done.
"""

from __future__ import annotations

import json
import math
import time
from collections import deque
from pathlib import Path
from typing import Any

import torch
from composer.core import Callback, State
from composer.loggers import Logger
from composer.utils import dist

from ioutil import write_atomic
from scaling.law import training_flops
from train.validation import VAL_LABEL

RECORD_VERSION = 2
TOTAL_LOSS_KEY = "loss/train/total"
VAL_METRIC = "LanguageCrossEntropy"  # composer's mean cross-entropy per (non-ignored) target token


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
        self.loss_source = "composer"
        self._last_loss_dict: Any = None
        self._loss_sum: torch.Tensor | None = None  # fallback: sum of loss x samples, on the device
        self._samples = 0  # fallback: samples in the batch so far on this rank (host int)
        self.val_loss: float | None = None  # the latest validation pass: loss per held-out token (nats)
        self.val_tokens: int | None = None  # held-out tokens it averaged over (all ranks)
        self.val_batch: int | None = None  # the batch it ran after
        self._unwritten: dict[str, Any] | None = None  # a record waiting for the final validation pass

    def fit_start(self, state: State, logger: Logger) -> None:
        if int(state.timestamp.batch) > 0:
            self.resumes += 1
        self._last_loss_dict = getattr(state, "total_loss_dict", None)

    def before_train_batch(self, state: State, logger: Logger) -> None:
        self._loss_sum, self._samples = None, 0  # fires again when auto-microbatching retries after an OOM

    def after_loss(self, state: State, logger: Logger) -> None:
        """Once per microbatch: add loss x samples on the training device (no host sync)."""
        loss = _total_loss_tensor(state.loss)
        if loss is None:
            return
        n = _num_samples(state.batch)
        term = loss.detach().float().mean() * n  # stays on the device: no host sync
        self._loss_sum = term if self._loss_sum is None else self._loss_sum + term
        self._samples += n

    def batch_end(self, state: State, logger: Logger) -> None:
        loss = self._composer_batch_loss(state)
        if loss is None:
            loss = self._reduced_batch_loss(state)
        if loss is None:
            return
        if self.first_loss is None:
            self.first_loss = loss
        self.losses.append(loss)

    def _composer_batch_loss(self, state: State) -> float | None:
        """Composer's global batch loss, if it computed one for this batch (a fresh dict)."""
        loss_dict = getattr(state, "total_loss_dict", None)
        if not loss_dict or loss_dict is self._last_loss_dict or TOTAL_LOSS_KEY not in loss_dict:
            return None
        self._last_loss_dict = loss_dict
        return float(loss_dict[TOTAL_LOSS_KEY])

    def _reduced_batch_loss(self, state: State) -> float | None:
        """Fallback: all-reduce [sum of loss x samples, samples] over ranks (one sync)."""
        self.loss_source = "callback"
        device = reduction_device(state.device)
        local = torch.zeros(2, dtype=torch.float32, device=device)
        if self._loss_sum is not None:
            local[0] = self._loss_sum.to(device).reshape(())
        local[1] = float(self._samples)
        self._loss_sum, self._samples = None, 0
        if dist.get_world_size() > 1:
            dist.all_reduce(local, reduce_operation="SUM")
        total, samples = (float(v) for v in local.tolist())
        return total / samples if samples > 0 else None

    def eval_end(self, state: State, logger: Logger) -> None:
        """Keep the held-out loss of a validation pass (every rank takes part in the reduction)."""
        evaluator = getattr(state, "dataloader_label", None)
        metric = (getattr(state, "eval_metrics", None) or {}).get(VAL_LABEL, {}).get(VAL_METRIC)
        if evaluator != VAL_LABEL or metric is None:
            return
        self.val_loss = float(metric.compute())
        tokens = metric.total_items.detach().clone().reshape(1)  # this rank's tokens; compute() leaves it local
        if dist.get_world_size() > 1:
            dist.all_reduce(tokens, reduce_operation="SUM")
        self.val_tokens, self.val_batch = int(tokens.item()), int(state.timestamp.batch)
        if self._unwritten is not None and dist.get_global_rank() == 0:
            self._write(self._unwritten, logger)

    def fit_end(self, state: State, logger: Logger) -> None:
        if dist.get_global_rank() != 0:
            return
        record = self._record(state)
        if _validates(state) and self.val_batch != record["batches"]:
            self._unwritten = record  # Composer runs the last validation pass after FIT_END: write then
            return
        self._write(record, logger)

    def close(self, state: State, logger: Logger) -> None:
        """A record still waiting for a validation pass that never came: write it without one."""
        if self._unwritten is not None:
            self._unwritten["val_loss_note"] = "no validation pass ran at the last batch"
            self._write(self._unwritten, None)

    def _write(self, record: dict[str, Any], logger: Logger | None) -> None:
        self._unwritten = None
        measured = self.val_batch == record["batches"]  # a validation pass at the last batch
        record.update(val_loss=self.val_loss if measured else None, val_tokens=self.val_tokens if measured else None)
        _write_record(self.path, json.dumps(record, indent=2) + "\n")
        if logger is not None:
            logger.log_metrics(tracker_metrics(record))  # every logger the run's config names (W&B, MLflow, ...)

    def _record(self, state: State) -> dict[str, Any]:
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
            "loss_source": self.loss_source,
            "world_size": dist.get_world_size(),
            "flops": float(training_flops(self.params, tokens)),
            "wall_time_s": state.timestamp.total_wct.total_seconds(),
            "resumes": self.resumes,
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        if self.run_info.get("data_tokens"):
            record["epochs"] = tokens / float(self.run_info["data_tokens"])
        return record

    def state_dict(self) -> dict[str, Any]:
        return {"losses": list(self.losses), "first_loss": self.first_loss, "resumes": self.resumes,
                "val_loss": self.val_loss, "val_tokens": self.val_tokens, "val_batch": self.val_batch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.losses = deque(state.get("losses", []), maxlen=self.window)
        self.first_loss = state.get("first_loss")
        self.resumes = int(state.get("resumes", 0))
        self.val_loss, self.val_tokens, self.val_batch = (state.get(k) for k in ("val_loss", "val_tokens", "val_batch"))


# The run record's numbers as tracker metrics, under names that stay put (the scaling law is fitted
# on beyond/smoothed_loss; params and tokens are counts, flops = 6 x params x tokens).
TRACKER_METRICS = ("smoothed_loss", "val_loss", "initial_loss", "params", "tokens", "tokens_per_param", "flops")


def tracker_metrics(record: dict[str, Any]) -> dict[str, float]:
    """``beyond/<name>`` for each of TRACKER_METRICS the record holds as a number."""
    return {f"beyond/{name}": float(record[name]) for name in TRACKER_METRICS
            if isinstance(record.get(name), (int, float))}


def _validates(state: State) -> bool:
    """Whether the run has the validation evaluator (train/validation.py)."""
    return any(getattr(e, "label", None) == VAL_LABEL for e in getattr(state, "evaluators", None) or [])


def reduction_device(device: Any) -> torch.device:
    """The torch device a Composer device trains on (``DeviceGPU`` -> ``cuda:<local rank>``,
    ``DeviceCPU`` -> ``cpu``, ...): its ``_device``. Composer's device *name* (``"gpu"``) is not a
    torch device, so it is never used."""
    dev = getattr(device, "_device", None)
    return dev if isinstance(dev, torch.device) else torch.device("cpu")


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


def _total_loss_tensor(loss: Any) -> torch.Tensor | None:
    """A microbatch's total loss as a tensor, as Composer totals it (a dict's ``total``, else
    the sum of the parts' means)."""
    if isinstance(loss, dict):
        if "total" in loss:
            return loss["total"]
        loss = tuple(loss.values())
    if isinstance(loss, (tuple, list)):
        parts = [part.mean() for part in loss if isinstance(part, torch.Tensor)]
        return torch.stack(parts).sum() if parts else None
    return loss if isinstance(loss, torch.Tensor) else None


def _num_samples(batch: Any) -> int:
    """Samples in a microbatch: the leading dimension of its first tensor (Composer's default)."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0])
    if isinstance(batch, dict):
        batch = list(batch.values())
    for item in batch if isinstance(batch, (list, tuple)) else ():
        if isinstance(item, torch.Tensor):
            return int(item.shape[0])
    raise TypeError(f"cannot count the samples of a batch of type {type(batch).__name__}")
