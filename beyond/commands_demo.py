"""``beyond demo``: the whole pipeline on a CPU, on embedded defaults, no network.

sweep plan -> local training of two tiny sizes x three ratios -> Gauntlet evaluation (when
GAUNTLET_DATA_DIR is available) -> runs table -> Eq. 4 fit with bootstrap intervals -> optimizer
answer -> figures and report.md. Every stage skips work already done, so an interrupted demo
continues where it stopped when rerun.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from scaling.errors import InputError

DEMO_TASKS = ["copa", "winograd", "lambada_openai"]  # multiple choice, schema, language modelling


def register(sub) -> None:
    p = sub.add_parser("demo", help="run the whole pipeline on a CPU (a few minutes, no network)",
                       description=__doc__.split("\n\n")[0] + " " + __doc__.split("\n\n")[1].replace("\n", " "))
    p.add_argument("--out", type=Path, default=Path("demo"), help="demo folder (default demo/)")
    p.add_argument("--spec", help="sweep spec (default yamls/sweeps/demo.yaml)")
    p.add_argument("--data-dir", help="Gauntlet data (default $GAUNTLET_DATA_DIR; evaluation is skipped without it)")
    p.add_argument("--eval-limit", type=int, default=20, help="examples per Gauntlet task (default 20)")
    p.add_argument("--bootstrap", type=int, default=200, help="bootstrap resamples for the fit's intervals")
    p.set_defaults(handler=_demo)


def _say(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _demo(args) -> int:
    from ioutil import human, write_atomic
    from train.backends.local import launch_local
    from train.launch import states
    from train.sweep import Hardware, collect, load_spec, plan_sweep
    from train.zoo import YAMLS_DIR

    spec = load_spec(args.spec or YAMLS_DIR / "sweeps" / "demo.yaml", out=args.out / "runs")
    _say(f"[1/5] planning {len(spec.runs)} runs ({', '.join(r.name for r in spec.runs)}) in {spec.out}")
    from tqdm import tqdm

    with tqdm(total=len(spec.runs), desc="planning", unit="run", file=sys.stderr, leave=False) as bar:
        plan_sweep(spec, Hardware(), progress=bar.update)
    pending = [s.name for s in states(spec) if s.state != "done"]
    _say(f"[2/5] training: {len(pending)} to train, {len(spec.runs) - len(pending)} already done")
    failed = [n for n, code in launch_local(spec, pending) if code != 0]
    if failed:
        raise InputError(f"demo runs failed: {', '.join(failed)} (logs: {spec.out}/<run>/train.log)")

    root = args.data_dir or os.environ.get("GAUNTLET_DATA_DIR")
    if root and Path(root).is_dir():
        _say(f"[3/5] Gauntlet: {', '.join(DEMO_TASKS)} ({args.eval_limit} examples each) on every run")
        _evaluate_all(spec, Path(root), args.eval_limit)
    else:
        _say("[3/5] Gauntlet evaluation skipped: no data (set GAUNTLET_DATA_DIR or --data-dir; see scripts/fetch-gauntlet.sh)")

    report_dir = args.out / "report"
    text, missing = collect(spec)
    write_atomic(report_dir / "runs.csv", text)
    _say(f"[4/5] runs table: {report_dir / 'runs.csv'} ({len(spec.runs) - missing} runs)")
    from scaling.report import build_report
    from scaling.runs import read_runs

    _say(f"[5/5] fit (Eq. 4, {args.bootstrap} bootstrap resamples), optimizer, figures -> {report_dir}")
    summary = build_report(read_runs(report_dir / "runs.csv"), report_dir, bootstrap=args.bootstrap,
                           title="beyond demo: tiny MPT models on a CPU")
    if root and Path(root).is_dir():
        from eval.analysis import loss_vs_score

        try:
            r = loss_vs_score(report_dir / "runs.csv", "Smoothed Loss", "eval_gauntlet/core_average", "Model Name",
                              report_dir / "fig3c_loss_vs_gauntlet.png")
            with open(report_dir / "report.md", "a") as fh:
                fh.write(f"### Loss vs Gauntlet average (Fig. 3c)\n\n![fig3c](fig3c_loss_vs_gauntlet.png)\n\n"
                         f"Pearson r = {r['pearson_r']:.3f}, Spearman rho = {r['spearman_rho']:.3f} over {r['n']} runs "
                         f"(partial Gauntlet: {', '.join(DEMO_TASKS)}; tiny models score near chance).\n")
        except InputError as exc:
            _say(f"      loss vs Gauntlet plot skipped: {exc}")
    f, a = summary["fit"], summary["answer"]
    lines = [f"fit: E {f['E']:.3f}, A {f['A']:.4g}, B {f['B']:.4g}, alpha {f['alpha']:.3f}, beta {f['beta']:.3f}"]
    if "bootstrap_intervals" in f:
        iv = f["bootstrap_intervals"]
        lines.append("     95% intervals: " + ", ".join(f"{k} {iv[k][0]:.3g}-{iv[k][1]:.3g}" for k in ("E", "alpha", "beta")))
    ident = summary.get("identification") or {}
    if ident.get("identified") is not None:
        lines.append(f"     law {'identified' if ident['identified'] else 'NOT identified'}: {ident['reason']}")
    if "unavailable" in a:
        lines.append(f"optimizer: {a['unavailable']}")
    elif a.get("determined") is False:
        lines.append(f"optimizer: UNDETERMINED, no recommendation: {a['determined_reason']}")
        if "optimal_params_5_95" in a:
            (p_lo, p_hi), (t_lo, t_hi) = a["optimal_params_5_95"], a["optimal_tokens_5_95"]
            lines.append(f"           the answer spans {human(p_lo)}-{human(p_hi)} params on {human(t_lo)}-{human(t_hi)} "
                         "tokens (5th-95th percentile over the bootstrap sets)")
    else:
        lines.append(f"optimizer: for the quality of a Chinchilla-style {human(a['chinchilla_params'])}-param model and "
                     f"{human(a['inference_tokens'])} inference tokens, train {human(a['optimal_params'])} params on "
                     f"{human(a['optimal_tokens'])} tokens (FLOPs x{a['flops_ratio']:.3f})")
        lines.append(f"           determined: {a.get('determined_reason', 'not assessed')}")
    lines.append(f"report: {report_dir / 'report.md'}")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


def _evaluate_all(spec, root: Path, limit: int) -> None:
    from eval.evaluate import evaluate, resolve_target
    from eval.gauntlet import check_data, load_gauntlet, select

    gauntlet = check_data(select(load_gauntlet(), tasks=DEMO_TASKS), root)
    for run in spec.runs:
        target = resolve_target(spec.out / run.name, None, 512)
        evaluate(gauntlet, target, limit=limit, batch_size=8, device="cpu", progress=True)
