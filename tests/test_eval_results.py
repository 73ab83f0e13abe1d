"""Eval results beyond accuracies, without a model: standard errors (by hand and against a
bootstrap), their propagation to category and named averages, results cached before standard
errors existed, the lm-evaluation-harness-shaped file, and the per-example log's rows. The real
CPU evaluation with --log-samples is in tests/test_eval.py (it shares the trained tiny model)."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest

from eval.averages import category_report
from eval.evaluate import Target, _task_key, evaluate
from eval.gauntlet import Gauntlet, Task, check_data, load_gauntlet, select
from eval.samples import batch_rows, check_counts, number_rows
from eval.stderr import accuracy_stderr, mean_stderr, rescaled_stderr, task_stderr


def _task(label: str, category: str, baseline: float) -> Task:
    return Task(label, category, 0, baseline, {"label": label, "icl_task_type": "multiple_choice",
                                               "dataset_uri": f"{category}/{label}.jsonl"})


def _gauntlet(subtract: bool = True, rescale: bool = True) -> Gauntlet:
    tasks = [_task("t1", "A", 0.5), _task("t2", "A", 0.25), _task("t3", "B", 0.0)]
    return Gauntlet("toy", Path("toy.yaml"), tasks, ["A", "B"], {"core": ["A", "B"]}, subtract, rescale)


ACCS = {"t1": 0.6, "t2": 0.4, "t3": 0.3}
SIZES = {"t1": 100, "t2": 50, "t3": 200}


def test_accuracy_stderr_by_hand():
    assert accuracy_stderr(0.5, 20) == pytest.approx(0.1147079, abs=1e-7)  # sqrt(0.25 / 19): "+/-0.11 at --limit 20"
    assert accuracy_stderr(0.45, 20) == pytest.approx(0.1141329, abs=1e-7)  # sqrt(0.2475 / 19)
    assert accuracy_stderr(0.6, 100) == pytest.approx(0.0492366, abs=1e-7)  # sqrt(0.24 / 99)
    assert accuracy_stderr(0.0, 20) == 0.0 and accuracy_stderr(1.0, 20) == 0.0
    assert accuracy_stderr(0.5, 1) is None and accuracy_stderr(0.0, 0) is None
    # lm-evaluation-harness's mean_stderr: sample standard deviation / sqrt(n), on the 0/1 outcomes
    for k, n in ((9, 20), (1, 3), (37, 101)):
        items = [1] * k + [0] * (n - k)
        assert accuracy_stderr(k / n, n) == pytest.approx(statistics.stdev(items) / math.sqrt(n), rel=1e-12)
    # sub-category tasks (MMLU): the accuracy is the mean of the parts', so is the standard error
    assert task_stderr([(0.5, 20), (0.45, 20)]) == pytest.approx(math.hypot(0.1147079, 0.1141329) / 2, abs=1e-7)
    assert task_stderr([(0.6, 100)]) == accuracy_stderr(0.6, 100)
    assert task_stderr([(0.5, 20), (1.0, 1)]) is None


def test_category_and_named_stderr_by_hand():
    """t1 (baseline 0.5, 0.6 of 100), t2 (0.25, 0.4 of 50) in A; t3 (0, 0.3 of 200) in B."""
    stderrs = {t: accuracy_stderr(ACCS[t], SIZES[t]) for t in ACCS}
    report = category_report(_gauntlet(), ACCS, stderrs)
    a, b, core = report["categories"]["A"], report["categories"]["B"], report["averages"]["core"]
    # t1: 0.0492366 / (1 - 0.5) = 0.0984732; t2: sqrt(0.24 / 49) = 0.0699854, / 0.75 = 0.0933139
    assert a["task_stderrs"] == pytest.approx({"t1": 0.0984732, "t2": 0.0933139}, abs=1e-7)
    assert a["stderr"] == pytest.approx(0.0678315, abs=1e-7)  # sqrt(0.0984732^2 + 0.0933139^2) / 2
    assert b["stderr"] == pytest.approx(0.0324850, abs=1e-7)  # sqrt(0.21 / 199), baseline 0
    assert core["stderr"] == pytest.approx(0.0376045, abs=1e-7)  # sqrt(0.0678315^2 + 0.0324850^2) / 2
    assert list(a) == ["average", "stderr", "tasks", "task_stderrs", "missing", "partial"]  # stderr beside average
    assert list(core)[:2] == ["average", "stderr"]
    # averages themselves are unchanged by the stderrs
    assert category_report(_gauntlet(), ACCS) == {**report, "categories": {
        c: {**v, "stderr": None, "task_stderrs": dict.fromkeys(v["tasks"])} for c, v in report["categories"].items()},
        "averages": {"core": {**core, "stderr": None}}}
    # baseline subtracted but not rescaled, or not subtracted: the standard error is the accuracy's
    for g in (_gauntlet(subtract=True, rescale=False), _gauntlet(subtract=False)):
        a = category_report(g, ACCS, stderrs)["categories"]["A"]
        assert a["stderr"] == pytest.approx(0.0427849, abs=1e-7)  # sqrt(0.0492366^2 + 0.0699854^2) / 2
    assert rescaled_stderr(None, 0.5) is None and mean_stderr([]) is None


def test_unknown_stderr_propagates_and_partial_categories_keep_theirs():
    stderrs = {"t1": accuracy_stderr(0.6, 100), "t2": None, "t3": accuracy_stderr(0.3, 200)}
    report = category_report(_gauntlet(), ACCS, stderrs)
    assert report["categories"]["A"]["stderr"] is None and report["averages"]["core"]["stderr"] is None
    assert report["categories"]["B"]["stderr"] == pytest.approx(0.0324850, abs=1e-7)
    partial = category_report(_gauntlet(), {"t1": 0.6, "t3": 0.3}, stderrs)  # t2 did not run
    a = partial["categories"]["A"]
    assert a["partial"] and a["missing"] == ["t2"] and a["stderr"] == pytest.approx(0.0984732, abs=1e-7)
    assert partial["averages"]["core"]["partial"]
    assert partial["averages"]["core"]["stderr"] == pytest.approx(math.hypot(0.0984732, 0.0324850) / 2, abs=1e-7)
    empty = category_report(_gauntlet(), {"t3": 0.3}, stderrs)["categories"]["A"]
    assert empty["average"] is None and empty["stderr"] is None


def test_stderrs_agree_with_a_bootstrap():
    """Synthetic 0/1 outcomes for the paper's 31 tasks (its baselines, 30-300 examples each); the
    closed-form standard errors of every category and of core_average against the spread of the
    same averages over 2,000 resamples of each task's examples: within 10%."""
    import numpy as np

    g = load_gauntlet()
    rng = np.random.default_rng(20240717)
    outcomes = {}
    for t in g.tasks:
        n = int(rng.integers(30, 301))
        p = rng.uniform(t.random_baseline + 0.05, 0.95)
        outcomes[t.label] = (rng.random(n) < p).astype(float)
    accs = {k: float(v.mean()) for k, v in outcomes.items()}
    report = category_report(g, accs, {k: accuracy_stderr(accs[k], len(v)) for k, v in outcomes.items()})
    reps = 2000
    boot = {k: v[rng.integers(0, len(v), size=(reps, len(v)))].mean(axis=1) for k, v in outcomes.items()}
    draws = [category_report(g, {k: float(boot[k][i]) for k in boot}) for i in range(reps)]
    rows = []
    for cat in g.categories:
        spread = float(np.std([d["categories"][cat]["average"] for d in draws], ddof=1))
        rows.append((cat, report["categories"][cat]["stderr"], spread))
    spread = float(np.std([d["averages"]["core_average"]["average"] for d in draws], ddof=1))
    rows.append(("core_average", report["averages"]["core_average"]["stderr"], spread))
    one = "copa"
    rows.append((one, accuracy_stderr(accs[one], len(outcomes[one])), float(np.std(boot[one], ddof=1))))
    print("\n".join(f"{name}: formula {f:.5f}, bootstrap {b:.5f}" for name, f, b in rows))
    for name, formula, bootstrap in rows:
        assert formula == pytest.approx(bootstrap, rel=0.10), name


