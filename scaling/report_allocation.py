"""The report's allocation section: Chinchilla's Approach 2 (IsoFLOP profiles, ``scaling/isoflop.py``)
next to Approach 3 (the Eq. 4 fit's beta / (alpha + beta)) on the same runs.

Runs are binned to FLOP budgets (Chinchilla's nine by default, or the budgets an IsoFLOP sweep was
planned at); only runs within ``MAX_DECADES`` of a budget count, so a token-ratio grid such as the
paper's rarely gives three sizes per budget, and the section then says so instead of fitting.
"""

from __future__ import annotations

from scaling.coefficients import LawCoefficients
from scaling.errors import InputError
from scaling.runs import RunTable

MAX_DECADES = 0.15  # a run counts for a budget within this many decades of FLOPs (x1.41)
RESAMPLES = 200  # bootstrap resamples when the report has none of its own
MIN_KEPT = 0.5  # an interval needs at least this share of the resamples to keep 3 sizes at every budget


def allocation(runs: RunTable, coeffs: LawCoefficients, budgets=None, bootstrap: int = 0, seed: int = 0) -> dict:
    """Both approaches' exponents (``scaling.isoflop.compare_with_parametric``), or why Approach 2
    does not apply to these runs (``{"unavailable": reason}``)."""
    from scaling.isoflop import CHINCHILLA_BUDGETS, compare_with_parametric, fit_isoflop_runs

    try:
        fit = fit_isoflop_runs(runs, budgets or CHINCHILLA_BUDGETS, max_log10_distance=MAX_DECADES,
                               n_resamples=bootstrap or RESAMPLES, seed=seed)
    except InputError as exc:
        return {"unavailable": str(exc)}
    section = {**compare_with_parametric(fit, coeffs), "budgets_used": fit.budgets_used, "n_runs": fit.n_runs,
               "dropped": [d.as_dict() for d in fit.dropped], "bootstrap_kept": int(fit.bootstrap_a.size),
               "bootstrap_resamples": fit.bootstrap_resamples}
    if fit.bootstrap_a.size < MIN_KEPT * fit.bootstrap_resamples:  # too thin to say: no interval, and why
        section["isoflop"]["a_interval"] = section["isoflop"]["b_interval"] = None
        section["parametric_a_in_interval"] = None
        section["interval_withheld"] = (f"only {fit.bootstrap_a.size} of {fit.bootstrap_resamples} resamples kept three "
                                        "sizes at every budget: the profiles are too thin for an interval, so "
                                        "Approach 2's a is undetermined here")
    return section


def allocation_lines(section: dict) -> list[str]:
    """The report.md section."""
    lines = ["", "## Compute-optimal allocation: IsoFLOP profiles (Approach 2) vs the Eq. 4 fit (Approach 3)", ""]
    if "unavailable" in section:
        return lines + [f"Approach 2 does not apply to these runs: {section['unavailable']}. It needs several model "
                        f"sizes at each of two or more FLOP budgets (within {MAX_DECADES:g} decades): plan them with "
                        "`beyond sweep plan SPEC --isoflop C1,C2,...`."]
    iso, par = section["isoflop"], section["parametric"]
    interval = iso["a_interval"]
    span = "" if interval is None else f" ({iso['level']:.0%} bootstrap interval {interval[0]:.4f}–{interval[1]:.4f})"
    lines += ["| approach | a (N_opt ∝ C^a) | b (D_opt ∝ C^b) |", "| --- | --- | --- |",
              f"| IsoFLOP profiles, {len(section['budgets_used'])} budgets, {section['n_runs']} runs | "
              f"{iso['a']:.4f}{span} | {iso['b']:.4f} |",
              f"| Eq. 4 fit (beta / (alpha + beta)) | {par['a']:.4f} | {par['b']:.4f} |",
              "| Chinchilla paper (Approaches 2 / 3) | 0.49 / 0.46 | 0.51 / 0.54 |", ""]
    if section.get("interval_withheld"):
        lines.append(f"**No interval**: {section['interval_withheld']}.")
    if section["parametric_a_in_interval"] is not None:
        lines.append(f"The Eq. 4 fit's a lies {'inside' if section['parametric_a_in_interval'] else 'outside'} the "
                     "IsoFLOP interval" + ("." if section["parametric_a_in_interval"] else
                                           ": the two approaches disagree on these runs; trust neither far from them."))
    return lines
