"""``beyond train``: one llm-foundry training run from a zoo model and a tokens/param ratio."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

from ioutil import dumps, one_line
from scaling.errors import InputError


def register(sub) -> None:
    p = sub.add_parser(
        "train", help="train one model on llm-foundry and write its run record",
        description="Train MODEL for TOKENS_PER_PARAM x params tokens with llm-foundry (warmup 3 x params "
        "tokens, autoresume from RUN_DIR/checkpoints) and write RUN_DIR/record.json with the smoothed "
        "final loss (mean of the last 10 batch losses). Rerunning a finished run does nothing; rerunning "
        "an interrupted one resumes from its latest checkpoint.")
    p.add_argument("model", help="zoo model (mpt-tiny, mpt-mini, mpt-150m ... mpt-6b, or a Table 4 name "
                   "like 150M) or a path to an llm-foundry train YAML")
    p.add_argument("--tokens-per-param", "-r", type=float, metavar="R",
                   help="training tokens per parameter (the paper's ratio); optional if the YAML sets max_duration")
    p.add_argument("--data", default=None,
                   help="training data: 'stdlib' (this Python's standard-library sources, no download), "
                   "a text file, a folder of text files, an MDS dataset folder (with train/index.json) or a remote MDS URI "
                   "(s3://...); default: the YAML's train_loader.dataset, else stdlib")
    p.add_argument("--run-dir", type=Path, help="run folder (default: runs/<model>-r<R>)")
    p.add_argument("--cache-dir", type=Path, help="where tokenised data and local tokenizers are cached "
                   "(default: <run-dir>/../.cache)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override any llm-foundry setting, dotted (repeatable), e.g. --set global_train_batch_size=8")
    p.add_argument("--nproc", type=int, default=1, metavar="N",
                   help="processes on this machine (default 1): N > 1 starts Composer's launcher with N ranks, one "
                   "per GPU where there are GPUs, gloo CPU processes elsewhere; the global batch stays the same")
    p.add_argument("--allow-repeat", action="store_true",
                   help="train even if the run needs more tokens than the data holds (the paper never repeats data); "
                   "the record stores the number of epochs")
    p.add_argument("--dry-run", action="store_true", help="resolve and validate the config with llm-foundry's own "
                   "checks, write RUN_DIR/config.yaml, do not train")
    p.add_argument("--json", action="store_true", help="print the run record as JSON")
    p.set_defaults(handler=_train)


def _train(args: argparse.Namespace) -> int:
    from train.checkpoints import check_requeued
    from train.config import build_run, launched_world_size
    from train.folder import RunFolder
    from train.lock import ensure_free, run_lock
    from train.run import existing_record, global_rank
    from train.zoo import model_yaml

    ratio = args.tokens_per_param
    if ratio is not None and not ratio > 0:
        raise InputError(f"--tokens-per-param must be positive, got {ratio:g}")
    if args.nproc < 1:
        raise InputError(f"--nproc must be at least 1, got {args.nproc}")
    launcher = args.nproc > 1 and launched_world_size() == 1
    stem = model_yaml(args.model).stem
    run_dir = args.run_dir or Path("runs") / (stem if ratio is None else f"{stem}-r{ratio:g}")
    record = existing_record(run_dir)  # a finished run: nothing to do
    if record is not None:
        return _report(record, args, skipped=True)
    rank0 = global_rank() == 0
    if rank0:
        ensure_free(run_dir)  # a run another launch is training: say so before any work
        check_requeued(RunFolder(run_dir))  # a requeued Slurm job whose checkpoints are gone: do not start over
    plan = build_run(args.model, run_dir, tokens_per_param=ratio, data=args.data, cache_dir=args.cache_dir,
                     overrides=args.overrides, allow_repeat=args.allow_repeat,
                     world_size=args.nproc if launcher else launched_world_size())
    # one launch per run folder: rank 0 (or the process that starts the ranks) holds the lock from
    # the first write to the end of training; it is taken after validation, so bad input leaves nothing
    with run_lock(run_dir) if rank0 else contextlib.nullcontext():
        return _write_and_train(plan, args, launcher)


def _write_and_train(plan, args: argparse.Namespace, launcher: bool) -> int:
    from train.preemption import Preempted
    from train.run import REPORTING_PARENT, global_rank, run_launcher, run_training, write_config

    run_dir = plan.run_dir
    if args.dry_run:
        write_config(plan)
        sys.stdout.write(f"wrote {run_dir / 'config.yaml'}: {plan.params:,} params, "
                         f"{plan.tokens or 0:,} tokens in {plan.batches or 0:,} batches\n")
        return 0
    try:
        record = run_launcher(plan, args.nproc) if launcher else run_training(plan)
    except Preempted as exc:  # checkpointed on SIGTERM/SIGUSR1: a relaunch or requeue resumes
        if global_rank() == 0 and REPORTING_PARENT not in os.environ:  # under `--nproc N` the parent says it
            sys.stderr.write(f"beyond: {run_dir.name}: {exc}\n")
        return exc.exit_code
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - a failed run is one line, the log above has the rest
        first = one_line(exc)
        raise InputError(f"training failed: {type(exc).__name__}: {first}") from None
    return _report(record, args, skipped=False)


def _report(record: dict | None, args: argparse.Namespace, skipped: bool) -> int:
    if record is None:  # a rank other than 0 of a multi-process launch: rank 0 reports
        return 0
    if args.json:
        sys.stdout.write(dumps(record) + "\n")
    else:
        verb = "already trained" if skipped else "trained"
        sys.stdout.write(f"{record.get('run_name')}: {verb}; {record['params']:,} params, {record['tokens']:,} tokens "
                         f"({record['tokens_per_param']:.1f}/param), smoothed final loss {record['smoothed_loss']:.4f}\n")
    return 0
