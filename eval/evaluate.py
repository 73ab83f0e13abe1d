"""Evaluate a checkpoint on the Gauntlet with llm-foundry's ICL datasets and metrics.

Targets: a run folder written by ``beyond train`` (``config.yaml`` + ``checkpoints/latest-rank0.pt``),
a Composer checkpoint inside such a folder, or a Hugging Face model folder (``config.json``).
Tasks run one at a time through one Composer ``Trainer.eval``; each task's accuracy is cached in
``<out>/tasks/<task>.json`` (keyed by checkpoint, few-shot count and --limit), so a rerun skips
finished tasks.
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
             device: str | None = None, progress: bool = True) -> dict:
    """Run every task that has no cached result, then write ``<out>/gauntlet.json`` (eval's own
    file: the run record stays train's; ``beyond sweep collect`` joins the two). Returns the results."""
    if limit is not None and limit < 1:
        raise InputError(f"--limit must be at least 1, got {limit}")
    task_dir = target.out_dir / "tasks"
    done, todo = {}, []
    for task in gauntlet.tasks:
        cached = _read_json(task_dir / f"{task.label}.json")
        if cached and cached.get("key") == _task_key(target, task, limit):
            done[task.label] = cached
        else:
            todo.append(task)
    if todo:
        done.update(_run_tasks(todo, target, limit=limit, batch_size=batch_size, device=device, progress=progress))
    accuracies = {label: r["accuracy"] for label, r in done.items()}
    report = category_report(gauntlet, accuracies)
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
    return results


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _run_tasks(tasks, target: Target, *, limit, batch_size, device, progress) -> dict:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch
    from composer import Trainer
    from llmfoundry.utils.builders import build_composer_model, build_icl_evaluators, build_tokenizer
    from tqdm import tqdm


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
        trainer = Trainer(model=model, load_path=target.load_path, load_weights_only=True,
                          device="gpu" if use_gpu else "cpu", precision="amp_bf16" if use_gpu else "fp32",
                          progress_bar=False, log_to_console=False, loggers=[])
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
            accs, n = [], 0
            for ev in evaluators:
                for metric_name, metric in trainer.state.eval_metrics.get(ev.label, {}).items():
                    if "Accuracy" in metric_name:
                        accs.append(float(metric.compute().item()))
                        n += int(getattr(metric, "total", torch.tensor(0)).item())
            if not accs:
                raise InputError(f"task {task.label}: llm-foundry reported no accuracy metric")
            result = {"accuracy": sum(accs) / len(accs), "examples": n, "icl_task_type": task.icl_type,
                      "num_fewshot": task.num_fewshot, "category": task.category,
                      "metric": next(iter(m for ev in evaluators for m in ev.metric_names)),
                      "key": _task_key(target, task, limit)}
            write_atomic(target.out_dir / "tasks" / f"{task.label}.json", json.dumps(result, indent=2) + "\n")
            results[task.label] = result
    return results
