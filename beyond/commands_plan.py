"""``beyond plan``: the run to launch for a quality target and an inference demand."""

from __future__ import annotations

import sys
from pathlib import Path

from beyond.cli import quantity
from ioutil import dumps, human
from scaling.errors import InputError


def register(sub) -> None:
    p = sub.add_parser(
        "plan", help="turn the inference-aware optimum into a run to launch (shape, YAML, launch files)",
        description="Find the inference-aware optimal (params, tokens) for a target loss and a demand, pick the "
        "closest model shape of the paper's Table 4 family, and write its llm-foundry YAML and launch files (the "
        "sweep backends) with GPU-hour and dollar estimates. Launch with `beyond sweep launch OUT/sweep.yaml`.")
    q = p.add_mutually_exclusive_group(required=True)
    q.add_argument("--loss", type=float, help="target pre-training loss (nats/token)")
    q.add_argument("--like-params", type=quantity, metavar="N",
                   help="the quality of an N-param model (trained Chinchilla-style, or on --like-tokens)")
    from beyond.optimize_options import add_gauntlet_args, add_inference_args, add_unique_tokens_arg

    add_gauntlet_args(p, q)
    p.add_argument("--like-tokens", type=quantity, metavar="D", help="with --like-params: trained on D tokens")
    d = p.add_mutually_exclusive_group(required=True)
    d.add_argument("--inference-tokens", type=quantity, metavar="T", help="lifetime inference tokens (minimise FLOPs)")
    d.add_argument("--requests", type=quantity, metavar="R", help="lifetime requests (minimise dollars, paper Eq. 6)")
    from scaling.optimal import PAPER_INPUT_TOKENS, PAPER_OUTPUT_TOKENS

    p.add_argument("--input-tokens", type=float, default=PAPER_INPUT_TOKENS,
                   help="with --requests: prompt tokens per request (default 70, the paper's)")
    p.add_argument("--output-tokens", type=float, default=PAPER_OUTPUT_TOKENS,
                   help="with --requests: output tokens per request (default 215, the paper's)")
    p.add_argument("--coefficients", metavar="SET_OR_FILE", help="coefficient set or `beyond fit -o` file")
    add_unique_tokens_arg(p)
    p.add_argument("--gpu", default="a100-80", help="training GPU (a100-40, a100-80, h100)")
    p.add_argument("--gpus", type=int, default=8, help="GPUs for the run (wall-clock estimate)")
    p.add_argument("--mfu", type=float, default=0.5, help="training MFU (default 0.5)")
    p.add_argument("--price", type=float, help="$ per GPU-hour (default: list price)")
    add_inference_args(p, p.add_argument_group("inference cost (with --requests; defaults: the paper's Table 3)"))
    p.add_argument("--data", required=True, help="training data for the run (MDS folder or s3://... URI)")
    p.add_argument("--out", type=Path, default=Path("plans/planned"), help="plan folder (default plans/planned)")
    p.add_argument("--name", default="planned", help="run name prefix")
    from train.backends import BACKENDS

    p.add_argument("--backend", choices=sorted(BACKENDS), default="slurm",
                   help="write the launch files of this backend (default slurm)")
    for backend in BACKENDS.values():
        backend.add_arguments(p, launching=False)
    p.add_argument("--allow-repeat", action="store_true",
                   help="plan a run that needs more tokens than the data holds (the paper never repeats data; "
                   "implied by --unique-tokens when the plan repeats)")
    p.add_argument("--force", action="store_true",
                   help="write the plan even when the fit's bootstrap leaves the answer undetermined")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_plan)


