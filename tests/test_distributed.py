"""The multi-process path on CPU ranks: the run record is the global batch loss for any world
size and any microbatching, Composer's launcher (``--nproc``) and the Slurm backend's exact
per-node launch line train the same run, and a run that loses a rank resumes from its checkpoint.

Four ways to train one mpt-tiny run with the same global batch (16 x 128 tokens) and seed:
(a) 1 process, no microbatching; (b) 1 process, microbatches of 4; (c) 2 gloo processes through
Composer's launcher; (d) 2 "nodes" x 1 process on localhost, started by the line the sbatch
script runs under srun, with the variables Slurm would set. Streaming's sample order does not
depend on the world size because the zoo YAMLs pin ``num_canonical_nodes``. The first batch sees
the same data and weights everywhere (agreement to 1e-6); later batches drift with the order of
floating-point reductions (smoothed loss to 1e-3).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, require_train_extra, run_cli, start_until

require_train_extra()

BATCHES = 40
# mpt-tiny as the README trains it (4,096-token BPE: the session's data cache tokenises it once)
SHORT = ["mpt-tiny", "--set", f"max_duration={BATCHES}ba", "--set", "scheduler.t_warmup=6ba", "--set", "save_interval=10ba",
         "--set", "console_log_interval=10ba"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, data_cache) -> Path:
    work = tmp_path_factory.mktemp("dist")
    (work / "cache").symlink_to(data_cache, target_is_directory=True)
    return work


def _train(workdir: Path, name: str, *extra: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "beyond", "train", *SHORT, "--run-dir", str(workdir / name),
                           "--cache-dir", str(workdir / "cache"), "--json", *extra],
                          capture_output=True, text=True, cwd=REPO, timeout=timeout)


def _record(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def single(workdir) -> dict:
    """(a) one process, the whole batch at once."""
    return _record(_train(workdir, "a-single", "--set", "device_train_microbatch_size=16"))


@pytest.fixture(scope="module")
def two_ranks(workdir, single) -> dict:
    """(c) two gloo ranks through Composer's launcher."""
    return _record(_train(workdir, "c-two-ranks", "--nproc", "2"))


def _close(a: dict, b: dict) -> None:
    assert a["batches"] == b["batches"] == BATCHES and a["tokens"] == b["tokens"]
    assert b["initial_loss"] == pytest.approx(a["initial_loss"], rel=1e-6)
    assert b["smoothed_loss"] == pytest.approx(a["smoothed_loss"], rel=1e-3)


def test_microbatching_gives_the_global_batch_loss(workdir, single):
    """(b) gradient accumulation over 4 microbatches: the record holds the batch's loss, not the
    last microbatch's (which differs from the batch mean by several percent)."""
    micro = _record(_train(workdir, "b-micro", "--set", "device_train_microbatch_size=4"))
    _close(single, micro)
    assert single["world_size"] == micro["world_size"] == 1
    assert single["loss_source"] == micro["loss_source"] == "composer"


