"""A report folder from a runs table: the Eq. 4 fit (with bootstrap intervals), the paper's
figures as PNG with the numbers behind each as CSV, extrapolation checks on held-out runs, an
optimizer answer, and report.md."""

from __future__ import annotations

import csv
import io
import json
from math import nan
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
                 title: str = "Scaling report", fit: dict | None = None, all_ratios: bool = False,
                 roofline=None, isoflop_budgets=None) -> dict:
    """Fit, figures, extrapolation checks, optimizer answer; writes everything under ``out`` and
    returns a summary. ``fit``: a ``beyond fit -o`` result to report instead of fitting ``runs``
    again (its bootstrap sets, if any, give the answer's intervals). ``all_ratios``: Fig. 4 shows
    every tokens/param ratio instead of the paper's range (up to 500). ``roofline``: serving
    settings (``scaling.roofline.RooflineSettings``) for a Fig. 6-like panel under the roofline cost.
    ``isoflop_budgets``: the FLOP budgets for the IsoFLOP (Approach 2) section (default Chinchilla's nine)."""
    from scaling.bootstrap import bootstrap_fits, bootstrap_intervals
    from scaling.coefficients import coefficients_from_mapping
    from scaling.fit import fit_law
    from scaling.holdout import extrapolation_checks
    from scaling.law import chinchilla_for_params, loss
    from scaling.optimal import compare_compute

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
    from scaling.uncertainty import law_identification

    identification = law_identification(fit_dict)
    from scaling.report_allocation import allocation, allocation_lines

    allocation_section = allocation(runs, coeffs, isoflop_budgets, bootstrap, seed)
    write_atomic(out / "allocation.json", json.dumps(allocation_section, indent=2) + "\n")
    allocation_md = allocation_lines(allocation_section)
    n_max = float(runs.params.max())
    fits = figures.growing_subset_fits(runs)
    lo_d = float(chinchilla_for_params(coeffs, runs.params.min())) * 0.1
    hi_d = float(chinchilla_for_params(coeffs, 100 * n_max)) * 100
    panels = [
        figures.fig3a_loss_vs_ratio(runs),
        figures.fig4_loss_vs_flops(runs, max_ratio=None if all_ratios else figures.PAPER_FIG4_MAX_RATIO),
        figures.fig5_growing_fits(runs, fits),
    ]
    checks = extrapolation_checks(runs)
    if any("result" in c for c in checks):
        panels.append(figures.fig_extrapolation(checks))
    extrapolation = _check_rows(checks)
    write_atomic(out / "extrapolation_summary.csv", _csv(extrapolation))
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
    _add_roofline_panel(panels, skipped, roofline, coeffs, n_max, (lo_d / 285, hi_d / 285))
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
        write_atomic(out / "report.md", _markdown(title, runs, fit_dict, fits, answer, panels, skipped, extrapolation, identification, allocation_md))
        return {"fit": fit_dict, "table1": fits, "answer": answer, "figures": [f"{p.name}.png" for p in panels],
                "extrapolation": extrapolation, "identification": identification,
                "allocation": allocation_section}
    opt, ref = cmp.optimal, cmp.chinchilla
    answer = {"loss": target, "inference_tokens": demand, "optimal_params": float(opt.params),
              "optimal_tokens": float(opt.tokens), "chinchilla_params": float(ref.params),
              "chinchilla_tokens": float(ref.tokens), "flops_ratio": float(cmp.flops_ratio)}
    answer.update(_determination(fit_dict.get("bootstrap") or [], target, demand, opt, ref))
    write_atomic(out / "optimizer_answer.json", json.dumps(answer, indent=2) + "\n")
    write_atomic(out / "report.md", _markdown(title, runs, fit_dict, fits, answer, panels, skipped, extrapolation, identification, allocation_md))
    return {"fit": fit_dict, "table1": fits, "answer": answer, "figures": [f"{p.name}.png" for p in panels],
            "extrapolation": extrapolation, "identification": identification,
                "allocation": allocation_section}


