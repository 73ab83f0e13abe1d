"""The paper's Tables 1-3 recomputed cell by cell beside the printed values.

A cell *matches* when our value, rounded to the printed precision, equals the printed value
(tolerance: half a unit of the last printed digit). Cells that differ are listed in
``docs/paper-tables.md`` with the evidence.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from scaling.coefficients import NAMED_SETS, LawCoefficients
from scaling.law import chinchilla_for_params, loss
from scaling.optimal import (
    PAPER_INPUT_TOKENS,
    PAPER_OUTPUT_TOKENS,
    CostSettings,
    InferenceDemand,
    compute_optimal,
    cost_optimal,
    total_cost,
    total_flops,
)

_SUFFIX = {"": 1.0, "K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}


@dataclass(frozen=True)
class Cell:
    """One table cell: the paper's printed text, its value, ours, and whether they agree."""

    row: str
    column: str
    printed: str
    paper: float
    ours: float
    half_unit: float

    @property
    def matches(self) -> bool:
        return abs(self.ours - self.paper) <= self.half_unit * (1 + 1e-9)

    @property
    def rel_diff(self) -> float:
        return (self.ours - self.paper) / self.paper if self.paper else math.inf

    def as_dict(self) -> dict:
        return {"row": self.row, "column": self.column, "printed": self.printed, "paper": self.paper,
                "ours": self.ours, "rel_diff": self.rel_diff, "matches": self.matches}


def parse_printed(text: str) -> tuple[float, float]:
    """'27.4B' -> (2.74e10, 5e7); '2.64e20' -> (2.64e20, 5e17); '9.1%' -> (0.091, 5e-4)."""
    m = re.fullmatch(r"([0-9.]+)(?:e([+-]?\d+))?([KMBT%]?)", text.strip())
    if not m:
        raise ValueError(f"cannot parse printed cell {text!r}")
    mantissa, exp, suffix = m.groups()
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    scale = (10.0 ** int(exp) if exp else 1.0) * (0.01 if suffix == "%" else _SUFFIX[suffix])
    return float(mantissa) * scale, 0.5 * 10.0**-decimals * scale


def _cell(row: str, column: str, printed: str, ours: float) -> Cell:
    paper, half = parse_printed(printed)
    return Cell(row, column, printed, paper, float(ours), half)


# --- Table 2: compute-optimal vs Chinchilla-style (App. B.1) -----------------------------------

TABLE2 = [  # inference tokens, loss, Chinchilla (params, tokens, FLOPs), optimal (params, tokens, FLOPs), reduction
    ("50B", "2.53", "1B", "27.4B", "2.64e20", "6.33M", "46.8B", "2.41e20", "9.1%"),
    ("200B", "2.13", "7B", "276B", "1.44e22", "5.4B", "367B", "1.40e22", "2.6%"),
    ("1T", "2.05", "13B", "577B", "7.10e22", "8.32B", "967B", "6.49e22", "8.5%"),
    ("5T", "1.96", "30B", "1.56T", "5.80e23", "16.4B", "3.27T", "4.86e23", "16%"),
    ("10T", "1.89", "70B", "4.26T", "3.19e24", "41.6B", "7.92T", "2.81e24", "12%"),
]
TABLE2_COLUMNS = ("loss", "chinchilla params", "chinchilla tokens", "chinchilla FLOPs",
                  "optimal params", "optimal tokens", "optimal FLOPs", "FLOP reduction")


def table2(c: LawCoefficients = NAMED_SETS["chinchilla"]) -> list[Cell]:
    """Each row: the Chinchilla-style model of the printed size (its compute-optimal token count,
    its loss), then the compute-optimal model at that exact loss and inference demand."""
    cells = []
    for inf, *printed in TABLE2:
        demand = parse_printed(inf)[0]
        n0 = parse_printed(printed[1])[0]
        d0 = float(chinchilla_for_params(c, n0))
        target = float(loss(c, n0, d0))
        opt = compute_optimal(c, target, demand)
        n, d = float(opt.params), float(opt.tokens)
        f0, f = float(total_flops(n0, d0, demand)), float(total_flops(n, d, demand))
        ours = (target, n0, d0, f0, n, d, f, 1 - f / f0)
        cells += [_cell(inf, col, p, o) for col, p, o in zip(TABLE2_COLUMNS, printed, ours)]
    return cells


