"""Subcommands over scaling/'s optimizer: optimize compute|cost (paper Sec. 2 and 6) and law (the calculator).

Past the paper (issue 17), each opt-in and leaving the paper's answers untouched when not given:
``--inference-model roofline`` prices serving with the memory-aware roofline (scaling/roofline.py),
``--unique-tokens U`` applies the data-constrained law (scaling/data_constrained.py) and
``--gauntlet-target G`` turns a Gauntlet core average into a loss target through a downstream fit
(scaling/downstream.py). ``beyond plan`` and ``beyond report`` reuse the helpers here.
"""

from __future__ import annotations

import argparse
import math
import sys

from beyond.cli import quantity
from beyond.commands_scaling import COEFF_HELP
from beyond.optimize_options import (
    add_gauntlet_args,
    add_inference_args,
    add_unique_tokens_arg,
    check_inference_args,
    serving_settings,
    unique_tokens,
)
from beyond.optimize_problems import (
    Problem,
    compute_problem,
    cost_problem,
    data_constrained_block,
    downstream_interval,
    fix_uncertainty_for_budget,
    problem_answer,
    roofline_problem,
    serving_block,
)
from beyond.optimize_quality import Quality, quality
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
    add_gauntlet_args(p, q)
    p.add_argument("--coefficients", metavar="SET_OR_FILE", help=COEFF_HELP)
    add_unique_tokens_arg(p)
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
    add_inference_args(cost, hw)
    cost.set_defaults(handler=_cmd_optimize_cost)


# --- optimize compute | cost ---------------------------------------------------------------------

def _model(params, tokens, **extra) -> dict:
    out = {"params": float(params), "tokens": float(tokens), "tokens_per_param": float(tokens / params)}
    out.update({k: float(v) for k, v in extra.items()})
    return out


def _extensions(args, result: dict, problem: Problem, coeffs, q: Quality, target: float, opt, ref, eq4) -> None:
    """The issue-17 keys of an optimize answer (only for the options given)."""
    if problem.u is not None:
        result["optimal"]["epochs"] = float(opt.tokens) / problem.u
        result["chinchilla"]["epochs"] = float(ref.tokens) / problem.u
        result["data_constrained"] = data_constrained_block(problem, coeffs, target, opt, ref, eq4)
    if q.gauntlet is not None and "pairing" not in q.gauntlet:  # with law sets, the paired uncertainty says it
        interval_ = downstream_interval(problem, coeffs, q)
        if interval_ is not None:
            q.gauntlet["answer_interval"] = interval_


def _finish(args, result: dict, problem: Problem, coeffs, q: Quality, target: float, opt, ref, eq4, key: str):
    """What `optimize compute` and `optimize cost` add after their own numbers: the issue-17 blocks, the
    Gauntlet target, and the answer's uncertainty over bootstrap sets (under a unique-token budget if
    any). Returns the result and the answer function (for --sensitivity)."""
    _extensions(args, result, problem, coeffs, q, target, opt, ref, eq4)
    result = _with_gauntlet(result, q)
    answer = problem_answer(problem, q)
    recommended, reference = (opt.params, opt.tokens), (ref.params, ref.tokens)
    add_uncertainty(args, result, answer, key, recommended, reference)
    fix_uncertainty_for_budget(args, result, problem.u, recommended, reference)
    return result, answer


def _with_gauntlet(result: dict, q: Quality) -> dict:
    """``result`` with the Gauntlet block right after the loss (key order is the output's order)."""
    if q.gauntlet is None:
        return result
    out = {}
    for k, v in result.items():
        out[k] = v
        if k == "loss":
            out["gauntlet"] = q.gauntlet
    return out


