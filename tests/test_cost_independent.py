"""Issue 15, deliverable 4: the cost optimizer pinned by an independent implementation of Eq. 6.

Everything below the "independent implementation" banner is written from the paper's text
(Sardana et al., ICML 2024), not from scaling/: it imports nothing from the project. Only
numbers are typed in, each with the place in the paper (or, where the paper is silent, the
outside source) it comes from:

* Eq. 1, the loss law L(N, D_tr) = E + A / N**alpha + B / D_tr**beta.
* Eq. 6, the dollar objective
      6 N D_tr C_tr / MFU_tr + 2 N C_inf [D_inp / MFU_inp + D_out / MFU_out],
  with C_tr, C_inf the dollars per FLOP (OP) at peak, i.e. price per GPU-hour / (3600 s * peak),
  and D_inp, D_out the lifetime input and output tokens (requests x tokens per request).
* App. B.2/B.3 and the Fig. 6 caption, the settings: train on A100-80GB ($1.50/h) at 50% MFU,
  serve on A100-40GB ($1.10/h) after INT8 quantisation, prefill at 50% MFU, generation at 1% MFU,
  70 input and 215 output tokens per request; A100 peaks 3.12e14 FP16/BF16 and 6.24e14 INT8
  operations per second.
* App. A (with its footnote 2), the Chinchilla coefficients the paper's analysis uses:
  A=406.4, B=410.7, E=1.69, alpha=0.336, beta=0.283 (its Table 1 prints Hoffmann et al.'s rounded
  0.34/0.28, which the paper explicitly does not use; one setting below runs them from a file).

The optimum is found by brute force on Eq. 6 itself: D_tr(N) from Eq. 1 at the target loss,
then a dense grid in log N refined by bounded Brent (scipy.optimize.minimize_scalar) on an offset
from the best grid point, so the tolerance is absolute in log N (~1e-9 relative in N). The
project instead solves the Lagrange condition (App. A, Eq. 12) by Newton's method in
y = B / D_tr**beta with the inference bill folded into an equivalent token count; the two
routes share nothing but the paper.

Then: `beyond optimize cost --json` agrees with it to 1e-6 (relative) in params, tokens and
total cost in five settings; the paper's Table 3 printed cells are compared with our values
under the stated settings with the deviations docs/paper-tables.md states; and a meta-check
shows the agreement test would catch a mutated default in the project.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from functools import cache

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from tests.conftest import run_cli

REL_TOL = 1e-6  # agreement required between the CLI and the independent implementation

# ================================================================================================
# Independent implementation (from the paper's text only)
# ================================================================================================


@dataclass(frozen=True)
class Law:
    """Eq. 1's coefficients."""

    A: float
    B: float
    E: float
    alpha: float
    beta: float


# App. A and its footnote 2: the values the paper's analysis (Tables 2-3, Figs. 2 and 6) uses.
CHINCHILLA = Law(A=406.4, B=410.7, E=1.69, alpha=0.336, beta=0.283)
# Table 1, "All Data" row (alpha, beta, A, B, E = 0.18, 0.24, 33.66, 138.9, 1.45).
SARDANA_ALL = Law(A=33.66, B=138.9, E=1.45, alpha=0.18, beta=0.24)
# Table 1, "Chinchilla" row: Hoffmann et al.'s rounded exponents (0.34, 0.28).
HOFFMANN_ROUNDED = Law(A=406.4, B=410.7, E=1.69, alpha=0.34, beta=0.28)

# App. B.3: "Both variants have a peak performance of 3.12e14 dense FP16/BF16 operations and
# 6.24e14 INT8 operations per second"; "an A100-40GB costs USD $1.10/hr and an A100-80GB costs
# $1.50/hr".
A100_BF16 = A100_FP16 = 3.12e14
A100_INT8 = 6.24e14
A100_40_PRICE = 1.10
A100_80_PRICE = 1.50


@dataclass(frozen=True)
class Deployment:
    """Eq. 6's hardware and request settings: prices in $/GPU-hour, peaks in FLOP/s (OP/s)."""

    train_price: float
    train_peak: float
    train_mfu: float
    inference_price: float
    inference_peak: float
    prefill_mfu: float
    generation_mfu: float
    input_tokens: float
    output_tokens: float


