"""``beyond check``: preflight for a training run on this node (the checks live in train.preflight)."""

from __future__ import annotations

import argparse
import sys

from beyond.cli import quantity
from ioutil import dumps
from scaling.errors import InputError

_LABELS = {"ok": "ok", "problem": "PROBLEM", "info": "info", "not_checked": "not checked"}


def register(sub) -> None:
    p = sub.add_parser(
        "check", help="preflight: GPUs, flash-attn, disk, data tokens, credentials, Slurm/mcli",
        description="Check, on the node where it runs, what a training run needs: torch, CUDA, NCCL, GPU model "
        "and count, bf16, flash-attn (>= 2.4.2 for ALiBi with attn_impl: flash), free disk for the checkpoints "
        "(fp32 weights + optimizer state: 8 bytes/param with Lion), the data's tokens against the run's, "
        "object-store credentials for remote save folders and data, and Slurm or mcli with --backend. Prints one "
        "line per check and exits 1 if any is a problem; says what it could not check here.")
    p.add_argument("run", nargs="?", help="a run folder (with config.yaml), an llm-foundry train YAML or a zoo "
                   "model (mpt-tiny, 150M, ...); without it only this node is checked")
    p.add_argument("--data", help="training data to check instead of the config's (MDS folder or s3://... URI)")
    p.add_argument("--tokens", type=quantity, metavar="D", help="tokens the run trains on (default: the config's "
                   "max_duration in batches x global_train_batch_size x max_seq_len)")
    from train.backends import BACKENDS

    p.add_argument("--backend", choices=sorted(BACKENDS),
                   help="where the run goes: slurm/mcli are judged reachable only when given")
    p.add_argument("--gpus", type=int, metavar="N", help="GPUs expected on this node")
    p.add_argument("--cheap", action="store_true", help="skip what is slow: no download of a remote data index, "
                   "no torch import for --backend slurm|mcli")
    p.add_argument("--json", action="store_true", help="print one JSON object: ok, checks, problems")
    p.set_defaults(handler=_check)


def _check(args: argparse.Namespace) -> int:
    from train.preflight import load_run, problems, run_checks

    tokens = None
    if args.tokens is not None:
        if not args.tokens >= 1:
            raise InputError(f"--tokens must be positive, got {args.tokens:g}")
        tokens = int(args.tokens)
    config, label = load_run(args.run) if args.run else (None, None)
    results = run_checks(config, data=args.data, run_tokens=tokens, backend=args.backend, gpus=args.gpus,
                         cheap=args.cheap)
    found = problems(results)
    if args.json:
        sys.stdout.write(dumps({"ok": not found, "checks": [r.as_dict() for r in results], "problems": found}) + "\n")
    else:
        sys.stdout.write(f"beyond check{f' {label}' if label else ''}:\n")
        width = max(len(v) for v in _LABELS.values())
        for r in results:
            sys.stdout.write(f"  {_LABELS[r.status]:<{width}}  {r.name}: {r.detail}\n")
        sys.stdout.write(f"{len(found)} problem{'s' if len(found) != 1 else ''}\n" if found else "no problems\n")
    return 1 if found else 0
