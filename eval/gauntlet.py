"""Gauntlet definitions (llm-foundry format: ``icl_tasks`` + ``eval_gauntlet``), task selection,
and data checks: a missing data file removes its task and marks its category partial."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from scaling.errors import InputError

DEFAULT_GAUNTLET = Path(__file__).resolve().parent.parent / "yamls" / "eval" / "gauntlet-paper.yaml"


@dataclass
class Task:
    """One ICL task: llm-foundry's task config, its category and random baseline (accuracy)."""

    label: str
    category: str
    num_fewshot: int
    random_baseline: float
    config: dict

    @property
    def icl_type(self) -> str:
        return self.config["icl_task_type"]


@dataclass
class Gauntlet:
    name: str
    path: Path
    tasks: list[Task]
    categories: list[str]
    averages: dict[str, list[str]]
    subtract_random_baseline: bool = True
    rescale_accuracy: bool = True
    missing: dict[str, str] = field(default_factory=dict)  # task -> why it is excluded


def data_dir(flag: str | None) -> Path:
    """The Gauntlet data folder (llm-foundry's local_data layout): --data-dir or GAUNTLET_DATA_DIR."""
    root = flag or os.environ.get("GAUNTLET_DATA_DIR")
    if not root:
        raise InputError("no Gauntlet data: pass --data-dir or set GAUNTLET_DATA_DIR "
                         "(fetch it with scripts/fetch-gauntlet.sh)")
    path = Path(root)
    if not path.is_dir():
        raise InputError(f"Gauntlet data folder not found: {path}")
    return path


def load_gauntlet(path: str | Path | None = None) -> Gauntlet:
    """Read a Gauntlet YAML; every benchmark of ``eval_gauntlet`` must have an icl_task."""
    from omegaconf import OmegaConf

    from train.config import load_yaml

    path = Path(path) if path else DEFAULT_GAUNTLET
    cfg = OmegaConf.to_container(load_yaml(path), resolve=True)
    if "icl_tasks" not in cfg or "eval_gauntlet" not in cfg:
        raise InputError(f"{path}: a Gauntlet YAML needs icl_tasks and eval_gauntlet")
    by_label = {t["label"]: t for t in cfg["icl_tasks"]}
    g = cfg["eval_gauntlet"]
    if g.get("weighting", "EQUAL") != "EQUAL":
        raise InputError(f"{path}: only EQUAL weighting is supported (the paper's)")
    tasks, categories = [], []
    for cat in g["categories"]:
        categories.append(cat["name"])
        for bench in cat["benchmarks"]:
            if bench["name"] not in by_label:
                raise InputError(f"{path}: benchmark {bench['name']} has no icl_tasks entry")
            task_cfg = dict(by_label[bench["name"]])
            task_cfg["num_fewshot"] = [int(bench["num_fewshot"])]
            tasks.append(Task(bench["name"], cat["name"], int(bench["num_fewshot"]),
                              float(bench["random_baseline"]), task_cfg))
    return Gauntlet(cfg.get("name", path.stem), path, tasks, categories, dict(g.get("averages") or {}),
                    bool(g.get("subtract_random_baseline", True)), bool(g.get("rescale_accuracy", True)))


def select(g: Gauntlet, tasks: list[str] | None = None, categories: list[str] | None = None) -> Gauntlet:
    """Keep only the named tasks and/or categories (unknown names are errors)."""
    known_tasks = {t.label for t in g.tasks}
    for name in tasks or []:
        if name not in known_tasks:
            raise InputError(f"unknown task {name!r} in {g.path.name}; known: {', '.join(sorted(known_tasks))}")
    for name in categories or []:
        if name not in g.categories:
            raise InputError(f"unknown category {name!r}; known: {', '.join(g.categories)}")
    keep = [t for t in g.tasks if (not tasks or t.label in tasks) and (not categories or t.category in categories)]
    cats = [c for c in g.categories if any(t.category == c for t in keep)]
    # tasks of a kept category left out by the selection: the category is partial, and says why
    missing = dict(g.missing)
    for t in g.tasks:
        if t.category in cats and t not in keep:
            missing[t.label] = f"{t.category}: not selected (--tasks)"
    return Gauntlet(g.name, g.path, keep, cats, g.averages, g.subtract_random_baseline, g.rescale_accuracy, missing)


def check_data(g: Gauntlet, root: Path) -> Gauntlet:
    """Resolve each task's file under ``root``; missing files drop the task (recorded in
    ``missing``); malformed or empty files are errors naming the file and line."""
    present, missing = [], dict(g.missing)
    for t in g.tasks:
        path = root / t.config["dataset_uri"]
        if not path.is_file():
            missing[t.label] = f"{t.category}: data file {path} not found"
            continue
        validate_jsonl(path)
        present.append(Task(t.label, t.category, t.num_fewshot, t.random_baseline, {**t.config, "dataset_uri": str(path)}))
    return Gauntlet(g.name, g.path, present, g.categories, g.averages, g.subtract_random_baseline,
                    g.rescale_accuracy, missing)


def validate_jsonl(path: Path) -> int:
    """Every line a JSON object; at least one. Returns the number of examples."""
    n = 0
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{lineno}: malformed JSON line ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise InputError(f"{path}:{lineno}: expected a JSON object per line")
            n += 1
    if n == 0:
        raise InputError(f"{path}: empty data file (no examples)")
    return n


def limited_copy(path: Path, limit: int, cache: Path) -> Path:
    """The first ``limit`` examples of a jsonl file (cached), for smoke evaluations."""
    out = cache / f"{path.parent.name}-{path.stem}-first{limit}.jsonl"
    if out.is_file():
        return out
    cache.mkdir(parents=True, exist_ok=True)
    lines = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                lines.append(line if line.endswith("\n") else line + "\n")
            if len(lines) >= limit:
                break
    from ioutil import write_atomic

    write_atomic(out, "".join(lines))
    return out