# App. B.2 / Fig. 6 caption / App. B.3 (see the module docstring).
PAPER = Deployment(train_price=A100_80_PRICE, train_peak=A100_BF16, train_mfu=0.5,
                   inference_price=A100_40_PRICE, inference_peak=A100_INT8, prefill_mfu=0.5,
                   generation_mfu=0.01, input_tokens=70.0, output_tokens=215.0)


def eq6_dollars(dep: Deployment, requests: float, n, d_tr):
    """Eq. 6: 6 N D_tr C_tr / MFU_tr + 2 N C_inf (D_inp / MFU_inp + D_out / MFU_out)."""
    c_tr = dep.train_price / (3600.0 * dep.train_peak)  # $ per FLOP at peak
    c_inf = dep.inference_price / (3600.0 * dep.inference_peak)
    d_inp, d_out = requests * dep.input_tokens, requests * dep.output_tokens
    return (6.0 * n * d_tr * c_tr / dep.train_mfu
            + 2.0 * n * c_inf * (d_inp / dep.prefill_mfu + d_out / dep.generation_mfu))


def tokens_for_loss(law: Law, loss: float, n):
    """Eq. 1 solved for D_tr at L(N, D_tr) = loss (N above the size that never reaches it)."""
    return (law.B / (loss - law.E - law.A * n ** -law.alpha)) ** (1.0 / law.beta)


def chinchilla_tokens(law: Law, n: float) -> float:
    """Training-compute-optimal tokens for N params: Hoffmann et al. (2022) Eq. 4,
    N_opt(C) = G (C/6)**a, D_opt(C) = G**-1 (C/6)**b, G = (alpha A / (beta B))**(1/(alpha+beta)),
    a = beta/(alpha+beta); inverted for C at N and D = C / (6 N)."""
    g = (law.alpha * law.A / (law.beta * law.B)) ** (1.0 / (law.alpha + law.beta))
    a = law.beta / (law.alpha + law.beta)
    return (n / g) ** (1.0 / a) / n


def loss_like_params(law: Law, n: float) -> float:
    """The loss of the Chinchilla-style model of N params (what --like-params targets)."""
    return law.E + law.A / n**law.alpha + law.B / chinchilla_tokens(law, n) ** law.beta


def cost_optimum(law: Law, loss: float, dep: Deployment, requests: float) -> dict[str, float]:
    """argmin over N of Eq. 6 with D_tr = D_tr(N) from Eq. 1: params, tokens, cost (dollars)."""
    assert loss > law.E
    x_min = math.log(law.A / (loss - law.E)) / law.alpha  # log N below which no D_tr reaches the loss
    offsets = np.logspace(-10.0, math.log10(60.0), 3001)  # log N - x_min from 1e-10 to 60

    def dollars(x):
        n = np.exp(x)
        return eq6_dollars(dep, requests, n, tokens_for_loss(law, loss, n))

    grid = dollars(x_min + offsets)
    i = int(np.argmin(grid))
    assert 0 < i < offsets.size - 1, "the optimum is not inside the search grid"
    x0 = x_min + offsets[i]
    lo, hi = x_min + offsets[i - 1] - x0, x_min + offsets[i + 1] - x0
    res = minimize_scalar(lambda u: float(dollars(x0 + u)), bounds=(lo, hi), method="bounded",
                          options={"xatol": 1e-14, "maxiter": 10_000})
    assert res.success, res.message
    n = math.exp(x0 + res.x)
    d = float(tokens_for_loss(law, loss, n))
    return {"params": n, "tokens": d, "cost": float(eq6_dollars(dep, requests, n, d))}


# ================================================================================================
# The CLI under test
# ================================================================================================


@cache
def cli_cost(*args: str) -> dict:
    """`beyond optimize cost ARGS --json` (a subprocess, as a user runs it), parsed."""
    proc = run_cli("optimize", "cost", *args, "--json", check=True)
    return json.loads(proc.stdout)


def max_rel_diff(ours: dict, cli: dict) -> float:
    opt = cli["optimal"]
    return max(abs(opt[k] / ours[k] - 1.0) for k in ("params", "tokens", "cost"))


@dataclass(frozen=True)
class Setting:
    name: str
    cli_args: tuple[str, ...]
    law: Law
    requests: float
    dep: Deployment
    loss: float | None = None
    like_params: float | None = None

    @property
    def target_loss(self) -> float:
        return self.loss if self.loss is not None else loss_like_params(self.law, self.like_params)


HOFFMANN_FILE = "@hoffmann-rounded.json"  # replaced by the file the fixture below writes


