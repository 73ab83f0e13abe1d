"""Figures and report: content checks on the paper's released runs, and the CPU demo end to end
(interrupted and continued)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from scaling import figures
from scaling.coefficients import NAMED_SETS
from scaling.runs import read_runs
from tests.conftest import REPO, require_train_extra, run_cli


@pytest.fixture(scope="module")
def paper_runs(paper_runs_csv):
    return read_runs(paper_runs_csv)


def test_fig3a_content(paper_runs):
    p = figures.fig3a_loss_vs_ratio(paper_runs)
    ax = p.figure.axes[0]
    assert ax.get_xlabel() == "tokens per parameter" and ax.get_xscale() == "log"
    assert len(ax.get_lines()) == 6  # one series per model size (150M ... 6B)
    assert len(p.rows) == 47
    xs = np.concatenate([line.get_xdata() for line in ax.get_lines()])
    assert xs.min() == pytest.approx(10) and xs.max() == pytest.approx(10000)
    for line in ax.get_lines():  # loss falls with tokens/param within each size
        y = np.asarray(line.get_ydata())
        assert len(y) == 1 or y[0] > y[-1]  # (6B has a single run)


def test_fig4_content_and_slopes(paper_runs):
    p = figures.fig4_loss_vs_flops(paper_runs)
    ax = p.figure.axes[0]
    assert ax.get_xscale() == ax.get_yscale() == "log" and "FLOPs" in ax.get_xlabel()
    slopes = p.extra["fig4_slopes"]
    ratios = sorted({r["tokens_per_param"] for r in p.rows})
    assert ratios[0] == 10 and ratios[-1] == 10000 and len(ratios) == 12
    assert all(s["slope"] < 0 for s in slopes)  # more compute, lower loss at every ratio
    assert {s["tokens_per_param"] for s in slopes} <= set(ratios) and len(slopes) >= 8


def test_fig5_is_table1(paper_runs):
    fits = figures.growing_subset_fits(paper_runs)
    assert [f["subset"] for f in fits] == ["<=100 tok/param", "<=250 tok/param", "<=500 tok/param", "all"]
    assert [f["n_runs"] for f in fits] == [34, 39, 43, 47]
    paper = {"<=100 tok/param": "sardana-le100", "<=250 tok/param": "sardana-le250",
             "<=500 tok/param": "sardana-le500", "all": "sardana-all"}
    for f in fits:  # exponents within 0.01 of the paper's printed Table 1
        c = NAMED_SETS[paper[f["subset"]]]
        assert abs(f["alpha"] - c.alpha) < 0.01 and abs(f["beta"] - c.beta) < 0.01
    p = figures.fig5_growing_fits(paper_runs, fits)
    ax = p.figure.axes[0]
    assert len(ax.get_lines()) == 4 * 6  # each subset's curve for each model size
    assert len(ax.collections) == 1 and len(ax.collections[0].get_offsets()) == 47


def test_fig2_and_fig6_content():
    c = NAMED_SETS["chinchilla"]
    p = figures.fig2_ratios(c, (1e9, 1e11), (1e9, 1e13), points=12)
    assert len(p.figure.axes) == 6  # three panels and their colour bars
    flops = np.array([r["flops_ratio"] for r in p.rows])
    assert len(p.rows) == 144 and flops.max() <= 1 + 1e-12 and flops.min() < 0.8
    tokens = np.array([r["tokens_ratio"] for r in p.rows])
    assert tokens.min() >= 1 - 1e-9  # the inference-aware model never trains on fewer tokens
    p6 = figures.fig6_cost_optimal(c, [7e9, 70e9], (1e6, 1e12), points=10)
    tpp = {}
    for r in p6.rows:
        tpp.setdefault(r["chinchilla_params"], []).append(r["tokens_per_param"])
    assert len(tpp) == 2 and all(np.all(np.diff(v) > 0) for v in tpp.values())  # more requests, more tokens/param
    assert len(p6.figure.axes[0].get_lines()) == 2


def test_report_on_paper_runs(paper_runs_csv, tmp_path):
    proc = run_cli("report", str(paper_runs_csv), "--out", str(tmp_path / "rep"), "--bootstrap", "50", "--json")
    assert proc.returncode == 0, proc.stderr
    md = (tmp_path / "rep" / "report.md").read_text()
    for needle in ("Table 1", "<=100 tok/param", "fig3a_loss_vs_tokens_per_param.png", "fig4_loss_vs_flops.png",
                   "fig5_growing_subset_fits.png", "fig2_ratios.png", "fig6_cost_optimal.png", "95% interval"):
        assert needle in md
    for name in ("fig3a_loss_vs_tokens_per_param", "fig4_loss_vs_flops", "fig5_growing_subset_fits", "fig2_ratios",
                 "fig6_cost_optimal"):
        assert (tmp_path / "rep" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
        assert list(csv.DictReader((tmp_path / "rep" / f"{name}.csv").open()))
    table1 = list(csv.DictReader((tmp_path / "rep" / "table1_fits.csv").open()))
    assert [int(r["n_runs"]) for r in table1] == [34, 39, 43, 47]
    # Fig. 4 in the paper's range by default (up to 500 tokens/param), saying what it leaves out
    fig4 = list(csv.DictReader((tmp_path / "rep" / "fig4_loss_vs_flops.csv").open()))
    assert max(float(r["tokens_per_param"]) for r in fig4) == 500 and len(fig4) == 43
    assert "left out: 1000, 5000, 10000 tokens/param (4 runs)" in md
    # the extrapolation checks: the largest size, and <= 100 tokens/param predicting the longer runs
    assert "## Extrapolation checks (held-out runs)" in md and "(`tokens_per_param>100`) | 34 runs | 13 runs |" in md
    held = list(csv.DictReader((tmp_path / "rep" / "extrapolation_checks.csv").open()))
    assert sorted({r["split"] for r in held}) == ["largest size", "long ratios"] and len(held) == 14
    assert (tmp_path / "rep" / "extrapolation_checks.png").read_bytes()[:4] == b"\x89PNG"
    # Approach 2 next to the fit: the paper's token-ratio grid leaves 3 sizes at best per budget, too thin
    allocation = json.loads((tmp_path / "rep" / "allocation.json").read_text())
    assert allocation["isoflop"]["a_interval"] is None and "too thin" in allocation["interval_withheld"]
    assert "## Compute-optimal allocation" in md and "**No interval**" in md


def test_report_allocation_on_an_isoflop_sweep(tmp_path):
    """Runs drawn on an IsoFLOP grid from the chinchilla law (0.5% noise): the report's Approach 2
    recovers the law's a = beta / (alpha + beta) inside its interval, next to the Eq. 4 fit's."""
    from scaling.coefficients import NAMED_SETS
    from scaling.isoflop import isoflop_grid
    from scaling.law import loss

    c = NAMED_SETS["chinchilla"]
    rng = np.random.default_rng(3)
    grid = isoflop_grid([1e19, 1e20, 1e21, 1e22], 9)
    rows = ["Parameters,Tokens,Smoothed Loss"] + [
        f"{p.params!r},{p.tokens!r},{float(loss(c, p.params, p.tokens)) * (1 + 0.005 * rng.standard_normal())!r}"
        for p in grid]
    table = tmp_path / "iso.csv"
    table.write_text("\n".join(rows) + "\n")
    proc = run_cli("report", str(table), "--out", str(tmp_path / "rep"), "--bootstrap", "0",
                   "--isoflop-budgets", "1e19,1e20,1e21,1e22")
    assert proc.returncode == 0, proc.stderr
    allocation = json.loads((tmp_path / "rep" / "allocation.json").read_text())
    lo, hi = allocation["isoflop"]["a_interval"]
    assert lo < c.beta / (c.alpha + c.beta) < hi and hi - lo < 0.1 and allocation["bootstrap_kept"] >= 100
    assert allocation["budgets_used"] == [1e19, 1e20, 1e21, 1e22]
    assert "IsoFLOP profiles, 4 budgets, 36 runs" in (tmp_path / "rep" / "report.md").read_text()


DEMO_SPEC = """name: demo-test
data: stdlib
seed: 17
set: [model.vocab_size=300, tokenizer.kwargs.vocab_size=300, model.d_model=32, save_interval=10ba,
      console_log_interval=10ba]
