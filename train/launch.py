"""Launch backends for a planned sweep, and each run's state.

local: runs one after another in this machine (a subprocess per run, log in <run>/train.log).
slurm: one sbatch script per run (<out>/slurm/<run>.sbatch); each starts Composer's launcher on
       every node through srun, with world size, node rank and master address from Slurm.
mcli:  one MosaicML platform run YAML per run (<out>/mcli/<run>.yaml), submitted with mcli's
       Python API when it is configured.
Relaunching is idempotent: finished runs (record.json) are skipped, runs queued or running in
Slurm are left alone, everything else is (re)started and resumes from its latest checkpoint.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ioutil import one_line, write_atomic
from scaling.errors import InputError
from train.sweep import SweepSpec

LAUNCH_FILE = "launch.json"


@dataclass
class RunState:
    """What is known about one run: done, queued, running, interrupted, failed, planned, missing."""

    name: str
    state: str
    detail: str = ""


def run_dir(spec: SweepSpec, name: str) -> Path:
    return spec.out / name


def read_launch(folder: Path) -> dict:
    try:
        return json.loads((folder / LAUNCH_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def write_launch(folder: Path, info: dict) -> None:
    write_atomic(folder / LAUNCH_FILE, json.dumps(info, indent=2) + "\n")


def slurm_jobs() -> dict[str, tuple[str, str]]:
    """Slurm jobs in the queue, by job name: (job id, state). Empty if Slurm is not reachable."""
    if shutil.which("squeue") is None:
        return {}
    proc = subprocess.run(["squeue", "-h", "-o", "%i|%j|%T"], capture_output=True, text=True)
    if proc.returncode != 0:
        return {}
    jobs = {}
    for line in proc.stdout.splitlines():
        job_id, name, state = line.split("|", 2)
        jobs[name] = (job_id, state)
    return jobs


def jobs_visible() -> bool:
    """True when squeue answers (so a job missing from the queue has really ended)."""
    return shutil.which("squeue") is not None and subprocess.run(
        ["squeue", "-h"], capture_output=True).returncode == 0


def job_name(spec: SweepSpec, name: str) -> str:
    return f"{spec.name}.{name}"


def states(spec: SweepSpec) -> list[RunState]:
    """The state of every run of the sweep, from records, checkpoints and the Slurm queue."""
    jobs = slurm_jobs()
    out = []
    for run in spec.runs:
        folder = run_dir(spec, run.name)
        launch = read_launch(folder)
        job = jobs.get(job_name(spec, run.name))
        if (folder / "record.json").is_file():
            out.append(RunState(run.name, "done"))
        elif job is not None:
            out.append(RunState(run.name, "running" if job[1] in ("RUNNING", "COMPLETING") else "queued",
                                f"slurm job {job[0]} {job[1]}"))
        elif launch.get("backend") == "local" and launch.get("exit_code") not in (None, 0):
            out.append(RunState(run.name, "failed", f"exit code {launch['exit_code']}, see {folder / 'train.log'}"))
        elif (folder / "checkpoints" / "latest-rank0.pt").exists():
            out.append(RunState(run.name, "interrupted", "will resume from its latest checkpoint"))
        elif launch.get("backend") == "slurm" and jobs_visible():
            out.append(RunState(run.name, "failed", f"slurm job {launch.get('job_id')} ended without a record; "
                                f"see {folder}/slurm-{launch.get('job_id')}.out"))
        elif (folder / "config.yaml").is_file():
            detail = f"{launch['backend']} {launch.get('job_id', '')}".strip() if launch else ""
            out.append(RunState(run.name, "planned" if not launch else "launched", detail))
        else:
            out.append(RunState(run.name, "missing", "not planned yet"))
    return out


def composer_launcher() -> str:
    """Composer's multi-process launcher, from this Python's environment."""
    path = Path(sys.executable).parent / "composer"
    return str(path) if path.exists() else (shutil.which("composer") or "composer")


def train_command(config: Path, folder: Path, nproc: int = 1) -> list[str]:
    """The command that trains one planned run (the same one every backend runs): this Python,
    or Composer's launcher with ``nproc`` processes (GPUs where there are GPUs, gloo CPU
    processes elsewhere). Ranks other than local rank 0 log to ``<run>/logs/rank<N>.*.log``."""
    args = ["-m", "beyond", "train", str(config), "--run-dir", str(folder)]
    if nproc <= 1:
        return [sys.executable, *args]
    logs = Path(folder) / "logs"
    return [composer_launcher(), "-n", str(nproc), "--stdout", str(logs / "rank{rank}.stdout.log"),
            "--stderr", str(logs / "rank{rank}.stderr.log"), *args]


# --- local -------------------------------------------------------------------------------------

_BATCH_RE = re.compile(rb"\[batch=(\d+)/(\d+)\]")


def launch_local(spec: SweepSpec, pending: list[str], nproc: int = 1) -> list[tuple[str, int]]:
    """Train the pending runs one after another, each on ``nproc`` processes; returns (run, exit
    code) per run. Shows a bar over runs and, inside it, the current run's batches (from
    llm-foundry's console log)."""
    from tqdm import tqdm

    results = []
    bar = tqdm(pending, desc=f"sweep {spec.name}", unit="run", file=sys.stderr, position=0)
    for name in bar:
        bar.set_postfix_str(name)
        folder = run_dir(spec, name)
        started = time.time()
        write_launch(folder, {"backend": "local", "nproc": nproc, "started_at": started, "exit_code": None})
        (folder / "logs").mkdir(parents=True, exist_ok=True)
        inner = tqdm(desc=f"  {name}", unit="batch", file=sys.stderr, position=1, leave=False)
        with open(folder / "train.log", "ab") as log:
            proc = subprocess.Popen(train_command(folder / "config.yaml", folder, nproc), stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, cwd=Path.cwd())
            for line in proc.stdout:
                log.write(line)
                m = _BATCH_RE.search(line)
                if m:
                    inner.total = int(m.group(2))
                    inner.n = int(m.group(1))
                    inner.refresh()
            code = proc.wait()
        inner.close()
        write_launch(folder, {"backend": "local", "nproc": nproc, "started_at": started, "finished_at": time.time(),
                              "exit_code": code})
        results.append((name, code))
    return results


