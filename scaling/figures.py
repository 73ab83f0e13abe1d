"""The paper's figures from a runs table and a coefficient set, as matplotlib figures plus the
numbers behind each (rows for a CSV). Each function returns a ``Panel``.

Fig. 2: inference-aware vs Chinchilla-style ratios over (quality, inference demand).
Fig. 3a: loss vs tokens per parameter, one series per model size.
Fig. 4: loss vs training FLOPs grouped by tokens/param ratio, with a fitted log-log slope each
(by default up to 500 tokens/param, the paper's range).
Fig. 5: Eq. 4 fits on growing tokens/param subsets (Table 1), their curves over the data.
Fig. 6: cost-optimal tokens per parameter vs lifetime requests for several quality targets.
Fig. 6 under the roofline (issue 17): the same with each request priced by scaling/roofline.py.
Extrapolation: held-out runs' predicted vs actual loss (``scaling.holdout``).

Figures with many series give each its own colour (a colormap sampled per series) and marker
(``series_styles``); log axes are labelled with plain numbers (``plain_log_ticks``), not mathtext.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from scaling.coefficients import LawCoefficients
from scaling.law import TRAIN_FLOPS_PER_PARAM_TOKEN
from scaling.runs import RunTable

PAPER_FIG4_MAX_RATIO = 500.0  # tokens/param: the paper's Fig. 4 groups ratios up to this
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", "*", ">", "h", "p")
SERIES_CMAP = "viridis"
SERIES_CMAP_RANGE = (0.0, 0.9)  # leave out viridis' pale yellow end, hard to see on white


@dataclass
class Panel:
    name: str
    title: str
    figure: object  # matplotlib Figure
    rows: list[dict]
    extra: dict[str, list[dict]] = field(default_factory=dict)  # more CSVs (e.g. slopes, fits)
    note: str = ""  # one line for the report under the figure (e.g. what it leaves out)


def series_styles(n: int, cmap: str = SERIES_CMAP) -> list[dict]:
    """``n`` distinct plot styles: ``color`` sampled evenly from ``cmap`` (in series order, so
    an ordered quantity reads as a gradient) and ``marker`` from a cycle of 12."""
    import matplotlib

    colors = matplotlib.colormaps[cmap](np.linspace(*SERIES_CMAP_RANGE, n) if n > 1 else [0.0])
    return [{"color": tuple(float(c) for c in colors[i]), "marker": MARKERS[i % len(MARKERS)]} for i in range(n)]


def plain_number(x: float) -> str:
    """A tick label without mathtext: 3.6, 10, 2500, 10000; 1e20, 2.5e-05 outside 1e-3..1e6."""
    if x == 0:
        return "0"
    if 1e-3 <= abs(x) < 1e6:
        return f"{x:.6g}"
    mantissa, exponent = f"{x:.3e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def _plain_log_formatter(**kw):
    """matplotlib's LogFormatter (which decides which ticks get a label: decades, and minor ticks
    when the axis spans about a decade or less) with plain-number labels."""
    from matplotlib.ticker import LogFormatter

    class PlainLogFormatter(LogFormatter):
        def __call__(self, x, pos=None):
            return plain_number(x) if super().__call__(x, pos) else ""

    return PlainLogFormatter(**kw)


def plain_log_ticks(ax) -> None:
    """Plain numbers (no "10^0" mathtext) on the major and minor ticks of each log axis of ``ax``."""
    for axis, scale in ((ax.xaxis, ax.get_xscale()), (ax.yaxis, ax.get_yscale())):
        if scale == "log":
            axis.set_major_formatter(_plain_log_formatter())
            axis.set_minor_formatter(_plain_log_formatter(labelOnlyBase=False))


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _size_label(n: float) -> str:
    from ioutil import human

    return human(n)


def fig3a_loss_vs_ratio(runs: RunTable) -> Panel:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 4), dpi=120)
    rows = []
    sizes = np.unique(runs.params)
    for n, style in zip(sizes, series_styles(len(sizes))):
        pick = np.flatnonzero(runs.params == n)
        order = pick[np.argsort(runs.tokens_per_param[pick])]
        ax.plot(runs.tokens_per_param[order], runs.loss[order], "-", ms=4, label=_size_label(n), **style)
        rows += [{"params": float(n), "tokens_per_param": float(runs.tokens_per_param[i]), "loss": float(runs.loss[i])}
                 for i in order]
    ax.set_xscale("log")
    ax.set_xlabel("tokens per parameter")
    ax.set_ylabel("final training loss")
    ax.set_title("Fig. 3a: loss vs tokens per parameter")
    plain_log_ticks(ax)
    ax.legend(title="params", fontsize=7)
    fig.tight_layout()
    return Panel("fig3a_loss_vs_tokens_per_param", "Loss vs tokens per parameter, by model size", fig, rows)


def fig4_loss_vs_flops(runs: RunTable, max_ratio: float | None = None) -> Panel:
    """Loss vs training FLOPs (6ND), one series per tokens/param ratio up to ``max_ratio``
    (None: every ratio; the report passes the paper's 500), with each series' log-log slope."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 4), dpi=120)
    flops = TRAIN_FLOPS_PER_PARAM_TOKEN * runs.params * runs.tokens
    # runs planned at one ratio differ in the 3rd digit after rounding to whole batches: group at 2
    ratios = ratio_groups(runs)
    shown = np.ones(ratios.size, dtype=bool) if max_ratio is None else ratios <= max_ratio * (1 + 1e-9)
    groups = np.unique(ratios[shown])
    rows, slopes = [], []
    for r, style in zip(groups, series_styles(len(groups))):
        pick = np.flatnonzero(ratios == r)
        order = pick[np.argsort(flops[pick])]
        line = ax.plot(flops[order], runs.loss[order], ls="none", ms=4, label=f"{r:g}", **style)[0]
        rows += [{"tokens_per_param": float(r), "flops": float(flops[i]), "loss": float(runs.loss[i])} for i in order]
        if len(order) >= 2 and np.ptp(np.log(flops[order])) > 0:
            slope, intercept = np.polyfit(np.log10(flops[order]), np.log10(runs.loss[order]), 1)
            xs = np.array([flops[order].min(), flops[order].max()])
            ax.plot(xs, 10 ** (intercept + slope * np.log10(xs)), "-", color=line.get_color(), lw=1)
            slopes.append({"tokens_per_param": float(r), "slope": float(slope), "intercept": float(intercept),
                           "n_runs": int(len(order))})
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training FLOPs (6ND)")
    ax.set_ylabel("final training loss")
    ax.set_title("Fig. 4: loss vs FLOPs by tokens/param" + ("" if max_ratio is None else f" (<= {max_ratio:g})"))
    plain_log_ticks(ax)
    ax.legend(title="tokens/param", fontsize=6, ncol=2)
    fig.tight_layout()
    return Panel("fig4_loss_vs_flops", "Loss vs training FLOPs, grouped by tokens per parameter, with log-log slopes",
                 fig, rows, {"fig4_slopes": slopes}, note=_left_out_note(ratios, shown, max_ratio))


def _left_out_note(ratios: np.ndarray, shown: np.ndarray, max_ratio: float | None) -> str:
    """Which tokens/param ratios (and how many runs) a figure leaves out, or ''."""
    if shown.all():
        return ""
    left = ", ".join(f"{r:g}" for r in np.unique(ratios[~shown]))
    n = int((~shown).sum())
    return (f"Shows tokens/param ratios up to {max_ratio:g} (the paper's Fig. 4 range); left out: {left} "
            f"tokens/param ({n} run{'s' if n != 1 else ''}). `beyond report --all-ratios` shows every ratio.")


def ratio_groups(runs: RunTable) -> np.ndarray:
    """Each run's tokens/param for grouping: its nominal (planned) ratio where known, else D/N
    rounded to 2 significant digits (10, 15, 75, 250, 10000; 4.006 -> 4)."""
    rounded = np.array([float(f"{r:.2g}") for r in runs.tokens_per_param])
    if runs.nominal is None:
        return rounded
    return np.where(np.isfinite(runs.nominal), runs.nominal, rounded)


def growing_subset_fits(runs: RunTable, cutoffs: list[float | None] | None = None) -> list[dict]:
    """Eq. 4 fits on runs with tokens/param <= each cutoff (None = all), Table 1 style; subsets
    with fewer than 6 runs (5 coefficients) are skipped."""
    from scaling.fit import fit_law

    if cutoffs is None:
        distinct = np.unique(ratio_groups(runs))
        cutoffs = [100.0, 250.0, 500.0, None] if distinct.max() > 500 else [float(c) for c in distinct[2:-1]] + [None]
    out = []
    for cut in cutoffs:
        sub = runs.filter_tokens_per_param(cut)
        if sub.loss.size < 6 or (out and out[-1]["n_runs"] == sub.loss.size):
            continue
        fit = fit_law(sub.params, sub.tokens, sub.loss, name="all" if cut is None else f"<={cut:g}")
        c = fit.coefficients
        out.append({"subset": "all" if cut is None else f"<={cut:g} tok/param", "max_tokens_per_param": cut,
                    "n_runs": int(sub.loss.size), "alpha": c.alpha, "beta": c.beta, "A": c.A, "B": c.B, "E": c.E,
                    "objective": fit.objective, "n_starts_at_best": fit.n_starts_at_best})
    return out


def fig5_growing_fits(runs: RunTable, fits: list[dict]) -> Panel:
    from scaling.law import loss

    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 4), dpi=120)
    sizes = np.unique(runs.params)
    ax.scatter(runs.tokens_per_param, runs.loss, s=12, color="k", zorder=3, label="runs")
    grid = np.geomspace(runs.tokens_per_param.min() / 2, runs.tokens_per_param.max() * 2, 60)
    rows = []
    for fit, style in zip(fits, series_styles(len(fits), "plasma")):
        c = LawCoefficients(A=fit["A"], B=fit["B"], E=fit["E"], alpha=fit["alpha"], beta=fit["beta"], name=fit["subset"])
        for j, n in enumerate(sizes):
            pred = loss(c, n, n * grid)
            ax.plot(grid, pred, "-", lw=1, ms=3, markevery=12, label=fit["subset"] if j == 0 else None, **style)
            rows += [{"subset": fit["subset"], "params": float(n), "tokens_per_param": float(g), "predicted_loss": float(p)}
                     for g, p in zip(grid, pred)]
    ax.set_xscale("log")
    ax.set_xlabel("tokens per parameter")
    ax.set_ylabel("loss")
    ax.set_title("Fig. 5: Eq. 4 fits on growing subsets")
    plain_log_ticks(ax)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return Panel("fig5_growing_subset_fits", "Eq. 4 fits on runs up to each tokens/param cutoff (Table 1)",
                 fig, rows, {"table1_fits": fits})


