"""Held-out checks: fit Eq. 4 on some runs, predict the others, and measure the error.

``beyond fit RUNS --holdout EXPR`` holds out the runs matching one comparison (``params>1.5B``,
``tokens_per_param<=100``); ``beyond report`` runs two fixed splits (the largest model size, and
the long tokens/param ratios) through the same code. Errors are relative, in loss units:
(predicted - actual) / actual, so a negative bias means the law predicts lower loss than the
runs reached (it is optimistic about the held-out runs).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from ioutil import human
from scaling.errors import InputError
from scaling.fit import FitResult, fit_law
from scaling.runs import MIN_RUNS, RunTable

FIELDS = {"params": "params", "n": "params", "tokens_per_param": "tokens_per_param",
          "tokens/param": "tokens_per_param", "ratio": "tokens_per_param"}
SUFFIXES = {"": 1.0, "K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12}
TYPICAL_MAX_RATIO = 100.0  # tokens/param: the "typical" range the paper's Sec. 5 fits on
_EXPR = re.compile(r"\s*([a-z_/]+)\s*(>=|<=|>|<)\s*([0-9]*\.?[0-9]+(?:e[-+]?[0-9]+)?)\s*([a-z]?)\s*", re.IGNORECASE)
_EXAMPLES = "e.g. params>1.5B, params<=400M, tokens_per_param>100"


@dataclass(frozen=True)
class HoldoutRule:
    """Hold out runs whose ``field`` (params N, or tokens/param D/N) compares ``op`` to ``value``."""

    field: str  # "params" | "tokens_per_param"
    op: str  # ">", ">=", "<", "<="
    value: float
    text: str

    def mask(self, runs: RunTable) -> np.ndarray:
        """True for each run this rule holds out."""
        if self.field == "params":
            return _compare(runs.params, self.op, self.value, rtol=0.0)
        return _compare(filter_ratio(runs), self.op, self.value, rtol=runs.ratio_tolerance())


def parse_holdout(expr: str) -> HoldoutRule:
    """'params>1.5B' / 'tokens_per_param<=100' -> HoldoutRule. Suffixes K, M, B (=G), T (powers
    of 1,000); params in parameters, tokens_per_param in training tokens per parameter."""
    m = _EXPR.fullmatch(expr or "")
    if not m:
        raise InputError(f"holdout expression {expr!r}: expected FIELD OP NUMBER ({_EXAMPLES})")
    name, op, number, suffix = m.groups()
    field = FIELDS.get(name.lower())
    if field is None:
        raise InputError(f"holdout expression {expr!r}: unknown field {name!r} (params or tokens_per_param)")
    if suffix.upper() not in SUFFIXES:
        raise InputError(f"holdout expression {expr!r}: unknown suffix {suffix!r} (K, M, B, T)")
    value = float(number) * SUFFIXES[suffix.upper()]
    if not math.isfinite(value):
        raise InputError(f"holdout expression {expr!r}: {number}{suffix} is not a finite number")
    return HoldoutRule(field, op, value, f"{field}{op}{number}{suffix.upper()}")


def filter_ratio(runs: RunTable) -> np.ndarray:
    """Tokens/param of each run as held-out rules and splits compare it: the nominal (planned)
    ratio where known (runs are rounded up to whole batches), else D/N."""
    return runs.nominal_tokens_per_param


def _compare(values: np.ndarray, op: str, bound: float, rtol: float | np.ndarray) -> np.ndarray:
    """values OP bound, where values within ``rtol`` (relative) of the bound count as equal to it."""
    near = np.abs(values - bound) <= rtol * abs(bound)
    if op == ">":
        return (values > bound) & ~near
    if op == ">=":
        return (values > bound) | near
    if op == "<":
        return (values < bound) & ~near
    if op == "<=":
        return (values < bound) | near
    raise InputError(f"unknown comparison {op!r}")


@dataclass
class HoldoutResult:
    """A fit on the kept runs and its predictions (loss, nats/token) for the held-out ones."""

    expr: str
    fit: FitResult
    params: np.ndarray  # held-out runs: N params
    tokens: np.ndarray  # held-out runs: D training tokens
    loss: np.ndarray  # held-out runs: final loss
    predicted: np.ndarray  # the fitted law's loss at (N, D)

    @property
    def rel_error(self) -> np.ndarray:
        """(predicted - actual) / actual, per held-out run."""
        return (self.predicted - self.loss) / self.loss

    def summary(self) -> dict:
        """Counts and error statistics (relative errors, dimensionless)."""
        err = self.rel_error
        return {"expr": self.expr, "n_runs": int(self.loss.size), "n_fit": int(self.fit.n_runs),
                "mean_abs_rel_error": float(np.mean(np.abs(err))), "max_abs_rel_error": float(np.max(np.abs(err))),
                "bias": float(np.mean(err)), "n_predicted_below_actual": int(np.sum(err < 0))}

    def as_dict(self) -> dict:
        """summary() plus the held-out runs and the fitted coefficients."""
        runs = [{"params": float(n), "tokens": float(d), "tokens_per_param": float(d / n), "loss": float(y),
                 "predicted": float(p), "rel_error": float(e)}
                for n, d, y, p, e in zip(self.params, self.tokens, self.loss, self.predicted, self.rel_error)]
        return {**self.summary(), "coefficients": self.fit.coefficients.as_dict(), "runs": runs}


def holdout_check(runs: RunTable, rule: HoldoutRule | str, *, delta: float | None = None,
                  min_fit: int = MIN_RUNS, name: str | None = None) -> HoldoutResult:
    """Fit Eq. 4 (``scaling.fit.fit_law``) on the runs ``rule`` does not hold out, predict the rest."""
    rule = parse_holdout(rule) if isinstance(rule, str) else rule
    return split_check(runs, rule.mask(runs), rule.text, delta=delta, min_fit=min_fit, name=name)


def split_check(runs: RunTable, held_out: np.ndarray, expr: str, *, delta: float | None = None,
                min_fit: int = MIN_RUNS, name: str | None = None) -> HoldoutResult:
    """Fit on ``runs`` where ``held_out`` is False, predict where it is True. InputError when
    nothing is held out or fewer than ``min_fit`` runs are left to fit."""
    from scaling.law import loss

    held_out = np.asarray(held_out, dtype=bool)
    n_out = int(held_out.sum())
    if n_out == 0:
        raise InputError(f"holdout {expr}: holds out none of the {held_out.size} runs")
    n_fit = held_out.size - n_out
    if n_fit < min_fit:
        raise InputError(f"holdout {expr}: leaves {n_fit} of {held_out.size} runs to fit, "
                         f"need at least {min_fit} to fit 5 coefficients")
    fit_on, out = runs.select(~held_out), runs.select(held_out)
    kw = {} if delta is None else {"delta": delta}
    fit = fit_law(fit_on.params, fit_on.tokens, fit_on.loss, name=name or f"fit without {expr}", **kw)
    predicted = np.asarray(loss(fit.coefficients, out.params, out.tokens), dtype=np.float64)
    return HoldoutResult(expr, fit, out.params, out.tokens, out.loss, predicted)


@dataclass(frozen=True)
class Split:
    """A named extrapolation split for the report: which runs it holds out, and why."""

    name: str
    description: str
    expr: str
    held_out: np.ndarray


def largest_size_split(runs: RunTable) -> Split:
    """Fit on the smaller model sizes, predict the largest (N params)."""
    n_max = float(runs.params.max())
    return Split("largest size", "fit on the smaller model sizes, predict the largest", f"params>={human(n_max)}",
                 runs.params >= n_max)


def long_ratio_split(runs: RunTable) -> Split:
    """Fit on <= 100 tokens/param when the table has longer runs (the paper's Sec. 5), otherwise
    on the lower half of its distinct ratios (the median included); predict the longer runs."""
    ratios = filter_ratio(runs)
    cut = TYPICAL_MAX_RATIO
    if not _compare(ratios, ">", cut, runs.ratio_tolerance()).any():
        distinct = distinct_ratios(ratios)
        cut = float(distinct[(len(distinct) + 1) // 2 - 1])
    return Split("long ratios", f"fit on <= {cut:g} tokens/param, predict the longer runs",
                 f"tokens_per_param>{cut:g}", _compare(ratios, ">", cut, runs.ratio_tolerance()))


def distinct_ratios(ratios: np.ndarray, rtol: float = 1e-3) -> np.ndarray:
    """Sorted distinct tokens/param values; values within ``rtol`` of the previous one merge
    into it (runs planned at one ratio, rounded to whole batches), keeping the group's largest."""
    out: list[float] = []
    for r in np.sort(np.asarray(ratios, dtype=np.float64)):
        if out and r <= out[-1] * (1 + rtol):
            out[-1] = float(r)
        else:
            out.append(float(r))
    return np.array(out)


def extrapolation_checks(runs: RunTable) -> list[dict]:
    """The report's two splits: each a dict with ``split``, ``description`` and either ``result``
    (a HoldoutResult) or ``unavailable`` (why the split was not possible on these runs)."""
    out = []
    for split in (largest_size_split(runs), long_ratio_split(runs)):
        row: dict = {"split": split.name, "description": split.description, "expr": split.expr}
        try:
            row["result"] = split_check(runs, split.held_out, split.expr)
        except InputError as exc:
            row["unavailable"] = str(exc)
        out.append(row)
    return out