@pytest.fixture(scope="module")
def hoffmann_file(tmp_path_factory) -> str:
    """A `beyond fit`-style JSON file with Table 1's rounded Hoffmann exponents (tests the
    --coefficients FILE path with a law the project has no name for)."""
    path = tmp_path_factory.mktemp("cost-independent") / "hoffmann-rounded.json"
    c = HOFFMANN_ROUNDED
    path.write_text(json.dumps({"coefficients": {"A": c.A, "B": c.B, "E": c.E, "alpha": c.alpha, "beta": c.beta,
                                                 "name": "hoffmann-rounded"}}))
    return str(path)

SETTINGS = [
    # 1-2: the paper's defaults (Table 3 / Fig. 6 settings), nothing passed but quality and demand
    Setting("defaults-like-7B", ("--like-params", "7B", "--requests", "1e9"), CHINCHILLA, 1e9, PAPER,
            like_params=7e9),
    Setting("defaults-loss-1.96", ("--loss", "1.96", "--requests", "17.5e9"), CHINCHILLA, 17.5e9, PAPER,
            loss=1.96),
    # 3: train on A100-40GB (bf16), serve in fp16 (no quantisation), own prices, MFUs, request shape
    Setting("a100-40-train-fp16-serve",
            ("--loss", "2.05", "--requests", "3e9", "--train-gpu", "a100-40", "--train-dtype", "bf16",
             "--train-price", "1.29", "--train-mfu", "0.42", "--inference-gpu", "a100-40",
             "--inference-dtype", "fp16", "--inference-price", "1.79", "--prefill-mfu", "0.6",
             "--generation-mfu", "0.02", "--input-tokens", "512", "--output-tokens", "128"),
            CHINCHILLA, 3e9,
            Deployment(train_price=1.29, train_peak=A100_BF16, train_mfu=0.42, inference_price=1.79,
                       inference_peak=A100_FP16, prefill_mfu=0.6, generation_mfu=0.02,
                       input_tokens=512, output_tokens=128),
            loss=2.05),
    # 4: fp16 training, serve INT8 on A100-80GB, the paper's Table 1 "All Data" law, prompt-heavy
    Setting("a100-80-serve-sardana-all",
            ("--loss", "2.5", "--requests", "5e10", "--coefficients", "sardana-all", "--train-gpu", "a100-80",
             "--train-dtype", "fp16", "--train-price", "2.2", "--train-mfu", "0.35", "--inference-gpu", "a100-80",
             "--inference-dtype", "int8", "--inference-price", "0.8", "--prefill-mfu", "0.3",
             "--generation-mfu", "0.05", "--input-tokens", "1000", "--output-tokens", "50"),
            SARDANA_ALL, 5e10,
            Deployment(train_price=2.2, train_peak=A100_FP16, train_mfu=0.35, inference_price=0.8,
                       inference_peak=A100_INT8, prefill_mfu=0.3, generation_mfu=0.05,
                       input_tokens=1000, output_tokens=50),
            loss=2.5),
    # 5: GPUs swapped against the paper's; the inference price is left to the GPU's list price
    # (A100-80GB: $1.50/h, App. B.3); generation-heavy requests; coefficients from a file
    Setting("swapped-gpus-list-price-file-law",
            ("--loss", "2.3", "--requests", "2e8", "--coefficients", HOFFMANN_FILE, "--train-gpu", "a100-40",
             "--train-price", "0.95", "--train-mfu", "0.6", "--inference-gpu", "a100-80",
             "--prefill-mfu", "0.45", "--generation-mfu", "0.005", "--input-tokens", "20",
             "--output-tokens", "800"),
            HOFFMANN_ROUNDED, 2e8,
            Deployment(train_price=0.95, train_peak=A100_BF16, train_mfu=0.6, inference_price=A100_80_PRICE,
                       inference_peak=A100_INT8, prefill_mfu=0.45, generation_mfu=0.005,
                       input_tokens=20, output_tokens=800),
            loss=2.3),
]