# --- evaluate() without a model: caches, the lm-eval file --------------------------------------

@pytest.fixture
def setup(tmp_path, monkeypatch):
    """copa (25 examples in the file) and winograd (1) with data files, a target whose weights
    are never loaded, and _run_tasks replaced by a recorder that returns made-up results."""
    data = tmp_path / "data"
    (data / "commonsense_reasoning").mkdir(parents=True)
    (data / "language_understanding").mkdir(parents=True)
    row = '{"query": "q", "choices": ["a", "b"], "gold": 0}\n'
    (data / "commonsense_reasoning" / "copa.jsonl").write_text(row * 25)
    (data / "language_understanding" / "winograd_wsc.jsonl").write_text(row)
    g = check_data(select(load_gauntlet(), tasks=["copa", "winograd"]), data)
    target = Target({"name": "mpt_causal_lm"}, {}, "/nowhere/latest-rank0.pt", 128, tmp_path / "out", "abc")
    calls = []

    def fake_run(tasks, target, *, limit, log_samples, **_):
        calls.append(([t.label for t in tasks], log_samples))
        out = {}
        for t in tasks:
            n = 20
            out[t.label] = {"accuracy": 0.5, "accuracy_stderr": accuracy_stderr(0.5, n), "examples": n,
                            "icl_task_type": t.icl_type, "num_fewshot": t.num_fewshot, "category": t.category,
                            "metric": "InContextLearningMultipleChoiceAccuracy", "key": _task_key(target, t, limit)}
            if log_samples:
                path = target.out_dir / "samples" / f"{t.label}.jsonl"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("{}\n" * n)
                out[t.label]["samples_file"] = f"samples/{t.label}.jsonl"
            (target.out_dir / "tasks" / f"{t.label}.json").write_text(json.dumps(out[t.label]))
        return out

    monkeypatch.setattr("eval.evaluate._run_tasks", fake_run)
    return g, target, calls