def _cmd_optimize_compute(args) -> int:
    from scaling.coefficients import load_coefficients
    from scaling.law import training_flops

    coeffs = load_coefficients(args.coefficients)
    u = unique_tokens(args)
    q = quality(args, coeffs)
    target = q.point
    demand = args.inference_tokens
    problem = compute_problem(demand, u)
    opt, ref = problem.optimum(coeffs, target), problem.reference(coeffs, target)
    f_opt, f_ref = float(problem.value(opt.params, opt.tokens)), float(problem.value(ref.params, ref.tokens))
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
    eq4 = compute_problem(demand, None).optimum(coeffs, target) if u is not None else None
    result, answer = _finish(args, result, problem, coeffs, q, target, opt, ref, eq4, "flops")
    if args.sensitivity:
        from scaling.uncertainty import demand_sensitivity

        result["sensitivity"] = demand_sensitivity(lambda d: answer(coeffs, compute_problem(d, u)), demand)
    _print_choice(args, result, "flops", "FLOPs")
    return 0


def _cmd_optimize_cost(args) -> int:
    from scaling.coefficients import load_coefficients
    from scaling.optimal import CostSettings, InferenceDemand, total_flops

    check_inference_args(args)
    coeffs = load_coefficients(args.coefficients)
    u = unique_tokens(args)
    roofline = args.inference_model == "roofline"
    train_kw = dict(train_gpu=args.train_gpu, train_dtype=args.train_dtype, train_price_per_hour=args.train_price,
                    train_mfu=args.train_mfu)
    if roofline:
        settings = CostSettings(**train_kw)  # the training side; serving is the roofline's
        serving = serving_settings(args)
    else:
        settings = CostSettings(
            **train_kw, inference_gpu=args.inference_gpu, inference_dtype=args.inference_dtype,
            inference_price_per_hour=args.inference_price, prefill_mfu=args.prefill_mfu,
            generation_mfu=args.generation_mfu,
        )
    q = quality(args, coeffs)
    target = q.point
    demand = InferenceDemand(args.requests, args.input_tokens, args.output_tokens)

    def make(st=settings, d=demand, sv=None, budget=u):
        if roofline:
            return roofline_problem(sv or serving, st, float(d.requests), d.input_tokens, d.output_tokens, budget)
        return cost_problem(st, d, budget)

    problem = make()
    ref = problem.reference(coeffs, target)
    c_ref = float(problem.value(ref.params, ref.tokens))  # first: one line if the serving batch does not fit it
    opt = problem.optimum(coeffs, target)
    tokens_inf = float(demand.total_tokens)
    c_opt = float(problem.value(opt.params, opt.tokens))
    if roofline:
        settings_json = {k: v for k, v in settings.as_dict().items() if k.startswith("train")}
    else:
        settings_json = settings.as_dict()
    result = {
        "objective": "cost",
        "coefficients": coeffs.as_dict(),
        "loss": target,
        "requests": args.requests,
        "input_tokens_per_request": args.input_tokens,
        "output_tokens_per_request": args.output_tokens,
        "settings": settings_json,
        "optimal": _model(opt.params, opt.tokens, cost=c_opt, flops=total_flops(opt.params, opt.tokens, tokens_inf)),
        "chinchilla": _model(ref.params, ref.tokens, cost=c_ref, flops=total_flops(ref.params, ref.tokens, tokens_inf)),
        "cost_ratio": c_opt / c_ref,
        "params_ratio": float(opt.params / ref.params),
        "tokens_ratio": float(opt.tokens / ref.tokens),
    }
    if roofline:
        result = {**{k: v for k, v in result.items() if k not in ("optimal", "chinchilla", "cost_ratio",
                                                                  "params_ratio", "tokens_ratio")},
                  "inference_model": "roofline", "serving": serving.as_dict(),
                  **{k: result[k] for k in ("optimal", "chinchilla", "cost_ratio", "params_ratio", "tokens_ratio")}}
        for key, m in (("optimal", opt), ("chinchilla", ref)):
            block = serving_block(serving, m.params, args.input_tokens, args.output_tokens)
            train_cost = float(settings.dollars_per_train_flop * 6.0 * m.params * m.tokens)
            result[key].update(train_cost=train_cost, inference_cost=result[key]["cost"] - train_cost, serving=block)
    eq4 = make(budget=None).optimum(coeffs, target) if u is not None else None
    result, answer = _finish(args, result, problem, coeffs, q, target, opt, ref, eq4, "cost")
    if args.sensitivity:
        if roofline:
            result["sensitivity"] = _roofline_sensitivity(lambda st, d, sv: answer(coeffs, make(st, d, sv)),
                                                          settings, demand, serving)
        else:
            from scaling.uncertainty import cost_sensitivity

            result["sensitivity"] = cost_sensitivity(lambda st, d: answer(coeffs, make(st, d)), settings, demand)
    _print_choice(args, result, "cost", "$")
    return 0


