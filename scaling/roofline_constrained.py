"""Eq. 6 under the roofline serving cost and a unique-data budget together (issue 17).

``scaling.roofline.roofline_cost_optimal`` minimises ``k_tr 6 N D(N) + requests x dollars_per_request(N)``
with ``D(N)`` from Eq. 4; ``scaling.data_constrained`` gives ``D(N)`` when only U unique tokens exist
(Muennighoff et al. 2023). This module puts the two together: the same objective with
``D(N) = scaling.data_constrained.tokens_for_loss(N, loss, U)``.

- **Where the budget does not bind, the roofline optimum is the answer, unchanged.** The
  data-constrained law is never below Eq. 4, so its D(N) is never below Eq. 4's and the objective
  is never lower; at the roofline optimum (N*, D*) with D* <= U (and N* at most the compute-optimal
  N for D*, which an inference-aware optimum always is) the two laws agree, so the objective there
  is the same and (N*, D*) stays optimal (``binds`` False; always so for U = inf, bit for bit).
- **Binding points** are solved directly: the objective over N between Eq. 4's N_min (below which
  no D is enough even without a budget; under the budget D(N) is infinite further up, at the
  n_lo where the effective data saturates) and the larger of the budget's training-compute-optimal
  N (``compute_optimal_constrained`` at zero demand) and Eq. 4's Chinchilla N. Past that N the
  training FLOPs rise along the iso-loss curve and so does the per-request cost (fixed batch), so
  the optimum is not beyond it. The search is ``scaling.roofline``'s: a grid in log(log(N / N_min)),
  here with 48 points and per-point span, then golden-section refinement of the best cell, for all
  points at once. Sizes whose batch does not fit (an integer GPU count) or that cannot reach the
  loss are +inf and so never chosen. tests/test_optimize_extensions.py checks it against a dense
  brute force over log N.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scaling import data_constrained as dc
from scaling.coefficients import LawCoefficients
from scaling.errors import InputError
from scaling.law import TRAIN_FLOPS_PER_PARAM_TOKEN
from scaling.optimal import PAPER_INPUT_TOKENS, PAPER_OUTPUT_TOKENS, CostSettings
from scaling.roofline import (
    RooflineSettings,
    _dollars_unchecked,
    _minimise,
    _tokens,
    roofline_cost_optimal,
)

_GRID = 48  # points per target in y = log(log(N / N_min)), the span normalised to the target's top
_Y_SPAN = 28.0
_CHUNK = 1 << 12


@dataclass(frozen=True)
class ConstrainedRooflineChoice:
    """Arrays: the cost-optimal params and training tokens under the roofline and a unique-token
    budget, its dollars (training, serving, total), and the budget's effect: ``unique_tokens`` U,
    ``epochs`` D / U (0 for U = inf) and ``binds`` (whether the budget changed the answer)."""

    params: np.ndarray
    tokens: np.ndarray
    dollars: np.ndarray
    train_dollars: np.ndarray
    inference_dollars: np.ndarray
    unique_tokens: np.ndarray
    epochs: np.ndarray
    binds: np.ndarray


def roofline_cost_optimal_constrained(c: LawCoefficients, target_loss, settings: RooflineSettings, requests,
                                      unique_tokens, input_tokens=PAPER_INPUT_TOKENS,
                                      output_tokens=PAPER_OUTPUT_TOKENS, train: CostSettings | None = None,
                                      rep: dc.RepetitionConstants = dc.MUENNIGHOFF2023) -> ConstrainedRooflineChoice:
    """(N*, D*) minimising k_tr 6 N D + requests x dollars_per_request(N) at L(N, D; U) = target_loss.

    ``target_loss``, ``requests`` and ``unique_tokens`` broadcast. InputError for U <= 0, a target at
    or below the budget's loss floor (``data_constrained.check_reachable``), or when no size that
    reaches the target fits the serving setup."""
    target, u = dc.check_reachable(c, target_loss, unique_tokens, rep)
    req = np.asarray(requests, float)
    if not np.all(np.isfinite(req) & (req >= 0)):
        raise InputError("requests must be finite numbers >= 0")
    inp, out = _tokens(input_tokens, output_tokens)
    target, req, u = np.broadcast_arrays(target, req, u)
    plain = roofline_cost_optimal(c, target, settings, req, inp, out, train)
    params, tokens = np.array(plain.params, float), np.array(plain.tokens, float)
    dollars, tr, sv = (np.array(v, float) for v in (plain.dollars, plain.train_dollars, plain.inference_dollars))
    with np.errstate(invalid="ignore", over="ignore"):
        # (the second test is rounding-safe: an inference-aware optimum is at most compute-optimal for its D)
        binds = np.isfinite(u) & ((tokens > u) | (params > dc.unique_params(c, np.minimum(tokens, u)) * (1 + 1e-9)))
    if np.any(binds):
        idx = np.flatnonzero(binds)
        k_tr = (train or CostSettings()).dollars_per_train_flop
        flat = [a.reshape(-1) for a in (params, tokens, dollars, tr, sv)]
        ft, fr, fu = target.ravel(), req.ravel(), u.ravel()
        for i in range(0, idx.size, _CHUNK):
            part = idx[i : i + _CHUNK]
            got = _binding(c, ft[part], fr[part], fu[part], settings, inp, out, k_tr, rep)
            for dest, src in zip(flat, got):
                dest[part] = src
    with np.errstate(divide="ignore"):
        epochs = tokens / u
    return ConstrainedRooflineChoice(params=params, tokens=tokens, dollars=dollars, train_dollars=tr,
                                     inference_dollars=sv, unique_tokens=np.array(u, float), epochs=epochs,
                                     binds=np.asarray(binds))


class _Objective:
    """Training + serving dollars of a chunk of binding points as a function of the normalised
    y = log(t / t_top), t = log(N / N_min) (N_min: Eq. 4's, where D -> inf without a budget)."""

    def __init__(self, c, target, requests, u, settings, inp, out, k_tr, rep, n_top):
        self.c, self.target, self.requests, self.u, self.s = c, target, requests, u, settings
        self.inp, self.out, self.k_tr, self.rep = inp, out, k_tr, rep
        self.n_min = (c.A / (target - c.E)) ** (1.0 / c.alpha)
        self.t_top = np.log(n_top / self.n_min)

    def params(self, y):
        return self.n_min * np.exp(self.t_top * np.exp(y))

    def parts(self, y):
        n = self.params(y)
        d = dc.tokens_for_loss(self.c, n, self.target, self.u, self.rep, unreachable="inf")
        with np.errstate(invalid="ignore", over="ignore"):
            train = self.k_tr * TRAIN_FLOPS_PER_PARAM_TOKEN * n * d
        serve = self.requests * _dollars_unchecked(n, self.s, self.inp, self.out)
        return n, d, train, serve

    def __call__(self, y):
        _, _, train, serve = self.parts(y)
        total = train + serve
        return np.where(np.isfinite(total), total, np.inf)


def _binding(c, target, requests, u, settings, inp, out, k_tr, rep):
    """(params, tokens, dollars, train dollars, serving dollars) for points whose budget binds."""
    from scaling.law import chinchilla_for_loss

    n_chin, _ = chinchilla_for_loss(c, target)
    n_c0 = dc.compute_optimal_constrained(c, target, 0.0, u, rep).params
    n_top = np.maximum(np.asarray(n_chin, float), n_c0)
    f = _Objective(c, target, requests, u, settings, inp, out, k_tr, rep, n_top)
    grid = np.linspace(-_Y_SPAN, 0.0, _GRID)
    y = _minimise(f, grid, target.size)
    n, d, tr, sv = f.parts(y)
    total = tr + sv
    if not np.all(np.isfinite(total)):
        i = int(np.flatnonzero(~np.isfinite(total))[0])
        raise InputError(f"no model size reaching loss {float(target[i]):g} with {float(u[i]):.4g} unique tokens "
                         f"fits on {settings.gpus} {settings.gpu} with batch {settings.batch}; allow more GPUs "
                         "or a smaller batch")
    return n, d, total, tr, sv

