"""Shared fixtures. Reference data comes from REFERENCE_DATA_DIR (see DESIGN.md): tests that need
it skip when it is unset, and fail instead when REQUIRE_REFERENCE_DATA=1 (as .ci/run sets)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _reference_file(name: str) -> Path:
    root = os.environ.get("REFERENCE_DATA_DIR")
    required = os.environ.get("REQUIRE_REFERENCE_DATA") == "1"
    path = Path(root) / name if root else None
    if path is None or not path.is_file():
        why = f"{name} not found (REFERENCE_DATA_DIR={root!r})"
        if required:
            pytest.fail(why + " but REQUIRE_REFERENCE_DATA=1")
        pytest.skip(why)
    return path


def require_train_extra() -> None:
    """Skip without the [train] extra (llm-foundry), or fail when REQUIRE_TRAIN_EXTRA=1 (.ci/run)."""
    if os.environ.get("REQUIRE_TRAIN_EXTRA") == "1":
        import llmfoundry  # noqa: F401 - fail loudly in CI
    else:
        pytest.importorskip("llmfoundry", reason="the [train] extra is not installed")


@pytest.fixture(scope="session")
def data_cache(tmp_path_factory) -> Path:
    """One tokeniser/MDS cache (``--cache-dir``) for the whole session: the embedded corpus is
    tokenised once per tokenizer setting, not once per test module (~30 s each on 2 cores)."""
    return tmp_path_factory.mktemp("data-cache")


def gauntlet_dir() -> Path:
    """The Gauntlet eval data (GAUNTLET_DATA_DIR): skip without it, fail when REQUIRE_REFERENCE_DATA=1."""
    root = os.environ.get("GAUNTLET_DATA_DIR")
    if not root or not Path(root).is_dir():
        if os.environ.get("REQUIRE_REFERENCE_DATA") == "1":
            pytest.fail("GAUNTLET_DATA_DIR not set but REQUIRE_REFERENCE_DATA=1")
        pytest.skip("GAUNTLET_DATA_DIR not set")
    return Path(root)


# A CPU-sized run: mpt-tiny with a 1,024-token local BPE, 5 tokens/param (371 batches of 16 x 128).
TINY_TRAIN = ["mpt-tiny", "-r", "5", "--set", "model.vocab_size=1024", "--set", "tokenizer.kwargs.vocab_size=1024",
              "--set", "save_interval=40ba"]


@dataclass(frozen=True)
class TrainedRun:
    """A run trained once per session: its folder, and the record `beyond train --json` printed."""

    path: Path
    printed: dict


@pytest.fixture(scope="session")
def trained_tiny(tmp_path_factory, data_cache) -> TrainedRun:
    """The one trained tiny run the train and eval tests share (training it costs minutes)."""
    import json

    require_train_extra()
    run_dir = tmp_path_factory.mktemp("tiny") / "tiny"
    proc = subprocess.run([sys.executable, "-m", "beyond", "train", *TINY_TRAIN, "--run-dir", str(run_dir),
                           "--cache-dir", str(data_cache), "--json"], capture_output=True, text=True, cwd=REPO,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return TrainedRun(run_dir, json.loads(proc.stdout))


@pytest.fixture(scope="session")
def paper_runs_csv() -> Path:
    """The paper's 47 runs (trainingresults.csv)."""
    return _reference_file("sardana2024_trainingresults.csv")


@pytest.fixture(scope="session")
def epoch_csv() -> Path:
    """Epoch AI's 245 reconstructed Chinchilla runs."""
    return _reference_file("epoch_chinchilla_svg_extracted.csv")


def start_until(cmd: list[str], path: Path, timeout: float) -> subprocess.Popen:
    """Start ``cmd`` (its own process group, output discarded) and wait until ``path`` exists;
    fails if the process ends or ``timeout`` seconds pass first. The caller stops the process."""
    import time

    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + timeout
    while not path.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    if not path.exists():
        import os
        import signal

        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        pytest.fail(f"{path.name} did not appear before the run ended (or within {timeout:.0f} s)")
    return proc


def trains(args: tuple[str, ...]) -> bool:
    """Whether `beyond ARGS` may train or evaluate a model, or launch jobs (then it runs in its own process)."""
    if not args or "--help" in args:
        return False
    if args[0] == "train":
        return "--dry-run" not in args
    # sweep launch on every backend: local trains, slurm starts jobs that inherit our environment
    # data prep: llm-foundry's converters start worker processes
    return args[0] in ("eval", "demo", "data") or args[:2] == ("sweep", "launch")