def _roofline_sensitivity(answer, train, demand, serving) -> list[dict]:
    """The roofline answer when requests, the serving batch, training MFU and the inference price
    change: ``answer(train settings, demand, serving settings)`` gives {params, tokens, ratio}."""
    import dataclasses

    from scaling.optimal import InferenceDemand
    from scaling.uncertainty import DEMAND_MULTIPLIERS, SETTING_MULTIPLIERS

    rows = [{"change": f"requests x{m:g}",
             **answer(train, InferenceDemand(demand.requests * m, demand.input_tokens, demand.output_tokens), serving)}
            for m in DEMAND_MULTIPLIERS]
    for m in SETTING_MULTIPLIERS:
        if serving.batch is not None and int(serving.batch * m) >= 1:
            b = int(serving.batch * m)
            try:
                rows.append({"change": f"serving batch x{m:g} ({b})",
                             **answer(train, demand, dataclasses.replace(serving, batch=b))})
            except InputError as exc:
                rows.append({"change": f"serving batch x{m:g} ({b})", "unavailable": str(exc)})
    for m in SETTING_MULTIPLIERS:
        if train.train_mfu * m <= 1:
            rows.append({"change": f"training MFU x{m:g}",
                         **answer(dataclasses.replace(train, train_mfu=train.train_mfu * m), demand, serving)})
    for m in SETTING_MULTIPLIERS:
        rows.append({"change": f"inference price x{m:g}",
                     **answer(train, demand, dataclasses.replace(serving, price_per_hour=serving.price * m))})
    return rows


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


def gauntlet_line(g: dict) -> str:
    """One line: the Gauntlet target, its loss target and interval, and the downstream fit."""
    f = g["fit"]
    iv = g.get("loss_target_interval")
    spread = (f" ({g['percentiles'][0]:g}-{g['percentiles'][1]:g}% over {g['n_sets']} downstream sets: "
              f"{iv[0]:.4f}-{iv[1]:.4f}" + (f"; {g['n_unreachable']} never reach it" if g["n_unreachable"] else "")
              + ")") if iv else ""
    pairing = f"; paired with the law's bootstrap sets: {g['pairing']}" if "pairing" in g else ""
    return (f"Gauntlet core average {g['gauntlet_target']:g} -> loss target {g['loss_target']:.5f}{spread}; "
            f"downstream fit G = {f['a']:.4f} + {f['k']:.4g} exp(-{f['gamma']:.4f} L) on {f['n_runs']} runs "
            f"(rms {f['rms']:.4f}, accepts G {f['invertible_range'][0]:.4g}-{f['invertible_range'][1]:.4g}){pairing}")


def budget_line(dcb: dict) -> str:
    """One line: the unique-token budget, the epochs it implies and whether it changed the answer."""
    w = dcb["without_budget"]
    head = f"unique tokens {human(dcb['unique_tokens'])}: the optimum trains {dcb['optimal_epochs']:.3g} epochs"
    if dcb["binds"]:
        return (head + f" (repeating data; without the budget it would train {human(w['params'])} params on "
                f"{human(w['tokens'])} tokens = {w['epochs']:.3g} epochs of U); Chinchilla-style under the budget: "
                f"{dcb['chinchilla_epochs']:.3g} epochs")
    return head + " (the budget does not bind: the optimum without it, unchanged)"


