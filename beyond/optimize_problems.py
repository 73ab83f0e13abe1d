"""The optimisation problems behind `optimize` and `plan`: compute, cost (the paper's Eq. 6), the roofline
cost, each with or without a unique-token budget; their answers, result blocks and uncertainty fixes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from scaling.errors import InputError

if TYPE_CHECKING:
    from beyond.optimize_quality import Quality


# --- the optimisation problems --------------------------------------------------------------------

@dataclass(frozen=True)
class Problem:
    """One objective: ``optimum(c, t)`` and ``reference(c, t)`` (the Chinchilla-style model: the least
    training compute for the loss, under the same unique-token budget) give choices with ``params``
    and ``tokens`` (vectorised over loss targets t); ``value(params, tokens)`` is total FLOPs or
    dollars; ``key`` names it."""

    key: str
    optimum: Callable
    reference: Callable
    value: Callable
    u: float | None = None


def compute_problem(demand: float, u: float | None) -> Problem:
    from scaling.optimal import chinchilla_style, compute_optimal, total_flops

    def value(n, d):
        return total_flops(n, d, demand)

    if u is None:
        return Problem("flops", lambda c, t: compute_optimal(c, t, demand), chinchilla_style, value)
    from scaling.data_constrained import compute_optimal_constrained

    return Problem("flops", lambda c, t: compute_optimal_constrained(c, t, demand, u),
                   lambda c, t: compute_optimal_constrained(c, t, 0.0, u), value, u)


def cost_problem(settings, demand, u: float | None) -> Problem:
    """Eq. 6 with the paper's MFU model."""
    from scaling.optimal import chinchilla_style, cost_optimal, total_cost

    def value(n, d):
        return total_cost(settings, demand, n, d)

    if u is None:
        return Problem("cost", lambda c, t: cost_optimal(c, t, settings, demand), chinchilla_style, value)
    from scaling.data_constrained import compute_optimal_constrained, cost_optimal_constrained

    return Problem("cost", lambda c, t: cost_optimal_constrained(c, t, settings, demand, u),
                   lambda c, t: compute_optimal_constrained(c, t, 0.0, u), value, u)


def roofline_problem(serving, train, requests: float, input_tokens: float, output_tokens: float,
                     u: float | None) -> Problem:
    """Eq. 6 with the roofline's dollars per request: k_tr 6 N D + requests x dollars_per_request(N).
    ``value`` raises InputError (one line) when the batch does not fit the model."""
    from scaling.law import TRAIN_FLOPS_PER_PARAM_TOKEN
    from scaling.optimal import chinchilla_style
    from scaling.roofline import dollars_per_request, roofline_cost_optimal

    k_tr = train.dollars_per_train_flop

    def value(n, d):
        return (k_tr * TRAIN_FLOPS_PER_PARAM_TOKEN * n * d
                + requests * dollars_per_request(n, serving, input_tokens, output_tokens))

    if u is None:
        return Problem("cost", lambda c, t: roofline_cost_optimal(c, t, serving, requests, input_tokens, output_tokens,
                                                                  train), chinchilla_style, value)
    from scaling.data_constrained import compute_optimal_constrained
    from scaling.roofline_constrained import roofline_cost_optimal_constrained

    return Problem("cost", lambda c, t: roofline_cost_optimal_constrained(c, t, serving, requests, u, input_tokens,
                                                                          output_tokens, train),
                   lambda c, t: compute_optimal_constrained(c, t, 0.0, u), value, u)


def problem_answer(problem: Problem, q: Quality):
    """``answer(c)`` for the uncertainty and sensitivity: {params, tokens, ratio} under set c."""
    import numpy as np

    def answer(c, prob=problem):
        t = q.target(c)
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):  # a bootstrap set's odd law
            o, r = prob.optimum(c, t), prob.reference(c, t)
            return {"params": float(o.params), "tokens": float(o.tokens),
                    "ratio": float(prob.value(o.params, o.tokens) / prob.value(r.params, r.tokens))}

    return answer


