"""``beyond sweep plan|launch|status|collect SPEC``: the paper's token-ratio sweeps."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ioutil import dumps, human, write_atomic
from scaling.errors import InputError


def register(sub) -> None:
    sweep = sub.add_parser("sweep", help="plan, launch, watch and collect token-ratio sweeps",
                           description="Sweeps of (model size x tokens/param) training runs, as in the paper's "
                           "Table 4 (yamls/sweeps/paper.yaml: 47 runs) or a CPU smoke grid (yamls/sweeps/cpu-smoke.yaml).")
    ssub = sweep.add_subparsers(dest="action", metavar="ACTION", parser_class=type(sweep))
    ssub.required = True

    plan = ssub.add_parser("plan", help="write one llm-foundry YAML per run and the plan table",
                           description="Resolve every run of SPEC into <out>/<run>/config.yaml and write "
                           "<out>/plan.csv: params, tokens, training FLOPs (6ND), GPU-hours, wall hours, dollars.")
    _common(plan)
    _hardware(plan)
    plan.set_defaults(handler=_plan)

    launch = ssub.add_parser("launch", help="plan, then start every run that is not finished",
                             description="Plan SPEC, then start the runs without a record: locally one after "
                             "another, as Slurm jobs (sbatch, Composer's launcher on every node) or as MosaicML "
                             "platform runs (mcli). Finished runs are skipped; queued or running Slurm jobs are left "
                             "alone; interrupted runs resume from their latest checkpoint.")
    _common(launch)
    _hardware(launch)
    from train.backends import BACKENDS

    launch.add_argument("--backend", choices=sorted(BACKENDS), default="local",
                        help="where runs go: " + "; ".join(f"{n}: {b.help}" for n, b in sorted(BACKENDS.items())))
    launch.add_argument("--dry-run", action="store_true", help="write configs and scripts, submit nothing")
    launch.add_argument("--skip-checks", action="store_true",
                        help="do not run the cheap preflight checks (`beyond check --cheap`) before launching")
    for backend in BACKENDS.values():
        backend.add_arguments(launch)
    launch.set_defaults(handler=_launch)

    status = ssub.add_parser("status", help="each run's state", description="Each run's state from its record, "
                             "checkpoints, launch log and the Slurm queue: done, queued, running, interrupted, failed, "
                             "launched, planned, missing.")
    _common(status, data=False)
    status.set_defaults(handler=_status)

    collect = ssub.add_parser("collect", help="write the runs table for `beyond fit`",
                              description="Write the finished runs as CSV with the paper's trainingresults.csv columns "
                              "(Model Name, Parameters, Tokens/Params, Tokens, Batch Size, Smoothed Loss) first.")
    _common(collect, data=False)
    collect.add_argument("-o", "--output", type=Path, help="CSV path (default <out>/runs.csv)")
    collect.set_defaults(handler=_collect)


def _common(p: argparse.ArgumentParser, data: bool = True) -> None:
    p.add_argument("spec", help="sweep spec YAML, or a name in yamls/sweeps (paper, cpu-smoke)")
    p.add_argument("--out", type=Path, help="sweep folder (default: the spec's out)")
    if data:
        p.add_argument("--data", help="data for every run (overrides the spec's data:)")
        from beyond.commands_scaling import budget_list

        p.add_argument("--isoflop", type=budget_list, metavar="C1,C2,...",
                       help="an IsoFLOP sweep instead (Chinchilla's Approach 2): every model of SPEC at every FLOP "
                       "budget, trained on C / (6 N) tokens; writes <out>/isoflop.yaml, the spec that status, "
                       "collect and a later launch read (`beyond fit runs.csv --approach both --budgets ...`)")
        p.add_argument("--allow-repeat", action="store_true",
                       help="plan runs that need more tokens than the data holds (the paper never repeats data)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _hardware(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("estimates")
    g.add_argument("--gpu", default="a100-80", help="GPU type for the estimates (a100-40, a100-80, h100)")
    g.add_argument("--gpus", type=int, default=8, help="GPUs per run (wall hours = GPU-hours / GPUs)")
    g.add_argument("--mfu", type=float, default=0.5, help="model FLOPs utilisation (default 0.5)")
    g.add_argument("--price", type=float, help="$ per GPU-hour (default: the paper's App. B.3 price)")


def _spec(args):
    from train.sweep import load_spec
    from train.zoo import YAMLS_DIR

    path = Path(args.spec)
    if not path.suffix and not path.exists():
        path = YAMLS_DIR / "sweeps" / f"{args.spec}.yaml"
    spec = load_spec(path, out=args.out, data=getattr(args, "data", None))
    if getattr(args, "isoflop", None):
        from train.sweep import isoflop_spec

        spec, args.isoflop_yaml, skipped = isoflop_spec(spec, args.isoflop)
        for line in skipped:
            sys.stderr.write(f"beyond: isoflop: left out {line}\n")
    return spec


def _plan_rows(args, spec):
    from tqdm import tqdm

    from train.sweep import Hardware, plan_sweep

    hw = Hardware(gpu=args.gpu, gpus=args.gpus, mfu=args.mfu, price=args.price)
    with tqdm(total=len(spec.runs), desc="planning", unit="run", file=sys.stderr, leave=False) as bar:
        rows = plan_sweep(spec, hw, progress=bar.update, allow_repeat=args.allow_repeat,
                          world_size=_world_size(args))
    if getattr(args, "isoflop_yaml", None):  # written once every run resolved, like the configs
        write_atomic(spec.path, args.isoflop_yaml)
        sys.stderr.write(f"beyond: wrote {spec.path}: status, collect and launch read this spec\n")
    return rows


def _world_size(args) -> int:
    """Processes each run will use, for llm-foundry's batch-size arithmetic."""
    if getattr(args, "action", None) != "launch":
        return 1
    from train.backends import get_backend

    backend = get_backend(args.backend)
    return backend.world_size(backend.options(args))


