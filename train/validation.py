"""Validation loss: an llm-foundry eval loader on the dataset's held-out ``val`` split.

``build_run`` adds one when the data has a ``val`` split (``train/data.py`` keeps every 20th text
file out of training for it; ``beyond data prep`` writes one too). It is evaluated once, at the last
batch (``eval_interval`` = the run's ``max_duration``), or every K batches with
``--set eval_interval=Kba``. A pass reads at most ``VAL_TOKENS`` held-out tokens, and at most
``VAL_FRACTION`` of the run's training tokens (``eval_subset_num_batches``, whole eval batches, at
least one): forward passes only, so one pass costs under 1% of the run's time;
``--set eval_subset_num_batches=-1`` reads the whole split and ``--set eval_loader=null`` turns
validation off. The run record's callback (``train/callback.py``) stores llm-foundry's
``LanguageCrossEntropy`` of the evaluator labelled ``eval``: the mean loss per held-out token,
over all ranks, in nats, comparable with the training loss.
"""

from __future__ import annotations

import copy
import math

from scaling.errors import InputError

VAL_SPLIT = "val"
VAL_LABEL = "eval"  # llm-foundry's label for a single eval_loader
VAL_TOKENS = 10_000_000  # held-out tokens per validation pass, at most (default)
VAL_FRACTION = 0.02  # ... and at most this share of the run's training tokens (default)


def add_validation(container: dict, data: str, seq: int, world_size: int, launched: int,
                   run_tokens: int | None) -> dict:
    """Add (or complete) the eval loader on ``data``'s ``val`` split in the train config
    ``container``, in place (``run_tokens``: the run's training tokens, if known). Returns run-record entries: ``val_split_tokens`` (tokens the split
    holds; None without a split) and ``val_tokens_per_pass`` (held-out tokens one pass reads)."""
    if "eval_loader" in container and container["eval_loader"] is None:  # --set eval_loader=null
        container.pop("eval_loader")
        return {"val_split_tokens": None, "val_tokens_per_pass": None}
    if container.get("eval_loader") is not None:  # the YAML's own, or a config build_run resolved
        _set_interval(container)
        return {}
    if launched > 1 and "://" in data:
        return {}  # each rank of a launch reads a resolved config; a bare one gets no download per rank
    split_tokens = _split_tokens(data, seq)
    if split_tokens is None:
        return {"val_split_tokens": None, "val_tokens_per_pass": None}
    loader = copy.deepcopy(container["train_loader"])
    loader["dataset"].update({"split": VAL_SPLIT, "shuffle": False})
    loader["drop_last"] = False
    container["eval_loader"] = loader
    _set_interval(container)
    per_batch = _eval_batch_tokens(container, seq, world_size)
    split_batches = math.ceil(split_tokens / per_batch)
    if container.get("eval_subset_num_batches") in (None, -1):
        budget = min(VAL_TOKENS, VAL_FRACTION * run_tokens) if run_tokens else VAL_TOKENS
        limit = max(1, math.floor(budget / per_batch))
        container["eval_subset_num_batches"] = limit if limit < split_batches else -1
    subset = int(container["eval_subset_num_batches"])
    per_pass = split_tokens if subset < 0 else min(split_tokens, subset * per_batch)
    return {"val_split_tokens": split_tokens, "val_tokens_per_pass": per_pass}


def _split_tokens(data: str, seq: int) -> int | None:
    """Tokens in ``data``'s val split (None when it has none)."""
    from train.dataset_size import dataset_tokens

    try:
        return dataset_tokens(data, max_seq_len=seq, split=VAL_SPLIT, strict=True).tokens or None
    except InputError:
        return None


def _set_interval(container: dict) -> None:
    """Evaluate at the end of training unless the YAML or --set says when."""
    if container.get("eval_interval") in (None, "???"):
        container["eval_interval"] = container["max_duration"]


def _eval_batch_tokens(container: dict, seq: int, world_size: int) -> int:
    """Held-out tokens one eval batch reads over all ranks."""
    per_rank = container.get("device_eval_batch_size")
    if not isinstance(per_rank, int) or per_rank < 1:
        per_rank = max(1, int(container["global_train_batch_size"]) // max(world_size, 1))
    return per_rank * max(world_size, 1) * seq
