"""``<out>/results_lm_eval.json``: ``beyond eval``'s results in the layout of lm-evaluation-harness's
results file (``lm_eval --output_path``; ``simple_evaluate``'s return value), so tools that read
that file read ours.

Filled: ``results`` (per task ``alias``, ``acc,none``, ``acc_stderr,none``), ``groups`` (each
Gauntlet category and named average with an average), ``group_subtasks``, ``configs`` (per task
``task``, ``num_fewshot``, ``task_type``, ``output_type``, ``dataset_path``, ``metric_list``,
``metadata``), ``n-shot``, ``higher_is_better``, ``n-samples``, ``config`` (``model``,
``model_args``, ``batch_size``, ``limit``). Not filled: ``versions``, ``samples`` (see
``--log-samples``), ``git_hash``, ``date``, environment and tokenizer information.

Units: ``acc,none`` of a task is its accuracy (fraction of examples); of a group it is the
Gauntlet's average of *rescaled* scores (0 at chance, 1 perfect), not a size-weighted accuracy as
lm-eval's own groups hold. A standard error lm-eval cannot compute it writes as "N/A"; so do we.
"""

from __future__ import annotations

# llm-foundry ICL task type -> the lm-eval output type that scores the same way
OUTPUT_TYPE = {
    "multiple_choice": "multiple_choice",
    "schema": "multiple_choice",
    "language_modeling": "loglikelihood",  # greedy continuation matches (lm-eval's is_greedy)
    "generation_task_with_answers": "generate_until",
}


def _stderr(value: float | None) -> float | str:
    return "N/A" if value is None else value


def lm_eval_results(results: dict, gauntlet, *, model: str, batch_size: int | None,
                    original_sizes: dict[str, int | None]) -> dict:
    """The lm-eval-shaped dict for ``evaluate``'s ``results`` (``gauntlet``: the Gauntlet that ran;
    ``original_sizes``: task label -> examples in its data file, ``None`` if unknown)."""
    tasks = {t.label: t for t in gauntlet.tasks}
    ran = results["tasks"]
    out_results = {label: {"alias": label, "acc,none": r["accuracy"], "acc_stderr,none": _stderr(r.get("accuracy_stderr"))}
                   for label, r in ran.items()}
    groups, subtasks = {}, {}
    for name, c in results["categories"].items():
        if c["average"] is not None:
            groups[name] = {"alias": name, "acc,none": c["average"], "acc_stderr,none": _stderr(c.get("stderr"))}
            subtasks[name] = list(c["tasks"])
    for name, a in results["averages"].items():
        if a["average"] is not None:
            groups[name] = {"alias": name, "acc,none": a["average"], "acc_stderr,none": _stderr(a.get("stderr"))}
            subtasks[name] = list(a["categories"])
    configs = {}
    for label, r in ran.items():
        task = tasks.get(label)
        configs[label] = {
            "task": label,
            "num_fewshot": r["num_fewshot"],
            "task_type": r["icl_task_type"],
            "output_type": OUTPUT_TYPE.get(r["icl_task_type"], r["icl_task_type"]),
            "dataset_path": task.config.get("dataset_uri") if task else None,
            "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
            "metadata": {"llmfoundry_metric": r.get("metric"), "category": r.get("category"),
                         "random_baseline": task.random_baseline if task else None},
        }
    return {
        "results": out_results,
        "groups": groups,
        "group_subtasks": subtasks,
        "configs": configs,
        "n-shot": {label: r["num_fewshot"] for label, r in ran.items()},
        "higher_is_better": {label: {"acc": True} for label in [*ran, *groups]},
        "n-samples": {label: {"original": original_sizes.get(label), "effective": r["examples"]}
                      for label, r in ran.items()},
        "config": {"model": model, "model_args": results.get("checkpoint"), "batch_size": batch_size,
                   "limit": results.get("limit_per_task")},
    }