def _plan(args) -> int:
    from train.sweep import totals

    spec = _spec(args)
    rows = _plan_rows(args, spec)
    if args.json:
        sys.stdout.write(dumps({"sweep": spec.name, "out": str(spec.out), "runs": rows, "total": totals(rows)}) + "\n")
        return 0
    _print_plan(spec, rows, totals(rows))
    return 0


def _print_plan(spec, rows, total) -> None:
    header = f"{'run':<18} {'params':>8} {'tok/param':>9} {'tokens':>8} {'batch':>5} {'FLOPs':>9} {'GPU-h':>9} {'wall-h':>8} {'$':>10}"
    lines = [f"sweep {spec.name}: {len(rows)} runs -> {spec.out}/plan.csv", header]
    for r in rows:
        lines.append(f"{r['run']:<18} {human(r['params']):>8} {r['tokens_per_param']:>9g} {human(r['tokens']):>8} "
                     f"{r['global_batch_size']:>5} {r['flops']:>9.3g} {r['gpu_hours']:>9.1f} {r['wall_hours']:>8.1f} "
                     f"{r['dollars']:>10,.0f}")
    lines.append(f"{'total':<18} {'':>8} {'':>9} {human(total['tokens']):>8} {'':>5} {total['flops']:>9.3g} "
                 f"{total['gpu_hours']:>9.1f} {'':>8} {total['dollars']:>10,.0f}")
    sys.stdout.write("\n".join(lines) + "\n")


def _launch(args) -> int:
    from train.backends import get_backend
    from train.launch import states

    spec = _spec(args)
    backend = get_backend(args.backend)
    opts = backend.options(args)
    _plan_rows(args, spec)
    pending = [s.name for s in states(spec) if s.state not in ("done", "queued", "running")]
    test_only = getattr(args, "test_only", False)
    if not args.skip_checks and pending:
        _preflight(spec, pending, args.backend, warn_only=args.dry_run or test_only)
    skipped = len(spec.runs) - len(pending)
    outcome = backend.launch(spec, pending, opts, dry_run=args.dry_run, test_only=test_only)
    result: dict = {"sweep": spec.name, "backend": args.backend, "skipped": skipped, "pending": pending}
    if outcome.files:
        result[backend.files_key] = [str(p) for p in outcome.files]
    for key, value in (("exit_codes", outcome.exit_codes), (backend.submitted_key, outcome.submitted),
                       ("test_only", outcome.checked)):
        if value:
            result[key] = value
    failed = [n for n, c in outcome.exit_codes.items() if c != 0]
    if failed:
        sys.stderr.write(f"beyond: error: {len(failed)} run(s) failed: {', '.join(failed)} "
                         f"(logs in {spec.out}/<run>/train.log)\n")
    if args.json:
        sys.stdout.write(dumps(result) + "\n")
    else:
        what = "prepared" if args.dry_run or test_only else backend.verb
        sys.stdout.write(f"sweep {spec.name}: {len(pending)} run(s) {what}, {skipped} skipped "
                         f"(finished or already queued) [{args.backend}]\n")
        for key in (backend.submitted_key, "test_only"):
            for name, value in (result.get(key) or {}).items():
                sys.stdout.write(f"  {name}: {value}\n")
    return outcome.code


def _preflight(spec, pending: list[str], backend: str, warn_only: bool) -> None:
    """The cheap preflight checks (no downloads) on the first pending run: the first problem stops
    the launch (one line), or is a warning on stderr when nothing will be submitted."""
    from omegaconf import OmegaConf

    from train.folder import RunFolder
    from train.preflight import cheap_checks, problems, run_tokens_of

    config = OmegaConf.to_container(OmegaConf.load(RunFolder(spec.out / pending[0]).config), resolve=True)
    found = problems(cheap_checks(config, backend, run_tokens_of(config)))
    if found and warn_only:
        for line in found:
            sys.stderr.write(f"beyond: warning: preflight: {line}\n")
    elif found:
        raise InputError(f"preflight: {found[0]}" + (f" (and {len(found) - 1} more: run `beyond check "
                         f"{spec.out / pending[0]} --backend {backend}`)" if len(found) > 1 else "")
                         + "; or pass --skip-checks")


def _status(args) -> int:
    from train.launch import states

    spec = _spec(args)
    rows = states(spec)
    if args.json:
        sys.stdout.write(dumps({"sweep": spec.name, "runs": [r.__dict__ for r in rows]}) + "\n")
        return 0
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.state] = counts.get(r.state, 0) + 1
        sys.stdout.write(f"{r.name:<20} {r.state:<12} {r.detail}\n")
    sys.stdout.write(f"sweep {spec.name}: " + ", ".join(f"{v} {k}" for k, v in counts.items()) + "\n")
    return 0


def _collect(args) -> int:
    from train.sweep import collect

    spec = _spec(args)
    text, missing = collect(spec)
    out = args.output or spec.out / "runs.csv"
    try:
        write_atomic(out, text)
    except OSError as exc:
        raise InputError(f"cannot write {out}: {exc.strerror or exc}") from None
    n = len(spec.runs) - missing
    if args.json:
        sys.stdout.write(dumps({"sweep": spec.name, "output": str(out), "runs": n, "missing": missing}) + "\n")
    else:
        sys.stdout.write(f"wrote {out}: {n} run(s), {missing} not finished\n")
    return 0