# --- slurm -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SlurmOptions:
    nodes: int = 1
    gpus_per_node: int = 8
    cpus_per_task: int | None = None
    partition: str | None = None
    time: str | None = None
    account: str | None = None
    extra: tuple[str, ...] = ()
    master_port: int = 20000
    procs_per_node: int | None = None  # default: one per GPU, or 1 on a CPU partition

    def __post_init__(self):
        if self.nodes < 1 or self.gpus_per_node < 0:
            raise InputError("--nodes must be >= 1 and --gpus-per-node >= 0")
        if self.procs_per_node is not None and self.procs_per_node < 1:
            raise InputError(f"--procs-per-node must be >= 1, got {self.procs_per_node}")
        if self.procs_per_node is not None and self.gpus_per_node and self.procs_per_node != self.gpus_per_node:
            raise InputError(f"--procs-per-node {self.procs_per_node} differs from --gpus-per-node {self.gpus_per_node}: "
                             "Composer runs one process per GPU")
        if self.time is not None and not re.fullmatch(r"(\d+-)?\d+(:\d{1,2}){0,2}", self.time):
            raise InputError(f"--time {self.time!r} is not a Slurm time (minutes, HH:MM:SS or D-HH:MM:SS)")

    @property
    def procs(self) -> int:
        """Training processes per node: one per GPU, or ``procs_per_node`` gloo processes on CPUs."""
        return self.procs_per_node or max(self.gpus_per_node, 1)


def sbatch_script(spec: SweepSpec, name: str, opts: SlurmOptions) -> str:
    """An sbatch script for one run: srun starts Composer's launcher once per node."""
    folder = run_dir(spec, name).resolve()
    procs = opts.procs
    lines = ["#!/bin/bash", f"#SBATCH --job-name={job_name(spec, name)}", f"#SBATCH --nodes={opts.nodes}",
             "#SBATCH --ntasks-per-node=1", f"#SBATCH --output={folder}/slurm-%j.out", "#SBATCH --open-mode=append"]
    if opts.gpus_per_node:
        lines.append(f"#SBATCH --gpus-per-node={opts.gpus_per_node}")
    if opts.cpus_per_task:
        lines.append(f"#SBATCH --cpus-per-task={opts.cpus_per_task}")
    for key, value in (("partition", opts.partition), ("time", opts.time), ("account", opts.account)):
        if value:
            lines.append(f"#SBATCH --{key}={value}")
    lines += [f"#SBATCH {arg}" for arg in opts.extra]
    lines += [
        "# written by `beyond sweep launch --backend slurm`; rerunning it resumes from the latest checkpoint",
        "set -euo pipefail",
        f"cd {shlex.quote(str(Path.cwd().resolve()))}",
        'export MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"',
        # a port per job, so that several jobs sharing a node do not collide
        f'export MASTER_PORT="${{MASTER_PORT:-$(( {opts.master_port} + SLURM_JOB_ID % 10000 ))}}"',
        f"export WORLD_SIZE=$(( SLURM_NNODES * {procs} ))",
        f"mkdir -p {shlex.quote(str(folder / 'logs'))}",
        "srun --ntasks-per-node=1 --kill-on-bad-exit=1 bash -c \\",
        f"  {shlex.quote(node_launch_line(folder, procs))}",
    ]
    return "\n".join(lines) + "\n"


def node_launch_line(folder: Path, procs: int) -> str:
    """The shell line srun runs once per node: Composer's launcher with ``procs`` local ranks,
    world size, node rank and rendezvous from the job's environment (WORLD_SIZE, SLURM_NODEID,
    MASTER_ADDR, MASTER_PORT, exported by the sbatch script)."""
    train_args = " ".join(shlex.quote(a) for a in ["-m", "beyond", "train", str(folder / "config.yaml"),
                                                     "--run-dir", str(folder)])
    logs = shlex.quote(str(folder / "logs" / "rank{rank}"))
    return (f"exec {shlex.quote(composer_launcher())} -n {procs} --world_size \"$WORLD_SIZE\" "
            f"--node_rank \"$SLURM_NODEID\" --master_addr \"$MASTER_ADDR\" --master_port \"$MASTER_PORT\" "
            f"--stdout {logs}.stdout.log --stderr {logs}.stderr.log {train_args}")


