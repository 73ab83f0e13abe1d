"""Held-out checks (scaling/holdout.py, `beyond fit --holdout`, the report's extrapolation
section): the expression parser, the JSON contract, bad input, and the paper's Sec. 5 claim on
its 47 runs with the numbers docs/fitter.md quotes."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from scaling.coefficients import NAMED_SETS
from scaling.errors import InputError
from scaling.holdout import (
    distinct_ratios,
    extrapolation_checks,
    holdout_check,
    largest_size_split,
    long_ratio_split,
    parse_holdout,
)
from scaling.runs import RunTable, read_runs
from tests.conftest import run_cli

# docs/fitter.md, "Held-out checks": fit on <= 100 tokens/param (34 runs), predict the other 13
PAPER_N_HELD_OUT, PAPER_N_FIT = 13, 34
PAPER_BIAS, PAPER_MEAN_ERROR, PAPER_MAX_ERROR = -0.0576, 0.0576, 0.1503
TOLERANCE = 0.0005  # absolute, on relative errors: the quoted numbers are rounded to 4 decimals


def _table(params, ratios, noise: float = 0.0, seed: int = 0) -> RunTable:
    """Runs on the Chinchilla law at every (N params, D/N ratio) pair, with relative loss noise."""
    c = NAMED_SETS["chinchilla"]
    n = np.repeat(np.asarray(params, dtype=float), len(ratios))
    d = n * np.tile(np.asarray(ratios, dtype=float), len(params))
    loss = (c.E + c.A / n**c.alpha + c.B / d**c.beta) * (1 + noise * np.random.default_rng(seed).standard_normal(n.size))
    return RunTable(n, d, loss, [f"r{i}" for i in range(n.size)], "synthetic")


def _write_csv(table: RunTable, path) -> str:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Parameters", "Tokens", "Smoothed Loss"])
        w.writerows(zip(table.params, table.tokens, table.loss))
    return str(path)


@pytest.fixture
def synthetic_csv(tmp_path) -> str:
    """24 runs: 4 sizes (100M-3B) x 6 ratios (10-500 tokens/param), 0.5% loss noise."""
    return _write_csv(_table([1e8, 3e8, 1e9, 3e9], [10, 20, 50, 100, 250, 500], noise=0.005), tmp_path / "runs.csv")


# --- the expression parser -------------------------------------------------------------------

@pytest.mark.parametrize("expr, field, op, value", [
    ("params>1.5B", "params", ">", 1.5e9),
    ("params<=400M", "params", "<=", 4e8),
    ("params>=2K", "params", ">=", 2e3),
    ("params<1T", "params", "<", 1e12),
    ("params>1.5G", "params", ">", 1.5e9),
    ("params>7e9", "params", ">", 7e9),
    ("  params > 1.5b ", "params", ">", 1.5e9),
    ("tokens_per_param>100", "tokens_per_param", ">", 100.0),
    ("tokens_per_param<=1e3", "tokens_per_param", "<=", 1e3),
    ("tokens_per_param<.5k", "tokens_per_param", "<", 500.0),
])
def test_parse_holdout(expr, field, op, value):
    rule = parse_holdout(expr)
    assert (rule.field, rule.op) == (field, op) and rule.value == pytest.approx(value, rel=1e-12)
    assert parse_holdout(rule.text) == rule  # the canonical text parses back to the same rule


@pytest.mark.parametrize("expr", ["", "params", "params>", ">1B", "params=1B", "params==1B", "params>>1B",
                                  "params!=1B", "params>-1B", "params>1.5BB", "params>3X", "loss>3",
                                  "tokens_per_param>abc", "params>1B and params<3B"])
def test_parse_holdout_rejects_malformed(expr):
    with pytest.raises(InputError, match="holdout expression"):
        parse_holdout(expr)


def test_rule_masks_compare_ratios_with_the_max_tokens_per_param_tolerance():
    t = RunTable(np.array([1e8, 1e8, 1e8, 2e9]), np.array([1e10, 1e10 * (1 + 1e-12), 2e10, 2e11]),
                 np.array([3.0, 3.0, 2.9, 2.5]), ["a", "b", "c", "d"], "t")
    assert parse_holdout("tokens_per_param>100").mask(t).tolist() == [False, False, True, False]
    assert parse_holdout("tokens_per_param>=100").mask(t).tolist() == [True, True, True, True]
    assert parse_holdout("tokens_per_param<100").mask(t).tolist() == [False, False, False, False]
    assert parse_holdout("params>1e8").mask(t).tolist() == [False, False, False, True]
    assert parse_holdout("params<=100M").mask(t).tolist() == [True, True, True, False]


# --- the computation -------------------------------------------------------------------------

def test_noiseless_runs_are_predicted_exactly_and_the_statistics_add_up():
    t = _table([1e8, 3e8, 1e9, 3e9, 1e10], [10, 20, 50, 200])
    h = holdout_check(t, "params>=3B")
    s = h.summary()
    assert (s["n_runs"], s["n_fit"], h.fit.n_runs) == (8, 12, 12)
    assert s["max_abs_rel_error"] < 1e-4
    err = (h.predicted - h.loss) / h.loss
    assert s["bias"] == pytest.approx(err.mean()) and s["mean_abs_rel_error"] == pytest.approx(np.abs(err).mean())
    assert [r["params"] for r in h.as_dict()["runs"]] == h.params.tolist()


def test_report_splits():
    paperlike = _table([1e8, 4e8, 1e9], [10, 20, 50, 100, 250, 1000])
    assert largest_size_split(paperlike).held_out.sum() == 6
    split = long_ratio_split(paperlike)  # longer runs than 100 tokens/param: fit on <= 100
    assert split.expr == "tokens_per_param>100" and split.held_out.sum() == 6
    short = _table([1e8, 4e8, 1e9], [4, 8, 16 * (1 + 1e-6), 16])  # no ratio above 100: the lower half
    assert distinct_ratios(short.tokens_per_param).tolist() == pytest.approx([4, 8, 16 * (1 + 1e-6)])
    split = long_ratio_split(short)
    assert split.expr == "tokens_per_param>8" and split.held_out.sum() == 6


def test_report_says_a_split_was_not_possible(tmp_path):
    from scaling.report import build_report

    tiny = _table([1e8, 1e9], [10, 20, 40, 80])  # 8 runs: either split leaves 4 to fit
    checks = extrapolation_checks(tiny)
    assert [c["split"] for c in checks] == ["largest size", "long ratios"]
    assert all("leaves 4 of 8 runs to fit" in c["unavailable"] for c in checks)
    summary = build_report(tiny, tmp_path / "rep")
    md = (tmp_path / "rep" / "report.md").read_text()
    assert md.count("not possible: holdout") == 2 and "No split was possible" in md
    assert not (tmp_path / "rep" / "extrapolation_checks.png").exists()
    assert [r["unavailable"] != "" for r in summary["extrapolation"]] == [True, True]


# --- the CLI ----------------------------------------------------------------------------------

def test_holdout_json_contract(synthetic_csv):
    proc = run_cli("fit", synthetic_csv, "--holdout", "params>1B", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    h = out["holdout"]
    assert out["n_runs"] == h["n_fit"] == 18  # the fit is on the runs not held out
    assert h["expr"] == "params>1B" and h["n_runs"] == len(h["runs"]) == 6
    for key in ("mean_abs_rel_error", "max_abs_rel_error", "bias"):
        assert isinstance(h[key], float)
    for r in h["runs"]:
        assert {"params", "tokens", "loss", "predicted"} <= set(r) and r["params"] == 3e9
    err = np.array([(r["predicted"] - r["loss"]) / r["loss"] for r in h["runs"]])
    assert h["bias"] == pytest.approx(err.mean()) and h["mean_abs_rel_error"] == pytest.approx(np.abs(err).mean())
    assert h["max_abs_rel_error"] == pytest.approx(np.abs(err).max()) and h["max_abs_rel_error"] < 0.05
    human = run_cli("fit", synthetic_csv, "--holdout", "tokens_per_param>=250")
    assert human.returncode == 0, human.stderr
    assert "held out 8 runs (tokens_per_param>=250), fitted on 16" in human.stdout
    assert "predicted" in human.stdout and len(human.stdout.splitlines()) == 3 + 1 + 1 + 8


@pytest.mark.parametrize("expr, message", [
    ("params>>1B", "holdout expression 'params>>1B': expected FIELD OP NUMBER"),  # malformed
    ("tokens_per_param>10", "leaves 4 of 24 runs to fit, need at least 6"),  # too few left to fit
    ("params>5B", "holds out none of the 24 runs"),  # nothing held out
])
def test_holdout_bad_input_is_one_line_and_exit_2(synthetic_csv, expr, message):
    proc = run_cli("fit", synthetic_csv, "--holdout", expr, "--json")
    assert proc.returncode == 2, proc.stdout
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert message in proc.stderr and proc.stdout == ""


def test_six_runs_left_are_enough():
    t = _table([1e8, 3e8, 1e9, 3e9], [10, 20, 50, 100, 250, 500])
    assert holdout_check(t, "params>=300M").summary()["n_fit"] == 6
    with pytest.raises(InputError, match="leaves 5 of 23 runs to fit"):
        holdout_check(t.select(np.arange(24) != 0), "params>=300M")  # one 100M run fewer


# --- the paper's 47 runs: Sec. 5's claim, as docs/fitter.md quotes it ---------------------------

def test_paper_runs_fit_on_typical_ratios_is_optimistic_about_long_training(paper_runs_csv):
    proc = run_cli("fit", str(paper_runs_csv), "--holdout", "tokens_per_param>100", "--json")
    assert proc.returncode == 0, proc.stderr
    h = json.loads(proc.stdout)["holdout"]
    assert (h["n_runs"], h["n_fit"]) == (PAPER_N_HELD_OUT, PAPER_N_FIT)
    assert h["bias"] == pytest.approx(PAPER_BIAS, abs=TOLERANCE)
    assert h["mean_abs_rel_error"] == pytest.approx(PAPER_MEAN_ERROR, abs=TOLERANCE)
    assert h["max_abs_rel_error"] == pytest.approx(PAPER_MAX_ERROR, abs=TOLERANCE)
    # every held-out run reached a higher loss than the law fitted on <= 100 tokens/param predicts
    assert h["n_predicted_below_actual"] == PAPER_N_HELD_OUT
    assert all(r["predicted"] < r["loss"] for r in h["runs"])
    # and the error grows with the ratio: the 150M run at 10,000 tokens/param is the worst
    worst = max(h["runs"], key=lambda r: abs(r["predicted"] - r["loss"]) / r["loss"])
    assert (worst["params"], worst["tokens"] / worst["params"]) == (151e6, pytest.approx(10000))


def test_paper_runs_report_splits(paper_runs_csv):
    checks = {c["split"]: c for c in extrapolation_checks(read_runs(paper_runs_csv))}
    size = checks["largest size"]["result"].summary()
    assert (size["n_runs"], size["n_fit"]) == (1, 46)  # the 6B run, from the five smaller sizes
    ratio = checks["long ratios"]
    assert ratio["expr"] == "tokens_per_param>100"
    assert ratio["result"].summary()["bias"] == pytest.approx(PAPER_BIAS, abs=TOLERANCE)