def run_cli(*args: str, check: bool = False, subprocess_only: bool = False) -> subprocess.CompletedProcess:
    """`beyond ARGS` as a user would run it; returns the completed process (exit code, stdout,
    stderr). A command that trains or evaluates (or any, with ``subprocess_only``) runs as
    `python -m beyond ARGS`. The others (fits, plans, dry runs, validation) run in this process
    through the same ``beyond.cli.main``: llm-foundry's import (~10 s) is paid once per test
    worker instead of once per call. tests/test_cli_edges.py keeps every command's bad-input
    contract (one line, exit 2) checked in a fresh process."""
    if subprocess_only or trains(args):
        proc = subprocess.run([sys.executable, "-m", "beyond", *args], capture_output=True, text=True,
                              cwd=REPO, timeout=300)
    else:
        proc = _run_here(args)
    if check and proc.returncode != 0:
        raise AssertionError(f"beyond {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc


def _run_here(args: tuple[str, ...]) -> subprocess.CompletedProcess:
    import contextlib
    import io

    from beyond.cli import main

    out, err = io.StringIO(), io.StringIO()
    cwd, env = os.getcwd(), dict(os.environ)
    os.chdir(REPO)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse: --help (0) and usage errors (2)
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:  # what a process would have taken with it: its working directory and environment
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
    return subprocess.CompletedProcess(["beyond", *args], code, out.getvalue(), err.getvalue())


# --- two workers (pytest-xdist) ------------------------------------------------------------------
# The suite runs on `-n auto` workers (pyproject addopts) with `--dist loadgroup`: every module is one
# group, so its module fixtures (a trained run, a Slurm cluster) are built once, on one worker; the
# modules that share the session's trained tiny run form one group; the longest groups go first.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") != "1":
    # Workers share the cores: one math thread per training process instead of one per core each,
    # which oversubscribes the CPU (torch's OpenMP threads spin while they wait for each other).
    os.environ.setdefault("OMP_NUM_THREADS", "1")
TRAINED_TINY_MODULES = {"test_train", "test_eval", "test_eval_vs_llmfoundry", "test_export"}
LONGEST_FIRST = ["test_report", "test_distributed", "test_train", "test_eval", "test_eval_vs_llmfoundry",
                 "test_sweep", "test_validate", "test_bench_gpu", "test_plan", "test_paper_facts"]


def _module(item) -> str:
    return item.path.stem


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups into the test ids
def pytest_collection_modifyitems(config, items) -> None:
    """Group each module's tests for xdist's loadgroup scheduler and order the longest first."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(_module(item), len(rank)))  # stable: module order kept within
    for item in items:
        module = _module(item)
        group = "trained_tiny" if module in TRAINED_TINY_MODULES else module
        item.add_marker(pytest.mark.xdist_group(group))


# --- no silent skips under CI ----------------------------------------------------------------------
REQUIRE_FLAGS = ("REQUIRE_REFERENCE_DATA", "REQUIRE_TRAIN_EXTRA", "REQUIRE_SLURM")


def _ci_requires() -> list[str]:
    return [flag for flag in REQUIRE_FLAGS if os.environ.get(flag) == "1"]


def pytest_sessionstart(session) -> None:
    """Under CI (any REQUIRE_* = 1), a data folder that is named but missing fails the run at once."""
    if "REQUIRE_REFERENCE_DATA" not in _ci_requires():
        return
    for var in ("REFERENCE_DATA_DIR", "GAUNTLET_DATA_DIR"):
        root = os.environ.get(var)
        if not root or not Path(root).is_dir():
            raise pytest.UsageError(f"REQUIRE_REFERENCE_DATA=1 but {var}={root!r} is not a folder")


def pytest_sessionfinish(session, exitstatus) -> None:
    """Under CI (any REQUIRE_* = 1) every skip is a failure: a skipped golden or training test
    would otherwise leave CI green while checking nothing."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if not _ci_requires() or reporter is None:
        return
    skipped = reporter.stats.get("skipped", [])
    if skipped and session.exitstatus == 0:
        reporter.ensure_newline()
        reporter.write_line(f"FAILED: {len(skipped)} test(s) skipped although {', '.join(_ci_requires())}=1 "
                            "(every skip is a failure under CI; see the skip summary)", red=True)
        session.exitstatus = 1