def _old_cache(g, target, label: str, accuracy: float, examples: int, limit) -> Path:
    """A task result as the code before standard errors wrote it."""
    task = next(t for t in g.tasks if t.label == label)
    path = target.out_dir / "tasks" / f"{label}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"accuracy": accuracy, "examples": examples, "icl_task_type": task.icl_type,
                                "num_fewshot": task.num_fewshot, "category": task.category,
                                "metric": "InContextLearningMultipleChoiceAccuracy",
                                "key": _task_key(target, task, limit)}, indent=2) + "\n")
    return path


def test_results_cached_without_stderr_are_read(setup):
    g, target, calls = setup
    copa = _old_cache(g, target, "copa", 0.45, 20, 20)
    _old_cache(g, target, "winograd", 1.0, 1, 20)
    res = evaluate(g, target, limit=20, progress=False)
    assert calls == []  # both cached: nothing evaluated
    assert res["tasks"]["copa"]["accuracy_stderr"] == pytest.approx(0.1141329, abs=1e-7)  # sqrt(.45 * .55 / 19)
    assert res["tasks"]["winograd"]["accuracy_stderr"] is None  # one example
    assert list(res["tasks"]["copa"])[:2] == ["accuracy", "accuracy_stderr"]
    cached = json.loads(copa.read_text())  # the cache file is brought up to date, key kept
    assert cached["accuracy_stderr"] == res["tasks"]["copa"]["accuracy_stderr"] and cached["key"]
    cr = res["categories"]["commonsense_reasoning"]
    assert cr["stderr"] == pytest.approx(0.1141329 / 0.5, abs=1e-6) and cr["partial"]
    assert res["categories"]["language_understanding"]["stderr"] is None
    assert res["averages"]["core_average"]["stderr"] is None  # one category's is unknown
    assert json.loads((target.out_dir / "gauntlet.json").read_text())["tasks"] == res["tasks"]


def test_lm_eval_harness_layout(setup):
    g, target, _ = setup
    _old_cache(g, target, "copa", 0.45, 20, 20)
    _old_cache(g, target, "winograd", 1.0, 1, 20)
    res = evaluate(g, target, limit=20, batch_size=8, progress=False)
    h = json.loads((target.out_dir / "results_lm_eval.json").read_text())
    assert list(h) == ["results", "groups", "group_subtasks", "configs", "n-shot", "higher_is_better", "n-samples",
                       "config"]
    assert h["results"]["copa"] == {"alias": "copa", "acc,none": 0.45,
                                    "acc_stderr,none": res["tasks"]["copa"]["accuracy_stderr"]}
    assert h["results"]["winograd"]["acc_stderr,none"] == "N/A"  # as lm-eval writes an undefined stderr
    cr = res["categories"]["commonsense_reasoning"]
    assert h["groups"]["commonsense_reasoning"] == {"alias": "commonsense_reasoning", "acc,none": cr["average"],
                                                    "acc_stderr,none": cr["stderr"]}
    assert h["groups"]["core_average"]["acc,none"] == res["averages"]["core_average"]["average"]
    assert h["groups"]["core_average"]["acc_stderr,none"] == "N/A"
    assert "reading_comprehension" not in h["groups"]  # no task of it ran: no average
    assert h["group_subtasks"]["language_understanding"] == ["winograd"]
    assert h["n-samples"] == {"copa": {"original": 25, "effective": 20}, "winograd": {"original": 1, "effective": 1}}
    assert h["configs"]["winograd"]["num_fewshot"] == 3 and h["configs"]["winograd"]["task_type"] == "schema"
    assert h["configs"]["winograd"]["output_type"] == "multiple_choice"
    assert h["n-shot"] == {"copa": 0, "winograd": 3}
    assert h["config"] == {"model": "beyond-mpt", "model_args": "/nowhere/latest-rank0.pt", "batch_size": 8,
                           "limit": 20}


