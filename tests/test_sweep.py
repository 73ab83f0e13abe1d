"""Sweeps: the paper's 47-run plan, a real one-node Slurm
cluster, mcli run YAMLs checked by mcli's own loader, bad input.

Needs the [train] extra (skips without it unless REQUIRE_TRAIN_EXTRA=1). The Slurm test needs
root and Debian's slurm-wlm + munge; it skips without them unless REQUIRE_SLURM=1 (.ci/run
installs them and sets it).
"""

from __future__ import annotations

import csv
import json
import os
import shlex
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, require_train_extra, run_cli
from train.backends.slurm import node_launch_line

require_train_extra()

TABLE4 = {  # model: (batch size, ratios), Table 4
    "mpt-150m": (160, [10, 15, 20, 30, 50, 75, 100, 250, 500, 1000, 5000, 10000]),
    "mpt-370m": (320, [10, 15, 20, 30, 50, 75, 100, 250, 500, 1000]),
    "mpt-750m": (480, [10, 15, 20, 30, 50, 75, 100, 250, 500]),
    "mpt-1.3b": (960, [10, 15, 20, 30, 50, 75, 100, 250]),
    "mpt-2.5b": (960, [10, 15, 20, 50, 100, 250, 500]),
    "mpt-6b": (960, [20]),
}
SMOKE = """name: {name}
data: stdlib
seed: 17
set: [model.vocab_size=1024, tokenizer.kwargs.vocab_size=1024, save_interval=50ba]
grid:
  - model: mpt-tiny
    tokens_per_param: [4, 5]
"""


def _spec(tmp_path: Path, name: str, text: str = SMOKE) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text.replace("{name}", name))
    return path