# --- Table 3: cost-optimal vs Chinchilla-style (App. B.2) --------------------------------------

TABLE3 = [  # requests, loss, Chinchilla (params, tokens, cost $), optimal (params, tokens, cost $), savings
    ("175M", "2.53", "1B", "27.4B", "3.77K", "327M", "152B", "1.89K", "50%"),
    ("702M", "2.13", "7B", "276B", "124K", "2.90B", "929B", "81.8K", "34%"),
    ("3.51B", "2.05", "13B", "577B", "987K", "430B", "3.1T", "500K", "49%"),
    ("17.5B", "1.96", "30B", "1.56T", "10.8M", "8.58B", "12.1T", "4.52M", "58%"),
    ("35.1B", "1.89", "70B", "4.26T", "51.5M", "21.5B", "27T", "23.8M", "54%"),
]
TABLE3_COLUMNS = ("loss", "chinchilla params", "chinchilla tokens", "chinchilla cost",
                  "optimal params", "optimal tokens", "optimal cost", "cost savings")
PAPER_REQUEST_TOKENS = (PAPER_INPUT_TOKENS, PAPER_OUTPUT_TOKENS)  # input, output tokens per request


def table3(
    c: LawCoefficients = NAMED_SETS["chinchilla"],
    settings: CostSettings | None = None,
    request_tokens: tuple[float, float] = PAPER_REQUEST_TOKENS,
) -> list[Cell]:
    """Like Table 2 in dollars (Eq. 6) with the paper's settings unless given others."""
    settings = settings or CostSettings()
    cells = []
    for req, *printed in TABLE3:
        # requests = Table 2's token demand / 285 tokens per request (the paper: "2T tokens
        # (7.02B requests)"); the printed counts are these rounded to 3 digits.
        tokens_demand = parse_printed(TABLE2[len(cells) // len(TABLE3_COLUMNS)][0])[0]
        demand = InferenceDemand(tokens_demand / sum(request_tokens), *request_tokens)
        n0 = parse_printed(printed[1])[0]
        d0 = float(chinchilla_for_params(c, n0))
        target = float(loss(c, n0, d0))
        opt = cost_optimal(c, target, settings, demand)
        n, d = float(opt.params), float(opt.tokens)
        c0, c1 = float(total_cost(settings, demand, n0, d0)), float(total_cost(settings, demand, n, d))
        ours = (target, n0, d0, c0, n, d, c1, 1 - c1 / c0)
        cells += [_cell(req, col, p, o) for col, p, o in zip(TABLE3_COLUMNS, printed, ours)]
    return cells


# --- Table 1: fits on the paper's runs by tokens/param subset (Sec. 5) --------------------------

TABLE1_SUBSETS = {"<=100 tok/param": 100.0, "<=250 tok/param": 250.0, "<=500 tok/param": 500.0, "All Data": None}
TABLE1_NAMED = {"<=100 tok/param": "sardana-le100", "<=250 tok/param": "sardana-le250",
                "<=500 tok/param": "sardana-le500", "All Data": "sardana-all"}


def huber_objective(c: LawCoefficients, params, tokens, losses, delta: float = 1e-3) -> float:
    """Eq. 4's objective at given coefficients (to compare the paper's fit with ours)."""
    from scaling.eq4 import HuberProblem

    theta = np.array([[c.alpha, c.beta, math.log(c.E), math.log(c.A), math.log(c.B)]])
    problem = HuberProblem(np.log(params), np.log(tokens), np.log(losses), delta)
    return float(problem.value_and_grad(theta)[0][0])


# Table 3 cannot be reproduced from the paper's stated settings (all 25 cost cells are 2-10% off);
# every cell but one is reproduced when the inference cost per request is scaled by this factor,
# found by fitting the printed cells (docs/paper-tables.md has the evidence).
TABLE3_INFERENCE_COST_SCALE = 0.8968


def table3_calibrated() -> list[Cell]:
    """Table 3 with the inference price scaled by TABLE3_INFERENCE_COST_SCALE (see above)."""
    base = CostSettings()
    return table3(settings=CostSettings(inference_price_per_hour=base.inference_price * TABLE3_INFERENCE_COST_SCALE))


# Cells where the printed value disagrees with every recomputation (docs/paper-tables.md).
KNOWN_MISPRINTS = {
    "table2": {
        ("50B", "chinchilla FLOPs"),  # 2.646e20 prints as 2.65e20
        ("50B", "optimal params"),  # 6.33M for 633M (632.5M): unit slip
        ("50B", "FLOP reduction"),  # 9.01%; 9.1% is 1 - 2.41/2.65 from rounded cells
        ("1T", "chinchilla tokens"),  # 576.5B prints as 576B
        ("5T", "optimal tokens"),  # 3.2650T: on the rounding edge
        ("10T", "chinchilla tokens"),  # 4.255T prints as 4.25T
    },
    "table3_calibrated": {
        ("3.51B", "chinchilla tokens"),  # as Table 2's 577B
        ("35.1B", "chinchilla tokens"),  # as Table 2's 4.26T
        ("3.51B", "optimal params"),  # 430B for 4.30B: unit slip
        ("3.51B", "optimal cost"),  # 500.9K; no single scale fits this row's two cost cells
    },
}


def table1(runs_csv: str, delta: float = 1e-3) -> list[dict]:
    """Fit Eq. 4 on each Table 1 subset of the paper's runs; our fit beside the paper's.

    Returns one dict per subset: n_runs, ours (coefficients + objective), paper (coefficients
    + the objective they reach on the same runs).
    """
    from scaling.fit import fit_law
    from scaling.runs import read_runs

    table = read_runs(runs_csv)
    rows = []
    for label, cutoff in TABLE1_SUBSETS.items():
        sub = table.filter_tokens_per_param(cutoff).require()
        fit = fit_law(sub.params, sub.tokens, sub.loss, delta=delta, name=label)
        paper = NAMED_SETS[TABLE1_NAMED[label]]
        rows.append({
            "subset": label,
            "n_runs": int(sub.loss.size),
            "ours": {**_coeffs(fit.coefficients), "objective": fit.objective,
                     "n_starts_at_best": fit.n_starts_at_best, "n_starts": fit.n_starts},
            "paper": {**_coeffs(paper), "objective": huber_objective(paper, sub.params, sub.tokens, sub.loss, delta)},
        })
    return rows


def _coeffs(c: LawCoefficients) -> dict[str, float]:
    return {"alpha": c.alpha, "beta": c.beta, "A": c.A, "B": c.B, "E": c.E}


def format_table1(rows: list[dict]) -> str:
    lines = ["Table 1: Eq. 4 fits on the paper's runs (paper's printed coefficients | ours)",
             f"{'subset':18}{'runs':>5}  {'alpha':>13}  {'beta':>13}  {'A':>17}  {'B':>17}  {'E':>13}  "
             f"{'objective':>23}"]
    for r in rows:
        p, o = r["paper"], r["ours"]
        cells = "  ".join(f"{p[k]:>6.4g}|{o[k]:<6.4g}" if k in ("alpha", "beta", "E") else f"{p[k]:>8.4g}|{o[k]:<8.4g}"
                          for k in ("alpha", "beta", "A", "B", "E"))
        lines.append(f"{r['subset']:18}{r['n_runs']:>5}  {cells}  {p['objective']:.5e}|{o['objective']:.5e}")
    lines.append("objective: Eq. 4 summed Huber at the paper's coefficients | at ours (lower is better)")
    return "\n".join(lines)


def format_cells(title: str, cells: list[dict]) -> str:
    lines = [title, f"{'row':>7}  {'column':18}{'paper':>9}{'ours':>12}{'diff':>9}  status"]
    for c in cells:
        status = "ok" if c["matches"] else "DIFFERS"
        lines.append(f"{c['row']:>7}  {c['column']:18}{c['printed']:>9}{c['ours']:>12.4g}"
                     f"{100 * c['rel_diff']:>8.2f}%  {status}")
    n_ok = sum(c["matches"] for c in cells)
    lines.append(f"{n_ok} of {len(cells)} cells within rounding (see docs/paper-tables.md for the others)")
    return "\n".join(lines)