def _plan(args) -> int:
    from beyond.commands_optimize import add_uncertainty, budget_line, gauntlet_line
    from beyond.optimize_options import check_inference_args, serving_settings, unique_tokens
    from beyond.optimize_problems import (
        compute_problem,
        cost_problem,
        data_constrained_block,
        downstream_interval,
        fix_uncertainty_for_budget,
        roofline_problem,
        serving_block,
    )
    from beyond.optimize_quality import quality
    from scaling.coefficients import load_coefficients
    from scaling.law import chinchilla_for_params, loss
    from scaling.optimal import CostSettings, InferenceDemand
    from train.backends import get_backend
    from train.folder import RunFolder
    from train.plan import plan_model
    from train.sweep import Hardware, load_spec, plan_sweep, totals

    coeffs = load_coefficients(args.coefficients)
    if args.like_tokens is not None and args.like_params is None:
        raise InputError("--like-tokens needs --like-params")
    check_inference_args(args)
    roofline = args.inference_model == "roofline"
    if args.inference_tokens is not None and (roofline or _inference_options_given(args)):
        raise InputError("the inference cost options price requests: use --requests with them, not --inference-tokens")
    u = unique_tokens(args)

    def target_for(c) -> float:
        if args.loss is not None:
            return args.loss
        d = args.like_tokens if args.like_tokens is not None else chinchilla_for_params(c, args.like_params)
        return float(loss(c, args.like_params, d))

    q = quality(args, coeffs, target_for)
    target = q.point
    serving = None
    if args.inference_tokens is not None:
        if args.inference_tokens < 0:
            raise InputError("--inference-tokens must be >= 0")

        def make(budget):
            return compute_problem(args.inference_tokens, budget)

        objective = {"objective": "compute", "inference_tokens": args.inference_tokens}
    else:
        demand = InferenceDemand(args.requests, args.input_tokens, args.output_tokens)
        train_kw = dict(train_gpu=args.gpu, train_mfu=args.mfu, train_price_per_hour=args.price)
        if roofline:
            serving, train = serving_settings(args), CostSettings(**train_kw)

            def make(budget):
                return roofline_problem(serving, train, float(args.requests), args.input_tokens, args.output_tokens,
                                        budget)
        else:
            settings = CostSettings(**train_kw, inference_gpu=args.inference_gpu, inference_dtype=args.inference_dtype,
                                    inference_price_per_hour=args.inference_price, prefill_mfu=args.prefill_mfu,
                                    generation_mfu=args.generation_mfu)

            def make(budget):
                return cost_problem(settings, demand, budget)

        objective = {"objective": "cost", "requests": args.requests}
    problem = make(u)
    ref = problem.reference(coeffs, target)
    problem.value(ref.params, ref.tokens)  # first: one line if the serving batch does not fit the larger model
    opt = problem.optimum(coeffs, target)

    def answer(c) -> dict:
        import numpy as np

        t = q.target(c)
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):  # a bootstrap set's odd law
            o = problem.optimum(c, t)
            return {"params": float(o.params), "tokens": float(o.tokens),
                    "ratio": float(o.params / problem.reference(c, t).params)}

    verdict: dict = {}
    add_uncertainty(args, verdict, answer, "params", (opt.params, opt.tokens), (ref.params, ref.tokens))
    fix_uncertainty_for_budget(args, verdict, u, (opt.params, opt.tokens), (ref.params, ref.tokens))
    if verdict["determined"] is False and not args.force:
        raise InputError(f"the answer is undetermined, so no plan was written: {verdict['determined_reason']}. "
                         "Add runs near the answer, or pass --force to plan the point estimate anyway")
    extra: dict = {}
    if q.gauntlet is not None:
        if "pairing" not in q.gauntlet:
            interval_ = downstream_interval(problem, coeffs, q)
            if interval_ is not None:
                q.gauntlet["answer_interval"] = interval_
        extra["gauntlet"] = q.gauntlet
    if u is not None:  # the planned shape's tokens under the budget, before anything is written
        from scaling.data_constrained import tokens_for_loss
        from scaling.shape import choose_shape

        budget_tokens = float(tokens_for_loss(coeffs, choose_shape(float(opt.params)).params, target, u))
    planned = plan_model(coeffs, target, float(opt.params), args.out, args.data, args.name)
    allow_repeat = args.allow_repeat
    if u is not None:
        planned = _plan_with_budget(planned, budget_tokens)
        allow_repeat = allow_repeat or budget_tokens > u
        eq4 = make(None).optimum(coeffs, target)
        extra["data_constrained"] = {**data_constrained_block(problem, coeffs, target, opt, ref, eq4),
                                     "planned_epochs": planned.tokens / u}
    spec = load_spec(planned.sweep_yaml)
    hw = Hardware(gpu=args.gpu, gpus=args.gpus, mfu=args.mfu, price=args.price)
    backend = get_backend(args.backend)
    opts = backend.options(args)
    rows = plan_sweep(spec, hw, allow_repeat=allow_repeat, world_size=backend.world_size(opts))
    row = rows[0]
    files = [str(p) for p in backend.prepare(spec, [row["run"]], opts)]
    if serving is not None:
        extra["inference_model"] = "roofline"
        extra["serving"] = {**serving.as_dict(), "planned": serving_block(serving, float(planned.shape.params),
                                                                          args.input_tokens, args.output_tokens)}
    result = {
        **objective, "loss": target, "coefficients": coeffs.as_dict(),
        "recommended": {"params": float(opt.params), "tokens": float(opt.tokens)},
        "chinchilla": {"params": float(ref.params), "tokens": float(ref.tokens)},
        "planned": {**planned.shape.as_dict(), "tokens": row["tokens"], "tokens_per_param": row["tokens"] / row["params"],
                    "flops": row["flops"], "gpu_hours": row["gpu_hours"], "wall_hours": row["wall_hours"],
                    "dollars": row["dollars"], "params_vs_recommended": row["params"] / float(opt.params) - 1},
        "determined": verdict["determined"], "determined_reason": verdict["determined_reason"],
        **({"uncertainty": verdict["uncertainty"]} if "uncertainty" in verdict else {}),
        "model_yaml": str(planned.model_yaml), "sweep_yaml": str(planned.sweep_yaml),
        "run_config": str(RunFolder(Path(row["run_dir"])).config), "launch_files": files, "total": totals(rows),
        **extra,
    }
    if args.json:
        sys.stdout.write(dumps(result) + "\n")
        return 0
    s = planned.shape
    if verdict["determined"] is False:
        from beyond.commands_optimize import undetermined_banner

        sys.stdout.write(undetermined_banner(verdict) + "\n(--force: the plan below is for the point estimate)\n")
    if "gauntlet" in extra:
        sys.stdout.write(gauntlet_line(extra["gauntlet"]) + "\n")
    sys.stdout.write(
        f"target loss {target:.5g}: {'point estimate' if verdict['determined'] is False else 'recommended'} {human(float(opt.params))} params x {human(float(opt.tokens))} tokens "
        f"(Chinchilla-style {human(float(ref.params))} x {human(float(ref.tokens))})\n"
        f"planned shape: d_model {s.d_model}, {s.n_heads} heads ({s.kv_n_heads} KV), {s.n_layers} layers = "
        f"{s.params:,} params ({result['planned']['params_vs_recommended'] * 100:+.2f}% vs recommended), "
        f"lr {s.learning_rate:.3g}, batch {s.batch_size} x 4096\n"
        f"training: {human(row['tokens'])} tokens ({row['tokens'] / row['params']:.1f}/param), {row['flops']:.3g} FLOPs, "
        f"{row['gpu_hours']:,.0f} {args.gpu} GPU-hours (~{row['wall_hours']:,.0f} h on {args.gpus}), ${row['dollars']:,.0f}\n")
    if "data_constrained" in extra:
        dcb = extra["data_constrained"]
        sys.stdout.write(budget_line(dcb) + f"; the planned run trains {dcb['planned_epochs']:.3g} epochs\n")
    if serving is not None:
        b = extra["serving"]["planned"]
        sys.stdout.write(f"serving the planned model (roofline, {serving.gpu} {serving.dtype}): "
                         f"${b['dollars_per_request']:.3g}/request, {b['tokens_per_second_per_gpu']:,.0f} tokens/s/GPU, "
                         f"generation MFU {b['generation_mfu'] * 100:.1f}%, batch {b['batch']} on {b['gpus']} GPU"
                         f"{'s' if b['gpus'] != 1 else ''}\n")
    sys.stdout.write(
        f"wrote {planned.model_yaml}, {result['run_config']}" + (f", {', '.join(files)}" if files else "") + "\n"
        f"launch: beyond sweep launch {planned.sweep_yaml} --backend {args.backend}\n")
    return 0


def _inference_options_given(args) -> bool:
    """Whether any inference cost option differs from its default (they apply to --requests only)."""
    from scaling.optimal import CostSettings

    d = CostSettings()
    return (args.inference_gpu != d.inference_gpu or args.inference_dtype != d.inference_dtype
            or args.inference_price is not None or args.prefill_mfu != d.prefill_mfu
            or args.generation_mfu != d.generation_mfu)


def _plan_with_budget(planned, tokens: float):
    """The planned run with ``tokens``, the shape's training tokens under the data-constrained law
    (plan_model gives it Eq. 4's): its one-run sweep is rewritten with that tokens/param."""
    import dataclasses

    import yaml

    from ioutil import write_atomic

    ratio = tokens / planned.shape.params
    spec = yaml.safe_load(planned.sweep_yaml.read_text())
    spec["grid"][0]["tokens_per_param"] = [float(f"{ratio:.6g}")]
    write_atomic(planned.sweep_yaml, yaml.safe_dump(spec, sort_keys=False))
    name = planned.run_name.rsplit("-r", 1)[0]
    return dataclasses.replace(planned, tokens=tokens, run_name=f"{name}-r{ratio:.4g}")
