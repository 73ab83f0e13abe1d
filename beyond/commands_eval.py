"""``beyond eval``: the Gauntlet on a checkpoint; ``beyond analyze``: loss vs Gauntlet average."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ioutil import dumps
from scaling.errors import InputError


def register(sub) -> None:
    p = sub.add_parser(
        "eval", help="evaluate a checkpoint on the Evaluation Gauntlet",
        description="Run the Gauntlet's ICL tasks (llm-foundry's evaluators) on a run folder, a Composer checkpoint "
        "of one, or a Hugging Face model folder; write per-task accuracy, category averages (baseline subtracted, "
        "rescaled, tasks weighted equally) and the core average, each with its standard error, to <run>/eval/gauntlet.json "
        "(`beyond sweep collect` joins it into the runs table) and the same in lm-evaluation-harness's layout to "
        "<run>/eval/results_lm_eval.json. Missing data files exclude their task and mark its category partial. "
        "Reruns skip finished tasks.")
    p.add_argument("target", help="run folder, Composer checkpoint (.pt) or Hugging Face model folder")
    p.add_argument("--gauntlet", help="Gauntlet YAML (llm-foundry format; default yamls/eval/gauntlet-paper.yaml)")
    p.add_argument("--data-dir", help="Gauntlet data (llm-foundry local_data layout; default $GAUNTLET_DATA_DIR)")
    p.add_argument("--tasks", help="comma-separated task subset, e.g. copa,winograd")
    p.add_argument("--categories", help="comma-separated category subset, e.g. commonsense_reasoning")
    p.add_argument("--limit", type=int, help="evaluate only the first N examples of each task (smoke tests)")
    p.add_argument("--batch-size", type=int, default=4, help="examples per batch (default 4)")
    p.add_argument("--max-seq-len", type=int, help="context length for evaluation (default: the model's training "
                   "length; ALiBi models extrapolate, so tiny CPU models can read long few-shot prompts)")
    p.add_argument("--device", choices=("cpu", "gpu"), help="default: gpu if available")
    p.add_argument("--out", type=Path, help="results folder (default <run>/eval)")
    p.add_argument("--log-samples", action="store_true",
                   help="also write <out>/samples/<task>.jsonl: one line per example (its data row, the prompt, the "
                   "gold answer, the model's choice or output, correct 0/1), from llm-foundry's per-example outputs; "
                   "cached tasks without a log are evaluated again")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(handler=_eval)

    a = sub.add_parser("analyze", help="loss vs Gauntlet average (the paper's Fig. 3c), with correlations",
                       description="Read a runs table (CSV with the paper's columns: Smoothed Loss and "
                       "eval_gauntlet/core_average, as `beyond sweep collect` writes) and print the Pearson and "
                       "Spearman correlation of loss and Gauntlet average; --plot writes the scatter as PNG.")
    a.add_argument("runs", type=Path, help="runs CSV")
    a.add_argument("--loss-col", default="Smoothed Loss")
    a.add_argument("--score-col", default="eval_gauntlet/core_average")
    a.add_argument("--group-col", default="Model Name", help="colour points by this column (default Model Name)")
    a.add_argument("--plot", type=Path, help="write the scatter plot here (PNG)")
    a.add_argument("--json", action="store_true")
    a.set_defaults(handler=_analyze)


def _csv_list(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def _eval(args) -> int:
    from eval.evaluate import evaluate, resolve_target
    from eval.gauntlet import check_data, data_dir, load_gauntlet, select

    if args.batch_size < 1:
        raise InputError("--batch-size must be at least 1")
    target = resolve_target(Path(args.target), args.out, args.max_seq_len)
    gauntlet = select(load_gauntlet(args.gauntlet), _csv_list(args.tasks), _csv_list(args.categories))
    gauntlet = check_data(gauntlet, data_dir(args.data_dir))
    for label, why in gauntlet.missing.items():
        if "not selected" not in why:
            sys.stderr.write(f"beyond: warning: task {label} excluded ({why.split(': ', 1)[1]}); its category is partial\n")
    if not gauntlet.tasks:
        raise InputError("no task left to evaluate (all selected tasks lack data files)")
    results = evaluate(gauntlet, target, limit=args.limit, batch_size=args.batch_size, device=args.device,
                       log_samples=args.log_samples)
    if args.json:
        sys.stdout.write(dumps(results) + "\n")
        return 0
    lines = [f"{'task':<30} {'type':<29} {'shots':>5} {'examples':>8} {'accuracy':>8} {'stderr':>8}"]
    for label, r in results["tasks"].items():
        lines.append(f"{label:<30} {r['icl_task_type']:<29} {r['num_fewshot']:>5} {r['examples']:>8} "
                     f"{r['accuracy']:>8.3f} {_pm(r.get('accuracy_stderr'), 3):>8}")
    lines.append("")
    for cat, c in results["categories"].items():
        avg = "n/a" if c["average"] is None else f"{c['average']:+.4f} {_pm(c.get('stderr'), 4)}"
        flag = f"  PARTIAL: missing {', '.join(c['missing'])}" if c["partial"] else ""
        lines.append(f"{cat:<30} {avg}{flag}")
    for name, a in results["averages"].items():
        avg = "n/a" if a["average"] is None else f"{a['average']:+.4f} {_pm(a.get('stderr'), 4)}"
        lines.append(f"{name:<30} {avg}{'  PARTIAL' if a['partial'] else ''}")
    files = "gauntlet.json, results_lm_eval.json" + (", samples/<task>.jsonl" if args.log_samples else "")
    lines.append(f"written to {Path(args.out or '') if args.out else 'the run folder'}: {files}")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


def _pm(stderr: float | None, digits: int) -> str:
    """'+/-0.110' (one standard error), or '+/-n/a' where it is undefined (fewer than 2 examples)."""
    return "+/-n/a" if stderr is None else f"+/-{stderr:.{digits}f}"


def _analyze(args) -> int:
    from eval.analysis import loss_vs_score

    result = loss_vs_score(args.runs, args.loss_col, args.score_col, args.group_col, args.plot)
    if args.json:
        sys.stdout.write(dumps(result) + "\n")
    else:
        sys.stdout.write(f"{result['n']} runs: Pearson r = {result['pearson_r']:.4f}, "
                         f"Spearman rho = {result['spearman_rho']:.4f} (loss vs {args.score_col})\n")
        if args.plot:
            sys.stdout.write(f"wrote {args.plot}\n")
    return 0


def register_report(sub) -> None:
    p = sub.add_parser("report", help="figures like the paper's and a markdown report from a runs table",
                       description="Fit Eq. 4 on RUNS (CSV or run records), then write to --out: fit.json, the paper's "
                       "Figs. 2, 3a, 4, 5, 6 as PNG with the numbers behind each as CSV, Table 1-style fits on growing "
                       "tokens/param subsets, an optimizer answer, and report.md linking them.")
    p.add_argument("runs", help="runs table (CSV in the paper's columns, a run-record JSON, or a folder of runs)")
    p.add_argument("--out", type=Path, default=Path("report"), help="report folder (default report/)")
    p.add_argument("--bootstrap", type=int, default=200, help="bootstrap resamples for intervals (default 200; 0: none)")
    p.add_argument("--fit", type=Path, metavar="FIT_JSON",
                   help="report this `beyond fit -o` result instead of fitting RUNS again (its bootstrap sets "
                   "give the intervals; --bootstrap is then not used)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--title", default="Scaling report")
    p.add_argument("--all-ratios", action="store_true",
                   help="Fig. 4: show every tokens/param ratio (default: up to 500, the paper's range)")
    from beyond.optimize_options import add_inference_args

    add_inference_args(p, p.add_argument_group("inference cost (--inference-model roofline adds Fig. 6 under the "
                                               "roofline; Fig. 6 itself keeps the paper's Table 3 settings)"),
                       generation=False)
    from beyond.commands_scaling import budget_list

    p.add_argument("--isoflop-budgets", type=budget_list, metavar="C1,C2,...",
                   help="FLOP budgets for the IsoFLOP (Approach 2) section (default: the Chinchilla paper's nine)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_report)


def _report(args) -> int:
    from scaling.report import build_report
    from scaling.runs import read_runs

    if args.bootstrap < 0:
        raise InputError("--bootstrap must be >= 0")
    roofline = _report_serving(args)
    runs = read_runs(Path(args.runs)).require()
    fit = None
    if args.fit is not None:
        try:
            fit = json.loads(args.fit.read_text())
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read fit file {args.fit}: {exc}") from None
        if not isinstance(fit, dict):
            raise InputError(f"fit file {args.fit}: expected a JSON object (a `beyond fit -o` result)")
    summary = build_report(runs, args.out, bootstrap=args.bootstrap, seed=args.seed, title=args.title, fit=fit,
                           all_ratios=args.all_ratios, roofline=roofline, isoflop_budgets=args.isoflop_budgets)
    if args.json:
        sys.stdout.write(dumps(summary) + "\n")
    else:
        f = summary["fit"]
        sys.stdout.write(f"fit: E {f['E']:.4g}, A {f['A']:.4g}, B {f['B']:.4g}, alpha {f['alpha']:.4f}, beta {f['beta']:.4f}\n"
                         f"wrote {args.out}/report.md with {len(summary['figures'])} figures\n")
    return 0


def _report_serving(args):
    """The report's roofline serving settings, or None for the paper's model (whose Fig. 6 uses Table 3's
    settings, so the inference options then have nothing to change: one line if given)."""
    from beyond.optimize_options import check_inference_args, serving_settings
    from scaling.optimal import CostSettings

    check_inference_args(args)
    if args.inference_model == "roofline":
        return serving_settings(args)
    d = CostSettings()
    if (args.inference_gpu, args.inference_dtype, args.inference_price, args.prefill_mfu) != (
            d.inference_gpu, d.inference_dtype, d.inference_price_per_hour, d.prefill_mfu):
        raise InputError("the inference options apply to --inference-model roofline (the report's Fig. 6 keeps the "
                         "paper's Table 3 settings)")
    return None