def test_two_processes_through_composer_launcher(single, two_ranks, workdir):
    _close(single, two_ranks)
    assert two_ranks["world_size"] == 2
    assert (workdir / "c-two-ranks" / "logs").is_dir()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_nodes_with_the_slurm_launch_line(workdir, single, tmp_path):
    """(d) the exact line the sbatch script runs on each node, once per "node" on localhost."""
    from train.backends.slurm import SlurmOptions, node_launch_line, sbatch_script
    from train.sweep import SweepRun, SweepSpec

    run_dir = (workdir / "d-two-nodes").resolve()
    dry = _train(workdir, "d-two-nodes", "--dry-run")
    assert dry.returncode == 0, dry.stderr[-3000:]
    spec = SweepSpec("inv", tmp_path / "spec.yaml", run_dir.parent, None, 17, [SweepRun(run_dir.name, "mpt-tiny", 1.0)])
    opts = SlurmOptions(nodes=2, gpus_per_node=0, procs_per_node=1)
    script = sbatch_script(spec, run_dir.name, opts)
    line = node_launch_line(run_dir, opts.procs)
    assert shlex.quote(line) in script and "export WORLD_SIZE=$(( SLURM_NNODES * 1 ))" in script
    env = {**os.environ, "SLURM_NNODES": "2", "SLURM_JOB_ID": "4242", "SLURM_JOB_NODELIST": "localhost",
           "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "WORLD_SIZE": "2"}
    (run_dir / "logs").mkdir(exist_ok=True)
    # Each "node" gets its own /dev/shm, as a real node has: streaming keeps its per-node state in
    # shared memory, and two leaders on one host's /dev/shm would collide. The filesystem (run
    # folder, data, working directory) is shared, as on a cluster.
    own_shm = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
               'mount -t tmpfs none /dev/shm && exec bash -c "$0"', line]
    nodes = [subprocess.Popen(own_shm, cwd=REPO, env={**env, "SLURM_NODEID": str(i), "SLURM_PROCID": str(i)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    outs = [n.communicate(timeout=600) for n in nodes]
    assert [n.returncode for n in nodes] == [0, 0], "\n".join(o[1][-3000:] for o in outs)
    record = json.loads((run_dir / "record.json").read_text())
    _close(single, record)
    assert record["world_size"] == 2


def _rank_processes(root_pid: int) -> dict[int, object]:
    import psutil

    ranks = {}
    for child in psutil.Process(root_pid).children(recursive=True):
        try:
            rank = child.environ().get("RANK")
        except psutil.Error:
            continue
        if rank is not None and "beyond" in " ".join(child.cmdline()):
            ranks[int(rank)] = child
    return ranks


def test_killed_rank_resumes_from_checkpoint(workdir, two_ranks):
    """Kill rank 1 of a 2-process run after its first checkpoint (a second launch meanwhile is
    refused: the run is busy): Composer's launcher stops the run; launching it again resumes (resumes = 1) and ends where the uninterrupted run did. (The
    single-process kill and resume is the demo test's, tests/test_report.py.)"""
    run_dir = workdir / "killed-rank"
    cmd = [sys.executable, "-m", "beyond", "train", *SHORT, "--run-dir", str(run_dir), "--cache-dir",
           str(workdir / "cache"), "--nproc", "2"]
    # latest-rank0.pt appears once the first checkpoint is complete (linked after the write)
    proc = start_until(cmd, run_dir / "checkpoints" / "latest-rank0.pt", timeout=300)
    try:
        # a second launch of the same run while it trains: refused at once, naming the first
        busy = run_cli("train", *SHORT, "--run-dir", str(run_dir), "--cache-dir", str(workdir / "cache"), "--nproc", "2")
        assert busy.returncode == 2 and "is busy" in busy.stderr and f"pid {proc.pid} on " in busy.stderr, busy.stderr
        ranks = _rank_processes(proc.pid)
        assert set(ranks) == {0, 1}, ranks
        ranks[1].send_signal(signal.SIGKILL)
        ranks[1].wait(timeout=30)
        # rank 0 now waits in a collective for a peer that is gone; Composer's launcher ends the run
        # once it notices (it polls), or a scheduler would kill the job: either way, all of it goes
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        pass
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert not (run_dir / "record.json").exists()
    # a kill during the next save leaves a half-written checkpoint that no link points at; Composer
    # would refuse to start next to it (FileExistsError), so train sets it aside and resumes
    half = run_dir / "checkpoints" / "ep0-ba9000-rank0.pt"
    half.write_bytes(b"\x80\x02 half a pickle")
    proc = _train(workdir, "killed-rank", "--nproc", "2")
    record = _record(proc)
    assert not half.exists() and (run_dir / "checkpoints" / "unfinished" / half.name).is_file()
    assert "set aside ep0-ba9000-rank0.pt" in proc.stderr
    assert record["resumes"] == 1
    _close(two_ranks, record)


def test_time_limit_signal_checkpoints_requeues_and_the_rerun_resumes(workdir, single, tmp_path):
    """SIGUSR1 (what the sbatch scripts ask Slurm to send before the time limit) to a training
    process inside a Slurm job: it checkpoints the batch it reached, past the periodic checkpoint,
    asks Slurm to requeue the job (a stand-in `scontrol` on PATH records the call) and exits 138
    with one line; the rerun resumes from that batch and ends exactly where the uninterrupted run
    (a) did. (SIGTERM, on two ranks under the real one-node Slurm: tests/test_sweep.py.)"""
    run_dir = workdir / "usr1"
    calls = tmp_path / "scontrol.calls"
    fake = tmp_path / "bin" / "scontrol"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    fake.chmod(0o755)
    env = {**os.environ, "SLURM_JOB_ID": "777", "PATH": f"{fake.parent}:{os.environ['PATH']}"}
    cmd = [sys.executable, "-m", "beyond", "train", *SHORT, "--run-dir", str(run_dir), "--cache-dir",
           str(workdir / "cache")]
    log = workdir / "usr1.stderr"
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=log.open("w"))
    link = run_dir / "checkpoints" / "latest-rank0.pt"
    deadline = time.time() + 300
    while not link.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    assert link.exists(), "no first checkpoint"
    proc.send_signal(signal.SIGUSR1)
    proc.wait(timeout=120)
    err = log.read_text()
    assert proc.returncode == 128 + signal.SIGUSR1, err[-3000:]
    line = [ln for ln in err.splitlines() if ln.startswith("beyond:")]
    assert len(line) == 1 and "usr1: stopped on SIGUSR1: checkpointed batch" in line[0], err[-3000:]
    assert "asked Slurm to requeue job 777" in line[0] and calls.read_text() == "requeue 777\n"
    batch = int(line[0].split("checkpointed batch ")[1].split(";")[0])
    assert 10 <= batch < BATCHES and os.path.realpath(link).endswith(f"-ba{batch}-rank0.pt")
    assert not (run_dir / "record.json").exists()
    record = _record(_train(workdir, "usr1"))
    assert record["resumes"] == 1 and record["batches"] == BATCHES
    for key in ("initial_loss", "smoothed_loss", "val_loss"):  # same process count: the same numbers
        assert record[key] == pytest.approx(single[key], rel=1e-6, abs=1e-7), key


def test_requeued_job_without_its_checkpoint_folder_is_refused(tmp_path, monkeypatch):
    """A requeued Slurm job (SLURM_RESTART_COUNT >= 1) whose checkpoint folder is gone would train
    from scratch: one line, exit 2, nothing written."""
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    monkeypatch.setenv("SLURM_JOB_ID", "4711")
    run_dir = tmp_path / "gone"
    proc = run_cli("train", *SHORT, "--run-dir", str(run_dir))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Slurm job 4711 is a requeue (restart 1)" in proc.stderr
    assert "checkpoint folder" in proc.stderr and not run_dir.exists()


def test_readme_nproc_line_is_documented():
    readme = (REPO / "README.md").read_text()
    assert "beyond train mpt-tiny -r 8 --nproc 2" in readme


def test_nproc_must_be_positive(tmp_path):
    proc = run_cli("train", "mpt-tiny", "-r", "8", "--nproc", "0", "--run-dir", str(tmp_path / "r"))
    assert proc.returncode == 2 and "--nproc must be at least 1" in proc.stderr
    assert "Traceback" not in proc.stderr
