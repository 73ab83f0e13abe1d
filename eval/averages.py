"""Category and core averages, as llm-foundry's ``EvalGauntlet`` callback computes them
(accuracy minus the task's random baseline, divided by 1 - baseline, tasks weighted equally within
a category; named averages such as ``core_average`` = unweighted mean of their categories), except
that a category with missing tasks is kept, averaged over the tasks it has, and marked partial:
llm-foundry's callback drops such a category with only a log warning."""

from __future__ import annotations


def rescaled(accuracy: float, baseline: float, subtract: bool = True, rescale: bool = True) -> float:
    """(accuracy - baseline) / (1 - baseline): 0 at chance, 1 at a perfect score."""
    score = accuracy - baseline if subtract else accuracy
    return score / (1.0 - baseline) if subtract and rescale else score


def category_report(gauntlet, accuracies: dict[str, float]) -> dict:
    """Per-category and named averages with completeness flags.

    ``accuracies``: task label -> accuracy in [0, 1] for the tasks that ran.
    """
    categories = {}
    for cat in gauntlet.categories:
        tasks = [t for t in gauntlet.tasks if t.category == cat]
        scores = {t.label: rescaled(accuracies[t.label], t.random_baseline, gauntlet.subtract_random_baseline,
                                    gauntlet.rescale_accuracy) for t in tasks if t.label in accuracies}
        missing = sorted([t.label for t in tasks if t.label not in accuracies] +
                         [m for m, why in gauntlet.missing.items() if why.startswith(f"{cat}:")])
        categories[cat] = {
            "average": sum(scores.values()) / len(scores) if scores else None,
            "tasks": scores,
            "missing": missing,
            "partial": bool(missing),
        }
    return {"categories": categories, "averages": named_averages(gauntlet, categories)}


def named_averages(gauntlet, categories: dict[str, dict]) -> dict:
    """Each named average (``core_average``, ...): the unweighted mean of its categories'
    ``average`` (a category missing or without an average is left out and marks it partial)."""
    averages = {}
    for name, members in gauntlet.averages.items():
        present = [c for c in members if c in categories and categories[c].get("average") is not None]
        absent = [c for c in members if c not in present]
        partial = bool(absent) or any(categories[c].get("partial") for c in present)
        averages[name] = {
            "average": sum(categories[c]["average"] for c in present) / len(present) if present else None,
            "categories": present,
            "missing_categories": absent,
            "partial": partial,
        }
    return averages