grid:
  - {model: mpt-tiny, label: tiny-2l, tokens_per_param: [4, 8, 16]}
  - {model: mpt-tiny, label: tiny-4l, tokens_per_param: [4, 8, 16], set: [model.n_layers=4]}
"""


def test_demo_interrupted_and_continued(tmp_path, data_cache):
    require_train_extra()
    spec = tmp_path / "demo.yaml"
    spec.write_text(DEMO_SPEC)
    out = tmp_path / "demo"
    (out / "runs").mkdir(parents=True)
    (out / "runs" / ".cache").symlink_to(data_cache, target_is_directory=True)  # the session's tokenised corpus
    cmd = [sys.executable, "-m", "beyond", "demo", "--spec", str(spec), "--out", str(out), "--bootstrap", "50",
           "--eval-limit", "2"]
    gauntlet = os.environ.get("GAUNTLET_DATA_DIR")  # set under CI: the eval stage, Fig. 3c and the Gauntlet columns run
    env = dict(os.environ)
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    first = out / "runs" / "tiny-2l-r4" / "record.json"
    second = out / "runs" / "tiny-2l-r8" / "checkpoints" / "latest-rank0.pt"  # linked once a checkpoint is complete
    try:  # kill the demo (and its training subprocess) inside the second run, after a checkpoint
        deadline = time.time() + 300
        while not (first.exists() and second.exists()) and proc.poll() is None and time.time() < deadline:
            time.sleep(0.2)
        assert first.exists() and second.exists()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not (out / "runs" / "tiny-2l-r8" / "record.json").exists()
    mtime = first.stat().st_mtime_ns
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "5 to train, 1 already done" in done.stderr
    # the local sweep under the demo: the finished run is not retrained, the interrupted one resumes
    assert first.stat().st_mtime_ns == mtime
    assert json.loads((out / "runs" / "tiny-2l-r8" / "record.json").read_text())["resumes"] == 1
    rows = list(csv.DictReader((out / "report" / "runs.csv").open()))
    assert len(rows) == 6
    for r in rows:  # the held-out loss at the last batch, from each run's record
        record = json.loads((out / "runs" / r["Run"] / "record.json").read_text())
        assert float(r["Val Loss"]) == record["val_loss"] and abs(record["val_loss"] - record["smoothed_loss"]) < 0.5
    for source in (out / "report" / "runs.csv", out / "runs"):  # the law fitted on the held-out loss instead
        fitted = run_cli("fit", str(source), "--loss-col", "Val Loss", "--json")
        assert fitted.returncode == 0 and json.loads(fitted.stdout)["n_runs"] == 6, fitted.stderr
    if gauntlet:
        assert "Gauntlet: copa, winograd, lambada_openai (2 examples each)" in done.stderr
        for r in rows:  # collect joined each run's eval results into the runs table
            assert -1.0 <= float(r["eval_gauntlet/language_understanding"]) <= 1.0 and r["Gauntlet Partial"] == "True"
            assert (out / "runs" / r["Run"] / "eval" / "gauntlet.json").is_file()
        assert (out / "report" / "fig3c_loss_vs_gauntlet.png").read_bytes()[:4] == b"\x89PNG"
        assert "Loss vs Gauntlet average (Fig. 3c)" in (out / "report" / "report.md").read_text()
    else:
        assert "Gauntlet evaluation skipped: no data" in done.stderr
    for model in ("tiny-2l", "tiny-4l"):  # the report's loss falls with tokens/param
        mine = sorted((float(r["Tokens/Params"]), float(r["Smoothed Loss"])) for r in rows if r["Model Name"] == model)
        assert [loss for _, loss in mine] == sorted([loss for _, loss in mine], reverse=True)
    assert "optimizer:" in done.stdout and "## Optimizer answer" in (out / "report" / "report.md").read_text()
    answer = json.loads((out / "report" / "optimizer_answer.json").read_text())
    assert isinstance(answer["determined"], bool) and answer["determined_reason"]
    assert ("UNDETERMINED" in done.stdout) == (answer["determined"] is False)
    fit = json.loads((out / "report" / "fit.json").read_text())
    assert fit["n_runs"] == 6 and fit["bootstrap_resamples"] == 50


def test_report_reads_a_fit_file_instead_of_refitting(paper_runs_csv, tmp_path):
    """`report --fit` reports the given coefficients (here the paper's own `sardana-all` set, which
    no fit of the CSV reproduces to the digit) and their bootstrap sets, with no refit."""
    given = {**NAMED_SETS["sardana-all"].as_dict(), "bootstrap": [
        {**NAMED_SETS["sardana-all"].as_dict(), "E": NAMED_SETS["sardana-all"].E * f} for f in (0.98, 1.0, 1.02)]}
    fit_file = tmp_path / "fit.json"
    fit_file.write_text(json.dumps(given))
    proc = run_cli("report", str(paper_runs_csv), "--fit", str(fit_file), "--out", str(tmp_path / "rep"), "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((tmp_path / "rep" / "fit.json").read_text()) == given
    answer = json.loads((tmp_path / "rep" / "optimizer_answer.json").read_text())
    lo, hi = answer["optimal_params_5_95"]
    assert lo <= answer["optimal_params"] <= hi and lo < hi
    # three sets cannot show that the answer is pinned down: the report says so instead of recommending
    assert answer["determined"] is False and "only 3 bootstrap sets" in answer["determined_reason"]
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "## Optimizer answer: UNDETERMINED" in md and "makes no recommendation" in md
    bad = run_cli("report", str(paper_runs_csv), "--fit", str(tmp_path / "missing.json"), "--out", str(tmp_path / "r2"))
    assert bad.returncode == 2 and "cannot read fit file" in bad.stderr and not (tmp_path / "r2").exists()


def test_compare_compute_is_the_comparison_every_command_reports():
    from scaling.optimal import chinchilla_style, compare_compute, compute_optimal, total_flops

    c = NAMED_SETS["chinchilla"]
    cmp = compare_compute(c, 2.0, 2e12)
    opt, ref = compute_optimal(c, 2.0, 2e12), chinchilla_style(c, 2.0)
    assert float(cmp.optimal_flops) == float(total_flops(opt.params, opt.tokens, 2e12))
    assert float(cmp.chinchilla_flops) == 6 * float(ref.params) * float(ref.tokens) + 2 * float(ref.params) * 2e12
    assert float(cmp.flops_ratio) == float(cmp.optimal_flops) / float(cmp.chinchilla_flops) < 1
    assert float(cmp.params_ratio) == float(opt.params) / float(ref.params) < 1
    out = json.loads(run_cli("optimize", "compute", "--loss", "2.0", "--inference-tokens", "2e12", "--coefficients",
                             "chinchilla", "--json", check=True).stdout)
    assert out["flops_ratio"] == float(cmp.flops_ratio) and out["params_ratio"] == float(cmp.params_ratio)


def _series_lines(ax):
    """The marker-only lines of a figure (one per series; fit lines are drawn without markers)."""
    return [line for line in ax.get_lines() if line.get_linestyle() in ("None", "none", "")]


def test_fig4_gives_each_ratio_its_own_colour_and_marker(paper_runs):
    from matplotlib.colors import to_hex

    p = figures.fig4_loss_vs_flops(paper_runs)  # every ratio: 12 series, more than the 10-colour cycle
    ax = p.figure.axes[0]
    series = _series_lines(ax)
    assert len(series) == 12
    colour = {line.get_label(): to_hex(line.get_color(), keep_alpha=True) for line in series}
    assert len(set(colour.values())) == 12
    assert colour["10"] != colour["5000"] and colour["15"] != colour["10000"]  # the cycle used to wrap here
    assert len({line.get_marker() for line in series}) == 12
    fits = [line for line in ax.get_lines() if line not in series]  # each slope line in its series' colour
    assert fits and {to_hex(f.get_color(), keep_alpha=True) for f in fits} <= set(colour.values())
    p3 = figures.fig3a_loss_vs_ratio(paper_runs)
    assert len({to_hex(line.get_color()) for line in p3.figure.axes[0].get_lines()}) == 6
    _close(p.figure, p3.figure)


def _close(*figs) -> None:
    import matplotlib.pyplot as plt

    for fig in figs:
        plt.close(fig)


def _tick_texts(fig) -> list[str]:
    fig.canvas.draw()
    texts = []
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            texts += [t.get_text() for t in axis.get_majorticklabels() + axis.get_minorticklabels()]
    return [t for t in texts if t]


def test_log_axes_have_plain_tick_labels(paper_runs):
    fits = [{"subset": name, **NAMED_SETS[name].as_dict()} for name in ("sardana-le100", "sardana-all")]
    c = NAMED_SETS["chinchilla"]
    panels = [figures.fig3a_loss_vs_ratio(paper_runs), figures.fig4_loss_vs_flops(paper_runs),
              figures.fig4_loss_vs_flops(paper_runs, max_ratio=figures.PAPER_FIG4_MAX_RATIO),
              figures.fig5_growing_fits(paper_runs, fits), figures.fig2_ratios(c, (1e9, 1e11), (1e9, 1e13), points=8),
              figures.fig6_cost_optimal(c, [7e9, 70e9], (1e6, 1e12), points=8)]
    for p in panels:
        texts = _tick_texts(p.figure)
        assert texts, p.name
        assert not [t for t in texts if "$" in t or "10^" in t or "times" in t], (p.name, texts)
    # Fig. 4's loss axis spans less than a decade: its ticks are plain numbers like 3 and 3.6
    fig4 = panels[1].figure
    loss_ticks = [t.get_text() for t in fig4.axes[0].yaxis.get_minorticklabels() + fig4.axes[0].yaxis.get_majorticklabels()]
    assert "3" in loss_ticks and "3.6" in loss_ticks
    assert "1e20" in [t.get_text() for t in fig4.axes[0].xaxis.get_majorticklabels()]
    _close(*(p.figure for p in panels))


def test_fig4_paper_range_by_default_and_every_ratio_on_request(paper_runs, tmp_path):
    from scaling.report import build_report

    paper = figures.fig4_loss_vs_flops(paper_runs, max_ratio=figures.PAPER_FIG4_MAX_RATIO)
    assert sorted({r["tokens_per_param"] for r in paper.rows}) == [10, 15, 20, 30, 50, 75, 100, 250, 500]
    assert len(paper.rows) == 43 and len(_series_lines(paper.figure.axes[0])) == 9
    assert "left out: 1000, 5000, 10000" in paper.note
    everything = figures.fig4_loss_vs_flops(paper_runs)
    assert len(everything.rows) == 47 and everything.note == ""
    _close(paper.figure, everything.figure)
    build_report(paper_runs, tmp_path / "all", all_ratios=True)  # what `beyond report --all-ratios` asks for
    rows = list(csv.DictReader((tmp_path / "all" / "fig4_loss_vs_flops.csv").open()))
    assert len(rows) == 47 and max(float(r["tokens_per_param"]) for r in rows) == 10000
    assert "left out" not in (tmp_path / "all" / "report.md").read_text()


def test_default_demo_grid_spans_sizes_and_a_decade_of_ratios():
    """The demo's own grid: at least 3 model sizes x at least 3 ratios, a decade of tokens/param
    with the top ratio >= 20, so that its report can hold out the largest size (6 runs left)."""
    from train.sweep import load_spec

    spec = load_spec(REPO / "yamls" / "sweeps" / "demo.yaml")
    sizes: dict[str, set[float]] = {}
    for run in spec.runs:
        shape = tuple(o for o in run.overrides if not o.startswith("scheduler.t_warmup"))
        sizes.setdefault(str(shape), set()).add(run.tokens_per_param)
    assert len(sizes) >= 3 and all(len(r) >= 3 for r in sizes.values())
    ratios = {r for rs in sizes.values() for r in rs}
    assert max(ratios) >= 20 and max(ratios) / min(ratios) >= 10