@pytest.mark.parametrize("s", SETTINGS, ids=[s.name for s in SETTINGS])
def test_cli_cost_optimum_agrees_with_independent_eq6(s: Setting, hoffmann_file: str):
    cli = cli_cost(*(hoffmann_file if a == HOFFMANN_FILE else a for a in s.cli_args))
    ours = cost_optimum(s.law, s.target_loss, s.dep, s.requests)
    assert cli["loss"] == pytest.approx(s.target_loss, rel=1e-12)
    for key in ("params", "tokens", "cost"):
        assert cli["optimal"][key] == pytest.approx(ours[key], rel=REL_TOL), key
    # the Chinchilla-style reference's cost is Eq. 6 at the compute-optimal (N0, D0) for the loss
    ref = cli["chinchilla"]
    assert ref["tokens"] == pytest.approx(float(tokens_for_loss(s.law, s.target_loss, ref["params"])), rel=1e-9)
    assert ref["cost"] == pytest.approx(float(eq6_dollars(s.dep, s.requests, ref["params"], ref["tokens"])),
                                        rel=1e-12)
    assert ref["cost"] >= cli["optimal"]["cost"] * (1 - 1e-12)


def test_cli_defaults_are_the_papers_settings():
    """The settings the CLI echoes when given none are App. B.2/B.3's, typed from the paper."""
    cli = cli_cost(*SETTINGS[0].cli_args)
    st = cli["settings"]
    assert (st["train_gpu"], st["train_dtype"], st["inference_gpu"], st["inference_dtype"]) == (
        "a100-80", "bf16", "a100-40", "int8")
    assert st["train_price_per_hour"] == PAPER.train_price
    assert st["inference_price_per_hour"] == PAPER.inference_price
    assert (st["train_mfu"], st["prefill_mfu"], st["generation_mfu"]) == (
        PAPER.train_mfu, PAPER.prefill_mfu, PAPER.generation_mfu)
    assert (cli["input_tokens_per_request"], cli["output_tokens_per_request"]) == (
        PAPER.input_tokens, PAPER.output_tokens)
    co = cli["coefficients"]
    assert (co["A"], co["B"], co["E"], co["alpha"], co["beta"]) == (
        CHINCHILLA.A, CHINCHILLA.B, CHINCHILLA.E, CHINCHILLA.alpha, CHINCHILLA.beta)


# H100 (not in the paper; the paper prices and rates only A100s). Dense peaks from NVIDIA's H100
# SXM5 datasheet (the sparse figures halved): BF16 989.5 TFLOP/s, FP8 1979 TFLOP/s. The project
# types 9.89e14 and 1.978e15 (scaling/optimal.py PEAK_FLOPS), about 5e-4 lower, so this setting is
# held to 1e-3, not REL_TOL; prices are passed explicitly (the project's $2.00/h H100 list price
# has no source in the paper).
H100_BF16_DATASHEET = 989.5e12
H100_FP8_DATASHEET = 1979e12


def test_cli_cost_optimum_on_h100_agrees_within_datasheet_rounding():
    args = ("--loss", "2.0", "--requests", "1e10", "--train-gpu", "h100", "--train-price", "2.49",
            "--train-mfu", "0.4", "--inference-gpu", "h100", "--inference-dtype", "fp8",
            "--inference-price", "2.49", "--prefill-mfu", "0.5", "--generation-mfu", "0.02")
    dep = Deployment(train_price=2.49, train_peak=H100_BF16_DATASHEET, train_mfu=0.4, inference_price=2.49,
                     inference_peak=H100_FP8_DATASHEET, prefill_mfu=0.5, generation_mfu=0.02,
                     input_tokens=70, output_tokens=215)
    ours = cost_optimum(CHINCHILLA, 2.0, dep, 1e10)
    assert max_rel_diff(ours, cli_cost(*args)) < 1e-3


# ================================================================================================
# Table 3 (App. B.2) against the paper's printed cells
# ================================================================================================

# Typed from the paper's Table 3: requests, loss, Chinchilla (params, tokens, cost $),
# cost-optimal (params, tokens, cost $), savings.
TABLE3_PRINTED = [
    ("175M", "2.53", "1B", "27.4B", "3.77K", "327M", "152B", "1.89K", "50%"),
    ("702M", "2.13", "7B", "276B", "124K", "2.90B", "929B", "81.8K", "34%"),
    ("3.51B", "2.05", "13B", "577B", "987K", "430B", "3.1T", "500K", "49%"),
    ("17.5B", "1.96", "30B", "1.56T", "10.8M", "8.58B", "12.1T", "4.52M", "58%"),
    ("35.1B", "1.89", "70B", "4.26T", "51.5M", "21.5B", "27T", "23.8M", "54%"),
]
COLUMNS = ("loss", "chinchilla params", "chinchilla tokens", "chinchilla cost",
           "optimal params", "optimal tokens", "optimal cost", "cost savings")
