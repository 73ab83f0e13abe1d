"""Single-fact mutation check (issue 15): change one fact at a time in a copy of the working tree,
run the tests named for it, and report every mutation that no test caught.

Usage: .venv/bin/python scripts/mutation_check.py [--only SUBSTR] [--json OUT]
Needs the same environment as the tests (REFERENCE_DATA_DIR, GAUNTLET_DATA_DIR for the golden ones).
Each mutation replaces one exact text that must occur exactly once in its file (a stale list is an
error, not a pass). The named tests first run on the unmutated copy: they must pass there, so that
a failure under a mutation is the mutation's doing. Exit 0 when every mutation is caught, else 1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    """One fact changed: ``old`` (occurring once in ``path``) becomes ``new``; ``tests`` should fail."""

    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


PAPER = ("tests/test_paper_facts.py",)
COST = ("tests/test_cost_independent.py", "tests/test_paper_facts.py")
GAUNTLET = ("tests/test_gauntlet_settings.py",)
SBATCH = ("tests/test_sweep.py::test_multinode_sbatch_script",)
VAL = ("tests/test_train.py::test_validation_loss_on_the_held_out_split",)
USR1 = ("tests/test_distributed.py::test_time_limit_signal_checkpoints_requeues_and_the_rerun_resumes",)

MUTATIONS: list[Mutation] = [
    # App. C recipe and Table 4, in the zoo YAMLs
    Mutation("Lion beta2 of mpt-1.3b", "yamls/models/mpt-1.3b.yaml", "betas: [0.9, 0.95]", "betas: [0.9, 0.99]", PAPER),
    Mutation("Lion beta1 of mpt-150m", "yamls/models/mpt-150m.yaml", "betas: [0.9, 0.95]", "betas: [0.95, 0.95]", PAPER),
    Mutation("learning rate of mpt-1.3b", "yamls/models/mpt-1.3b.yaml", "lr: 1.726e-4", "lr: 1.7e-4", PAPER),
    Mutation("weight decay of mpt-1.3b", "yamls/models/mpt-1.3b.yaml", "weight_decay: 1.726e-4", "weight_decay: 0.0", PAPER),
    Mutation("cosine floor alpha_f of mpt-370m", "yamls/models/mpt-370m.yaml", "alpha_f: 0.1", "alpha_f: 0.0", PAPER),
    Mutation("gradient clipping of mpt-750m", "yamls/models/mpt-750m.yaml", "clipping_threshold: 1.0",
             "clipping_threshold: 0.5", PAPER),
    Mutation("layers of mpt-6b", "yamls/models/mpt-6b.yaml", "n_layers: 32", "n_layers: 30", PAPER),
    Mutation("d_model of mpt-2.5b", "yamls/models/mpt-2.5b.yaml", "d_model: 2560", "d_model: 2048", PAPER),
    Mutation("KV heads of mpt-370m", "yamls/models/mpt-370m.yaml", "kv_n_heads: 4", "kv_n_heads: 2", PAPER),
    Mutation("sequence length of mpt-150m", "yamls/models/mpt-150m.yaml", "max_seq_len: 4096", "max_seq_len: 2048",
             PAPER),
    Mutation("ALiBi off in mpt-1.3b", "yamls/models/mpt-1.3b.yaml", "alibi: true", "alibi: false", PAPER),
    Mutation("batch size of mpt-1.3b", "yamls/models/mpt-1.3b.yaml", "global_train_batch_size: 960",
             "global_train_batch_size: 1024", PAPER),
    Mutation("optimizer of mpt-6b", "yamls/models/mpt-6b.yaml", "name: decoupled_lionw", "name: decoupled_adamw",
             PAPER),
    Mutation("warmup multiplier (3 x params)", "train/config.py", "WARMUP_TOKENS_PER_PARAM = 3.0",
             "WARMUP_TOKENS_PER_PARAM = 2.0", PAPER + ("tests/test_dataset_size.py",)),
    # the 47-run grid
    Mutation("a ratio of the 370M grid", "yamls/sweeps/paper.yaml",
             "  - model: mpt-370m\n    tokens_per_param: [10, 15, 20, 30, 50, 75, 100, 250, 500, 1000]",
             "  - model: mpt-370m\n    tokens_per_param: [10, 15, 20, 30, 50, 75, 100, 250, 500, 2000]", PAPER),
    Mutation("the footnote's batch 960", "yamls/sweeps/paper.yaml", "set: [global_train_batch_size=960]",
             "set: [global_train_batch_size=1024]", PAPER),
    # Gauntlet settings (App. / llm-foundry's v0.2 files)
    Mutation("openbook_qa few-shot count", "yamls/eval/gauntlet-paper.yaml",
             "- {name: openbook_qa, num_fewshot: 10, random_baseline: 0.25}",
             "- {name: openbook_qa, num_fewshot: 0, random_baseline: 0.25}", GAUNTLET),
    Mutation("piqa random baseline", "yamls/eval/gauntlet-paper.yaml",
             "- {name: piqa, num_fewshot: 0, random_baseline: 0.5}",
             "- {name: piqa, num_fewshot: 0, random_baseline: 0.25}", GAUNTLET),
    # the run record: the all-reduce over ranks and the smoothing window
    Mutation("all-reduce sums the ranks' batch losses", "train/callback.py",
             "        return total / samples if samples > 0 else None",
             "        return total / samples * dist.get_world_size() if samples > 0 else None", ("tests/test_callback.py",)),
    Mutation("all-reduce skipped over ranks", "train/callback.py", "        if dist.get_world_size() > 1:\n",
             "        if dist.get_world_size() > 99:\n", ("tests/test_callback.py",)),
    Mutation("smoothing window 10 -> 5", "train/callback.py", "window: int = 10", "window: int = 5",
             ("tests/test_callback.py", "tests/test_paper_facts.py")),
    # Sec. 6 cost defaults (App. B)
    Mutation("A100-40 price", "scaling/optimal.py", '"a100-40": 1.10', '"a100-40": 1.20', COST),
    Mutation("A100-80 price", "scaling/optimal.py", '"a100-80": 1.50', '"a100-80": 1.60', COST),
    Mutation("generation MFU 1%", "scaling/optimal.py", "generation_mfu: float = 0.01", "generation_mfu: float = 0.02",
             COST),
    Mutation("prefill MFU 50%", "scaling/optimal.py", "prefill_mfu: float = 0.5", "prefill_mfu: float = 0.4", COST),
    Mutation("training MFU 50%", "scaling/optimal.py", "train_mfu: float = 0.5", "train_mfu: float = 0.45", COST),
    Mutation("A100 INT8 peak", "scaling/optimal.py", '"a100-40": {"bf16": 3.12e14, "fp16": 3.12e14, "int8": 6.24e14}',
             '"a100-40": {"bf16": 3.12e14, "fp16": 3.12e14, "int8": 3.12e14}', COST),
    Mutation("serving GPU a100-40 -> a100-80", "scaling/optimal.py", 'inference_gpu: str = "a100-40"',
             'inference_gpu: str = "a100-80"', COST),
    # published coefficients (App. A, Table 1)
    Mutation("Chinchilla alpha", "scaling/coefficients.py", "E=1.69, alpha=0.336", "E=1.69, alpha=0.34", PAPER),
    Mutation("Table 1 'all' E", "scaling/coefficients.py", "E=1.45, alpha=0.18", "E=1.40, alpha=0.18", PAPER),
    # issue 16: tracker metrics, the run lock, eval standard errors
    Mutation("tracker metric flops dropped", "train/callback.py", '"tokens_per_param", "flops")', '"tokens_per_param")',
             ("tests/test_validate.py::test_allow_repeat_trains_and_records_epochs",)),
    Mutation("run lock shared instead of exclusive", "train/lock.py", "fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)",
             "fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)", ("tests/test_lock.py",)),
    Mutation("stderr over n instead of n - 1", "eval/stderr.py", "return math.sqrt(p * (1.0 - p) / (n - 1))",
             "return math.sqrt(p * (1.0 - p) / n)", ("tests/test_eval_results.py",)),
    # issue 16: validation loss, preemption
    Mutation("validation on the train split", "train/validation.py", '{"split": VAL_SPLIT, "shuffle": False}',
             '{"split": "train", "shuffle": False}', VAL),
    Mutation("validation metric perplexity", "train/callback.py", 'VAL_METRIC = "LanguageCrossEntropy"',
             'VAL_METRIC = "LanguagePerplexity"', VAL),
    Mutation("validation cap 5% of the run", "train/validation.py", "VAL_FRACTION = 0.02", "VAL_FRACTION = 0.05", VAL),
    Mutation("sbatch without --requeue", "train/backends/slurm.py", '"#SBATCH --requeue", ', "", SBATCH),
    Mutation("launcher dies on SIGTERM", "train/backends/slurm.py", "trap '' TERM USR1; exec ", "exec ", SBATCH),
    Mutation("no checkpoint on a signal", "train/preemption.py",
             "return (self._stop and event == Event.BATCH_CHECKPOINT) or interval(state, event)",
             "return interval(state, event)", USR1),
    Mutation("no requeue after SIGUSR1", "train/preemption.py", '["scontrol", "requeue", job]',
             '["scontrol", "release", job]', USR1),
    Mutation("requeue without checkpoints allowed", "train/checkpoints.py",
             "int(restarts) > 0 and not folder.checkpoints.is_dir()", "int(restarts) > 9 and not folder.checkpoints.is_dir()",
             ("tests/test_distributed.py::test_requeued_job_without_its_checkpoint_folder_is_refused",)),
    # launch lines
    Mutation("Slurm node rank", "train/backends/slurm.py", '--node_rank \\"$SLURM_NODEID\\"',
             "--node_rank 0", SBATCH),
    Mutation("Slurm world size", "train/backends/slurm.py", 'f"export WORLD_SIZE=$(( SLURM_NNODES * {procs} ))"',
             'f"export WORLD_SIZE=$(( SLURM_NNODES ))"', SBATCH),
    Mutation("ranks per node in the launcher", "train/launch.py", 'composer_launcher(), "-n", str(nproc)',
             'composer_launcher(), "-n", "1"', ("tests/test_distributed.py::test_two_processes_through_composer_launcher",)),
]


def copy_tree(dest: Path) -> None:
    """The working tree's tracked and untracked-but-not-ignored files (what git would commit)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def run_tests(root: Path, tests: tuple[str, ...]) -> int:
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-n", "0",
           "-o", "addopts=", *tests]
    return subprocess.run(cmd, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="run the mutations whose name contains this text")
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args(argv)
    chosen = [m for m in MUTATIONS if args.only.lower() in m.name.lower()]
    results = []
    with tempfile.TemporaryDirectory(prefix="mutation-") as tmp:
        root = Path(tmp)
        copy_tree(root)
        for m in chosen:  # a stale list is an error
            count = (root / m.path).read_text().count(m.old)
            if count != 1:
                print(f"error: mutation {m.name!r}: the text occurs {count} times in {m.path}", file=sys.stderr)
                return 2
        for tests in sorted({m.tests for m in chosen}):
            if run_tests(root, tests) != 0:
                print(f"error: {' '.join(tests)} fail without any mutation", file=sys.stderr)
                return 2
        for m in chosen:
            target = root / m.path
            original = target.read_text()
            target.write_text(original.replace(m.old, m.new))
            start = time.time()
            try:
                rc = run_tests(root, m.tests)
            finally:
                target.write_text(original)
            caught = rc != 0
            results.append({"mutation": m.name, "file": m.path, "tests": list(m.tests), "caught": caught,
                            "pytest_exit": rc, "seconds": round(time.time() - start, 1)})
            print(f"{'caught' if caught else 'MISSED'}  {m.name}  ({m.path}; {time.time() - start:.0f} s)", flush=True)
    missed = [r for r in results if not r["caught"]]
    print(f"{len(results) - len(missed)} of {len(results)} mutations caught")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 1 if missed else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    raise SystemExit(main())
