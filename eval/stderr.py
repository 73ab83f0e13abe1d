"""Standard errors of Gauntlet accuracies and of the averages built on them.

Units: an accuracy and its standard error are fractions of examples in [0, 1]; a rescaled score
(accuracy minus the random baseline, over 1 - baseline) and its standard error are in rescaled
units (0 at chance, 1 at a perfect score). ``None`` stands for "not defined" (fewer than two
examples, or an average with any undefined part) and is passed on, never turned into 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def accuracy_stderr(accuracy: float, examples: int) -> float | None:
    """Standard error of a mean of ``examples`` 0/1 outcomes whose mean is ``accuracy``:
    sqrt(p (1 - p) / (n - 1)), the sample standard deviation over sqrt(n), as lm-evaluation-harness's
    ``mean_stderr`` gives for 0/1 items. ``None`` for n < 2 (no spread can be estimated)."""
    n = int(examples)
    if n < 2:
        return None
    p = min(max(float(accuracy), 0.0), 1.0)
    return math.sqrt(p * (1.0 - p) / (n - 1))


def mean_stderr(stderrs: Sequence[float | None]) -> float | None:
    """Standard error of an unweighted mean of k independent estimates: sqrt(sum se_i^2) / k.
    ``None`` if there are none or any of them is ``None``."""
    if not stderrs or any(s is None for s in stderrs):
        return None
    return math.sqrt(sum(float(s) ** 2 for s in stderrs)) / len(stderrs)


def rescaled_stderr(stderr: float | None, baseline: float, subtract: bool = True, rescale: bool = True) -> float | None:
    """Standard error of ``eval.averages.rescaled``'s score: se / (1 - baseline) when the baseline is
    subtracted and the score rescaled; subtracting a constant alone leaves it at se."""
    if stderr is None:
        return None
    return stderr / (1.0 - baseline) if subtract and rescale else float(stderr)


def task_stderr(parts: Sequence[tuple[float, int]]) -> float | None:
    """A task's accuracy standard error from its parts, each (accuracy, examples): one part for an
    ordinary task; one per sub-category for tasks llm-foundry splits by category (MMLU, Jeopardy),
    whose accuracy is the unweighted mean of the parts' accuracies, hence ``mean_stderr``."""
    return mean_stderr([accuracy_stderr(p, n) for p, n in parts])