def fig2_ratios(coeffs: LawCoefficients, params_range: tuple[float, float], demand_range: tuple[float, float],
                points: int = 40) -> Panel:
    from scaling.law import chinchilla_for_params, loss
    from scaling.optimal import compare_compute

    plt = _plt()
    n_chin = np.geomspace(*params_range, points)
    demand = np.geomspace(*demand_range, points)
    target = loss(coeffs, n_chin, chinchilla_for_params(coeffs, n_chin))
    L, T = np.meshgrid(target, demand)
    cmp = compare_compute(coeffs, L, T)
    ratios = {"flops_ratio": cmp.flops_ratio, "params_ratio": cmp.params_ratio, "tokens_ratio": cmp.tokens_ratio}
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), dpi=110)
    for ax, (name, z) in zip(axes, ratios.items()):
        from matplotlib.colors import LogNorm

        norm = LogNorm() if name == "tokens_ratio" else None  # spans orders of magnitude
        mesh = ax.pcolormesh(n_chin, demand, z, shading="auto", cmap="viridis", norm=norm)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("quality: Chinchilla-style model size (params)")
        ax.set_ylabel("lifetime inference tokens")
        ax.set_title(name.replace("_", " ") + " (optimal / Chinchilla)")
        plain_log_ticks(ax)
        plain_log_ticks(fig.colorbar(mesh, ax=ax).ax)
    fig.suptitle(f"Fig. 2: inference-aware vs Chinchilla-style ({coeffs.name} coefficients)")
    fig.tight_layout()
    rows = [{"chinchilla_params": float(n_chin[j]), "loss": float(L[i, j]), "inference_tokens": float(T[i, j]),
             **{k: float(v[i, j]) for k, v in ratios.items()}} for i in range(points) for j in range(points)]
    return Panel("fig2_ratios", "Inference-aware / Chinchilla-style FLOPs, params and tokens", fig, rows)