def test_log_samples_evaluates_cached_tasks_without_a_log(setup):
    g, target, calls = setup
    _old_cache(g, target, "copa", 0.45, 20, None)
    _old_cache(g, target, "winograd", 0.5, 3, None)
    evaluate(g, target, progress=False)
    assert calls == []
    res = evaluate(g, target, progress=False, log_samples=True)  # no logs yet: both run again
    assert calls == [(["copa", "winograd"], True)]
    assert res["tasks"]["copa"]["samples_file"] == "samples/copa.jsonl"
    evaluate(g, target, progress=False, log_samples=True)  # logs there now
    (target.out_dir / "samples" / "winograd.jsonl").unlink()
    evaluate(g, target, progress=False, log_samples=True)
    assert calls == [(["copa", "winograd"], True), (["winograd"], True)]


# --- the per-example rows ------------------------------------------------------------------------

def _decode(ids: list[int]) -> str:
    return "".join(f" w{i}" for i in ids)


def test_rows_from_llmfoundry_metric_outputs():
    """The per-example dicts llm-foundry 0.22's ICL metrics return from update() (their keys and
    types as InContextLearning*Accuracy build them; metric_name as Composer's HuggingFaceModel adds it)."""
    torch = pytest.importorskip("torch")
    t = torch.tensor
    ids = t([[1, 2, 3, 0], [1, 2, 4, 0], [5, 6, 7, 0], [5, 6, 8, 0]])
    mc = {"context": [t([1, 2]), t([5, 6])], "correct_choice": [t([4]), t([7])], "correct_choice_idx": [1, 0],
          "selected_choice": [t([4]), t([8])], "selected_choice_idx": [1, 1],
          "all_choices": [[ids[0], ids[1]], [ids[2], ids[3]]], "result": [1, 0],
          "metric_name": ["InContextLearningMultipleChoiceAccuracy"] * 4}
    rows = batch_rows(mc, {"input_ids": ids}, None, _decode)
    assert rows == [
        {"context": " w1 w2", "target": " w4", "target_index": 1, "prediction": " w4", "prediction_index": 1,
         "correct": 1, "metric": "InContextLearningMultipleChoiceAccuracy"},
        {"context": " w5 w6", "target": " w7", "target_index": 0, "prediction": " w8", "prediction_index": 1,
         "correct": 0, "metric": "InContextLearningMultipleChoiceAccuracy"}]
    lm = {"context": [t([1, 2])], "label": [t([3, 4])], "output": [t([3, 9])], "result": [0],
          "metric_name": ["InContextLearningLMAccuracy"]}
    assert batch_rows(lm, {"input_ids": t([[1, 2, 3, 4]])}, None, _decode) == [
        {"context": " w1 w2", "target": " w3 w4", "prediction": " w3 w9", "correct": 0,
         "metric": "InContextLearningLMAccuracy"}]
    batch = {"input_ids": t([[0, 0, 5, 6]]), "attention_mask": t([[False, False, True, True]])}
    gen = {"cleaned_output": ["42 apples"], "original_label": [["42"]], "cleaned_label": [{"42"}], "result": [1],
           "metric_name": ["InContextLearningGenerationExactMatchAccuracy"]}
    assert batch_rows(gen, batch, ["42 apples."], _decode) == [
        {"context": " w5 w6", "target": ["42"], "prediction": "42 apples", "output": "42 apples.", "correct": 1,
         "metric": "InContextLearningGenerationExactMatchAccuracy"}]
    json.dumps(rows)  # plain JSON


def test_rows_are_numbered_by_their_example_in_the_file():
    examples = [{"q": i, "category": "b" if i % 3 else "a"} for i in range(7)]
    rows = [{"correct": 1}, {"correct": 0}, {"correct": 1}]
    assert [r["index"] for r in number_rows(rows, examples)] == [0, 1, 2]
    a = number_rows(rows, examples, "a")  # rows of sub-category "a": examples 0, 3, 6
    assert [(r["index"], r["category"], r["doc"]["q"]) for r in a] == [(0, "a", 0), (3, "a", 3), (6, "a", 6)]
    assert list(a[0]) == ["index", "category", "doc", "correct"]
    with pytest.raises(ValueError, match="4 per-example outputs for 3 examples"):
        number_rows(rows + rows[:1], examples, "a")
    assert check_counts(rows, 2.0, 3.0) is None
    assert "3 examples with 2 correct logged, the metric counted 4 with 2" in check_counts(rows, 2.0, 4.0)
