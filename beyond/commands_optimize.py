"""Subcommands over scaling/'s optimizer: optimize compute|cost (paper Sec. 2 and 6) and law (the calculator)."""

from __future__ import annotations

import argparse
import sys

from beyond.cli import quantity
from beyond.commands_scaling import COEFF_HELP
from ioutil import dumps, human
from scaling.errors import InputError


def register(sub) -> None:
    _register_optimize(sub)
    _register_law(sub)


# --- optimize ----------------------------------------------------------------------------------

def _quality_args(p: argparse.ArgumentParser) -> None:
    q = p.add_mutually_exclusive_group(required=True)
    q.add_argument("--loss", type=float, help="target pre-training loss (nats/token)")
    q.add_argument("--like-params", type=quantity, metavar="N",
                   help="target the loss of a Chinchilla-style model of N params (e.g. 7B)")
    p.add_argument("--coefficients", metavar="SET_OR_FILE", help=COEFF_HELP)
    p.add_argument("--sensitivity", action="store_true",
                   help="also show how the answer moves with inference demand x0.1..x10 (and, for cost, MFU/price)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _register_optimize(sub) -> None:
    opt = sub.add_parser("optimize", help="inference-aware optimal model size and training tokens",
                         description="Inference-aware optimal (params, training tokens) for a target "
                         "loss and lifetime inference demand, against the Chinchilla-style model.")
    osub = opt.add_subparsers(dest="objective", metavar="OBJECTIVE", parser_class=type(opt))
    osub.required = True
    comp = osub.add_parser("compute", help="minimise training + inference FLOPs (paper Sec. 2)",
                           description="Minimise 6*N*D_tr + 2*N*D_inf subject to L(N, D_tr) = loss.")
    _quality_args(comp)
    comp.add_argument("--inference-tokens", type=quantity, required=True, metavar="T",
                      help="lifetime inference tokens, input + output (e.g. 2e12 or 2T)")
    comp.set_defaults(handler=_cmd_optimize_compute)

    cost = osub.add_parser("cost", help="minimise training + inference dollars (paper Sec. 6, Eq. 6)",
                           description="Minimise training + prefill + generation dollars subject to "
                           "L(N, D_tr) = loss. Defaults are the paper's Table 3 settings.")
    _quality_args(cost)
    cost.add_argument("--requests", type=quantity, required=True, metavar="R", help="lifetime inference requests")
    from scaling.optimal import PAPER_INPUT_TOKENS, PAPER_OUTPUT_TOKENS

    cost.add_argument("--input-tokens", type=float, default=PAPER_INPUT_TOKENS, metavar="I",
                      help="input (prompt) tokens per request (default 70, LMSYS-Chat mean)")
    cost.add_argument("--output-tokens", type=float, default=PAPER_OUTPUT_TOKENS, metavar="O",
                      help="output (generated) tokens per request (default 215)")
    from scaling.optimal import PEAK_FLOPS, CostSettings

    gpus, d = sorted(PEAK_FLOPS), CostSettings()  # the defaults live in CostSettings only
    hw = cost.add_argument_group("hardware (defaults: paper App. B.3)")
    hw.add_argument("--train-gpu", choices=gpus, default=d.train_gpu, help=f"(default {d.train_gpu})")
    hw.add_argument("--train-dtype", default=d.train_dtype, help=f"bf16 | fp16 | fp8 (default {d.train_dtype})")
    hw.add_argument("--train-price", type=float, metavar="USD_PER_HOUR", default=d.train_price_per_hour,
                    help="default: the GPU's list price")
    hw.add_argument("--train-mfu", type=float, default=d.train_mfu, help=f"training MFU in (0, 1] (default {d.train_mfu:g})")
    hw.add_argument("--inference-gpu", choices=gpus, default=d.inference_gpu, help=f"(default {d.inference_gpu})")
    hw.add_argument("--inference-dtype", default=d.inference_dtype,
                    help=f"int8 | fp8 | bf16 | fp16 (default {d.inference_dtype})")
    hw.add_argument("--inference-price", type=float, metavar="USD_PER_HOUR", default=d.inference_price_per_hour,
                    help="default: the GPU's list price")
    hw.add_argument("--prefill-mfu", type=float, default=d.prefill_mfu, help=f"input-token MFU (default {d.prefill_mfu:g})")
    hw.add_argument("--generation-mfu", type=float, default=d.generation_mfu,
                    help=f"output-token MFU (default {d.generation_mfu:g})")
    cost.set_defaults(handler=_cmd_optimize_cost)


def _target_loss(args, coeffs) -> float:
    from scaling.law import chinchilla_for_params, loss

    if args.loss is not None:
        return float(args.loss)
    if args.like_params <= 0:
        raise InputError(f"--like-params must be > 0, got {args.like_params:g}")
    n = args.like_params
    return float(loss(coeffs, n, chinchilla_for_params(coeffs, n)))


def _model(params, tokens, **extra) -> dict:
    out = {"params": float(params), "tokens": float(tokens), "tokens_per_param": float(tokens / params)}
    out.update({k: float(v) for k, v in extra.items()})
    return out


def _cmd_optimize_compute(args) -> int:
    from scaling.coefficients import load_coefficients
    from scaling.law import training_flops
    from scaling.optimal import compare_compute

    coeffs = load_coefficients(args.coefficients)
    target = _target_loss(args, coeffs)
    demand = args.inference_tokens
    cmp = compare_compute(coeffs, target, demand)
    opt, ref = cmp.optimal, cmp.chinchilla
    f_opt, f_ref = float(cmp.optimal_flops), float(cmp.chinchilla_flops)
    result = {
        "objective": "compute",
        "coefficients": coeffs.as_dict(),
        "loss": target,
        "inference_tokens": demand,
        "optimal": _model(opt.params, opt.tokens, flops=f_opt, training_flops=training_flops(opt.params, opt.tokens)),
        "chinchilla": _model(ref.params, ref.tokens, flops=f_ref, training_flops=training_flops(ref.params, ref.tokens)),
        "flops_ratio": f_opt / f_ref,
        "params_ratio": float(opt.params / ref.params),
        "tokens_ratio": float(opt.tokens / ref.tokens),
    }

    def answer(c, d=demand):
        t = _target_loss(args, c)
        got = compare_compute(c, t, d)
        return {"params": float(got.optimal.params), "tokens": float(got.optimal.tokens), "ratio": float(got.flops_ratio)}

    add_uncertainty(args, result, answer, "flops", (opt.params, opt.tokens), (ref.params, ref.tokens))
    if args.sensitivity:
        from scaling.uncertainty import demand_sensitivity

        result["sensitivity"] = demand_sensitivity(lambda d: answer(coeffs, d), demand)
    _print_choice(args, result, "flops", "FLOPs")
    return 0


def _cmd_optimize_cost(args) -> int:
    from scaling.coefficients import load_coefficients
    from scaling.optimal import (
        CostSettings,
        InferenceDemand,
        chinchilla_style,
        cost_optimal,
        total_cost,
        total_flops,
    )

    coeffs = load_coefficients(args.coefficients)
    target = _target_loss(args, coeffs)
    settings = CostSettings(
        train_gpu=args.train_gpu, train_dtype=args.train_dtype, train_price_per_hour=args.train_price,
        train_mfu=args.train_mfu, inference_gpu=args.inference_gpu, inference_dtype=args.inference_dtype,
        inference_price_per_hour=args.inference_price, prefill_mfu=args.prefill_mfu,
        generation_mfu=args.generation_mfu,
    )
    demand = InferenceDemand(args.requests, args.input_tokens, args.output_tokens)
    opt = cost_optimal(coeffs, target, settings, demand)
    ref = chinchilla_style(coeffs, target)
    tokens_inf = float(demand.total_tokens)
    c_opt = float(total_cost(settings, demand, opt.params, opt.tokens))
    c_ref = float(total_cost(settings, demand, ref.params, ref.tokens))
    result = {
        "objective": "cost",
        "coefficients": coeffs.as_dict(),
        "loss": target,
        "requests": args.requests,
        "input_tokens_per_request": args.input_tokens,
        "output_tokens_per_request": args.output_tokens,
        "settings": settings.as_dict(),
        "optimal": _model(opt.params, opt.tokens, cost=c_opt, flops=total_flops(opt.params, opt.tokens, tokens_inf)),
        "chinchilla": _model(ref.params, ref.tokens, cost=c_ref, flops=total_flops(ref.params, ref.tokens, tokens_inf)),
        "cost_ratio": c_opt / c_ref,
        "params_ratio": float(opt.params / ref.params),
        "tokens_ratio": float(opt.tokens / ref.tokens),
    }

    def answer(c, d=demand, st=settings):
        t = _target_loss(args, c)
        o, r = cost_optimal(c, t, st, d), chinchilla_style(c, t)
        return {"params": float(o.params), "tokens": float(o.tokens),
                "ratio": float(total_cost(st, d, o.params, o.tokens) / total_cost(st, d, r.params, r.tokens))}

    add_uncertainty(args, result, answer, "cost", (opt.params, opt.tokens), (ref.params, ref.tokens))
    if args.sensitivity:
        from scaling.uncertainty import cost_sensitivity

        result["sensitivity"] = cost_sensitivity(lambda st, d: answer(coeffs, d, st), settings, demand)
    _print_choice(args, result, "cost", "$")
    return 0




def undetermined_banner(result: dict) -> str:
    """The lines an undetermined answer leads with: the verdict, its reason, and the intervals in
    place of a single recommendation."""
    u = result["uncertainty"]
    (p_lo, p_hi), (t_lo, t_hi) = u["optimal_params"], u["optimal_tokens"]
    return (f"UNDETERMINED: the fit does not pin this answer down, so there is no single recommendation.\n"
            f"  why: {result['determined_reason']}\n"
            f"  the answer lies between {human(p_lo)} and {human(p_hi)} params on {human(t_lo)} to {human(t_hi)} "
            f"tokens ({u['percentiles'][0]:g}th-{u['percentiles'][1]:g}th percentile of {u['n_sets']} bootstrap sets);"
            f" run more sizes and ratios near it before training")


def add_uncertainty(args, result: dict, answer, key: str, recommended, reference) -> None:
    """With a fit file holding bootstrap sets: the answer's interval over them; always
    ``determined`` (true, false, or null when there are no sets) and ``determined_reason``."""
    from scaling.uncertainty import answer_uncertainty, bootstrap_sets, not_assessed

    sets = bootstrap_sets(args.coefficients)
    if not sets:
        verdict = not_assessed()
    else:
        result["uncertainty"] = answer_uncertainty(answer, sets, result, key, recommended, reference)
        verdict = {k: result["uncertainty"][k] for k in ("determined", "reason")}
        if "warning" in result["uncertainty"]:
            sys.stderr.write(f"beyond: warning: {result['uncertainty']['warning']}\n")
    result["determined"], result["determined_reason"] = verdict["determined"], verdict["reason"]


def _print_choice(args, result: dict, key: str, unit: str) -> None:
    if args.json:
        print(dumps(result))
        return
    o, c = result["optimal"], result["chinchilla"]
    ratio = result[f"{key}_ratio"]
    print(f"target loss {result['loss']:.6g} ({result['coefficients']['name']} coefficients)")
    undetermined = result.get("determined") is False
    if undetermined:
        print(undetermined_banner(result))
    print(f"{'':28}{'params':>10}{'tokens':>10}{'tok/param':>11}{'total ' + key:>16}")
    best = "point estimate (not pinned)" if undetermined else "inference-aware optimal"
    for label, m in ((best, o), ("Chinchilla-style", c)):
        print(f"{label:28}{human(m['params']):>10}{human(m['tokens']):>10}{m['tokens_per_param']:>11.1f}"
              f"{human(m[key], unit):>16}")
    print(f"optimal / Chinchilla-style: {key} x{ratio:.4f} ({(1 - ratio) * 100:.1f}% saved), "
          f"params x{result['params_ratio']:.3f}, tokens x{result['tokens_ratio']:.3f}")
    u = result.get("uncertainty")
    if u:
        lo, hi = u["percentiles"]
        print(f"over {u['n_sets'] - u['n_unreachable']} bootstrap sets ({lo:g}th-{hi:g}th percentile): params "
              f"{human(u['optimal_params'][0])}-{human(u['optimal_params'][1])}, tokens {human(u['optimal_tokens'][0])}-"
              f"{human(u['optimal_tokens'][1])}, {key} ratio {u[key + '_ratio'][0]:.4f}-{u[key + '_ratio'][1]:.4f}; "
              f"the recommended model is at least as good as the Chinchilla-style one under "
              f"{u['p_recommended_at_least_as_good'] * 100:.0f}% of them"
              + (f"; target unreachable under {u['n_unreachable']}" if u["n_unreachable"] else ""))
    if result.get("determined") is None and "determined_reason" in result:
        print(f"determined: {result['determined_reason']}")
    if result.get("sensitivity"):
        print("sensitivity:")
        for row in result["sensitivity"]:
            label = row.get("change") or f"inference tokens x{row['demand_multiplier']:g}"
            print(f"  {label:<26}{human(row['params']):>10}{human(row['tokens']):>10}{row['tokens'] / row['params']:>10.1f}"
                  f"   {key} ratio {row['ratio']:.4f}")


# --- law ---------------------------------------------------------------------------------------

def _register_law(sub) -> None:
    p = sub.add_parser("law", help="loss / params / tokens / FLOPs calculator",
                       description="Give two of --params, --tokens, --flops, --loss; or one of them with "
                       "--chinchilla for the training-compute-optimal model. Prints all four.")
    p.add_argument("--params", type=quantity, metavar="N")
    p.add_argument("--tokens", type=quantity, metavar="D")
    p.add_argument("--flops", type=quantity, metavar="C", help="training FLOPs (6 N D)")
    p.add_argument("--loss", type=float, metavar="L")
    p.add_argument("--chinchilla", action="store_true", help="the model is Chinchilla-style (compute-optimal)")
    p.add_argument("--coefficients", metavar="SET_OR_FILE", help=COEFF_HELP)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_cmd_law)