def _fig6_axes(ax1, ax2) -> None:
    """Fig. 6's axes: lifetime requests (log) against cost-optimal tokens/param (log) and the cost ratio."""
    from scaling.optimal import PAPER_INPUT_TOKENS, PAPER_OUTPUT_TOKENS

    for ax in (ax1, ax2):
        ax.set_xscale("log")
        ax.set_xlabel(f"lifetime requests ({PAPER_INPUT_TOKENS:g} in + {PAPER_OUTPUT_TOKENS:g} out tokens)")
    ax1.set_yscale("log")
    for ax in (ax1, ax2):
        plain_log_ticks(ax)
    ax1.set_ylabel("cost-optimal tokens per parameter")
    ax2.set_ylabel("cost ratio (optimal / Chinchilla-style)")


def fig6_cost_optimal(coeffs: LawCoefficients, params_targets: list[float], requests_range: tuple[float, float],
                      points: int = 40) -> Panel:
    from scaling.law import chinchilla_for_params, loss
    from scaling.optimal import (
        PAPER_INPUT_TOKENS,
        PAPER_OUTPUT_TOKENS,
        CostSettings,
        InferenceDemand,
        chinchilla_style,
        cost_optimal,
        total_cost,
    )

    plt = _plt()
    settings = CostSettings()
    requests = np.geomspace(*requests_range, points)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4), dpi=110)
    rows = []
    for n, style in zip(params_targets, series_styles(len(params_targets))):
        target = float(loss(coeffs, n, chinchilla_for_params(coeffs, n)))
        demand = InferenceDemand(requests, PAPER_INPUT_TOKENS, PAPER_OUTPUT_TOKENS)
        opt = cost_optimal(coeffs, target, settings, demand)
        ref = chinchilla_style(coeffs, target)
        ratio = total_cost(settings, demand, opt.params, opt.tokens) / total_cost(settings, demand, ref.params, ref.tokens)
        tpp = opt.tokens / opt.params
        ax1.plot(requests, tpp, ms=4, markevery=8, label=f"{_size_label(n)}-Chinchilla quality", **style)
        ax2.plot(requests, ratio, ms=4, markevery=8, label=f"{_size_label(n)}", **style)
        rows += [{"chinchilla_params": float(n), "loss": target, "requests": float(r), "params": float(p),
                  "tokens": float(t), "tokens_per_param": float(q), "cost_ratio": float(c)}
                 for r, p, t, q, c in zip(requests, np.broadcast_to(opt.params, requests.shape),
                                          np.broadcast_to(opt.tokens, requests.shape), tpp, ratio)]
    _fig6_axes(ax1, ax2)
    ax1.legend(fontsize=7)
    fig.suptitle("Fig. 6: cost-optimal training (A100 settings of the paper's Table 3)")
    fig.tight_layout()
    return Panel("fig6_cost_optimal", "Cost-optimal tokens per parameter and cost ratio vs requests", fig, rows)


