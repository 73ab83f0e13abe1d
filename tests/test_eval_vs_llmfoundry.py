"""`beyond eval` against llm-foundry's own eval entry point (``llmfoundry.command_utils.evaluate``,
what llm-foundry's ``scripts/eval/eval.py`` runs) on the session's trained tiny model: the same
checkpoint, tasks, data, few-shot counts, context length, batch size, fp32 on CPU. Every task's
accuracy must be equal, not close. The same model with re-initialised weights must score
differently, so the checkpoint's weights are what is evaluated.

Tasks: three of the paper's Gauntlet (its settings verbatim from gauntlet-paper.yaml), one per
scoring rule, and two control tasks built from the same data. The tiny CPU model scores at chance
on real tasks (lambada: 0), where a re-initialised model can tie it by luck; on the controls
(natural word order vs the same words reversed; "the" after "... of") training moves the score far
from what random weights get, so "scores differently" is certain, and the equality check covers
accuracies that are not 0 or chance.

llm-foundry's entry point cannot limit a task's examples (``icl_subset_num_batches`` cuts batches
but still draws few-shot examples from the whole file), so both evaluators read the same truncated
copies of the task files, laid out like GAUNTLET_DATA_DIR, through one Gauntlet YAML."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from eval.gauntlet import DEFAULT_GAUNTLET, load_gauntlet
from tests.conftest import REPO, gauntlet_dir, run_cli

PAPER_TASKS = ("copa", "winograd", "lambada_openai")  # multiple choice, schema, language modelling
CONTROLS = ("word_order", "of_the")
TASKS = PAPER_TASKS + CONTROLS
LIMIT = 16  # examples per task
BATCH_SIZE = 4  # `beyond eval`'s default --batch-size
SEED = 17  # llm-foundry seeds everything; `beyond eval` takes no seed (the ICL few-shot draw has its own)


@dataclass(frozen=True)
class Data:
    root: Path  # GAUNTLET_DATA_DIR layout
    gauntlet: Path  # Gauntlet YAML (dataset_uri relative to root)

    def llmfoundry_sections(self) -> dict:
        """The YAML's ``icl_tasks`` (data paths made absolute) and ``eval_gauntlet``, read as
        llm-foundry reads them (not through eval.gauntlet)."""
        from omegaconf import OmegaConf

        cfg = OmegaConf.to_container(OmegaConf.load(self.gauntlet), resolve=True)
        tasks = [{**t, "dataset_uri": str(self.root / t["dataset_uri"])} for t in cfg["icl_tasks"]]
        return {"icl_tasks": tasks, "eval_gauntlet": cfg["eval_gauntlet"]}


def _read(path: Path) -> list[dict]:
    return [json.loads(ln) for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]


def _write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Data:
    """The first LIMIT examples of each paper task, the two controls, and a Gauntlet YAML naming them."""
    from omegaconf import OmegaConf

    src, out = gauntlet_dir(), tmp_path_factory.mktemp("gauntlet-first")
    root = out / "data"
    paper_yaml = OmegaConf.to_container(OmegaConf.load(DEFAULT_GAUNTLET), resolve=True)  # read raw, not parsed
    paper = [t for t in paper_yaml["icl_tasks"] if t["label"] in PAPER_TASKS]
    assert sorted(t["label"] for t in paper) == sorted(PAPER_TASKS)
    for task in paper:
        rows = _read(src / task["dataset_uri"])[:LIMIT]
        assert len(rows) == LIMIT, f"{task['dataset_uri']} has fewer than {LIMIT} examples"
        _write(root / task["dataset_uri"], rows)
    copa = _read(src / "commonsense_reasoning" / "copa.jsonl")[:LIMIT]
    word_order = []
    for i, ex in enumerate(copa):  # the right answer vs its words reversed; gold alternates 0/1
        text = ex["choices"][ex["gold"]]
        choices = [text, " ".join(reversed(text.split()))]
        word_order.append({"query": ex["query"], "choices": choices[::-1] if i % 2 else choices, "gold": i % 2})
    _write(root / "controls" / "word_order.jsonl", word_order)
    of_the = [{"context": ex["context"][:ex["context"].index(" of the ") + 3], "continuation": "the"}
              for ex in _read(src / "language_understanding" / "lambada_openai.jsonl") if " of the " in ex["context"]]
    _write(root / "controls" / "of_the.jsonl", of_the[:LIMIT])
    icl = paper + [
        {"label": "word_order", "dataset_uri": "controls/word_order.jsonl", "num_fewshot": [0],
         "icl_task_type": "multiple_choice"},
        {"label": "of_the", "dataset_uri": "controls/of_the.jsonl", "num_fewshot": [0],
         "icl_task_type": "language_modeling"}]
    bench = [b for c in paper_yaml["eval_gauntlet"]["categories"] for b in c["benchmarks"] if b["name"] in PAPER_TASKS]
    gauntlet = {"name": "vs-llmfoundry", "icl_tasks": icl, "eval_gauntlet": {
        "weighting": "EQUAL", "subtract_random_baseline": True, "rescale_accuracy": True,
        "averages": {"overall": ["paper", "controls"]}, "categories": [
            {"name": "paper", "benchmarks": bench},
            {"name": "controls", "benchmarks": [{"name": "word_order", "num_fewshot": 0, "random_baseline": 0.5},
                                                {"name": "of_the", "num_fewshot": 0, "random_baseline": 0.0}]}]}}
    OmegaConf.save(OmegaConf.create(gauntlet), out / "gauntlet.yaml")
    return Data(root, out / "gauntlet.yaml")


def _beyond_eval(run: Path, data: Data, out: Path) -> dict:
    """`beyond eval --json`'s results: per-task accuracies, category and named averages."""
    proc = run_cli("eval", str(run), "--gauntlet", str(data.gauntlet), "--data-dir", str(data.root),
                   "--limit", str(LIMIT), "--batch-size", str(BATCH_SIZE), "--device", "cpu", "--out", str(out),
                   "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout)
    assert sorted(results["tasks"]) == sorted(TASKS) and not results["missing_tasks"]
    return results


# llm-foundry's entry point in a fresh interpreter (no state shared with pytest or `beyond eval`):
# argv[1] is the eval config (JSON), argv[2] where each evaluator's metrics and the Gauntlet row go.
LLMFOUNDRY_EVAL = """
import json, sys
from omegaconf import OmegaConf
from llmfoundry.command_utils import evaluate
cfg = OmegaConf.create(json.loads(open(sys.argv[1]).read()))
trainers, gauntlet_df = evaluate(cfg)
metrics = {label: {name: {"value": float(m.compute().item()), "total": int(getattr(m, "total", -1))}
                   for name, m in ms.items()}
           for label, ms in trainers[0].state.eval_metrics.items()}
(row,) = gauntlet_df.to_dict("records")
gauntlet = {k: float(v) for k, v in row.items() if k != "model_name"}
open(sys.argv[2], "w").write(json.dumps({"metrics": metrics, "gauntlet": gauntlet}))
"""


def _llmfoundry_config(run: Path, data: Data) -> dict:
    """The eval YAML an llm-foundry user would write for this run and these tasks, as a dict:
    the run's own model, tokenizer and context length, its latest checkpoint."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.to_container(OmegaConf.load(run / "config.yaml"), resolve=True)
    return {
        "models": [{"model_name": run.name, "model": cfg["model"], "tokenizer": cfg["tokenizer"],
                    "load_path": str((run / "checkpoints" / "latest-rank0.pt").resolve())}],
        **data.llmfoundry_sections(),
        "max_seq_len": cfg["max_seq_len"],
        "device_eval_batch_size": BATCH_SIZE,
        "precision": "fp32",
        "seed": SEED,
        "python_log_level": None,
        "loggers": {},
    }


def _llmfoundry_eval(run: Path, data: Data, work: Path) -> dict:
    work.mkdir(parents=True, exist_ok=True)  # llm-foundry copies each task file into its cwd
    (work / "eval.json").write_text(json.dumps(_llmfoundry_config(run, data), indent=2))
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([sys.executable, "-c", LLMFOUNDRY_EVAL, str(work / "eval.json"), str(work / "metrics.json")],
                          cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((work / "metrics.json").read_text())


@pytest.fixture(scope="module")
def trained(trained_tiny, data, tmp_path_factory) -> dict:
    """`beyond eval` of the trained tiny run (results kept out of the shared run folder)."""
    return _beyond_eval(trained_tiny.path, data, tmp_path_factory.mktemp("eval-trained"))


def test_accuracies_equal_llmfoundry_eval(trained_tiny, data, trained, tmp_path):
    theirs = _llmfoundry_eval(trained_tiny.path, data, tmp_path / "llmfoundry")
    shots = {t.label: t.num_fewshot for t in load_gauntlet(data.gauntlet).tasks}
    assert sorted(theirs["metrics"]) == sorted(f"{t}/{shots[t]}-shot" for t in TASKS)
    rows = []
    for task in TASKS:
        metrics = theirs["metrics"][f"{task}/{shots[task]}-shot"]
        accuracy = {name: m for name, m in metrics.items() if "Accuracy" in name}
        assert len(accuracy) == 1, metrics
        (name, m), = accuracy.items()
        ours = trained["tasks"][task]
        rows.append(f"{task}: beyond {ours['accuracy']!r}, llm-foundry {m['value']!r} ({name}, {m['total']} examples)")
        assert ours["metric"] == name
        assert ours["examples"] == m["total"] == LIMIT
        assert ours["accuracy"] == m["value"], rows[-1]  # exactly
    print("\n".join(rows))
    # and the Gauntlet averages llm-foundry's EvalGauntlet callback computes from them
    ours = {**{c: v["average"] for c, v in trained["categories"].items()},
            **{a: v["average"] for a, v in trained["averages"].items()}}
    assert ours == pytest.approx(theirs["gauntlet"], abs=1e-6)
    # the controls measure training: far from chance (else the re-initialisation test proves little)
    accuracy = {t: trained["tasks"][t]["accuracy"] for t in TASKS}
    assert accuracy["word_order"] > 0.6 and accuracy["of_the"] >= 0.5, accuracy


REINIT = """
import sys, torch
from omegaconf import OmegaConf
from llmfoundry.utils.builders import build_composer_model, build_tokenizer
cfg = OmegaConf.to_container(OmegaConf.load(sys.argv[1]), resolve=True)
tok = build_tokenizer(cfg["tokenizer"]["name"], cfg["tokenizer"].get("kwargs") or {})
model_cfg = dict(cfg["model"], init_device="cpu")
torch.manual_seed(12345)
fresh = build_composer_model(name=model_cfg.pop("name"), cfg=model_cfg, tokenizer=tok).state_dict()
ckpt = torch.load(sys.argv[2], map_location="cpu", weights_only=False)
old = ckpt["state"]["model"]
assert sorted(fresh) == sorted(old), "the re-initialised model has other parameters"
assert not any(torch.equal(fresh[k], old[k]) for k in old), "a tensor kept its trained value"
ckpt["state"]["model"] = fresh
torch.save(ckpt, sys.argv[3])
"""


def test_reinitialised_weights_score_differently(trained_tiny, data, trained, tmp_path):
    """A copy of the run whose checkpoint holds the same model freshly initialised: the weights
    are what `beyond eval` scores, not the config alone."""
    run = tmp_path / "reinit"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text((trained_tiny.path / "config.yaml").read_text())
    proc = subprocess.run([sys.executable, "-c", REINIT, str(run / "config.yaml"),
                           str(trained_tiny.path / "checkpoints" / "latest-rank0.pt"),
                           str(run / "checkpoints" / "latest-rank0.pt")],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    fresh = _beyond_eval(run, data, tmp_path / "eval")["tasks"]
    assert all(fresh[t]["examples"] == LIMIT for t in TASKS)
    ours = {t: trained["tasks"][t]["accuracy"] for t in TASKS}
    reinit = {t: fresh[t]["accuracy"] for t in TASKS}
    print(f"trained        {ours}\nre-initialised {reinit}")
    # random weights put " the" after "... of" at rank 1 of 1,024 tokens essentially never
    assert reinit["of_the"] == 0.0 < ours["of_the"]
    assert reinit != ours
