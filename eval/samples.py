"""``beyond eval --log-samples``: one JSON line per example, from llm-foundry's own per-example
metric outputs (no scoring of ours).

llm-foundry 0.22's ICL metrics return, from ``update``, a dict of per-example lists (``result``:
1 if the example was scored correct, and the texts and indices behind it); Composer keeps the dict
of the last update on ``state.metric_outputs``, which llm-foundry's ``EvalOutputLogging`` callback
reads at ``eval_batch_end``. ``SampleLog`` reads it at the same event. ICL evaluators run one
microbatch per batch (their ``device_eval_microbatch_size`` defaults to the loader's batch size),
so each batch end sees that batch's outputs; ``check_counts`` compares the collected examples with
the metric's own ``correct``/``total`` and refuses a log that does not add up. One process only:
the examples of an evaluator are numbered in loader order (llm-foundry's sampler does not shuffle).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ioutil import write_atomic


def _texts(value: Any, decode: Callable[[list[int]], str]) -> Any:
    """Token tensors -> text; sets -> sorted lists; everything else as is (JSON-able)."""
    if hasattr(value, "tolist") and hasattr(value, "dim"):  # a torch tensor of token ids
        return decode(value.tolist()) if value.dim() > 0 else value.item()
    if isinstance(value, set):
        return sorted(value)
    if isinstance(value, (list, tuple)):
        return [_texts(v, decode) for v in value]
    return value


def batch_rows(outputs: dict, batch: dict, model_outputs: Any, decode: Callable[[list[int]], str]) -> list[dict]:
    """One row per example of one batch from a metric's ``update`` result (``outputs``).

    Row fields: ``context`` (the prompt the model read, few-shot examples included), ``target``
    (gold continuation or answers), ``prediction`` (the model's choice or output), for multiple
    choice and schema ``target_index``/``prediction_index`` (choice numbers), for generation the raw
    ``output`` text, ``correct`` (0/1, llm-foundry's ``result``) and ``metric``.
    """
    results = list(outputs.get("result") or [])
    names = outputs.get("metric_name") or [""]
    rows = []
    for i, result in enumerate(results):
        row: dict[str, Any] = {}
        if "correct_choice_idx" in outputs:  # multiple choice and schema
            row["context"] = _texts(outputs["context"][i], decode)
            row["target"] = _texts(outputs["correct_choice"][i], decode)
            row["target_index"] = int(outputs["correct_choice_idx"][i])
            row["prediction"] = _texts(outputs["selected_choice"][i], decode)
            row["prediction_index"] = int(outputs["selected_choice_idx"][i])
        elif "label" in outputs:  # language modelling: greedy tokens vs the continuation
            row["context"] = _texts(outputs["context"][i], decode)
            row["target"] = _texts(outputs["label"][i], decode)
            row["prediction"] = _texts(outputs["output"][i], decode)
        elif "cleaned_output" in outputs:  # generation with answers
            ids = batch["input_ids"][i]
            mask = batch.get("attention_mask")
            row["context"] = decode((ids[mask[i]] if mask is not None else ids).tolist())
            row["target"] = _texts(outputs["original_label"][i], decode)
            row["prediction"] = outputs["cleaned_output"][i]
            if isinstance(model_outputs, (list, tuple)) and i < len(model_outputs):
                row["output"] = model_outputs[i]
        else:  # a metric we do not know: its per-example fields as they are
            for key, values in outputs.items():
                if key not in ("result", "metric_name", "all_choices") and isinstance(values, list) and len(values) == len(results):
                    row[key] = _texts(values[i], decode)
        row["correct"] = int(result)
        row["metric"] = names[0]
        rows.append(row)
    return rows


def sample_log(tokenizer):
    """A Composer callback (``SampleLog``) that, at each eval batch end, keeps the per-example rows
    of that batch by evaluator label; its ``take(label)`` hands them over and forgets them.
    (Built here so that importing this module needs no Composer.)"""
    from composer.core import Callback

    class SampleLog(Callback):
        def __init__(self) -> None:
            self.rows: dict[str, list[dict]] = {}
            self._seen: object = None

        def eval_start(self, state, logger) -> None:
            self._seen = state.metric_outputs  # left over from the previous evaluator

        def eval_batch_end(self, state, logger) -> None:
            outputs = state.metric_outputs
            if outputs is self._seen or not outputs or "result" not in outputs or not isinstance(state.batch, dict):
                return
            self._seen = outputs
            rows = batch_rows(outputs, state.batch, state.outputs, tokenizer.decode)
            self.rows.setdefault(str(state.dataloader_label), []).extend(rows)

        def take(self, label: str) -> list[dict]:
            return self.rows.pop(label, [])

    return SampleLog()


def read_examples(path: Path) -> list[dict]:
    """The examples of a task file in file order (blank lines skipped, as every reader here does)."""
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def number_rows(rows: list[dict], examples: list[dict], category: str | None = None) -> list[dict]:
    """Put each row's ``index`` (0-based position of its example in the task file, lm-eval's
    ``doc_id``) and ``doc`` (that example as the file has it) first. With ``category`` (tasks llm-foundry
    splits by their ``category`` field), the rows are that category's examples, in file order."""
    positions = [i for i, ex in enumerate(examples) if category is None or str(ex.get("category")) == category]
    if len(positions) < len(rows):
        raise ValueError(f"{len(rows)} per-example outputs for {len(positions)} examples")
    numbered = []
    for pos, row in zip(positions, rows):
        head = {"index": pos, **({"category": category} if category is not None else {}), "doc": examples[pos]}
        numbered.append({**head, **row})
    return numbered


def check_counts(rows: Sequence[dict], correct: float, total: float) -> str | None:
    """Why the rows cannot be the metric's examples (count or sum of ``correct`` differs from the
    metric's ``total``/``correct`` state), or ``None`` when they add up."""
    got = sum(r["correct"] for r in rows)
    if len(rows) != int(round(total)) or got != int(round(correct)):
        return f"{len(rows)} examples with {got} correct logged, the metric counted {total:g} with {correct:g}"
    return None


def write_samples(path: Path, rows: Sequence[dict]) -> None:
    """All rows as JSON lines, written atomically (a reader never sees half a file)."""
    write_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
