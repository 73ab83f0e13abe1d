"""Evaluate a checkpoint on the Gauntlet with llm-foundry's ICL datasets and metrics.

Targets: a run folder written by ``beyond train`` (``config.yaml`` + ``checkpoints/latest-rank0.pt``),
a Composer checkpoint inside such a folder, or a Hugging Face model folder (``config.json``).
Tasks run one at a time through one Composer ``Trainer.eval``; each task's accuracy and its
standard error are cached in ``<out>/tasks/<task>.json`` (keyed by checkpoint, few-shot count and
--limit), so a rerun skips finished tasks. Besides ``<out>/gauntlet.json`` it writes
``<out>/results_lm_eval.json`` (lm-evaluation-harness's layout) and, with ``log_samples``,
``<out>/samples/<task>.jsonl`` (one line per example, from llm-foundry's per-example outputs).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from eval.averages import category_report
from eval.gauntlet import Gauntlet, limited_copy
from eval.lm_eval_json import lm_eval_results
from eval.stderr import accuracy_stderr, task_stderr
from ioutil import one_line, stdout_to_stderr, write_atomic
from scaling.errors import InputError
from train.folder import RunFolder


@dataclass
class Target:
    """What to evaluate: llm-foundry model + tokenizer configs, the weights, where results go."""

    model: dict
    tokenizer: dict
    load_path: str | None
    max_seq_len: int
    out_dir: Path
    identity: str


def resolve_target(path: Path, out_dir: Path | None = None, max_seq_len: int | None = None) -> Target:
    """The model, tokenizer and weights of a run folder, checkpoint or HF folder; ``max_seq_len``
    overrides the evaluation context length (the model's own for MPT/ALiBi)."""
    if max_seq_len is not None and max_seq_len < 1:
        raise InputError(f"--max-seq-len must be positive, got {max_seq_len}")
    target = _resolve(Path(path), out_dir)
    if max_seq_len is not None:
        target.max_seq_len = max_seq_len
        if target.model.get("name") == "mpt_causal_lm":
            target.model["max_seq_len"] = max_seq_len
    return target


def _resolve(path: Path, out_dir: Path | None) -> Target:
    if not path.exists():
        raise InputError(f"checkpoint or run not found: {path}")
    if path.is_dir() and (path / "config.json").is_file():  # Hugging Face folder
        model = {"name": "hf_causal_lm", "pretrained_model_name_or_path": str(path), "pretrained": True}
        seq = json.loads((path / "config.json").read_text()).get("max_seq_len", 2048)
        return Target(model, {"name": str(path), "kwargs": {}}, None, int(seq), out_dir or path / "eval",
                      _identity(path / "config.json"))
    run = RunFolder(path if path.is_dir() else path.parent.parent)  # <run>/checkpoints/x.pt -> <run>
    if not run.config.is_file():
        raise InputError(f"{path}: not a run folder (no config.yaml), Composer checkpoint of one, or HF model folder")
    checkpoint = path if path.is_file() else run.latest_checkpoint
    if not checkpoint.exists():
        raise InputError(f"no checkpoint in {run.checkpoints} (has the run trained?)")
    from omegaconf import OmegaConf

    cfg = OmegaConf.to_container(OmegaConf.load(run.config), resolve=True)
    model = dict(cfg["model"])
    return Target(model, cfg["tokenizer"], str(checkpoint.resolve()), int(cfg["max_seq_len"]),
                  out_dir or run.eval_dir, _identity(checkpoint))


def _identity(path: Path) -> str:
    st = path.resolve().stat()
    return hashlib.sha256(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]


def _task_key(target: Target, task, limit: int | None) -> str:
    spec = json.dumps({"weights": target.identity, "task": task.config, "limit": limit, "seq": target.max_seq_len},
                      sort_keys=True, default=str)
    return hashlib.sha256(spec.encode()).hexdigest()[:16]


def evaluate(gauntlet: Gauntlet, target: Target, *, limit: int | None = None, batch_size: int = 4,
             device: str | None = None, progress: bool = True, log_samples: bool = False) -> dict:
    """Run every task that has no cached result (with ``log_samples``, also every task whose cached
    result has no per-example log), then write ``<out>/gauntlet.json`` (eval's own file: the run
    record stays train's; ``beyond sweep collect`` joins the two) and ``<out>/results_lm_eval.json``.
    Returns the results."""
    if limit is not None and limit < 1:
        raise InputError(f"--limit must be at least 1, got {limit}")
    task_dir = target.out_dir / "tasks"
    done, todo = {}, []
    for task in gauntlet.tasks:
        cached = _read_json(task_dir / f"{task.label}.json")
        if cached and cached.get("key") == _task_key(target, task, limit) and (
                not log_samples or _has_samples(target.out_dir, cached)):
            done[task.label] = _with_stderr(cached, task_dir / f"{task.label}.json")
        else:
            todo.append(task)
    if todo:
        done.update(_run_tasks(todo, target, limit=limit, batch_size=batch_size, device=device, progress=progress,
                               log_samples=log_samples))
    done = {t.label: done[t.label] for t in gauntlet.tasks}  # the Gauntlet's order, cached or not
    accuracies = {label: r["accuracy"] for label, r in done.items()}
    stderrs = {label: r.get("accuracy_stderr") for label, r in done.items()}
    report = category_report(gauntlet, accuracies, stderrs)
    results = {
        "gauntlet": gauntlet.name,
        "gauntlet_file": str(gauntlet.path),
        "limit_per_task": limit,
        "checkpoint": target.load_path or target.model.get("pretrained_model_name_or_path"),
        "tasks": {label: {k: v for k, v in r.items() if k != "key"} for label, r in done.items()},
        "missing_tasks": gauntlet.missing,
        **report,
    }
    write_atomic(target.out_dir / "gauntlet.json", json.dumps(results, indent=2) + "\n")
    model = "beyond-mpt" if target.model.get("name") == "mpt_causal_lm" else "beyond-hf"
    sizes = {t.label: _count_examples(Path(t.config["dataset_uri"])) for t in gauntlet.tasks}
    harness = lm_eval_results(results, gauntlet, model=model, batch_size=batch_size, original_sizes=sizes)
    write_atomic(target.out_dir / "results_lm_eval.json", json.dumps(harness, indent=2) + "\n")
    return results


def _has_samples(out_dir: Path, cached: dict) -> bool:
    """Whether a cached task result comes with its per-example log (written before the result)."""
    name = cached.get("samples_file")
    return bool(name) and (out_dir / name).is_file()


def _with_stderr(cached: dict, path: Path) -> dict:
    """A cached task result with ``accuracy_stderr``: results cached before standard errors were
    recorded get it from ``accuracy`` and ``examples`` (for sub-category tasks such as MMLU this
    treats the mean of sub-category accuracies as one mean of ``examples`` outcomes, close but not
    the same), and the cache file is brought up to date."""
    if "accuracy_stderr" in cached:
        return cached
    upgraded = {}
    for k, v in cached.items():
        upgraded[k] = v
        if k == "accuracy":
            upgraded["accuracy_stderr"] = accuracy_stderr(v, int(cached.get("examples") or 0))
    try:
        write_atomic(path, json.dumps(upgraded, indent=2) + "\n")
    except OSError:  # a read-only results folder: the numbers are right all the same
        pass
    return upgraded


def _count_examples(path: Path) -> int | None:
    """Examples (non-blank lines) in a task's data file; ``None`` if it cannot be read."""
    try:
        with open(path, encoding="utf-8") as fh:
            return sum(1 for line in fh if line.strip())
    except OSError:
        return None


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _run_tasks(tasks, target: Target, *, limit, batch_size, device, progress, log_samples=False) -> dict:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch
    from composer import Trainer
    from llmfoundry.utils.builders import build_composer_model, build_icl_evaluators, build_tokenizer
    from tqdm import tqdm

    from eval.samples import sample_log, write_samples

    use_gpu = (device or ("gpu" if torch.cuda.is_available() else "cpu")) == "gpu"
    tokenizer = build_tokenizer(target.tokenizer["name"], dict(target.tokenizer.get("kwargs") or {}))
    model_cfg = dict(target.model)
    name = model_cfg.pop("name")
    if name == "mpt_causal_lm":
        model_cfg["init_device"] = "cpu"
        if not use_gpu:
            model_cfg.setdefault("attn_config", {})["attn_impl"] = "torch"
    results = {}
    with stdout_to_stderr(), tempfile.TemporaryDirectory(prefix="beyond-icl-") as tmp:
        model = build_composer_model(name=name, cfg=model_cfg, tokenizer=tokenizer)
        collector = sample_log(tokenizer) if log_samples else None
        trainer = Trainer(model=model, load_path=target.load_path, load_weights_only=True,
                          device="gpu" if use_gpu else "cpu", precision="amp_bf16" if use_gpu else "fp32",
                          progress_bar=False, log_to_console=False, loggers=[],
                          callbacks=[collector] if collector else [])
        bar = tqdm(tasks, desc="gauntlet", unit="task", file=sys.stderr, disable=not progress)
        for task in bar:
            bar.set_postfix_str(task.label)
            cfg = dict(task.config)
            if limit is not None:
                cfg["dataset_uri"] = str(limited_copy(Path(cfg["dataset_uri"]), limit, target.out_dir / "limited"))
            try:
                evaluators, _ = build_icl_evaluators([cfg], tokenizer, target.max_seq_len, batch_size,
                                                     destination_dir=tmp)
            except Exception as exc:  # noqa: BLE001 - a task the ICL builder rejects is one line
                raise InputError(f"task {task.label} ({cfg['dataset_uri']}): {type(exc).__name__}: "
                                 f"{one_line(exc)}") from None
            trainer.eval(eval_dataloader=evaluators)
            accs, parts, n = [], [], 0
            for ev in evaluators:
                for metric_name, metric in trainer.state.eval_metrics.get(ev.label, {}).items():
                    if "Accuracy" in metric_name:
                        accs.append(float(metric.compute().item()))
                        total = int(getattr(metric, "total", torch.tensor(0)).item())
                        correct = getattr(metric, "correct", None)
                        # the standard error from the exact counts where the metric keeps them
                        parts.append((float(correct.item()) / total if correct is not None and total else accs[-1],
                                      total))
                        n += total
            if not accs:
                raise InputError(f"task {task.label}: llm-foundry reported no accuracy metric")
            result = {"accuracy": sum(accs) / len(accs), "accuracy_stderr": task_stderr(parts), "examples": n,
                      "icl_task_type": task.icl_type, "num_fewshot": task.num_fewshot, "category": task.category,
                      "metric": next(iter(m for ev in evaluators for m in ev.metric_names)),
                      "key": _task_key(target, task, limit)}
            samples_path = target.out_dir / "samples" / f"{task.label}.jsonl"
            rows = _task_samples(task, cfg, evaluators, trainer, collector) if collector is not None else None
            if rows is not None:
                write_samples(samples_path, rows)  # before the result that names it
                result["samples_file"] = str(samples_path.relative_to(target.out_dir))
            else:
                samples_path.unlink(missing_ok=True)  # a log of earlier weights or settings would mislead
            write_atomic(target.out_dir / "tasks" / f"{task.label}.json", json.dumps(result, indent=2) + "\n")
            results[task.label] = result
    return results


def _task_samples(task, cfg: dict, evaluators, trainer, collector) -> list[dict] | None:
    """The task's per-example rows (every evaluator: one, or one per sub-category), numbered by
    their example in the task file; ``None`` (with a warning) if they do not add up to the metric's
    own counts, so that no log disagrees with the accuracy beside it."""
    from eval.samples import check_counts, number_rows, read_examples

    examples = read_examples(Path(cfg["dataset_uri"]))
    rows = []
    for ev in evaluators:
        got = collector.take(ev.label)
        category = ev.label.split("/", 2)[2] if cfg.get("has_categories") else None
        metric = next((m for name, m in trainer.state.eval_metrics.get(ev.label, {}).items() if "Accuracy" in name), None)
        why = "no accuracy metric" if metric is None else check_counts(
            got, float(getattr(metric, "correct", -1)), float(getattr(metric, "total", -1)))
        if why is None:
            try:
                rows += number_rows(got, examples, category)
            except ValueError as exc:
                why = str(exc)
        if why is not None:
            sys.stderr.write(f"beyond: warning: task {task.label}: no per-example log ({ev.label}: {why})\n")
            return None
    return rows
