"""Uncertainty of an optimizer answer over a fit's bootstrap coefficient sets, and sensitivity of
the answer to the inference demand and to hardware settings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from scaling.coefficients import LawCoefficients, coefficients_from_mapping
from scaling.errors import InputError
from scaling.law import loss

PERCENTILES = (5.0, 95.0)
WILD_SPREAD = 100.0  # a params interval wider than this factor is flagged as uninformative
# "Determined": the rule behind ``determined`` in every answer (docs/uncertainty-and-plan.md).
DETERMINED_FACTOR = 3.0  # the 5-95% interval of params and of tokens within x3 of the point, each side
DETERMINED_MIN_SETS = 20  # fewer bootstrap sets than this cannot show an answer is pinned down
DETERMINED_MAX_UNREACHABLE = 0.05  # at most this share of sets may put the target below their floor E
DEMAND_MULTIPLIERS = (0.1, 0.3, 1.0, 3.0, 10.0)  # sensitivity: inference demand x these
SETTING_MULTIPLIERS = (0.5, 2.0)  # sensitivity: MFUs and inference price x these


def bootstrap_sets(spec: str | None) -> list[LawCoefficients]:
    """The bootstrap coefficient sets stored in a ``beyond fit --bootstrap N -o FIT.json`` file
    (empty for named sets and fits without a bootstrap)."""
    if spec is None or not Path(spec).is_file():
        return []
    data = json.loads(Path(spec).read_text())
    return [coefficients_from_mapping(s, f"{spec} bootstrap[{i}]") for i, s in enumerate(data.get("bootstrap") or [])]


def interval(values, pct=PERCENTILES) -> list[float]:
    v = np.asarray(values, dtype=float)
    return [float(np.percentile(v, pct[0])), float(np.percentile(v, pct[1]))]


def summarise(point: dict, per_set: list[dict | None], key: str, recommended: tuple[float, float],
              reference: tuple[float, float], sets: list[LawCoefficients]) -> dict:
    """Intervals of params, tokens and the ratio over the sets where the target is reachable,
    and how often the recommended model is at least as good as the Chinchilla-style one."""
    ok = [r for r in per_set if r is not None]
    if not ok:
        raise InputError("the target loss is unreachable under every bootstrap coefficient set")
    beats = [float(loss(c, *recommended)) <= float(loss(c, *reference)) for c in sets]
    out = {
        "n_sets": len(per_set),
        "n_unreachable": len(per_set) - len(ok),
        "percentiles": list(PERCENTILES),
        "optimal_params": interval([r["params"] for r in ok]),
        "optimal_tokens": interval([r["tokens"] for r in ok]),
        f"{key}_ratio": interval([r["ratio"] for r in ok]),
        "p_recommended_at_least_as_good": float(np.mean(beats)),
    }
    out.update(determination(recommended, out))
    lo, hi = out["optimal_params"]
    if hi / lo > WILD_SPREAD:
        out["warning"] = (f"bootstrap sets disagree wildly: optimal params span x{hi / lo:.0f} "
                          f"({lo:.3g} to {hi:.3g}); the fit is not informative at this target")
    return out


def law_identification(fit: dict) -> dict:
    """Whether a fit's bootstrap pins down the law's exponents: both alpha's and beta's 95%
    intervals (``bootstrap_intervals``) within a factor DETERMINED_FACTOR of the point estimate on
    each side. An unidentified law can still give a determined answer near its runs (the
    coefficients trade off against each other), but must not be extrapolated far."""
    iv = fit.get("bootstrap_intervals")
    if not iv:
        return {"identified": None, "reason": "no bootstrap intervals (fit with a bootstrap to check)"}
    wide = []
    for name in ("alpha", "beta"):
        (lo, hi), point = iv[name], fit[name]
        factor = max(point / lo, hi / point) if lo > 0 else float("inf")
        if factor > DETERMINED_FACTOR:
            wide.append(f"{name} {lo:.3g}-{hi:.3g} around {point:.3g} (x{factor:.3g})")
    if wide:
        return {"identified": False, "reason": f"95% bootstrap intervals wider than x{DETERMINED_FACTOR:g} of the "
                                               f"point: {'; '.join(wide)}"}
    return {"identified": True, "reason": f"alpha and beta 95% bootstrap intervals within x{DETERMINED_FACTOR:g} of the point"}


def not_assessed() -> dict:
    """``determined`` for an answer without bootstrap sets (a named coefficient set, or a fit
    made without ``--bootstrap``): nothing shows whether it is pinned down."""
    return {"determined": None,
            "reason": "not assessed: the coefficients carry no bootstrap sets (fit with --bootstrap N "
                      "and pass that FIT.json to see whether the answer is pinned down)"}


def determination(point: tuple[float, float], summary: dict) -> dict:
    """Whether the bootstrap pins the answer down, and why (not). ``point`` = the recommended
    (params, tokens); ``summary`` holds ``n_sets``, ``n_unreachable`` and the 5-95% intervals
    ``optimal_params`` and ``optimal_tokens``. Determined means: at least DETERMINED_MIN_SETS sets,
    the target reachable in all but DETERMINED_MAX_UNREACHABLE of them, and both intervals within
    a factor DETERMINED_FACTOR of the point estimate on each side."""
    n, unreachable = summary["n_sets"], summary["n_unreachable"]
    if n < DETERMINED_MIN_SETS:
        return {"determined": False,
                "reason": f"only {n} bootstrap sets (at least {DETERMINED_MIN_SETS} are needed to judge)"}
    if unreachable > DETERMINED_MAX_UNREACHABLE * n:
        return {"determined": False,
                "reason": f"the target is below the loss floor E of {unreachable} of {n} bootstrap sets"}
    problems = []
    for name, value, (lo, hi) in (("params", point[0], summary["optimal_params"]),
                                  ("tokens", point[1], summary["optimal_tokens"])):
        factor = max(value / lo, hi / value)
        if factor > DETERMINED_FACTOR:
            problems.append(f"{name} {lo:.3g}-{hi:.3g} reach x{factor:.1f} from {value:.3g}")
    if problems:
        return {"determined": False,
                "reason": f"the 5-95% bootstrap intervals are wider than x{DETERMINED_FACTOR:g} of the answer: "
                          + "; ".join(problems)}
    return {"determined": True,
            "reason": f"5-95% bootstrap intervals of params and tokens within x{DETERMINED_FACTOR:g} "
                      f"of the answer over {n} sets"}


def answer_uncertainty(answer, sets: list[LawCoefficients], point: dict, key: str,
                       recommended: tuple[float, float], reference: tuple[float, float]) -> dict:
    """An optimizer answer over bootstrap coefficient sets: ``answer(c)`` gives {params, tokens,
    ratio} under set ``c`` (InputError when the target is below that set's floor E); returns
    ``summarise``'s intervals."""
    per_set = []
    for c in sets:
        try:
            per_set.append(answer(c))
        except InputError:  # the target is below that set's floor E
            per_set.append(None)
    return summarise(point, per_set, key, recommended, reference, sets)


def demand_sensitivity(answer, demand: float) -> list[dict]:
    """The compute-optimal answer at the inference demand (tokens) x DEMAND_MULTIPLIERS:
    ``answer(d)`` gives {params, tokens, ratio} at demand ``d``."""
    return [{"inference_tokens": demand * m, "demand_multiplier": m, **answer(demand * m)} for m in DEMAND_MULTIPLIERS]


def cost_sensitivity(answer, settings, demand) -> list[dict]:
    """The cost-optimal answer when requests, generation and training MFU, and the inference
    price change: ``answer(settings, demand)`` gives {params, tokens, ratio}. Units: requests,
    MFU fractions, dollars per GPU-hour."""
    import dataclasses

    from scaling.optimal import InferenceDemand

    rows = [{"change": f"requests x{m:g}",
             **answer(settings, InferenceDemand(demand.requests * m, demand.input_tokens, demand.output_tokens))}
            for m in DEMAND_MULTIPLIERS]
    for field, label in (("generation_mfu", "generation MFU"), ("train_mfu", "training MFU")):
        for m in SETTING_MULTIPLIERS:
            value = getattr(settings, field) * m
            if value <= 1:
                rows.append({"change": f"{label} x{m:g}", **answer(dataclasses.replace(settings, **{field: value}), demand)})
    price = settings.as_dict().get("inference_price_per_hour")
    for m in SETTING_MULTIPLIERS:
        if price:
            rows.append({"change": f"inference price x{m:g}",
                         **answer(dataclasses.replace(settings, inference_price_per_hour=price * m), demand)})
    return rows