# Table 2's inference tokens for the same rows; Table 3's requests are these / (70 + 215)
# (Sec. 6: "2T tokens (7.02B requests)"), printed rounded to 3 digits.
TABLE2_TOKENS = (50e9, 200e9, 1e12, 5e12, 10e12)
_SCALE = {"": 1.0, "K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12, "%": 1e-2}


def printed_value(text: str) -> tuple[float, float]:
    """'27.4B' -> (2.74e10, 5e7): the value and half a unit of its last printed digit."""
    suffix = text[-1] if text[-1] in _SCALE else ""
    mantissa = text[: len(text) - len(suffix)]
    decimals = len(mantissa.partition(".")[2])
    return float(mantissa) * _SCALE[suffix], 0.5 * 10.0**-decimals * _SCALE[suffix]


def table3_ours(dep: Deployment) -> dict[tuple[str, str], float]:
    """Table 3 recomputed by the independent implementation (rows as docs/paper-tables.md defines
    them: N0 printed, D0 its compute-optimal tokens, the loss L(N0, D0), demand Table 2 / 285)."""
    out = {}
    for row, tokens in zip(TABLE3_PRINTED, TABLE2_TOKENS):
        label, n0 = row[0], printed_value(row[2])[0]
        requests = tokens / (dep.input_tokens + dep.output_tokens)
        d0 = chinchilla_tokens(CHINCHILLA, n0)
        loss = CHINCHILLA.E + CHINCHILLA.A / n0**CHINCHILLA.alpha + CHINCHILLA.B / d0**CHINCHILLA.beta
        c0 = float(eq6_dollars(dep, requests, n0, d0))
        opt = cost_optimum(CHINCHILLA, loss, dep, requests)
        values = (loss, n0, d0, c0, opt["params"], opt["tokens"], opt["cost"], 1 - opt["cost"] / c0)
        out.update({(label, col): v for col, v in zip(COLUMNS, values)})
    return out


def printed_cells() -> dict[tuple[str, str], str]:
    return {(row[0], col): text for row in TABLE3_PRINTED for col, text in zip(COLUMNS, row[1:])}


@pytest.fixture(scope="module")
def table3_stated() -> dict[tuple[str, str], float]:
    return table3_ours(PAPER)


def test_table3_project_values_equal_the_independent_ones(table3_stated):
    """`beyond tables` (scaling.tables.table3) computes the same numbers as Eq. 6 from the text."""
    from scaling import tables

    project = {(c.row, c.column): c.ours for c in tables.table3()}
    assert set(project) == set(table3_stated)
    for key, ours in table3_stated.items():
        assert project[key] == pytest.approx(ours, rel=REL_TOL), key


def test_table3_stated_settings_deviate_from_the_printed_cells_as_documented(table3_stated):
    """docs/paper-tables.md, "Table 3 (cost-optimal): not reproducible from the stated settings":
    13 of 40 cells match (loss, Chinchilla params, 3 of 5 Chinchilla tokens); Chinchilla costs
    9-10.4% above the printed, optimal params 2.4-2.9% low, optimal tokens 5.8-8.3% high. A stated
    range is held to half a unit of its own last digit (e.g. 9-10.4% -> [8.95%, 10.45%])."""
    matched = set()
    for key, text in printed_cells().items():
        row, column = key
        paper, half = printed_value(text)
        ours = table3_stated[key]
        if abs(ours - paper) <= half * (1 + 1e-9):
            matched.add(key)
        if column == "optimal params" and text == "430B":
            paper = 4.30e9  # unit slip documented in docs/paper-tables.md: 430B printed for 4.30B
        rel = ours / paper - 1
        if column in ("loss", "chinchilla params"):
            assert key in matched, (key, ours)
        elif column == "chinchilla tokens":
            # 577B and 4.26T: misprints (576.49B, 4.2547T), "as in Table 2"
            assert (key in matched) == (text not in ("577B", "4.26T")), (key, ours)
            assert abs(rel) < 0.003, (key, rel)
        elif column == "chinchilla cost":
            assert 0.0895 <= rel <= 0.1045, (key, rel)  # docs: 9-10.4% above
        elif column == "optimal params":
            assert -0.0295 <= rel <= -0.0235, (key, rel)  # docs: 2.4-2.9% low
        elif column == "optimal tokens":
            assert 0.0575 <= rel <= 0.0835, (key, rel)  # docs: 5.8-8.3% high
        elif column == "optimal cost":
            # docs/paper-tables.md: every optimal-cost cell is 5.4-7.3% above the printed one
            # (the Chinchilla costs are 9.0-10.3% above)
            assert 0.053 <= rel <= 0.074, (key, rel)
        elif column == "cost savings":
            # docs/paper-tables.md: the savings are 1.25-2.2 percentage points above the printed
            # ones (absolute, not relative)
            assert 0.012 <= ours - paper <= 0.023, (key, ours - paper)
    assert len(matched) == 13, sorted(matched)


# docs/paper-tables.md: the printed cells imply an inference cost per request 0.8968 x the stated
# one; with it 36 of 40 cells match and these four do not.
CALIBRATION = 0.8968
CALIBRATED_MISPRINTS = {("3.51B", "chinchilla tokens"), ("35.1B", "chinchilla tokens"),
                        ("3.51B", "optimal params"), ("3.51B", "optimal cost")}


def test_table3_with_the_documented_calibration_matches_all_but_the_documented_misprints():
    ours = table3_ours(replace(PAPER, inference_price=PAPER.inference_price * CALIBRATION))
    mismatched = set()
    for key, text in printed_cells().items():
        paper, half = printed_value(text)
        if abs(ours[key] - paper) > half * (1 + 1e-9):
            mismatched.add(key)
    assert mismatched == CALIBRATED_MISPRINTS


# ================================================================================================
# Meta-check: the agreement test is sensitive to every default
# ================================================================================================

META = SETTINGS[0]  # the CLI run with every default

# One default changed at a time in the independent implementation. Gross flips (a plausible
# wrong constant) must move the answer by > 1e-3; one-unit flips (a cent, an MFU point, one token)
# by > 10 x REL_TOL, so even they would fail the agreement test above.
GROSS_FLIPS = {
    "a100-80 price 1.50 -> 1.10": {"train_price": 1.10},
    "a100-40 price 1.10 -> 1.50": {"inference_price": 1.50},
    "train peak bf16 -> int8": {"train_peak": A100_INT8},
    "inference peak int8 -> bf16": {"inference_peak": A100_BF16},
    "train MFU 0.5 -> 0.4": {"train_mfu": 0.4},
    "prefill MFU 0.5 -> 0.25": {"prefill_mfu": 0.25},
    "generation MFU 0.01 -> 0.02": {"generation_mfu": 0.02},
    "input tokens 70 -> 140": {"input_tokens": 140.0},
    "output tokens 215 -> 200": {"output_tokens": 200.0},
    "chinchilla exponents -> 0.34/0.28": {"law": HOFFMANN_ROUNDED},
}
UNIT_FLIPS = {
    "a100-80 price 1.50 -> 1.51": {"train_price": 1.51},
    "a100-40 price 1.10 -> 1.11": {"inference_price": 1.11},
    "train MFU 0.50 -> 0.49": {"train_mfu": 0.49},
    "prefill MFU 0.50 -> 0.49": {"prefill_mfu": 0.49},
    "generation MFU 0.010 -> 0.011": {"generation_mfu": 0.011},
    "input tokens 70 -> 71": {"input_tokens": 71.0},
    "output tokens 215 -> 214": {"output_tokens": 214.0},
    "alpha 0.336 -> 0.337": {"law": replace(CHINCHILLA, alpha=0.337)},
    "beta 0.283 -> 0.284": {"law": replace(CHINCHILLA, beta=0.284)},
}


def _flipped_answer(flip: dict) -> dict:
    flip = dict(flip)
    law = flip.pop("law", META.law)
    return cost_optimum(law, loss_like_params(law, META.like_params), replace(META.dep, **flip), META.requests)


@pytest.mark.parametrize("name", list(GROSS_FLIPS))
def test_meta_a_grossly_wrong_default_would_be_caught(name):
    assert max_rel_diff(_flipped_answer(GROSS_FLIPS[name]), cli_cost(*META.cli_args)) > 1e-3


@pytest.mark.parametrize("name", list(UNIT_FLIPS))
def test_meta_a_one_unit_wrong_default_would_be_caught(name):
    assert max_rel_diff(_flipped_answer(UNIT_FLIPS[name]), cli_cost(*META.cli_args)) > 10 * REL_TOL


def test_meta_the_unflipped_default_agrees():
    assert max_rel_diff(_flipped_answer({}), cli_cost(*META.cli_args)) < REL_TOL
