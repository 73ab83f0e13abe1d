"""Issue 17 in the CLI: `--inference-model roofline` (optimize cost, plan, report), `--unique-tokens U`
(law, optimize compute|cost, plan) and `--gauntlet-target G` (optimize, plan), alone and together,
and the combined core they need (scaling/roofline_constrained.py)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import yaml

from scaling import data_constrained as dc
from scaling.coefficients import NAMED_SETS
from scaling.errors import InputError
from scaling.optimal import CostSettings, InferenceDemand
from scaling.roofline import RooflineSettings, dollars_per_request, max_batch, request_cost, roofline_cost_optimal
from scaling.roofline_constrained import roofline_cost_optimal_constrained
from tests.conftest import require_train_extra, run_cli

C = NAMED_SETS["chinchilla"]
H100_64 = RooflineSettings(gpu="h100", dtype="int8", batch=64, gpus=None)
ROOFLINE = ["--inference-model", "roofline", "--inference-gpu", "h100", "--serving-batch", "64"]


def _json(*args):
    proc = run_cli(*args, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _one_line_error(proc, words):
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("beyond") and words in lines[0], lines[0]
    assert "Traceback" not in proc.stderr


# --- U = inf is the paper's answer --------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["optimize", "compute", "--like-params", "13B", "--inference-tokens", "2T"],
    ["optimize", "compute", "--loss", "1.947", "--inference-tokens", "2e12", "--coefficients", "sardana-all"],
    ["optimize", "cost", "--like-params", "70B", "--requests", "7.02B", "--sensitivity"],
    ["optimize", "cost", "--like-params", "7B", "--requests", "1e9", *ROOFLINE],
    ["law", "--params", "7B", "--chinchilla"],
], ids=lambda a: " ".join(a[:3]))
def test_unlimited_unique_tokens_is_todays_answer_exactly(args):
    plain = run_cli(*args, check=True).stdout
    assert run_cli(*args, "--unique-tokens", "inf", check=True).stdout == plain  # byte for byte
    if args[0] == "optimize":  # a budget far beyond the optimum's tokens changes no number of the answer
        big = _json(*args, "--unique-tokens", "1e30")
        ref = _json(*args)
        for key in ("optimal", "chinchilla"):
            for k in ("params", "tokens", "flops", "cost"):
                if k in ref[key]:
                    assert big[key][k] == ref[key][k], (key, k)
        assert big["data_constrained"]["binds"] is False


def test_unlimited_budget_is_the_papers_optimum_in_the_core():
    target = np.array([1.9, 2.1, 2.5])
    requests = np.array([1e7, 1e9, 1e11])
    plain = roofline_cost_optimal(C, target, H100_64, requests)
    for u in (math.inf, 1e30):
        got = roofline_cost_optimal_constrained(C, target, H100_64, requests, u)
        np.testing.assert_array_equal(got.params, plain.params)
        np.testing.assert_array_equal(got.tokens, plain.tokens)
        assert not got.binds.any()
    # the authors' compute_optimal.py example, through the CLI with an unlimited budget
    r = _json("optimize", "compute", "--loss", "1.947", "--inference-tokens", "2e12", "--unique-tokens", "inf")
    assert r["optimal"]["params"] == pytest.approx(2.418e10, rel=5e-4)
    assert r["optimal"]["tokens"] == pytest.approx(2.657e12, rel=5e-4)


# --- roofline ---------------------------------------------------------------------------------------------

def test_roofline_output_fields_and_pricing():
    r = _json("optimize", "cost", "--like-params", "7B", "--requests", "7.02B", *ROOFLINE)
    assert r["inference_model"] == "roofline"
    assert r["serving"]["gpu"] == "h100" and r["serving"]["batch"] == 64 and r["serving"]["gpus"] is None
    assert set(r["settings"]) == {"train_gpu", "train_dtype", "train_price_per_hour", "train_mfu"}
    k_tr = CostSettings().dollars_per_train_flop
    for key in ("optimal", "chinchilla"):
        m, s = r[key], r[key]["serving"]
        for field in ("dollars_per_request", "tokens_per_second_per_gpu", "output_tokens_per_second_per_gpu",
                      "generation_mfu", "memory_bound", "batch", "gpus", "decode_step_seconds"):
            assert field in s
        assert s["batch"] == 64 and 0 < s["generation_mfu"] <= 1
        assert s["dollars_per_request"] == pytest.approx(float(dollars_per_request(m["params"], H100_64)), rel=1e-12)
        # the Chinchilla-style model is priced with the same cost model
        assert m["train_cost"] == pytest.approx(k_tr * 6 * m["params"] * m["tokens"], rel=1e-12)
        assert m["inference_cost"] == pytest.approx(7.02e9 * s["dollars_per_request"], rel=1e-9)
        assert m["cost"] == pytest.approx(m["train_cost"] + m["inference_cost"], rel=1e-12)
        assert s["tokens_per_second_per_gpu"] == pytest.approx(285 / s["seconds_per_request"], rel=1e-12)
    assert r["cost_ratio"] == pytest.approx(r["optimal"]["cost"] / r["chinchilla"]["cost"], rel=1e-12)
    assert r["cost_ratio"] < 1
    # fixed batch: the smaller model is the cheaper request
    assert r["optimal"]["params"] < r["chinchilla"]["params"]
    assert r["optimal"]["serving"]["dollars_per_request"] < r["chinchilla"]["serving"]["dollars_per_request"]
    text = run_cli("optimize", "cost", "--like-params", "7B", "--requests", "7.02B", *ROOFLINE, check=True).stdout
    assert "tokens/s/GPU" in text and "/request" in text and "generation MFU" in text


@pytest.mark.parametrize("gpu, dtype", [("a100-40", "int8"), ("a100-80", "bf16"), ("h100", "fp8"), ("h200", "bf16")])
@pytest.mark.parametrize("batch", [1, 16, 256])
def test_cost_per_request_rises_with_model_size_at_fixed_batch(gpu, dtype, batch):
    s = RooflineSettings(gpu=gpu, dtype=dtype, batch=batch, gpus=None, price_per_hour=3.0)
    n = np.sort(10 ** np.random.default_rng(batch).uniform(7.5, 11.5, 400))
    cost = request_cost(n, s).dollars_per_request
    assert np.all(np.diff(cost) > 0)


def test_roofline_at_the_papers_one_percent_batch_is_close_to_eq6():
    """At batch 2 the roofline's generation MFU is about the paper's 1% (docs/roofline.md)."""
    paper = _json("optimize", "cost", "--like-params", "70B", "--requests", "7.02B")
    roof = _json("optimize", "cost", "--like-params", "70B", "--requests", "7.02B", "--inference-model", "roofline",
                 "--serving-batch", "2")
    assert roof["optimal"]["params"] == pytest.approx(paper["optimal"]["params"], rel=0.01)
    assert roof["optimal"]["serving"]["generation_mfu"] == pytest.approx(0.01, rel=0.05)


def test_h200_and_roofline_sensitivity():
    r = _json("optimize", "cost", "--like-params", "7B", "--requests", "1e9", "--inference-model", "roofline",
              "--inference-gpu", "h200", "--inference-price", "3", "--sensitivity")
    assert r["serving"]["gpu"] == "h200" and r["serving"]["price_per_hour"] == 3.0
    changes = [row["change"] for row in r["sensitivity"]]
    assert "serving batch x2 (128)" in changes and "requests x10" in changes
    by = {row["change"]: row for row in r["sensitivity"]}
    assert by["requests x1"]["params"] == pytest.approx(r["optimal"]["params"], rel=1e-12)
    # more requests -> a smaller model trained longer
    assert by["requests x10"]["params"] < r["optimal"]["params"] < by["requests x0.1"]["params"]


# --- unique tokens ------------------------------------------------------------------------------------------

def test_binding_budget_repeats_data_and_says_how_many_epochs():
    r = _json("optimize", "compute", "--like-params", "13B", "--inference-tokens", "2T", "--unique-tokens", "300B")
    b = r["data_constrained"]
    assert b["binds"] is True and b["unique_tokens"] == 3e11
    assert b["optimal_epochs"] == pytest.approx(r["optimal"]["tokens"] / 3e11, rel=1e-15) == r["optimal"]["epochs"]
    assert r["optimal"]["tokens"] > 3e11
    assert b["without_budget"]["tokens"] > 3e11  # Eq. 4's optimum needs more than U
    assert b["optimal_loss_check"] == pytest.approx(r["loss"], rel=1e-9)  # on the budget's iso-loss curve
    got = dc.compute_optimal_constrained(C, r["loss"], 2e12, 3e11)
    assert r["optimal"]["params"] == float(got.params)
    plain = _json("optimize", "compute", "--like-params", "13B", "--inference-tokens", "2T")
    assert r["optimal"]["flops"] > plain["optimal"]["flops"]  # repeating costs compute
    text = run_cli("optimize", "compute", "--like-params", "13B", "--inference-tokens", "2T", "--unique-tokens",
                   "300B", check=True).stdout
    assert "epochs" in text and "repeating data" in text


def test_cost_with_budget_paper_and_roofline():
    paper = _json("optimize", "cost", "--like-params", "7B", "--requests", "7.02B", "--unique-tokens", "200B")
    want = dc.cost_optimal_constrained(C, paper["loss"], CostSettings(), InferenceDemand(7.02e9, 70, 215), 2e11)
    assert paper["optimal"]["params"] == float(want.params) and paper["data_constrained"]["binds"] is True
    roof = _json("optimize", "cost", "--like-params", "7B", "--requests", "7.02B", "--unique-tokens", "200B", *ROOFLINE)
    assert roof["data_constrained"]["binds"] is True
    assert roof["optimal"]["epochs"] == pytest.approx(roof["optimal"]["tokens"] / 2e11, rel=1e-15)
    unbudgeted = _json("optimize", "cost", "--like-params", "7B", "--requests", "7.02B", *ROOFLINE)
    assert roof["optimal"]["cost"] >= unbudgeted["optimal"]["cost"]


@pytest.mark.parametrize("loss, requests, u, gpus", [
    (2.15, 7.02e9, 1e11, None), (2.15, 1e8, 3e10, None), (2.0, 1e10, 3e11, None), (2.3, 1e9, 2e10, 2),
])
def test_combined_solver_is_the_brute_force_minimum(loss, requests, u, gpus):
    s = RooflineSettings(gpu="h100", dtype="int8", batch=64, gpus=gpus)
    got = roofline_cost_optimal_constrained(C, loss, s, requests, u)
    assert bool(got.binds)
    n = np.geomspace(1e8, 3e11, 200_001)
    d = dc.tokens_for_loss(C, n, loss, u, unreachable="inf")
    fits = np.ones(n.shape, bool) if gpus is None else max_batch(n, s, 285) >= 64  # auto GPUs: every size fits
    serve = np.full(n.shape, np.inf)
    serve[fits] = requests * dollars_per_request(n[fits], s)
    total = CostSettings().dollars_per_train_flop * 6 * n * d + serve
    best = np.nanmin(np.where(np.isfinite(total), total, np.inf))
    assert float(got.dollars) <= best * (1 + 1e-9)
    assert float(got.dollars) == pytest.approx(best, rel=1e-6)
    assert float(dc.loss(C, got.params, got.tokens, u)) == pytest.approx(loss, rel=1e-9)


def test_law_with_budget():
    r = _json("law", "--params", "7B", "--tokens", "1T", "--unique-tokens", "100B")
    assert r["epochs"] == 10.0 and r["loss"] == pytest.approx(float(dc.loss(C, 7e9, 1e12, 1e11)), rel=1e-15)
    assert r["loss"] > r["loss_without_budget"]
    assert r["effective_tokens"] == pytest.approx(float(dc.effective_tokens(1e12, 1e11)), rel=1e-15)
    inv = _json("law", "--tokens", "1T", "--loss", str(r["loss"]), "--unique-tokens", "100B")
    assert inv["params"] == pytest.approx(7e9, rel=1e-9)
    inv = _json("law", "--params", "7B", "--loss", str(r["loss"]), "--unique-tokens", "100B")
    assert inv["tokens"] == pytest.approx(1e12, rel=1e-9)
    least = _json("law", "--loss", "2.1", "--chinchilla", "--unique-tokens", "100B")
    want = dc.compute_optimal_constrained(C, 2.1, 0.0, 1e11)
    assert least["params"] == float(want.params) and least["tokens"] == float(want.tokens)


# --- Gauntlet target -------------------------------------------------------------------------------------------

def test_gauntlet_round_trip_through_the_cli(paper_runs_csv):
    r = _json("optimize", "compute", "--gauntlet-target", "0.25", "--gauntlet-runs", str(paper_runs_csv),
              "--inference-tokens", "2T", "--coefficients", "sardana-all", "--gauntlet-bootstrap", "30")
    g = r["gauntlet"]
    assert g["gauntlet_target"] == 0.25 and g["loss_target"] == r["loss"]
    f = g["fit"]
    assert f["a"] + f["k"] * math.exp(-f["gamma"] * r["loss"]) == pytest.approx(0.25, abs=1e-9)  # G -> L -> G
    lo, hi = g["loss_target_interval"]
    assert lo <= r["loss"] <= hi and g["n_sets"] == 30
    ai = g["answer_interval"]  # no law sets: the downstream sets alone, with the law's point coefficients
    assert ai["optimal_params"][0] <= r["optimal"]["params"] <= ai["optimal_params"][1]
    same = _json("optimize", "compute", "--loss", repr(r["loss"]), "--inference-tokens", "2T",
                 "--coefficients", "sardana-all")
    assert same["optimal"] == r["optimal"] and same["chinchilla"] == r["chinchilla"]


def test_gauntlet_runs_default_and_missing(paper_runs_csv, monkeypatch):
    monkeypatch.setenv("REFERENCE_DATA_DIR", str(paper_runs_csv.parent))
    r = _json("optimize", "compute", "--gauntlet-target", "0.2", "--inference-tokens", "1T", "--gauntlet-bootstrap", "0")
    assert r["gauntlet"]["runs"] == str(paper_runs_csv) and r["gauntlet"]["n_sets"] == 0
    monkeypatch.delenv("REFERENCE_DATA_DIR")
    _one_line_error(run_cli("optimize", "compute", "--gauntlet-target", "0.2", "--inference-tokens", "1T"),
                    "--gauntlet-runs")


@pytest.fixture(scope="module")
def small_fit(paper_runs_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("fit") / "fit.json"
    run_cli("fit", str(paper_runs_csv), "--bootstrap", "20", "-o", str(out), check=True)
    return out


README_EXAMPLE = ["optimize", "cost", "--gauntlet-target", "0.30", "--requests", "7.02B", "--unique-tokens", "1T",
                  "--inference-model", "roofline", "--inference-gpu", "h100", "--serving-batch", "64"]


def test_readme_example_combines_all_three(paper_runs_csv, small_fit):
    r = _json(*README_EXAMPLE, "--gauntlet-runs", str(paper_runs_csv), "--coefficients", str(small_fit))
    g, b, s = r["gauntlet"], r["data_constrained"], r["serving"]
    assert g["gauntlet_target"] == 0.3 and g["loss_target"] == r["loss"]
    assert g["pairing"].startswith("exact") and g["n_sets"] == 20
    assert s["gpu"] == "h100" and s["batch"] == 64 and r["inference_model"] == "roofline"
    assert b["unique_tokens"] == 1e12
    for key in ("optimal", "chinchilla"):
        assert r[key]["epochs"] == pytest.approx(r[key]["tokens"] / 1e12, rel=1e-15)
        assert r[key]["cost"] == pytest.approx(r[key]["train_cost"] + r[key]["inference_cost"], rel=1e-12)
        assert r[key]["inference_cost"] == pytest.approx(7.02e9 * r[key]["serving"]["dollars_per_request"], rel=1e-9)
    assert b["binds"] == (r["optimal"]["tokens"] > 1e12 or b["without_budget"]["tokens"] > 1e12)
    assert b["optimal_epochs"] == r["optimal"]["epochs"]
    u = r["uncertainty"]
    assert u["n_sets"] == 20 and r["determined"] in (True, False)
    text = run_cli(*README_EXAMPLE, "--gauntlet-runs", str(paper_runs_csv), "--coefficients", "sardana-all",
                   check=True).stdout
    assert "Gauntlet core average 0.3 -> loss target" in text and "unique tokens 1T" in text
    assert "serving (roofline): h100" in text


def test_paired_sets_use_their_own_loss_targets(paper_runs_csv, small_fit):
    """Law set i is solved at downstream set i's loss target: with the downstream bootstrap off, every
    set gets the point loss target and the interval is narrower or equal."""
    args = ["optimize", "compute", "--gauntlet-target", "0.3", "--gauntlet-runs", str(paper_runs_csv),
            "--inference-tokens", "2T", "--coefficients", str(small_fit)]
    paired, point = _json(*args), _json(*args, "--gauntlet-bootstrap", "0")
    assert paired["optimal"] == point["optimal"]
    assert point["gauntlet"]["pairing"].startswith("none")
    assert paired["uncertainty"]["optimal_params"] != point["uncertainty"]["optimal_params"]


# --- bad input: one line, exit 2, nothing written ---------------------------------------------------------------

BAD = [
    (["optimize", "cost", "--like-params", "70B", "--requests", "1e9", "--inference-model", "roofline",
      "--serving-batch", "4096", "--serving-gpus", "1"], "does not fit"),
    (["optimize", "cost", "--like-params", "7B", "--requests", "1e9", "--inference-model", "roofline",
      "--inference-gpu", "v100"], "invalid choice"),
    (["optimize", "cost", "--like-params", "7B", "--requests", "1e9", "--inference-gpu", "h200"], "unknown GPU 'h200'"),
    (["optimize", "cost", "--like-params", "7B", "--requests", "1e9", "--inference-model", "roofline",
      "--inference-gpu", "h200"], "--inference-price"),
    (["optimize", "cost", "--like-params", "7B", "--requests", "1e9", "--serving-batch", "64"], "roofline only"),
    (["optimize", "cost", "--like-params", "7B", "--requests", "1e9", "--inference-model", "roofline",
      "--generation-mfu", "0.02"], "--generation-mfu"),
    (["optimize", "cost", "--like-params", "7B", "--requests", "1e9", "--inference-model", "roofline",
      "--serving-batch", "0"], "--serving-batch"),
    (["optimize", "cost", "--like-params", "7B", "--requests", "1e9", "--inference-model", "roofline",
      "--serving-batch", "max"], "--serving-gpus"),
    (["optimize", "compute", "--like-params", "7B", "--inference-tokens", "1T", "--unique-tokens", "0"], "> 0"),
    (["optimize", "cost", "--like-params", "7B", "--requests", "1e9", "--unique-tokens=-1T"], "> 0"),
    (["law", "--params", "7B", "--chinchilla", "--unique-tokens", "0"], "> 0"),
    (["optimize", "compute", "--like-params", "70B", "--inference-tokens", "1T", "--unique-tokens", "1B"],
     "out of reach"),
    (["optimize", "compute", "--gauntlet-target", "0.5", "--inference-tokens", "1T", "--gauntlet-runs", "{runs}"],
     "outside the range"),
    (["optimize", "cost", "--gauntlet-target", "0.001", "--requests", "1e9", "--gauntlet-runs", "{runs}"],
     "outside the range"),
    (["optimize", "compute", "--gauntlet-target", "0.3", "--loss", "2", "--inference-tokens", "1T"], "not allowed"),
]


@pytest.mark.parametrize("args, words", BAD, ids=lambda v: " ".join(v[-2:]) if isinstance(v, list) else None)
def test_bad_input_is_one_line(args, words, paper_runs_csv):
    _one_line_error(run_cli(*[a.replace("{runs}", str(paper_runs_csv)) for a in args]), words)


PLAN_BAD = [
    (["--like-params", "70B", "--requests", "1e9", "--inference-model", "roofline", "--serving-batch", "4096",
      "--serving-gpus", "1"], "does not fit"),
    (["--like-params", "7B", "--inference-tokens", "1T", "--unique-tokens", "0"], "> 0"),
    (["--gauntlet-target", "0.5", "--inference-tokens", "1T", "--gauntlet-runs", "{runs}"], "outside the range"),
    (["--like-params", "7B", "--inference-tokens", "1T", "--inference-model", "roofline"], "--requests"),
    (["--like-params", "70B", "--inference-tokens", "1T", "--unique-tokens", "1B"], "out of reach"),
]


@pytest.mark.parametrize("args, words", PLAN_BAD, ids=lambda v: " ".join(v[-2:]) if isinstance(v, list) else None)
def test_plan_bad_input_writes_nothing(args, words, paper_runs_csv, tmp_path):
    out = tmp_path / "plan"
    proc = run_cli("plan", *[a.replace("{runs}", str(paper_runs_csv)) for a in args], "--data", "s3://b/m",
                   "--out", str(out))
    _one_line_error(proc, words)
    assert not out.exists()


# --- plan and report ---------------------------------------------------------------------------------------------

def test_plan_with_all_three(paper_runs_csv, tmp_path):
    require_train_extra()
    out = tmp_path / "plan"
    proc = run_cli("plan", "--gauntlet-target", "0.25", "--gauntlet-runs", str(paper_runs_csv), "--requests", "7.02B",
                   "--unique-tokens", "20B", "--inference-model", "roofline", "--inference-gpu", "h100",
                   "--serving-batch", "64", "--coefficients", "sardana-all", "--gauntlet-bootstrap", "0",
                   "--data", "s3://b/m", "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    c = NAMED_SETS["sardana-all"]
    b = r["data_constrained"]
    assert b["binds"] is True and b["unique_tokens"] == 2e10
    want = float(dc.tokens_for_loss(c, r["planned"]["params"], r["loss"], 2e10))
    ratio = yaml.safe_load((out / "sweep.yaml").read_text())["grid"][0]["tokens_per_param"][0]
    assert ratio == pytest.approx(want / r["planned"]["params"], rel=1e-5)  # the budget's tokens, not Eq. 4's
    assert r["planned"]["tokens"] == pytest.approx(want, rel=1e-4)  # whole batches
    assert b["planned_epochs"] == pytest.approx(want / 2e10, rel=1e-12) and b["planned_epochs"] > 1
    assert r["serving"]["planned"]["batch"] == 64 and r["inference_model"] == "roofline"
    assert r["gauntlet"]["loss_target"] == r["loss"]


def test_report_roofline_figure(paper_runs_csv, tmp_path):
    out = tmp_path / "report"
    proc = run_cli("report", str(paper_runs_csv), "--out", str(out), "--bootstrap", "0", "--inference-model",
                   "roofline", "--inference-gpu", "h100", "--serving-batch", "64")
    assert proc.returncode == 0, proc.stderr
    assert (out / "fig6_roofline.png").stat().st_size > 10_000 and (out / "fig6_cost_optimal.png").exists()
    rows = (out / "fig6_roofline.csv").read_text().splitlines()
    assert rows[0].startswith("chinchilla_params,loss,requests,params,tokens,tokens_per_param,cost,cost_ratio")
    assert len(rows) == 1 + 3 * 40
    assert "fig6_roofline.png" in (out / "report.md").read_text()
    bad = run_cli("report", str(paper_runs_csv), "--out", str(tmp_path / "r2"), "--inference-gpu", "h100")
    _one_line_error(bad, "roofline")
    assert not (tmp_path / "r2").exists()


def test_core_errors_are_input_errors():
    with pytest.raises(InputError, match="unique tokens"):
        roofline_cost_optimal_constrained(C, 2.0, H100_64, 1e9, 0.0)
    with pytest.raises(InputError, match="out of reach"):
        roofline_cost_optimal_constrained(C, 1.95, H100_64, 1e9, 1e10)
