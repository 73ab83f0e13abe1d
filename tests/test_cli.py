"""The `beyond` command as a user runs it: --help, JSON contract, one-line errors (exit 2)."""

import json

import pytest

from tests.conftest import run_cli

COMMANDS = [[], ["optimize"], ["optimize", "compute"], ["optimize", "cost"], ["fit"], ["law"], ["tables"]]


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c) or "beyond")
def test_help(cmd):
    proc = run_cli(*cmd, "--help")
    assert proc.returncode == 0 and "usage: beyond" in proc.stdout


def test_optimize_compute_json_contract():
    out = json.loads(run_cli("optimize", "compute", "--loss", "1.947", "--inference-tokens", "2e12", "--json",
                             check=True).stdout)
    assert out["optimal"]["params"] == pytest.approx(2.418e10, rel=5e-4)
    assert out["optimal"]["tokens"] == pytest.approx(2.657e12, rel=5e-4)
    assert out["flops_ratio"] == pytest.approx(0.9522, abs=5e-5)
    for key in ("params", "tokens", "flops"):
        assert isinstance(out["optimal"][key], float) and isinstance(out["chinchilla"][key], float)


def test_optimize_compute_like_params_and_suffixes():
    out = json.loads(run_cli("optimize", "compute", "--like-params", "30B", "--inference-tokens", "10T", "--json",
                             check=True).stdout)
    assert out["chinchilla"]["params"] == pytest.approx(30e9, rel=1e-9)
    assert out["optimal"]["params"] == pytest.approx(13.6e9, rel=0.005)
    assert "saved" in run_cli("optimize", "compute", "--loss", "2", "--inference-tokens", "1e12", check=True).stdout


def test_optimize_cost_json_contract():
    out = json.loads(run_cli("optimize", "cost", "--like-params", "1B", "--requests", "175M", "--json",
                             check=True).stdout)
    for key in ("params", "tokens", "cost"):
        assert isinstance(out["optimal"][key], float) and isinstance(out["chinchilla"][key], float)
    assert out["cost_ratio"] == pytest.approx(out["optimal"]["cost"] / out["chinchilla"]["cost"])
    assert out["settings"]["inference_gpu"] == "a100-40" and out["settings"]["generation_mfu"] == 0.01
    # H100 inference in fp8 is cheaper per op: the optimum moves toward Chinchilla
    h100 = json.loads(run_cli("optimize", "cost", "--like-params", "1B", "--requests", "175M", "--inference-gpu",
                              "h100", "--inference-dtype", "fp8", "--json", check=True).stdout)
    assert h100["optimal"]["params"] > out["optimal"]["params"]


def test_fit_json_contract_and_output_file(paper_runs_csv, tmp_path):
    dest = tmp_path / "fit.json"
    proc = run_cli("fit", str(paper_runs_csv), "--max-tokens-per-param", "500", "--json", "-o", str(dest),
                   check=True)
    out = json.loads(proc.stdout)
    for key in ("A", "B", "E", "alpha", "beta", "objective", "n_runs", "n_starts", "n_starts_at_best"):
        assert key in out
    assert out["n_runs"] == 43 and out["n_starts"] == 4500
    assert json.loads(dest.read_text())["objective"] == out["objective"]
    # a fit file feeds the optimizer
    opt = json.loads(run_cli("optimize", "compute", "--loss", "2.5", "--inference-tokens", "1e12",
                             "--coefficients", str(dest), "--json", check=True).stdout)
    assert opt["coefficients"]["alpha"] == pytest.approx(out["alpha"])


def test_fit_epoch_columns(epoch_csv):
    out = json.loads(run_cli("fit", str(epoch_csv), "--params-col", "Model Size", "--flops-col", "Training FLOP",
                             "--loss-col", "loss", "--drop-highest-loss", "5", "--json", check=True).stdout)
    assert out["n_runs"] == 240 and out["objective"] <= 0.0010182741


def test_law_calculator():
    out = json.loads(run_cli("law", "--params", "1B", "--chinchilla", "--json", check=True).stdout)
    assert out["tokens"] == pytest.approx(27.43e9, rel=1e-3) and out["loss"] == pytest.approx(2.5311, abs=1e-4)
    out = json.loads(run_cli("law", "--params", "1B", "--flops", "6e20", "--json", check=True).stdout)
    assert out["tokens"] == pytest.approx(1e11)


def test_tables_prints_every_table(paper_runs_csv):
    proc = run_cli("tables", "--runs", str(paper_runs_csv), check=True)
    for title in ("Table 1", "Table 2", "Table 3"):
        assert title in proc.stdout
    out = json.loads(run_cli("tables", "--table", "2", "--json", check=True).stdout)
    assert len(out["table2"]) == 40


BAD = [
    (["optimize", "compute", "--loss", "1.6", "--inference-tokens", "1e12"], "floor"),
    (["optimize", "compute", "--loss", "nan", "--inference-tokens", "1e12"], "finite"),
    (["optimize", "compute", "--loss", "2", "--inference-tokens", "-5"], "inference tokens"),
    (["optimize", "compute", "--loss", "2", "--inference-tokens", "lots"], "not a number"),
    (["optimize", "cost", "--loss", "2", "--requests", "1e9", "--train-mfu", "1.5"], "train mfu"),
    (["optimize", "cost", "--loss", "2", "--requests", "1e9", "--generation-mfu", "0"], "generation mfu"),
    (["optimize", "cost", "--loss", "2", "--requests", "1e9", "--train-price", "-2"], "price"),
    (["optimize", "cost", "--loss", "2", "--requests", "-1"], "requests"),
    (["optimize", "compute", "--loss", "2", "--inference-tokens", "1", "--coefficients", "nope.json"], "no such"),
    (["fit", "does-not-exist.csv"], "no such file"),
    (["fit", "pyproject.toml", "--loss-col", "x"], "no column"),
    (["law", "--params", "1B"], "exactly two"),
    (["nonsense"], "invalid choice"),
]


@pytest.mark.parametrize("args,msg", BAD, ids=lambda a: " ".join(a) if isinstance(a, list) else a)
def test_bad_input_is_one_line_exit_2(args, msg):
    proc = run_cli(*args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr and msg in lines[0]


@pytest.mark.parametrize("text", ["Parameters,Tokens,Smoothed Loss\n1e9,2e10,3\n1e9,3e10,2.9\n",
                                  "Parameters,Tokens,Smoothed Loss\n" + "1e9,2e10,nan\n" * 8])
def test_fit_bad_tables_write_nothing(tmp_path, text):
    src = tmp_path / "runs.csv"
    src.write_text(text)
    dest = tmp_path / "fit.json"
    proc = run_cli("fit", str(src), "-o", str(dest))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert not dest.exists() and list(tmp_path.iterdir()) == [src]


def test_verbose_shows_the_traceback_the_one_line_error_hides(tmp_path):
    quiet = run_cli("law", "--params", "7B", "--coefficients", str(tmp_path / "missing.json"))
    loud = run_cli("--verbose", "law", "--params", "7B", "--coefficients", str(tmp_path / "missing.json"))
    assert quiet.returncode == loud.returncode == 2
    assert "Traceback" not in quiet.stderr and len(quiet.stderr.strip().splitlines()) == 1
    assert "Traceback (most recent call last)" in loud.stderr
    assert loud.stderr.strip().splitlines()[-1] == quiet.stderr.strip()
