"""Subcommands over scaling/: fit, tables (optimize and law: commands_optimize)."""

from __future__ import annotations

import argparse
import os
import sys

from ioutil import dumps, human, write_atomic
from scaling.errors import InputError

COEFF_HELP = ("coefficient set: a name (chinchilla, sardana-le100, sardana-le250, sardana-le500, "
              "sardana-all) or a JSON file written by `beyond fit --output` (default: chinchilla)")


def register(sub) -> None:
    _register_fit(sub)
    _register_tables(sub)


# --- fit ---------------------------------------------------------------------------------------

def _register_fit(sub) -> None:
    p = sub.add_parser("fit", help="fit the loss law (paper Eq. 4) on a runs table",
                       description="Huber (delta 1e-3, summed) on log-loss, L-BFGS from the standard "
                       "4,500-point grid. Defaults read the paper's trainingresults.csv columns.")
    p.add_argument("runs", metavar="FILE.csv", help="runs table (CSV), or run-record JSON file/folder")
    p.add_argument("--params-col", default="Parameters", help="column of parameter counts N")
    tok = p.add_mutually_exclusive_group()
    tok.add_argument("--tokens-col", default="Tokens", help="column of training tokens D")
    tok.add_argument("--flops-col", help="column of training FLOPs C instead (D = C / (6 N))")
    p.add_argument("--loss-col", default="Smoothed Loss",
                   help="column of the final loss to fit: 'Smoothed Loss' (training, the paper's) or 'Val Loss' "
                   "(held out, as `beyond sweep collect` writes it; for run-record JSON, the record's val_loss)")
    p.add_argument("--drop-highest-loss", type=int, default=0, metavar="K", help="drop the K highest-loss runs")
    p.add_argument("--max-tokens-per-param", type=float, metavar="R", help="keep runs with D/N <= R")
    p.add_argument("--holdout", type=_holdout_rule, metavar="EXPR",
                   help="hold out the runs matching EXPR (params>1.5B, params<=400M, tokens_per_param>100; "
                   "suffixes K M B T), fit on the rest, and report how well the fit predicts them")
    p.add_argument("--bootstrap", type=int, default=0, metavar="N",
                   help="also refit on N resamples of the runs (with replacement) for intervals")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--delta", type=float, default=1e-3, help="Huber delta (default 1e-3)")
    p.add_argument("--approach", choices=("parametric", "isoflop", "both"), default="parametric",
                   help="parametric: the Eq. 4 fit (Chinchilla's Approach 3, the paper's); isoflop: Chinchilla's "
                   "Approach 2 (a parabola in log N per FLOP budget, a power law N_opt = k C^a through the minima, "
                   "bootstrap intervals on a and b); both: the two side by side (default parametric)")
    p.add_argument("--budgets", type=budget_list, metavar="C1,C2,...",
                   help="with --approach isoflop/both: the FLOP budgets the runs were planned at (each run goes to the "
                   "nearest in log FLOPs, C = 6ND); default: the Chinchilla paper's nine, 6e18 ... 3e21")
    p.add_argument("--output", "-o", metavar="FIT.json", help="write the fit as JSON (atomically)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_cmd_fit)


def budget_list(text: str) -> list[float]:
    """argparse type for --budgets / --isoflop: comma-separated FLOPs (suffixes as elsewhere)."""
    from beyond.cli import quantity

    values = [quantity(part) for part in text.split(",") if part.strip()]
    if not values or not all(v > 0 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of positive FLOP budgets (e.g. 6e18,1e19,3e19)")
    return values


def _cmd_fit(args) -> int:
    from scaling.fit import fit_law
    from scaling.runs import read_runs

    if args.bootstrap < 0:
        raise InputError(f"--bootstrap must be >= 0, got {args.bootstrap}")
    if not (args.delta > 0):
        raise InputError(f"--delta must be > 0, got {args.delta}")
    table = read_runs(args.runs, params_col=args.params_col, tokens_col=args.tokens_col,
                      flops_col=args.flops_col, loss_col=args.loss_col)
    table = table.drop_highest_loss(args.drop_highest_loss).filter_tokens_per_param(args.max_tokens_per_param)
    if args.approach == "isoflop":
        return _cmd_fit_isoflop(args, table)
    table.require()
    name = os.path.splitext(os.path.basename(args.runs.rstrip("/")))[0] or "fit"
    held = None
    if args.holdout is not None:
        from scaling.holdout import split_check

        held_out = args.holdout.mask(table)
        held = split_check(table, held_out, args.holdout.text, delta=args.delta, name=f"fit:{name}")
        table, fit = table.select(~held_out), held.fit
    else:
        fit = fit_law(table.params, table.tokens, table.loss, delta=args.delta, name=f"fit:{name}")
    if args.bootstrap:
        fit.bootstrap = _run_bootstrap(table, args)
        fit.bootstrap_resamples = args.bootstrap
    result = fit.as_dict()
    result.update(name=fit.coefficients.name, source=str(args.runs),
                  max_tokens_per_param=args.max_tokens_per_param, drop_highest_loss=args.drop_highest_loss)
    if held is not None:
        result["holdout"] = held.as_dict()
    isoflop = _isoflop(args, table) if args.approach == "both" else None
    if isoflop is not None:
        from scaling.isoflop import compare_with_parametric

        result["isoflop"] = isoflop.as_dict()
        result["approaches"] = compare_with_parametric(isoflop, fit.coefficients)
    if args.output:
        write_atomic(args.output, dumps(result) + "\n")
    if args.json:
        print(dumps(result))
    else:
        c = fit.coefficients
        print(f"{fit.n_runs} runs from {args.runs}")
        print(f"A={c.A:.6g} B={c.B:.6g} E={c.E:.6g} alpha={c.alpha:.6g} beta={c.beta:.6g}")
        print(f"objective {fit.objective:.10g}; {fit.n_starts_at_best} of {fit.n_starts} starts reached it "
              f"(relative {result['at_best_rtol']:g}); {fit.n_starts_converged} converged")
        if fit.bootstrap:
            for k, (lo, hi) in result["bootstrap_intervals"].items():
                print(f"  {k:>5} 95% interval [{lo:.6g}, {hi:.6g}] over {len(fit.bootstrap)} resamples")
        if result.get("bootstrap_dropped"):
            print(f"  {result['bootstrap_dropped']} of {args.bootstrap} resamples gave no valid law "
                  "(an exponent <= 0 or an overflowing coefficient) and are left out")
        if held is not None:
            _print_holdout(result["holdout"])
        if isoflop is not None:
            _print_isoflop(isoflop, result["approaches"])
        if args.output:
            print(f"wrote {args.output}")
    return 0


def _isoflop(args, table):
    """Chinchilla's Approach 2 on the table's runs (the fit's bootstrap count, else 1,000 resamples)."""
    from scaling.isoflop import CHINCHILLA_BUDGETS, DEFAULT_RESAMPLES, fit_isoflop_runs

    if args.holdout is not None and args.approach == "isoflop":
        raise InputError("--holdout applies to the parametric fit: use --approach parametric or both")
    return fit_isoflop_runs(table, args.budgets or CHINCHILLA_BUDGETS, n_resamples=args.bootstrap or DEFAULT_RESAMPLES,
                            seed=args.seed)


def _cmd_fit_isoflop(args, table) -> int:
    """`fit --approach isoflop`: the exponents with intervals, each budget's minimum, what was dropped."""
    fit = _isoflop(args, table)
    result = {"approach": "isoflop", "source": str(args.runs), **fit.as_dict()}
    if args.output:
        write_atomic(args.output, dumps(result) + "\n")
    if args.json:
        print(dumps(result))
        return 0
    print(f"{table.loss.size} runs from {args.runs}")
    _print_isoflop(fit, None)
    if args.output:
        print(f"wrote {args.output}")
    return 0


def _print_isoflop(fit, approaches: dict | None) -> None:
    print("\n".join(fit.describe()))
    print(f"  {'budget':>9}{'runs':>6}{'sizes':>7}{'N_opt':>10}{'D_opt':>10}")
    for p in fit.profiles:
        if p.budget in fit.budgets_used:
            print(f"  {p.budget:>9.3g}{p.n_runs:>6}{p.n_sizes:>7}{human(p.params_opt):>10}{human(p.tokens_opt):>10}")
    if approaches:
        iso, par = approaches["isoflop"], approaches["parametric"]
        inside = approaches["parametric_a_in_interval"]
        print(f"side by side: a = {iso['a']:.4f} (IsoFLOP, Approach 2) vs {par['a']:.4f} (parametric Eq. 4 fit, "
              f"Approach 3 = beta / (alpha + beta)); Chinchilla reported 0.49 and 0.46"
              + ("" if inside is None else f"; the parametric a is {'inside' if inside else 'outside'} the IsoFLOP interval"))


HOLDOUT_ROWS = 20  # held-out runs listed in the human output


def _holdout_rule(text: str):
    """argparse type for --holdout: the parsed rule, or a one-line usage error."""
    from scaling.holdout import parse_holdout

    try:
        return parse_holdout(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _print_holdout(h: dict) -> None:
    """The held-out check as a few lines and a table (errors in percent of the actual loss)."""
    print(f"held out {h['n_runs']} run{'' if h['n_runs'] == 1 else 's'} ({h['expr']}), fitted on {h['n_fit']}: bias {h['bias'] * 100:+.2f}%, "
          f"mean |error| {h['mean_abs_rel_error'] * 100:.2f}%, max |error| {h['max_abs_rel_error'] * 100:.2f}%; "
          f"predicted below actual for {h['n_predicted_below_actual']} of {h['n_runs']}")
    print(f"  {'params':>8}{'tokens':>9}{'tok/param':>11}{'loss':>9}{'predicted':>11}{'error':>9}")
    for r in h["runs"][:HOLDOUT_ROWS]:
        print(f"  {human(r['params']):>8}{human(r['tokens']):>9}{r['tokens_per_param']:>11.1f}{r['loss']:>9.4f}"
              f"{r['predicted']:>11.4f}{r['rel_error'] * 100:>+8.2f}%")
    if len(h["runs"]) > HOLDOUT_ROWS:
        print(f"  ... {len(h['runs']) - HOLDOUT_ROWS} more (--json lists them all)")


def _run_bootstrap(table, args):
    from scaling.bootstrap import bootstrap_fits

    try:
        from tqdm import tqdm

        # no monitor thread: with another Python thread running, the fitter does not fork its
        # worker processes (scaling/parallel.py) and the bootstrap takes twice as long
        tqdm.monitor_interval = 0
    except ImportError:  # progress is optional
        tqdm = None
    bar = tqdm(total=args.bootstrap, desc="bootstrap", unit="fit", file=sys.stderr,
               disable=not sys.stderr.isatty()) if tqdm else None
    try:
        return bootstrap_fits(table.params, table.tokens, table.loss, args.bootstrap, seed=args.seed,
                              delta=args.delta, progress=bar.update if bar else None)
    finally:
        if bar:
            bar.close()


# --- tables ------------------------------------------------------------------------------------

def _register_tables(sub) -> None:
    p = sub.add_parser("tables", help="the paper's Tables 1-3 beside ours, cell by cell",
                       description="Recompute the paper's Tables 1, 2 and 3 and print each cell beside "
                       "the printed value. Table 1 needs the paper's runs table.")
    p.add_argument("--table", type=int, choices=(1, 2, 3), action="append",
                   help="only these tables (repeatable; default all)")
    p.add_argument("--runs", metavar="FILE.csv",
                   help="the paper's trainingresults.csv for Table 1 "
                   "(default: $REFERENCE_DATA_DIR/sardana2024_trainingresults.csv)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_cmd_tables)


def _cmd_tables(args) -> int:
    from scaling import tables

    which = sorted(set(args.table or (1, 2, 3)))
    out: dict = {}
    if 1 in which:
        runs = args.runs or _reference_runs()
        if runs is None:
            if args.table:
                raise InputError("Table 1 needs --runs FILE.csv or REFERENCE_DATA_DIR")
            sys.stderr.write("beyond: skipping Table 1: give --runs or set REFERENCE_DATA_DIR\n")
        else:
            out["table1"] = tables.table1(runs)
    if 2 in which:
        out["table2"] = [c.as_dict() for c in tables.table2()]
    if 3 in which:
        out["table3"] = [c.as_dict() for c in tables.table3()]
        out["table3_calibrated"] = [c.as_dict() for c in tables.table3_calibrated()]
    if args.json:
        print(dumps(out))
        return 0
    if "table1" in out:
        print(tables.format_table1(out["table1"]))
    for key, title in (("table2", "Table 2: compute-optimal vs Chinchilla-style"),
                       ("table3", "Table 3: cost-optimal vs Chinchilla-style, the paper's stated settings"),
                       ("table3_calibrated", "Table 3 with inference cost per request x"
                        f"{tables.TABLE3_INFERENCE_COST_SCALE} (what the printed cells imply)")):
        if key in out:
            print(tables.format_cells(title, out[key]))
    return 0


def _reference_runs() -> str | None:
    root = os.environ.get("REFERENCE_DATA_DIR")
    if not root:
        return None
    path = os.path.join(root, "sardana2024_trainingresults.csv")
    return path if os.path.isfile(path) else None
