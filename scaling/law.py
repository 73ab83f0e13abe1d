"""The loss law and the Chinchilla-style (training-compute-optimal) model.

Units: N parameters, D training tokens, C training FLOPs (C = 6 N D), loss in nats/token.
All functions take scalars or numpy arrays.
"""

from __future__ import annotations

import numpy as np

from scaling.coefficients import LawCoefficients
from scaling.errors import InputError

TRAIN_FLOPS_PER_PARAM_TOKEN = 6.0  # forward + backward
INFERENCE_FLOPS_PER_PARAM_TOKEN = 2.0  # forward only


def training_flops(params, tokens):
    """Training FLOPs, 6 N D."""
    return TRAIN_FLOPS_PER_PARAM_TOKEN * np.asarray(params, float) * np.asarray(tokens, float)


def loss(c: LawCoefficients, params, tokens):
    """Predicted loss L(N, D) = E + A / N**alpha + B / D**beta."""
    n, d = np.asarray(params, float), np.asarray(tokens, float)
    return c.E + c.A * n ** -c.alpha + c.B * d ** -c.beta


def check_loss_reachable(c: LawCoefficients, target_loss) -> np.ndarray:
    """The target loss as an array; InputError if any value is not above the floor E."""
    target = np.asarray(target_loss, float)
    if not np.all(np.isfinite(target)):
        raise InputError("loss must be a finite number")
    if np.any(target <= c.E):
        worst = float(np.min(target))
        raise InputError(
            f"loss {worst:g} is at or below the law's floor E = {c.E:g} ({c.name}): no model reaches it"
        )
    return target


def tokens_for_loss(c: LawCoefficients, params, target_loss):
    """Training tokens a model of N params needs to reach the target loss (inf if it never does)."""
    target = check_loss_reachable(c, target_loss)
    gap = target - c.E - c.A * np.asarray(params, float) ** -c.alpha
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(gap > 0, (c.B / np.where(gap > 0, gap, 1.0)) ** (1 / c.beta), np.inf)


def params_for_loss(c: LawCoefficients, tokens, target_loss):
    """Parameters a model trained on D tokens needs to reach the target loss (inf if never)."""
    target = check_loss_reachable(c, target_loss)
    gap = target - c.E - c.B * np.asarray(tokens, float) ** -c.beta
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(gap > 0, (c.A / np.where(gap > 0, gap, 1.0)) ** (1 / c.alpha), np.inf)


def _g(c: LawCoefficients) -> float:
    """G = (alpha A / (beta B))**(1/(alpha+beta)): N_opt = G (C/6)**(beta/(alpha+beta))."""
    return (c.alpha * c.A / (c.beta * c.B)) ** (1 / (c.alpha + c.beta))


def chinchilla_for_compute(c: LawCoefficients, flops):
    """Loss-minimising (params, tokens) for a training budget of C FLOPs (Chinchilla Eq. 4)."""
    half = np.asarray(flops, float) / TRAIN_FLOPS_PER_PARAM_TOKEN
    a = c.beta / (c.alpha + c.beta)
    params = _g(c) * half**a
    return params, half / params


def chinchilla_for_params(c: LawCoefficients, params):
    """Training tokens that make N params training-compute-optimal: alpha A N^-alpha = beta B D^-beta."""
    n = np.asarray(params, float)
    return (c.beta * c.B / (c.alpha * c.A) * n**c.alpha) ** (1 / c.beta)


def chinchilla_for_tokens(c: LawCoefficients, tokens):
    """Parameters that make D tokens training-compute-optimal."""
    d = np.asarray(tokens, float)
    return (c.alpha * c.A / (c.beta * c.B) * d**c.beta) ** (1 / c.alpha)


def chinchilla_for_loss(c: LawCoefficients, target_loss):
    """Cheapest-to-train (params, tokens) reaching the loss: the optimum splits the reducible
    loss (L - E) as beta/(alpha+beta) on the params term and alpha/(alpha+beta) on the data term."""
    gap = check_loss_reachable(c, target_loss) - c.E
    share = c.alpha + c.beta
    params = (c.A * share / (c.beta * gap)) ** (1 / c.alpha)
    tokens = (c.B * share / (c.alpha * gap)) ** (1 / c.beta)
    return params, tokens