def write_sbatch(spec: SweepSpec, names: list[str], opts: SlurmOptions) -> list[Path]:
    folder = spec.out / "slurm"
    paths = []
    for name in names:
        path = folder / f"{name}.sbatch"
        write_atomic(path, sbatch_script(spec, name, opts))
        path.chmod(0o755)
        paths.append(path)
    return paths


def submit_sbatch(spec: SweepSpec, scripts: list[Path], test_only: bool = False) -> list[tuple[str, str]]:
    """sbatch each script; returns (run, job id). ``test_only`` validates without submitting."""
    if shutil.which("sbatch") is None:
        raise InputError("sbatch not found: run on a Slurm login node, or use --dry-run to only write the scripts")
    out = []
    for script in scripts:
        name = script.stem
        cmd = ["sbatch", "--test-only", str(script)] if test_only else ["sbatch", "--parsable", str(script)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise InputError(f"sbatch {script.name} failed: {(proc.stderr or proc.stdout).strip().splitlines()[-1:]}")
        if test_only:
            out.append((name, (proc.stderr or proc.stdout).strip()))
            continue
        job_id = proc.stdout.strip().split(";")[0]
        write_launch(run_dir(spec, name), {"backend": "slurm", "job_id": job_id, "script": str(script),
                                           "submitted_at": time.time()})
        out.append((name, job_id))
    return out


# --- mcli --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class McliOptions:
    image: str = "mosaicml/llm-foundry:2.7.0_cu128-latest"
    gpus: int = 8
    cluster: str | None = None
    git_repo: str | None = None
    git_ref: str | None = None
    remote_out: str | None = None


def mcli_run(spec: SweepSpec, name: str, opts: McliOptions) -> dict:
    """A MosaicML platform run for one planned run: our repo installed from git, the resolved
    llm-foundry config as parameters, Composer's launcher over the run's GPUs."""
    from omegaconf import OmegaConf

    from train.config import RECORD_NAME

    if not opts.git_repo:
        raise InputError("mcli runs install this project from git: pass --git-repo OWNER/NAME (and --git-ref)")
    params = OmegaConf.to_container(OmegaConf.load(run_dir(spec, name) / "config.yaml"))
    remote = (opts.remote_out or "").rstrip("/")
    inner = "/tmp/beyond-run"
    if remote:
        params["save_folder"] = f"{remote}/{name}/checkpoints"
        params["callbacks"]["run_record"]["path"] = f"{remote}/{name}/{RECORD_NAME}"
    repo_dir = opts.git_repo.rstrip("/").split("/")[-1]
    integration = {"integration_type": "git_repo", "git_repo": opts.git_repo,
                   "pip_install": "-c constraints/train.txt -e .[train]"}
    if opts.git_ref:
        integration["git_branch"] = opts.git_ref
    compute = {"gpus": opts.gpus}
    if opts.cluster:
        compute["cluster"] = opts.cluster
    return {
        "name": re.sub(r"[^a-z0-9-]", "-", f"{spec.name}-{name}".lower())[:56].strip("-"),
        "image": opts.image,
        "compute": compute,
        "integrations": [integration],
        "command": f"cd {repo_dir}\ncomposer -m beyond train /mnt/config/parameters.yaml --run-dir {inner}\n",
        "parameters": params,
    }


def write_mcli(spec: SweepSpec, names: list[str], opts: McliOptions) -> list[Path]:
    import yaml

    paths = []
    for name in names:
        path = spec.out / "mcli" / f"{name}.yaml"
        write_atomic(path, yaml.safe_dump(mcli_run(spec, name, opts), sort_keys=False))
        paths.append(path)
    return paths


def validate_mcli(path: Path):
    """Load a run YAML with mcli's own loader and finalise it as mcli does before submitting."""
    from mcli.api.exceptions import MCLIConfigError, MCLIRunConfigValidationError  # noqa: F401
    from mcli.models.run_config import FinalRunConfig, RunConfig

    try:
        return FinalRunConfig.finalize_config(RunConfig.from_file(path))
    except Exception as exc:  # noqa: BLE001 - mcli raises several types; one line for the user
        raise InputError(f"mcli rejects {path}: {one_line(exc)}") from None


def submit_mcli(spec: SweepSpec, paths: list[Path]) -> list[tuple[str, str]]:
    from mcli import RunConfig, create_run

    out = []
    for path in paths:
        validate_mcli(path)
        try:
            run = create_run(RunConfig.from_file(path))
        except Exception as exc:  # noqa: BLE001
            raise InputError(f"mcli could not submit {path.name} ({one_line(exc)}); "
                             "configure mcli (`mcli init`, MOSAICML_API_KEY) or use --dry-run") from None
        write_launch(run_dir(spec, path.stem), {"backend": "mcli", "job_id": run.name, "submitted_at": time.time()})
        out.append((path.stem, run.name))
    return out