def serving_lines(result: dict) -> list[str]:
    s = result["serving"]
    lines = [f"serving (roofline): {s['gpu']} {s['dtype']} weights ({s['weight_bytes']:g} B/param), "
             f"KV {s['kv_bytes']:g} B/element, batch {s['batch'] if s['batch'] is not None else 'max'}, "
             f"{s['gpus'] if s['gpus'] is not None else 'auto'} GPU{'' if s['gpus'] == 1 else 's'}/replica, "
             f"${s['price_per_hour']:g}/GPU-hour"]
    for label, key in (("optimal", "optimal"), ("Chinchilla-style", "chinchilla")):
        b = result[key]["serving"]
        lines.append(f"  {label:17}${b['dollars_per_request']:.3g}/request, {b['tokens_per_second_per_gpu']:,.0f} "
                     f"tokens/s/GPU, generation MFU {b['generation_mfu'] * 100:.1f}%, "
                     f"{'memory' if b['memory_bound'] else 'compute'}-bound decode, batch {b['batch']} on "
                     f"{b['gpus']} GPU{'s' if b['gpus'] != 1 else ''}; training ${result[key]['train_cost']:,.0f}, "
                     f"serving ${result[key]['inference_cost']:,.0f}")
    return lines


def _print_choice(args, result: dict, key: str, unit: str) -> None:
    if args.json:
        print(dumps(result))
        return
    o, c = result["optimal"], result["chinchilla"]
    ratio = result[f"{key}_ratio"]
    print(f"target loss {result['loss']:.6g} ({result['coefficients']['name']} coefficients)")
    if "gauntlet" in result:
        print(gauntlet_line(result["gauntlet"]))
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
    if "data_constrained" in result:
        print(budget_line(result["data_constrained"]))
    if "serving" in result:
        print("\n".join(serving_lines(result)))
    ai = (result.get("gauntlet") or {}).get("answer_interval")
    if ai and "optimal_params" in ai:
        print(f"over the {ai['n_sets'] - ai['n_unreachable']} downstream sets' loss targets (law point estimate): "
              f"params {human(ai['optimal_params'][0])}-{human(ai['optimal_params'][1])}, tokens "
              f"{human(ai['optimal_tokens'][0])}-{human(ai['optimal_tokens'][1])}")
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
            if "unavailable" in row:
                print(f"  {label:<26}unavailable: {row['unavailable']}")
                continue
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
    add_unique_tokens_arg(p)
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
    u = unique_tokens(args)
    n, d = _law_model(c, given, args.chinchilla, u)
    if u is not None:
        return _print_law_with_budget(args, c, n, d, u)
    result = {"coefficients": c.as_dict(), "params": n, "tokens": d, "tokens_per_param": d / n,
              "flops": float(law.training_flops(n, d)), "loss": float(law.loss(c, n, d))}
    if args.json:
        print(dumps(result))
    else:
        print(f"params {human(n)}  tokens {human(d)}  tokens/param {d / n:.1f}  "
              f"training FLOPs {result['flops']:.3e}  loss {result['loss']:.5f}  ({c.name})")
    return 0


def _law_model(c, given: dict, chinchilla: bool, u: float | None) -> tuple[float, float]:
    """(N params, D tokens) from two of params/tokens/flops/loss, or one with ``chinchilla``. With a
    unique-token budget ``u`` the loss is the data-constrained law's: --chinchilla --loss gives the
    least-training-compute model that reaches it; --params, --tokens or --flops keep Eq. 4's
    compute-optimal (N, D) (the caller reports its loss under the budget)."""
    from scaling import data_constrained as dc
    from scaling import law

    n, d = given.get("params"), given.get("tokens")
    if chinchilla:
        if len(given) != 1:
            raise InputError("with --chinchilla give exactly one of --params, --tokens, --flops, --loss")
        if n is not None:
            d = law.chinchilla_for_params(c, n)
        elif d is not None:
            n = law.chinchilla_for_tokens(c, d)
        elif "flops" in given:
            n, d = law.chinchilla_for_compute(c, given["flops"])
        elif u is None:
            n, d = law.chinchilla_for_loss(c, given["loss"])
        else:
            choice = dc.compute_optimal_constrained(c, given["loss"], 0.0, u)
            n, d = choice.params, choice.tokens
    else:
        if len(given) != 2:
            raise InputError("give exactly two of --params, --tokens, --flops, --loss (or one with --chinchilla)")
        if n is None and d is None:
            raise InputError("with --flops and --loss the model is not determined; add --chinchilla or --params")
        per_token = law.TRAIN_FLOPS_PER_PARAM_TOKEN
        if n is not None and d is None:
            d = (given["flops"] / (per_token * n) if "flops" in given else law.tokens_for_loss(c, n, given["loss"])
                 if u is None else dc.tokens_for_loss(c, n, given["loss"], u))
        elif d is not None and n is None:
            n = (given["flops"] / (per_token * d) if "flops" in given else law.params_for_loss(c, d, given["loss"])
                 if u is None else _params_for_loss_with_budget(c, d, given["loss"], u))
    n, d = float(n), float(d)
    if not (n < float("inf") and d < float("inf")):
        raise InputError("that loss is out of reach for the given size: the law never gets there")
    return n, d


