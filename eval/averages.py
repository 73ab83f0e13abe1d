"""Category and core averages, as llm-foundry's ``EvalGauntlet`` callback computes them
(accuracy minus the task's random baseline, divided by 1 - baseline, tasks weighted equally within
a category; named averages such as ``core_average`` = unweighted mean of their categories), except
that a category with missing tasks is kept, averaged over the tasks it has, and marked partial:
llm-foundry's callback drops such a category with only a log warning.

Each average carries a ``stderr`` (same units as the average; ``eval.stderr``): a task's rescaled
standard error is its accuracy's over 1 - baseline, a category's is sqrt(sum se_i^2) / k over its k
tasks (independent samples), a named average's the same over its categories; ``None`` where any
contributing standard error is unknown."""

from __future__ import annotations

from eval.stderr import mean_stderr, rescaled_stderr


def rescaled(accuracy: float, baseline: float, subtract: bool = True, rescale: bool = True) -> float:
    """(accuracy - baseline) / (1 - baseline): 0 at chance, 1 at a perfect score."""
    score = accuracy - baseline if subtract else accuracy
    return score / (1.0 - baseline) if subtract and rescale else score


def category_report(gauntlet, accuracies: dict[str, float], stderrs: dict[str, float | None] | None = None) -> dict:
    """Per-category and named averages with completeness flags and standard errors.

    ``accuracies``: task label -> accuracy in [0, 1] for the tasks that ran; ``stderrs``: task label
    -> that accuracy's standard error (fraction of examples; ``None`` or absent: unknown).
    """
    stderrs = stderrs or {}
    categories = {}
    for cat in gauntlet.categories:
        tasks = [t for t in gauntlet.tasks if t.category == cat]
        present = [t for t in tasks if t.label in accuracies]
        scores = {t.label: rescaled(accuracies[t.label], t.random_baseline, gauntlet.subtract_random_baseline,
                                    gauntlet.rescale_accuracy) for t in present}
        task_stderrs = {t.label: rescaled_stderr(stderrs.get(t.label), t.random_baseline,
                                                 gauntlet.subtract_random_baseline, gauntlet.rescale_accuracy)
                        for t in present}
        missing = sorted([t.label for t in tasks if t.label not in accuracies] +
                         [m for m, why in gauntlet.missing.items() if why.startswith(f"{cat}:")])
        categories[cat] = {
            "average": sum(scores.values()) / len(scores) if scores else None,
            "stderr": mean_stderr(list(task_stderrs.values())),
            "tasks": scores,
            "task_stderrs": task_stderrs,
            "missing": missing,
            "partial": bool(missing),
        }
    return {"categories": categories, "averages": named_averages(gauntlet, categories)}


def named_averages(gauntlet, categories: dict[str, dict]) -> dict:
    """Each named average (``core_average``, ...): the unweighted mean of its categories'
    ``average`` (a category missing or without an average is left out and marks it partial), and
    its ``stderr`` from the categories' ``stderr`` (``None`` if any is unknown)."""
    averages = {}
    for name, members in gauntlet.averages.items():
        present = [c for c in members if c in categories and categories[c].get("average") is not None]
        absent = [c for c in members if c not in present]
        partial = bool(absent) or any(categories[c].get("partial") for c in present)
        averages[name] = {
            "average": sum(categories[c]["average"] for c in present) / len(present) if present else None,
            "stderr": mean_stderr([categories[c].get("stderr") for c in present]),
            "categories": present,
            "missing_categories": absent,
            "partial": partial,
        }
    return averages