def data_constrained_block(problem: Problem, coeffs, target: float, opt, ref, eq4) -> dict:
    """What the unique-token budget did: epochs of the optimum and the reference, whether it binds,
    and what Eq. 4 (no budget) would have asked for."""
    from scaling.data_constrained import MUENNIGHOFF2023, loss

    u = problem.u
    return {"unique_tokens": u, "repetition": {"name": MUENNIGHOFF2023.name, "r_d_star": MUENNIGHOFF2023.r_d_star,
                                               "r_n_star": MUENNIGHOFF2023.r_n_star},
            "binds": bool(opt.binds), "optimal_epochs": float(opt.tokens) / u, "chinchilla_epochs": float(ref.tokens) / u,
            "optimal_loss_check": float(loss(coeffs, opt.params, opt.tokens, u)),
            "without_budget": {"params": float(eq4.params), "tokens": float(eq4.tokens),
                               "epochs": float(eq4.tokens) / u}}


def serving_block(serving, params, input_tokens: float, output_tokens: float) -> dict:
    """The roofline's serving numbers for one model: batch, GPUs, $/request, tokens/s/GPU, MFU."""
    from scaling.roofline import request_cost

    rc = request_cost(params, serving, input_tokens, output_tokens)
    return {"batch": int(rc.batch), "gpus": int(rc.gpus), "dollars_per_request": float(rc.dollars_per_request),
            "tokens_per_second_per_gpu": float(rc.tokens_per_second_per_gpu),
            "output_tokens_per_second_per_gpu": float(rc.output_tokens_per_second_per_gpu),
            "generation_mfu": float(rc.generation_mfu), "memory_bound": bool(rc.memory_bound),
            "decode_step_seconds": float(rc.decode_step_seconds), "seconds_per_request": float(rc.seconds_per_request)}


def downstream_interval(problem: Problem, coeffs, q: Quality) -> dict | None:
    """Without law bootstrap sets: the answer over the downstream fit's sets (each set's loss target,
    the law's point coefficients). None when there are no downstream sets."""
    import numpy as np

    from scaling.law import check_loss_reachable
    from scaling.uncertainty import interval

    losses = q.downstream_losses
    if losses is None or len(losses) == 0:
        return None
    ok = np.isfinite(losses) & (losses > coeffs.E)
    if problem.u is not None:
        from scaling.data_constrained import loss_floor

        ok &= losses > float(loss_floor(coeffs, problem.u))
    t = np.asarray(losses)[ok]
    if t.size == 0:
        return None
    check_loss_reachable(coeffs, t)
    try:
        o, r = problem.optimum(coeffs, t), problem.reference(coeffs, t)
        ratio = problem.value(o.params, o.tokens) / problem.value(r.params, r.tokens)
    except InputError as exc:
        return {"unavailable": str(exc)}
    return {"over": "the downstream fit's bootstrap sets, with the law's point coefficients (the law's own "
                    "uncertainty is not assessed without its bootstrap sets)",
            "n_sets": int(len(losses)), "n_unreachable": int((~ok).sum()), "percentiles": [5.0, 95.0],
            "optimal_params": interval(o.params), "optimal_tokens": interval(o.tokens),
            f"{problem.key}_ratio": interval(ratio)}


def fix_uncertainty_for_budget(args, result: dict, u: float | None, recommended, reference) -> None:
    """Under a unique-token budget, "at least as good" compares the two models' losses under the
    data-constrained law of each bootstrap set (scaling.uncertainty uses Eq. 4)."""
    if u is None or "uncertainty" not in result:
        return
    import numpy as np

    from scaling.data_constrained import loss
    from scaling.uncertainty import bootstrap_sets

    sets = bootstrap_sets(args.coefficients)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        beats = [float(loss(c, *recommended, u)) <= float(loss(c, *reference, u)) for c in sets]
    result["uncertainty"]["p_recommended_at_least_as_good"] = float(np.mean(beats))