@pytest.fixture(scope="module")
def paper_plan(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("paper")
    proc = run_cli("sweep", "plan", "paper", "--data", "s3://my-bucket/mds", "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout) | {"dir": out}


def test_paper_grid_is_table4(paper_plan):
    runs = paper_plan["runs"]
    assert len(runs) == 47 == paper_plan["total"]["runs"]
    for model, (batch, ratios) in TABLE4.items():
        mine = [r for r in runs if r["model"] == model]
        assert sorted(r["tokens_per_param"] for r in mine) == ratios
        for r in mine:
            expected = 960 if (model, r["tokens_per_param"]) == ("mpt-150m", 10000) else batch
            assert r["global_batch_size"] == expected, r["run"]
            assert r["max_seq_len"] == 4096
            batch_tokens = expected * 4096
            assert r["tokens"] == r["batches"] * batch_tokens
            assert 0 <= r["tokens"] - r["tokens_per_param"] * r["params"] < batch_tokens


def test_paper_plan_flops_and_gpu_hours(paper_plan):
    for r in paper_plan["runs"]:
        assert r["flops"] == pytest.approx(6 * r["params"] * r["tokens"], rel=1e-12)
        assert r["gpu_hours"] == pytest.approx(r["flops"] / (3.12e14 * 0.5 * 3600), rel=1e-12)  # A100 bf16, 50% MFU
        assert r["wall_hours"] == pytest.approx(r["gpu_hours"] / 8)
        assert r["dollars"] == pytest.approx(r["gpu_hours"] * 1.50)  # App. B.3 A100-80GB price
    total = paper_plan["total"]
    assert total["flops"] == pytest.approx(sum(r["flops"] for r in paper_plan["runs"]))
    rows = list(csv.DictReader((paper_plan["dir"] / "plan.csv").open()))
    assert len(rows) == 47 and float(rows[0]["flops"]) == pytest.approx(paper_plan["runs"][0]["flops"])


def test_paper_run_configs_are_complete(paper_plan):
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(paper_plan["dir"] / "mpt-6b-r20" / "config.yaml")
    assert cfg.train_loader.dataset.remote == "s3://my-bucket/mds"
    assert cfg.max_duration.endswith("ba") and cfg.scheduler.t_warmup.endswith("ba")
    assert cfg.autoresume and cfg.save_folder.endswith("mpt-6b-r20/checkpoints")
    assert cfg.run_name == "mpt-6b-r20" and cfg.seed == 17
    assert cfg.callbacks.run_record.params == 6048452608
    assert cfg.optimizer.name == "decoupled_lionw" and cfg.optimizer.weight_decay == cfg.optimizer.lr


def test_spec_loggers_reach_every_run(tmp_path):
    from train.sweep import Hardware, load_spec, plan_sweep

    # Composer's WandBLogger takes wandb.init's `mode` inside init_kwargs; a bare `mode:` key would
    # crash the run when llm-foundry builds the logger, and planning now rejects it
    spec = _spec(tmp_path, "logged", SMOKE + "loggers: {wandb: {project: beyond, init_kwargs: {mode: offline}}}\n")
    plan = load_spec(spec, out=tmp_path / "out")
    plan_sweep(plan, Hardware())
    from omegaconf import OmegaConf

    for run in ("mpt-tiny-r4", "mpt-tiny-r5"):
        cfg = OmegaConf.load(tmp_path / "out" / run / "config.yaml")
        assert cfg.loggers.wandb.project == "beyond" and cfg.run_name == run


def test_mcli_run_yamls_pass_mcli_loader(paper_plan, tmp_path):
    from mcli.models.run_config import FinalRunConfig, RunConfig

    out = paper_plan["dir"]
    proc = run_cli("sweep", "launch", "paper", "--data", "s3://my-bucket/mds", "--out", str(out), "--backend", "mcli",
                   "--dry-run", "--git-repo", "example/beyond-chinchilla", "--git-ref", "main",
                   "--remote-out", "s3://my-bucket/sweeps/paper", "--cluster", "r1z1", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    paths = json.loads(proc.stdout)["run_yamls"]
    assert len(paths) == 47
    final = FinalRunConfig.finalize_config(RunConfig.from_file(paths[0]))
    assert final.compute["gpus"] == 8 and final.compute["cluster"] == "r1z1"
    assert "composer -m beyond train /mnt/config/parameters.yaml" in final.command
    assert final.parameters["save_folder"].startswith("s3://my-bucket/sweeps/paper/")
    assert final.parameters["callbacks"]["run_record"]["path"].endswith("/record.json")
    broken = tmp_path / "broken.yaml"
    broken.write_text(Path(paths[0]).read_text().replace("image:", "imagex:"))
    from scaling.errors import InputError
    from train.backends.mcli import validate_mcli
    with pytest.raises(InputError, match="mcli rejects"):
        validate_mcli(broken)


def test_multinode_sbatch_script(paper_plan):
    proc = run_cli("sweep", "launch", "paper", "--data", "s3://my-bucket/mds", "--out", str(paper_plan["dir"]),
                   "--backend", "slurm", "--dry-run", "--nodes", "4", "--gpus-per-node", "8", "--partition", "a100",
                   "--time", "48:00:00", "--account", "lm", "--signal-lead", "600", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    path = Path(json.loads(proc.stdout)["scripts"][0])
    script = path.read_text()
    for line in ("#SBATCH --nodes=4", "#SBATCH --gpus-per-node=8", "#SBATCH --partition=a100",
                 "#SBATCH --time=48:00:00", "#SBATCH --account=lm", "#SBATCH --ntasks-per-node=1",
                 "#SBATCH --requeue", "#SBATCH --signal=USR1@600"):  # preemptible: requeue, and a warning
        assert line in script
    # Composer's launcher ignores the signals its ranks act on, so it outlives them and reports their exit
    line = node_launch_line((paper_plan["dir"] / path.stem).resolve(), 8)
    assert line.startswith("trap '' TERM USR1; exec ") and shlex.quote(line) in script
    assert "composer -n 8 --world_size" in script and "WORLD_SIZE=$(( SLURM_NNODES * 8 ))" in script
    assert "/logs/rank{rank}" in script and ".stderr.log" in script
    assert '--node_rank "$SLURM_NODEID"' in script and "scontrol show hostnames" in script
    proc = subprocess.run(["bash", "-n", json.loads(proc.stdout)["scripts"][0]], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


# Killing a local sweep mid-way and relaunching it (finished runs kept, the interrupted run resumed,
# every run collected once) is tested through `beyond demo`, which runs its sweep on this backend:
# tests/test_report.py::test_demo_interrupted_and_continued.


def _slurm_available() -> bool:
    return all(shutil.which(b) for b in ("slurmctld", "slurmd", "munged", "sbatch")) and os.geteuid() == 0


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    if not _slurm_available():
        if os.environ.get("REQUIRE_SLURM") == "1":
            pytest.fail("REQUIRE_SLURM=1 but slurm-wlm/munge are not installed or we are not root")
        pytest.skip("Slurm (slurm-wlm, munge) not installed or not root")
    state = tmp_path_factory.mktemp("slurm")
    proc = subprocess.run(["bash", str(REPO / "scripts" / "slurm-local.sh"), "start", str(state)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    yield state / "slurm.conf"
    subprocess.run(["bash", str(REPO / "scripts" / "slurm-local.sh"), "stop", str(state)], timeout=60)


# a narrower tiny model (d_model 32: ~54K params, 106 batches) so that the 2 gloo ranks of the job stay quick
SLURM_SMOKE = SMOKE.replace("save_interval=50ba]", "save_interval=50ba, model.d_model=32]").replace(
    "tokens_per_param: [4, 5]", "tokens_per_param: [4]")  # one job: it runs 2 ranks, the part under test


def test_real_slurm_sweep(slurm_cluster, tmp_path, monkeypatch, data_cache):
    """Each job runs 2 tasks: srun starts Composer's launcher, which starts 2 gloo ranks. Once the job
    has its first checkpoint it is requeued (`scontrol requeue`, what preemption does): Slurm sends
    SIGTERM, both ranks checkpoint the batch they reached, the job goes back to the queue, starts
    again and resumes; its record equals an uninterrupted run of the same config."""
    monkeypatch.setenv("SLURM_CONF", str(slurm_cluster))
    spec, out = _spec(tmp_path, "slurm-smoke", SLURM_SMOKE), tmp_path / "sweep"
    out.mkdir()
    (out / ".cache").symlink_to(data_cache, target_is_directory=True)  # the session's tokenised corpus
    args = ["sweep", "launch", str(spec), "--out", str(out), "--backend", "slurm", "--gpus-per-node", "0",
            "--procs-per-node", "2", "--cpus-per-task", str(os.cpu_count() or 1), "--time", "20:00"]
    check = run_cli(*args, "--test-only", "--json")  # sbatch --test-only validates the scripts
    assert check.returncode == 0, check.stderr[-2000:]
    assert all("to start at" in v for v in json.loads(check.stdout)["test_only"].values())
    submit = run_cli(*args, "--json")
    assert submit.returncode == 0, submit.stderr[-2000:]
    jobs = json.loads(submit.stdout)["jobs"]
    assert sorted(jobs) == ["mpt-tiny-r4"]
    again = run_cli(*args, "--json")  # queued/running jobs are not submitted twice
    assert json.loads(again.stdout)["pending"] == [] and json.loads(again.stdout)["skipped"] == 1
    name, job = next(iter(jobs.items()))
    link = out / name / "checkpoints" / "latest-rank0.pt"
    deadline = time.time() + 600
    while not link.exists() and time.time() < deadline:
        time.sleep(0.2)
    assert link.exists(), "the job made no checkpoint"
    requeue = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True)
    assert requeue.returncode == 0, requeue.stderr
    # Slurm holds a requeued job back about two minutes (its begin time); here it may start at once
    while subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True, text=True).stdout.strip() \
            not in ("PENDING", "") and time.time() < deadline:
        time.sleep(0.2)
    subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], capture_output=True)
    while time.time() < deadline:
        status = json.loads(run_cli("sweep", "status", str(spec), "--out", str(out), "--json").stdout)
        states = {r["name"]: r["state"] for r in status["runs"]}
        if set(states.values()) <= {"done", "failed"}:
            break
        time.sleep(2)
    assert states == {"mpt-tiny-r4": "done"}, status
    collected = run_cli("sweep", "collect", str(spec), "--out", str(out), "--json")
    assert json.loads(collected.stdout)["runs"] == 1
    log = (out / name / f"slurm-{job}.out").read_text()  # both starts of the job append to it
    assert "trained;" in log  # the job itself ran `beyond train` under Composer's launcher
    assert "stopped on SIGTERM: checkpointed batch" in log, log[-3000:]
    record = json.loads((out / name / "record.json").read_text())
    assert record["world_size"] == 2 and record["loss_source"] == "composer"
    assert record["resumes"] >= 1
    assert (out / name / "logs" / "rank1.stderr.log").is_file()  # rank 1's own log
    # the same resolved config, trained without interruption on 2 ranks
    ref = run_cli("train", str(out / name / "config.yaml"), "--run-dir", str(tmp_path / "ref"), "--nproc", "2",
                  "--json")
    uninterrupted = json.loads(ref.stdout)
    assert uninterrupted["resumes"] == 0 and uninterrupted["tokens"] == record["tokens"]
    for key in ("initial_loss", "smoothed_loss", "val_loss"):
        assert record[key] == pytest.approx(uninterrupted[key], rel=1e-6), key


@pytest.mark.parametrize("text, needle", [
    ("name: x\ndata: stdlib\ngrid:\n  - {model: mpt-7b, tokens_per_param: [20]}\n", "unknown model size"),
    ("name: x\ndata: stdlib\ngrid:\n  - {model: mpt-tiny, tokens_per_param: [20, 20]}\n", "duplicate run mpt-tiny-r20"),
    ("name: x\ndata: stdlib\ngrid:\n  - {model: mpt-tiny, tokens_per_param: [10]}\n  - {model: mpt-tiny, tokens_per_param: 10}\n",
     "duplicate run"),
    ("name: x\ndata: stdlib\ngrid:\n  - {model: mpt-tiny, tokens_per_param: [0]}\n", "must be positive"),
    ("name: x\ndata: stdlib\ngrid:\n  - {model: mpt-tiny, tokens_per_param: [-3]}\n", "must be positive"),
    ("name: x\ngrid: [\n", "cannot read YAML"),
])
def test_bad_specs(tmp_path, text, needle):
    spec = tmp_path / "bad.yaml"
    spec.write_text(text)
    proc = run_cli("sweep", "plan", str(spec), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("beyond")]
    assert len(lines) == 1 and needle in lines[0], proc.stderr
    assert not (tmp_path / "out" / "plan.csv").exists()


def test_bad_backend_and_unwritable_output(tmp_path):
    spec = _spec(tmp_path, "x")
    proc = run_cli("sweep", "launch", str(spec), "--backend", "kubernetes")
    assert proc.returncode == 2 and "invalid choice: 'kubernetes'" in proc.stderr and "Traceback" not in proc.stderr
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    proc = run_cli("sweep", "plan", str(spec), "--out", str(blocker / "sweep"))
    assert proc.returncode == 2 and "cannot write to output folder" in proc.stderr and "Traceback" not in proc.stderr