def _print_law_with_budget(args, c, n: float, d: float, u: float) -> int:
    """``law --unique-tokens U``: the model's loss under the data-constrained law, its epochs and
    effective tokens and params (Muennighoff et al. 2023)."""
    from scaling import data_constrained as dc
    from scaling import law

    rep = dc.MUENNIGHOFF2023
    result = {"coefficients": c.as_dict(), "params": n, "tokens": d, "tokens_per_param": d / n,
              "flops": float(law.training_flops(n, d)), "loss": float(dc.loss(c, n, d, u)),
              "unique_tokens": u, "epochs": d / u, "effective_tokens": float(dc.effective_tokens(d, u)),
              "effective_params": float(dc.effective_params(c, n, d, u)), "loss_without_budget": float(law.loss(c, n, d)),
              "repetition": {"name": rep.name, "r_d_star": rep.r_d_star, "r_n_star": rep.r_n_star}}
    if args.json:
        print(dumps(result))
    else:
        print(f"params {human(n)}  tokens {human(d)}  tokens/param {d / n:.1f}  "
              f"training FLOPs {result['flops']:.3e}  loss {result['loss']:.5f}  ({c.name})")
        print(f"unique tokens {human(u)}: {result['epochs']:.3g} epochs, effective tokens {human(result['effective_tokens'])}, "
              f"effective params {human(result['effective_params'])} (Muennighoff et al. 2023, R_D* {rep.r_d_star:.4g}, "
              f"R_N* {rep.r_n_star:.4g}); loss without the budget (Eq. 4) {result['loss_without_budget']:.5f}")
    return 0


def _params_for_loss_with_budget(c, tokens: float, target: float, u: float) -> float:
    """Params that reach ``target`` on ``tokens`` training tokens drawn from ``u`` unique ones (the
    data-constrained loss falls monotonically in N towards its cap); InputError when none does."""
    import numpy as np
    from scipy.optimize import brentq

    from scaling import data_constrained as dc
    from scaling import law

    lower = float(law.params_for_loss(c, tokens, target))  # the law is never below Eq. 4
    u_n = float(dc.unique_params(c, min(tokens, u)))
    n_cap = u_n * (1.0 + dc.MUENNIGHOFF2023.r_n_star)
    best = float(c.E + c.A * n_cap**-c.alpha + c.B * float(dc.effective_tokens(tokens, u)) ** -c.beta)
    if not np.isfinite(lower) or best >= target:
        raise InputError(f"loss {target:g} is out of reach on {tokens:.4g} tokens with {u:.4g} unique tokens "
                         f"({c.name}): however many params, the loss stays above {best:.6g}")

    def gap(log_n):
        return float(dc.loss(c, math.exp(log_n), tokens, u)) - target

    hi = math.log(lower)
    while gap(hi) > 0:
        hi += math.log(2.0)
    lo = math.log(lower) if gap(math.log(lower)) > 0 else hi - math.log(2.0)
    return math.exp(brentq(gap, lo, hi, xtol=1e-14, rtol=4 * np.finfo(float).eps)) if lo < hi else math.exp(hi)
