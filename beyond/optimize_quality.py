"""The quality an optimizer command targets: a loss, a Chinchilla-style model's loss (--like-params) or a
Gauntlet core average turned into a loss through the downstream fit (--gauntlet-target), with its bootstrap sets."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from beyond.optimize_options import DOWNSTREAM_RESAMPLES_DEFAULT, GAUNTLET_RUNS_FILE
from scaling.errors import InputError


def _target_loss(args, coeffs) -> float:
    from scaling.law import chinchilla_for_params, loss

    if args.loss is not None:
        return float(args.loss)
    if args.like_params <= 0:
        raise InputError(f"--like-params must be > 0, got {args.like_params:g}")
    n = args.like_params
    return float(loss(coeffs, n, chinchilla_for_params(coeffs, n)))


@dataclass
class Quality:
    """The loss target: ``target(c)`` under coefficient set c (a bootstrap set gets its own when the
    target is a Gauntlet score), ``point`` under the command's coefficients, and the downstream fit's
    report (``gauntlet``) and loss targets over its bootstrap sets (``downstream_losses``)."""

    target: Callable
    point: float
    gauntlet: dict | None = None
    downstream_losses: object = None  # np.ndarray of loss targets, one per downstream set


def quality(args, coeffs, target_for=None) -> Quality:
    """The command's loss target: ``--gauntlet-target`` through the downstream fit, else ``target_for``
    (default: --loss / --like-params)."""
    target_for = target_for or (lambda c: _target_loss(args, c))
    if getattr(args, "gauntlet_target", None) is None:
        return Quality(target_for, target_for(coeffs))
    return _gauntlet_quality(args, coeffs)


def _gauntlet_runs_path(args) -> str:
    if args.gauntlet_runs:
        return args.gauntlet_runs
    root = os.environ.get("REFERENCE_DATA_DIR")
    if root and os.path.isfile(os.path.join(root, GAUNTLET_RUNS_FILE)):
        return os.path.join(root, GAUNTLET_RUNS_FILE)
    raise InputError("--gauntlet-target needs runs with Gauntlet scores: pass --gauntlet-runs CSV (e.g. the paper's "
                     f"trainingresults.csv), or set REFERENCE_DATA_DIR to a folder holding {GAUNTLET_RUNS_FILE}")


def _fit_file(spec) -> dict:
    """The ``beyond fit -o`` file's JSON ({} for a named set): its source, filters and bootstrap count."""
    import json
    from pathlib import Path

    if spec is None or not os.path.isfile(spec):
        return {}
    try:
        data = json.loads(Path(spec).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _gauntlet_quality(args, coeffs) -> Quality:
    import numpy as np

    from scaling.downstream import bootstrap_downstream, fit_downstream, loss_target, read_gauntlet_runs
    from scaling.uncertainty import bootstrap_sets

    g = args.gauntlet_target
    path = _gauntlet_runs_path(args)
    runs = read_gauntlet_runs(path)
    fit = fit_downstream(runs.runs.loss, runs.score, column=runs.column)
    fit.loss_at(g)  # one line outside the range the fit can invert, before any bootstrap
    sets = bootstrap_sets(args.coefficients)
    info = _fit_file(args.coefficients)
    if args.gauntlet_bootstrap is not None and args.gauntlet_bootstrap < 0:
        raise InputError(f"--gauntlet-bootstrap must be >= 0, got {args.gauntlet_bootstrap}")
    n = args.gauntlet_bootstrap
    if n is None:
        n = int(info.get("bootstrap_resamples") or len(sets)) if sets else DOWNSTREAM_RESAMPLES_DEFAULT
    seed = int(info.get("bootstrap_seed", info.get("seed", 0)) or 0)
    boot = bootstrap_downstream(fit, runs.runs.loss, runs.score, n, seed=seed) if n > 0 else None
    target = loss_target(fit, g, boot)
    per_set = dict(zip(sets, (float(v) for v in target.for_sets(len(sets))))) if sets and boot is not None else {}
    block = {**target.as_dict(), "runs": str(path), "column": runs.column, "n_runs": fit.n_runs,
             "n_skipped": runs.n_skipped, "fit": fit.as_dict(), "bootstrap_seed": seed}
    if sets:
        block["pairing"] = _pairing(info, path, runs, boot, len(sets))

    def target_for(c) -> float:
        if c not in per_set:
            return target.point
        t = per_set[c]
        if not np.isfinite(t):
            raise InputError(f"{c.name}: the paired downstream set never reaches Gauntlet {g:g}")
        return t

    return Quality(target_for, target.point, block, target.per_set if boot is not None else None)


def _pairing(info: dict, path: str, runs, boot, n_sets: int) -> str:
    """How law set i and downstream set i relate (docs/downstream.md, "Using it from the optimizer")."""
    if boot is None:
        return "none: --gauntlet-bootstrap 0, every law set uses the point loss target"
    why = []
    src = info.get("source")
    if not src or os.path.realpath(src) != os.path.realpath(path):
        why.append(f"the law was fitted on {src or 'an unknown table'}, not {path}")
    if info.get("max_tokens_per_param") is not None or info.get("drop_highest_loss") or info.get("holdout"):
        why.append("the law's fit filtered or held out runs")
    if runs.n_skipped:
        why.append(f"{runs.n_skipped} runs have no Gauntlet score")
    if info.get("bootstrap_dropped") or boot.n_failed:
        why.append("some resamples gave no fit, so the indices drift after the first")
    if boot.n_resamples != int(info.get("bootstrap_resamples") or n_sets):
        why.append(f"{boot.n_resamples} downstream resamples for {n_sets} law sets (set i uses i mod {boot.n_sets})")
    if why:
        return "approximate: " + "; ".join(why)
    return f"exact: law set i and downstream set i are the same resample of the same {runs.runs.loss.size} runs"