def fig6_roofline(coeffs: LawCoefficients, params_targets: list[float], requests_range: tuple[float, float],
                  serving, train=None, points: int = 40) -> Panel:
    """Fig. 6 with the roofline serving cost (``scaling.roofline``; ``serving`` a RooflineSettings,
    ``train`` the training side, default the paper's): cost-optimal tokens per parameter and the cost
    ratio against the Chinchilla-style model (priced the same way) vs lifetime requests; the paper's
    Eq. 6 optimum (1% generation MFU) dashed for comparison. Requests of 70 + 215 tokens."""
    from scaling.law import TRAIN_FLOPS_PER_PARAM_TOKEN as SIX
    from scaling.law import chinchilla_for_params, loss
    from scaling.optimal import (
        PAPER_INPUT_TOKENS,
        PAPER_OUTPUT_TOKENS,
        CostSettings,
        InferenceDemand,
        chinchilla_style,
        cost_optimal,
    )
    from scaling.roofline import request_cost, roofline_cost_optimal

    plt = _plt()
    train = train or CostSettings()
    k_tr = train.dollars_per_train_flop
    requests = np.geomspace(*requests_range, points)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4), dpi=110)
    rows = []
    for n, style in zip(params_targets, series_styles(len(params_targets))):
        target = float(loss(coeffs, n, chinchilla_for_params(coeffs, n)))
        opt = roofline_cost_optimal(coeffs, target, serving, requests, PAPER_INPUT_TOKENS, PAPER_OUTPUT_TOKENS, train)
        ref = chinchilla_style(coeffs, target)
        rc = request_cost(opt.params, serving, PAPER_INPUT_TOKENS, PAPER_OUTPUT_TOKENS)
        rc_ref = request_cost(ref.params, serving, PAPER_INPUT_TOKENS, PAPER_OUTPUT_TOKENS)
        cost = k_tr * SIX * opt.params * opt.tokens + requests * rc.dollars_per_request
        cost_ref = k_tr * SIX * ref.params * ref.tokens + requests * rc_ref.dollars_per_request
        ratio = cost / cost_ref
        paper = cost_optimal(coeffs, target, train, InferenceDemand(requests, PAPER_INPUT_TOKENS, PAPER_OUTPUT_TOKENS))
        tpp = opt.tokens / opt.params
        ax1.plot(requests, tpp, ms=4, markevery=8, label=f"{_size_label(n)}-Chinchilla quality", **style)
        ax1.plot(requests, paper.tokens / paper.params, ls="--", lw=0.8, color=style["color"])
        ax2.plot(requests, ratio, ms=4, markevery=8, label=f"{_size_label(n)}", **style)
        rows += [{"chinchilla_params": float(n), "loss": target, "requests": float(r), "params": float(p),
                  "tokens": float(t), "tokens_per_param": float(tp), "cost": float(c), "cost_ratio": float(q),
                  "dollars_per_request": float(dpr), "tokens_per_second_per_gpu": float(tps),
                  "generation_mfu": float(mfu), "serving_gpus": int(g), "paper_params": float(pp),
                  "paper_tokens_per_param": float(pt / pp)}
                 for r, p, t, tp, c, q, dpr, tps, mfu, g, pp, pt in zip(
                     requests, opt.params, opt.tokens, tpp, cost, ratio, rc.dollars_per_request,
                     rc.tokens_per_second_per_gpu, rc.generation_mfu, rc.gpus,
                     np.broadcast_to(paper.params, requests.shape), np.broadcast_to(paper.tokens, requests.shape))]
    _fig6_axes(ax1, ax2)
    ax1.plot([], [], ls="--", lw=0.8, color="grey", label="paper's Eq. 6 (1% generation MFU)")
    ax1.legend(fontsize=7)
    batch = "largest batch that fits" if serving.batch is None else f"batch {serving.batch}"
    gpus = "auto GPUs" if serving.gpus is None else f"{serving.gpus} GPU{'s' if serving.gpus != 1 else ''}"
    fig.suptitle(f"Fig. 6 under the roofline: {serving.gpu} {serving.dtype}, {batch}, {gpus}")
    fig.tight_layout()
    return Panel("fig6_roofline", "Cost-optimal tokens per parameter and cost ratio vs requests, serving priced by "
                 "the roofline", fig, rows,
                 note=f"Serving: {serving.gpu} ({serving.dtype} weights, {serving.kv_bytes:g}-byte KV cache), {batch}, "
                 f"{gpus}, ${serving.price:g}/GPU-hour; training as Fig. 6. Dashed: the paper's Eq. 6 optimum "
                 "(1% generation MFU) for the same quality. Model: docs/roofline.md.")