def _cmd_law(args) -> int:
    from scaling import law
    from scaling.coefficients import load_coefficients

    c = load_coefficients(args.coefficients)
    given = {k: getattr(args, k) for k in ("params", "tokens", "flops", "loss") if getattr(args, k) is not None}
    for k, v in given.items():
        if not v > 0:
            raise InputError(f"--{k} must be > 0, got {v:g}")
    n, d = given.get("params"), given.get("tokens")
    if args.chinchilla:
        if len(given) != 1:
            raise InputError("with --chinchilla give exactly one of --params, --tokens, --flops, --loss")
        if n is not None:
            d = law.chinchilla_for_params(c, n)
        elif d is not None:
            n = law.chinchilla_for_tokens(c, d)
        elif "flops" in given:
            n, d = law.chinchilla_for_compute(c, given["flops"])
        else:
            n, d = law.chinchilla_for_loss(c, given["loss"])
    else:
        if len(given) != 2:
            raise InputError("give exactly two of --params, --tokens, --flops, --loss (or one with --chinchilla)")
        if n is None and d is None:
            raise InputError("with --flops and --loss the model is not determined; add --chinchilla or --params")
        if n is not None and d is None:
            d = given["flops"] / (law.TRAIN_FLOPS_PER_PARAM_TOKEN * n) if "flops" in given else law.tokens_for_loss(c, n, given["loss"])
        elif d is not None and n is None:
            n = given["flops"] / (law.TRAIN_FLOPS_PER_PARAM_TOKEN * d) if "flops" in given else law.params_for_loss(c, d, given["loss"])
    n, d = float(n), float(d)
    if not (n < float("inf") and d < float("inf")):
        raise InputError("that loss is out of reach for the given size: the law never gets there")
    result = {"coefficients": c.as_dict(), "params": n, "tokens": d, "tokens_per_param": d / n,
              "flops": float(law.training_flops(n, d)), "loss": float(law.loss(c, n, d))}
    if args.json:
        print(dumps(result))
    else:
        print(f"params {human(n)}  tokens {human(d)}  tokens/param {d / n:.1f}  "
              f"training FLOPs {result['flops']:.3e}  loss {result['loss']:.5f}  ({c.name})")
    return 0