def _check_rows(checks: list[dict]) -> list[dict]:
    """One row per extrapolation split: its counts and relative errors, or why it was not possible."""
    keys = ("n_fit", "n_runs", "bias", "mean_abs_rel_error", "max_abs_rel_error", "n_predicted_below_actual")
    rows = []
    for c in checks:
        summary = c["result"].summary() if "result" in c else {}
        rows.append({"split": c["split"], "description": c["description"], "held_out": c["expr"],
                     **{k: summary.get(k, "") for k in keys}, "unavailable": c.get("unavailable", "")})
    return rows


def _extrapolation_lines(rows: list[dict]) -> list[str]:
    """The report's section on held-out runs (errors in percent of the actual loss)."""
    lines = ["", "## Extrapolation checks (held-out runs)", "",
             "Eq. 4 fitted without some runs, then asked for their loss. Error = (predicted − actual) / actual; "
             "a negative bias means the law predicts lower loss than the runs reached (it is optimistic there).", "",
             "| split | fitted on | held out | bias | mean abs error | max abs error | predicted below actual |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        if r["unavailable"]:
            lines.append(f"| {r['description']} | | | not possible: {r['unavailable']} | | | |")
        else:
            lines.append(f"| {r['description']} (`{r['held_out']}`) | {_runs(r['n_fit'])} | {_runs(r['n_runs'])} | "
                         f"{r['bias'] * 100:+.2f}% | {r['mean_abs_rel_error'] * 100:.2f}% | "
                         f"{r['max_abs_rel_error'] * 100:.2f}% | {r['n_predicted_below_actual']} of {r['n_runs']} |")
    lines += ["", "Per run: [extrapolation_checks.csv](extrapolation_checks.csv) "
              "(summary: [extrapolation_summary.csv](extrapolation_summary.csv))."
              if any(not r["unavailable"] for r in rows) else
              "No split was possible on these runs, so there is no extrapolation figure."]
    return lines


def _determination(bootstrap: list[dict], target: float, demand: float, opt, ref) -> dict:
    """The answer's 5-95% intervals over the fit's bootstrap sets and whether they pin it down
    (``scaling.uncertainty.determination``); "not assessed" without sets. Units: params, tokens."""
    from scaling.optimal import compare_compute
    from scaling.uncertainty import answer_uncertainty, not_assessed

    if not bootstrap:
        verdict = not_assessed()
        return {"determined": verdict["determined"], "determined_reason": verdict["reason"]}
    sets = [LawCoefficients(**{k: s[k] for k in ("A", "B", "E", "alpha", "beta")}) for s in bootstrap]

    def answer(c: LawCoefficients) -> dict:
        got = compare_compute(c, target, demand)
        return {"params": float(got.optimal.params), "tokens": float(got.optimal.tokens), "ratio": float(got.flops_ratio)}

    try:
        u = answer_uncertainty(answer, sets, {}, "flops", (opt.params, opt.tokens), (ref.params, ref.tokens))
    except InputError as exc:
        return {"determined": False, "determined_reason": str(exc)}
    return {"optimal_params_5_95": u["optimal_params"], "optimal_tokens_5_95": u["optimal_tokens"],
            "bootstrap_sets": u["n_sets"], "determined": u["determined"], "determined_reason": u["reason"]}


def _runs(n: int) -> str:
    return f"{n} run{'' if n == 1 else 's'}"


def _markdown(title, runs, fit, fits, answer, panels, skipped=None, extrapolation=None, identification=None,
              allocation_section_lines=None) -> str:
    lines = [f"# {title}", "", f"{runs.loss.size} runs from `{runs.source}`: "
             f"{len(np.unique(runs.params))} model sizes ({', '.join(human(n) for n in np.unique(runs.params))} params), "
             f"{len(np.unique(figures.ratio_groups(runs)))} tokens/param ratios.", "",
             "## Eq. 4 fit (all runs)", "",
             "| | A | B | E | alpha | beta | objective |", "| --- | --- | --- | --- | --- | --- | --- |",
             f"| {'best' if 'objective' in fit else 'given'} | {fit['A']:.4g} | {fit['B']:.4g} | {fit['E']:.4g} | "
             f"{fit['alpha']:.4f} | {fit['beta']:.4f} | {_g4(fit.get('objective'))} |"]
    if "bootstrap_intervals" in fit:
        iv = fit["bootstrap_intervals"]
        lines.append(f"| 95% interval ({len(fit['bootstrap'])} resamples) | " + " | ".join(
            f"{iv[k][0]:.4g}–{iv[k][1]:.4g}" for k in ("A", "B", "E", "alpha", "beta")) + " | |")
    if identification and identification["identified"] is not None:
        lines += ["", ("**Law identified**: " if identification["identified"] else
                       "**Law NOT identified** (do not extrapolate it far from the runs): ") + identification["reason"] + "."]
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
    lines += _extrapolation_lines(extrapolation or [])
    lines += allocation_section_lines or []
    a = answer
    if "unavailable" in a:
        lines += ["", "## Optimizer answer", "", f"Not available: {a['unavailable']}."]
        a = None
    if a is not None and a.get("determined") is False:
        (p_lo, p_hi), (t_lo, t_hi) = a.get("optimal_params_5_95", (nan, nan)), a.get("optimal_tokens_5_95", (nan, nan))
        lines += ["", "## Optimizer answer: UNDETERMINED", "",
                  f"**The fit does not pin this answer down, so this report makes no recommendation.** "
                  f"Why: {a['determined_reason']}.", "",
                  f"Question: the quality of a Chinchilla-style {human(a['chinchilla_params'])}-param model (loss "
                  f"{a['loss']:.4f}) with lifetime inference demand {human(a['inference_tokens'])} tokens. Over the "
                  f"bootstrap sets the answer spans {human(p_lo)}–{human(p_hi)} params and {human(t_lo)}–{human(t_hi)} "
                  f"tokens (5th–95th percentile); the point estimate ({human(a['optimal_params'])} params on "
                  f"{human(a['optimal_tokens'])} tokens) is not a recommendation. More model sizes and ratios near it "
                  "would narrow it."]
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
    if a is not None and "determined_reason" in a:
        lines.append(f"Determined: {'yes' if a['determined'] else 'not assessed'} ({a['determined_reason']}).")
    lines += ["", "## Figures", ""]
    for name, why in (skipped or {}).items():
        lines += [f"- {name} skipped: {why}", ""]
    for p in panels:
        extra = "".join(f", [{n}.csv]({n}.csv)" for n in p.extra)
        lines += [f"### {p.title}", "", f"![{p.name}]({p.name}.png)", ""] + ([p.note, ""] if p.note else []) + [
            f"Data: [{p.name}.csv]({p.name}.csv){extra}", ""]
    return "\n".join(lines) + "\n"


def _g4(value) -> str:
    return "" if value is None else f"{value:.4g}"


# --- issue 17: Fig. 6 under the roofline serving cost (`beyond report --inference-model roofline`) ---

def _add_roofline_panel(panels: list, skipped: dict, roofline, coeffs, n_max: float, requests_range) -> None:
    """Append ``figures.fig6_roofline`` (same qualities and requests as Fig. 6) when serving settings
    are given; a degenerate fit or a batch that does not fit is reported as skipped."""
    if roofline is None:
        return
    try:
        with np.errstate(all="ignore"):
            panels.append(figures.fig6_roofline(coeffs, [n_max, 10 * n_max, 100 * n_max], requests_range, roofline))
    except (InputError, ValueError, FloatingPointError) as exc:
        skipped["fig6_roofline"] = str(exc)