def fig_extrapolation(checks: list[dict]) -> Panel:
    """Predicted vs actual final loss of held-out runs, one series per split
    (``scaling.holdout.extrapolation_checks``: dicts with ``split`` and a ``result``)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4.5), dpi=120)
    done = [c for c in checks if "result" in c]
    rows = []
    for check, style in zip(done, series_styles(len(done), "plasma")):
        h = check["result"]
        s = h.summary()
        ax.plot(h.loss, h.predicted, ls="none", ms=5, label=f"{check['split']}: {h.loss.size} held out, "
                f"fit on {s['n_fit']}; bias {s['bias'] * 100:+.1f}%", **style)
        rows += [{"split": check["split"], "params": float(n), "tokens": float(d), "tokens_per_param": float(d / n),
                  "loss": float(y), "predicted": float(p), "rel_error": float(e)}
                 for n, d, y, p, e in zip(h.params, h.tokens, h.loss, h.predicted, h.rel_error)]
    if rows:
        values = [r[k] for r in rows for k in ("loss", "predicted")]
        lo, hi = min(values), max(values)
        pad = 0.05 * (hi - lo or 1.0)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k--", lw=0.8, label="predicted = actual")
    ax.set_xlabel("actual final loss (held out)")
    ax.set_ylabel("predicted loss (fit without them)")
    ax.set_title("Extrapolation: held-out runs")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return Panel("extrapolation_checks", "Held-out runs: predicted vs actual loss (points below the line: the law "
                 "is optimistic)", fig, rows)
