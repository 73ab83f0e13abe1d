"""Benchmark: training throughput through `beyond train` vs llm-foundry's plain training path.

Both train the same tiny CPU config (mpt-tiny, 1,024-token local BPE, 5 tokens/param, 371 batches of
16 x 128 tokens) in fresh processes, alternating, `--repeats` times each; each worker times only its
training call (imports excluded). Ours: train.run.run_training (llm-foundry's command_utils.train
with our run-record and preemption callbacks, autoresume and checkpoints as `beyond train` sets
them, and the default validation pass on the held-out split at the last batch). Plain: the same
resolved YAML minus our callbacks and our eval loader, through llmfoundry.command_utils.train_from_yaml.
Overhead is extra work, so the target is on CPU time (the process's user + system seconds in the
training call, one math thread per worker): tokens per CPU-second, ours / plain >= 0.95, as the
median over rounds of each round's ratio (a round trains plain, then ours, back to back). Wall-clock
ratios are printed too; on a shared VM single runs of one config vary by 10% in wall time (CPU
steal), which CPU time does not count.
Usage: python -m benchmarks.bench_train [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OVERRIDES = ["model.vocab_size=1024", "tokenizer.kwargs.vocab_size=1024"]


def worker(mode: str, workdir: Path, name: str) -> None:
    """Train once and print {"tokens": ..., "seconds": ...} on the last stdout line."""
    from omegaconf import OmegaConf

    from train.config import build_run
    from train.run import run_training

    plan = build_run("mpt-tiny", workdir / name, tokens_per_param=5, data="stdlib",
                     cache_dir=workdir / "cache", overrides=OVERRIDES)
    c0 = time.process_time()
    if mode == "ours":
        t0 = time.perf_counter()
        record = run_training(plan)
        seconds = time.perf_counter() - t0
        tokens = record["tokens"]
    else:
        from llmfoundry.command_utils import train_from_yaml

        cfg = OmegaConf.to_container(plan.config)
        del cfg["callbacks"]["run_record"]
        cfg["callbacks"].pop("preemption", None)
        for key in ("eval_loader", "eval_interval", "eval_subset_num_batches"):  # train/validation.py's
            cfg.pop(key, None)
        path = workdir / name / "plain.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(OmegaConf.to_yaml(OmegaConf.create(cfg)))
        t0 = time.perf_counter()
        trainer = train_from_yaml(str(path))
        seconds = time.perf_counter() - t0
        tokens = int(trainer.state.timestamp.token)
    print(json.dumps({"tokens": tokens, "seconds": seconds, "cpu_seconds": time.process_time() - c0}), flush=True)


def measure(mode: str, workdir: Path, name: str) -> tuple[float, float]:
    """(tokens per wall second, tokens per CPU second) of one training call in a fresh process."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # one math thread: CPU time is work, not spinning
    proc = subprocess.run([sys.executable, "-m", "benchmarks.bench_train", "--worker", mode, str(workdir), name],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.exit(f"{mode} run failed:\n{proc.stderr[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return result["tokens"] / result["seconds"], result["tokens"] / result["cpu_seconds"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2, help="runs of each path (best is reported)")
    ap.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker[0], Path(args.worker[1]), args.worker[2])
        return
    workdir = Path(tempfile.mkdtemp(prefix="bench-train-"))
    try:
        measure("plain", workdir, "warmup")  # tokenizer + MDS data are built and cached here
        ours, plain = [], []
        for i in range(args.repeats):
            plain.append(measure("plain", workdir, f"plain-{i}"))
            ours.append(measure("ours", workdir, f"ours-{i}"))
        for k, what in ((0, "wall"), (1, "CPU")):
            o, p = [x[k] for x in ours], [x[k] for x in plain]
            rounds = sorted(a / b for a, b in zip(o, p))
            print(f"{what}: plain {max(p):,.0f} tokens/s, beyond train {max(o):,.0f} tokens/s (best runs); per-round "
                  f"ratios {', '.join(f'{r:.3f}' for r in rounds)}; median {statistics.median(rounds):.3f}")
        cpu = statistics.median(a[1] / b[1] for a, b in zip(ours, plain))
        print(f"ratio ours / plain (CPU time, median of rounds): {cpu:.3f} (target >= 0.95)")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
