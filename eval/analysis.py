"""Loss vs Gauntlet average (the paper's Fig. 3c) from a runs table, with correlations."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from scaling.errors import InputError


def loss_vs_score(path: Path, loss_col: str, score_col: str, group_col: str | None, plot: Path | None) -> dict:
    """Pearson and Spearman correlation of loss and score over the rows that have both;
    optionally a scatter plot (PNG, written atomically)."""
    from scipy import stats

    try:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    if not rows:
        raise InputError(f"{path}: no rows")
    for col in (loss_col, score_col):
        if col not in rows[0]:
            raise InputError(f"{path}: no column {col!r} (columns: {', '.join(rows[0])})")
    loss, score, group = [], [], []
    for i, row in enumerate(rows, 2):
        try:
            lv, sv = float(row[loss_col]), float(row[score_col])
        except ValueError:
            continue  # runs without an evaluation yet
        if not (math.isfinite(lv) and math.isfinite(sv)):
            raise InputError(f"{path}:{i}: non-finite loss or score")
        loss.append(lv)
        score.append(sv)
        group.append(row.get(group_col, "") if group_col else "")
    if len(loss) < 3:
        raise InputError(f"{path}: need at least 3 runs with both {loss_col!r} and {score_col!r}, got {len(loss)}")
    x, y = np.array(loss), np.array(score)
    result = {"n": len(x), "pearson_r": float(stats.pearsonr(x, y)[0]), "spearman_rho": float(stats.spearmanr(x, y)[0])}
    if plot is not None:
        _plot(x, y, group, loss_col, score_col, plot, result)
        result["plot"] = str(plot)
    return result


def _plot(x, y, group, loss_col, score_col, path: Path, result: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4), dpi=150)
    for g in dict.fromkeys(group):
        pick = [i for i, v in enumerate(group) if v == g]
        ax.scatter(x[pick], y[pick], s=18, label=g or None)
    ax.set_xlabel(loss_col)
    ax.set_ylabel(score_col)
    ax.invert_xaxis()
    ax.set_title(f"r = {result['pearson_r']:.3f}, rho = {result['spearman_rho']:.3f}")
    if any(group):
        ax.legend(fontsize=7)
    fig.tight_layout()
    from ioutil import save_figure_atomic

    save_figure_atomic(fig, path)
