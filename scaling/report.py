"""A report folder from a runs table: the Eq. 4 fit (with bootstrap intervals), the paper's
figures as PNG with the numbers behind each as CSV, an optimizer answer, and report.md."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from ioutil import human, save_figure_atomic, write_atomic
from scaling import figures
from scaling.coefficients import LawCoefficients
from scaling.errors import InputError
from scaling.runs import RunTable


def _csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return buf.getvalue()


def build_report(runs: RunTable, out: Path, *, bootstrap: int = 0, seed: int = 0,
                 title: str = "Scaling report", fit: dict | None = None) -> dict:
    """Fit, figures, optimizer answer; writes everything under ``out`` and returns a summary.
    ``fit``: a ``beyond fit -o`` result to report instead of fitting ``runs`` again (its
    bootstrap sets, if any, give the answer's intervals)."""
    from scaling.bootstrap import bootstrap_fits, bootstrap_intervals
    from scaling.coefficients import coefficients_from_mapping
    from scaling.fit import fit_law
    from scaling.law import chinchilla_for_params, loss
    from scaling.optimal import compare_compute, compute_optimal
    from scaling.uncertainty import interval

    out.mkdir(parents=True, exist_ok=True)
    if fit is not None:
        coeffs = coefficients_from_mapping(fit, "--fit")
        fit_dict = dict(fit)
        bootstrap = len(fit_dict.get("bootstrap") or [])
    else:
        fitted = fit_law(runs.params, runs.tokens, runs.loss, name="fit")
        fit_dict, coeffs = fitted.as_dict(), fitted.coefficients
    if bootstrap and fit is None:
        sets = bootstrap_fits(runs.params, runs.tokens, runs.loss, bootstrap, seed=seed)
        fit_dict.update(bootstrap=sets, bootstrap_resamples=bootstrap, bootstrap_dropped=bootstrap - len(sets))
        if sets:
            fit_dict["bootstrap_intervals"] = bootstrap_intervals(sets)
    write_atomic(out / "fit.json", json.dumps(fit_dict, indent=2) + "\n")
    n_max = float(runs.params.max())
    fits = figures.growing_subset_fits(runs)
    lo_d = float(chinchilla_for_params(coeffs, runs.params.min())) * 0.1
    hi_d = float(chinchilla_for_params(coeffs, 100 * n_max)) * 100
    panels = [
        figures.fig3a_loss_vs_ratio(runs),
        figures.fig4_loss_vs_flops(runs),
        figures.fig5_growing_fits(runs, fits),
    ]
    skipped = {}
    for name, make in (
        ("fig2_ratios", lambda: figures.fig2_ratios(coeffs, (float(runs.params.min()), 100 * n_max), (lo_d, hi_d))),
        ("fig6_cost_optimal", lambda: figures.fig6_cost_optimal(coeffs, [n_max, 10 * n_max, 100 * n_max],
                                                                (lo_d / 285, hi_d / 285))),
    ):
        try:
            with np.errstate(all="ignore"):
                panels.append(make())
        except (InputError, ValueError, FloatingPointError) as exc:  # a degenerate fit: say so, do not crash
            skipped[name] = str(exc)
    for p in panels:
        save_figure_atomic(p.figure, out / f"{p.name}.png")
        write_atomic(out / f"{p.name}.csv", _csv(p.rows))
        for name, rows in p.extra.items():
            write_atomic(out / f"{name}.csv", _csv(rows))
    # the optimizer question: the quality of a Chinchilla-style model as large as the largest run,
    # with lifetime inference demand of 10x its training tokens
    d_chin = float(chinchilla_for_params(coeffs, n_max))
    target = float(loss(coeffs, n_max, d_chin))
    demand = 10 * d_chin
    try:
        cmp = compare_compute(coeffs, target, demand)
    except InputError as exc:
        answer = {"unavailable": f"the fitted law is degenerate here ({exc})"}
        write_atomic(out / "optimizer_answer.json", json.dumps(answer, indent=2) + "\n")
        write_atomic(out / "report.md", _markdown(title, runs, fit_dict, fits, answer, panels, skipped))
        return {"fit": fit_dict, "table1": fits, "answer": answer, "figures": [f"{p.name}.png" for p in panels]}
    opt, ref = cmp.optimal, cmp.chinchilla
    answer = {"loss": target, "inference_tokens": demand, "optimal_params": float(opt.params),
              "optimal_tokens": float(opt.tokens), "chinchilla_params": float(ref.params),
              "chinchilla_tokens": float(ref.tokens), "flops_ratio": float(cmp.flops_ratio)}
    if bootstrap and fit_dict.get("bootstrap"):
        ans = []
        for s in fit_dict["bootstrap"]:
            c = LawCoefficients(**{k: s[k] for k in ("A", "B", "E", "alpha", "beta")})
            if target > c.E:
                o = compute_optimal(c, target, demand)
                ans.append((float(o.params), float(o.tokens)))
        if ans:
            arr = np.array(ans)
            answer["optimal_params_5_95"] = interval(arr[:, 0])
            answer["optimal_tokens_5_95"] = interval(arr[:, 1])
    write_atomic(out / "optimizer_answer.json", json.dumps(answer, indent=2) + "\n")
    write_atomic(out / "report.md", _markdown(title, runs, fit_dict, fits, answer, panels, skipped))
    return {"fit": fit_dict, "table1": fits, "answer": answer, "figures": [f"{p.name}.png" for p in panels]}


def _markdown(title, runs, fit, fits, answer, panels, skipped=None) -> str:
    lines = [f"# {title}", "", f"{runs.loss.size} runs from `{runs.source}`: "
             f"{len(np.unique(runs.params))} model sizes ({', '.join(human(n) for n in np.unique(runs.params))} params), "
             f"{len(np.unique(np.round(runs.tokens_per_param, 6)))} tokens/param ratios.", "",
             "## Eq. 4 fit (all runs)", "",
             "| | A | B | E | alpha | beta | objective |", "| --- | --- | --- | --- | --- | --- | --- |",
             f"| {'best' if 'objective' in fit else 'given'} | {fit['A']:.4g} | {fit['B']:.4g} | {fit['E']:.4g} | "
             f"{fit['alpha']:.4f} | {fit['beta']:.4f} | {_g4(fit.get('objective'))} |"]
    if "bootstrap_intervals" in fit:
        iv = fit["bootstrap_intervals"]
        lines.append(f"| 95% interval ({len(fit['bootstrap'])} resamples) | " + " | ".join(
            f"{iv[k][0]:.4g}–{iv[k][1]:.4g}" for k in ("A", "B", "E", "alpha", "beta")) + " | |")
    if fit.get("bootstrap_dropped"):
        lines += ["", f"{fit['bootstrap_dropped']} of {fit['bootstrap_resamples']} bootstrap resamples gave no valid law "
                  "(an exponent <= 0 or an overflowing coefficient) and are left out: with this few runs the law "
                  "is weakly determined."]
    if "n_starts" in fit:
        lines += ["", f"{fit['n_starts_at_best']} of {fit['n_starts']} grid starts reached the best objective."]
    lines += ["", "## Fits on growing tokens/param subsets (Table 1)", "",
              "| subset | runs | alpha | beta | A | B | E | objective |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {f['subset']} | {f['n_runs']} | {f['alpha']:.4f} | {f['beta']:.4f} | {f['A']:.4g} | {f['B']:.4g} | "
              f"{f['E']:.4g} | {f['objective']:.4g} |" for f in fits]
    a = answer
    if "unavailable" in a:
        lines += ["", "## Optimizer answer", "", f"Not available: {a['unavailable']}."]
        a = None
    if a is not None:
        lines += ["", "## Optimizer answer", "",
              f"Quality of a Chinchilla-style {human(a['chinchilla_params'])}-param model (loss {a['loss']:.4f}), lifetime "
              f"inference demand {human(a['inference_tokens'])} tokens (10x its training tokens): train "
              f"**{human(a['optimal_params'])} params on {human(a['optimal_tokens'])} tokens** instead of "
              f"{human(a['chinchilla_params'])} on {human(a['chinchilla_tokens'])}; total FLOPs x{a['flops_ratio']:.3f}."]
    if a is not None and "optimal_params_5_95" in a:
        lo, hi = a["optimal_params_5_95"]
        lines.append(f"Over the bootstrap sets the optimal size spans {human(lo)}–{human(hi)} params (5th–95th percentile).")
    lines += ["", "## Figures", ""]
    for name, why in (skipped or {}).items():
        lines += [f"- {name} skipped: {why}", ""]
    for p in panels:
        extra = "".join(f", [{n}.csv]({n}.csv)" for n in p.extra)
        lines += [f"### {p.title}", "", f"![{p.name}]({p.name}.png)", "", f"Data: [{p.name}.csv]({p.name}.csv){extra}", ""]
    return "\n".join(lines) + "\n"


def _g4(value) -> str:
    return "" if value is None else f"{value:.4g}"
