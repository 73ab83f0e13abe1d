"""mcli: one MosaicML platform run YAML per run (``<out>/mcli/<run>.yaml``), checked with mcli's own
loader and submitted with mcli's Python API when it is configured."""

from __future__ import annotations

import argparse
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ioutil import one_line, write_atomic
from scaling.errors import InputError
from train.backends.base import Backend, Outcome
from train.folder import RunFolder
from train.launch import run_dir, train_args, write_launch

if TYPE_CHECKING:
    from train.sweep import SweepSpec

DEFAULT_IMAGE = "mosaicml/llm-foundry:2.7.0_cu128-latest"


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


    if not opts.git_repo:
        raise InputError("mcli runs install this project from git: pass --git-repo OWNER/NAME (and --git-ref)")
    params = OmegaConf.to_container(OmegaConf.load(RunFolder(run_dir(spec, name)).config))
    remote = (opts.remote_out or "").rstrip("/")
    inner = "/tmp/beyond-run"
    if remote:
        params["save_folder"] = f"{remote}/{name}/checkpoints"
        params["callbacks"]["run_record"]["path"] = f"{remote}/{name}/{RunFolder(Path(name)).record.name}"
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
        "command": f"cd {repo_dir}\ncomposer {' '.join(train_args('/mnt/config/parameters.yaml', inner))}\n",
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


class McliBackend(Backend):
    name = "mcli"
    trains_here = False
    files_key = "run_yamls"
    submitted_key = "runs"
    help = "MosaicML platform runs"

    def add_arguments(self, parser: argparse.ArgumentParser, launching: bool = True) -> None:
        mc = parser.add_argument_group("mcli")
        mc.add_argument("--image", default=DEFAULT_IMAGE, help="container image")
        mc.add_argument("--cluster", help="MosaicML cluster")
        mc.add_argument("--git-repo", help="this project's repository (OWNER/NAME) to install in the run")
        mc.add_argument("--git-ref", help="branch to check out")
        mc.add_argument("--remote-out", help="object-store folder for checkpoints and records (s3://...)")

    def options(self, args: argparse.Namespace) -> McliOptions:
        return McliOptions(image=args.image, gpus=args.gpus, cluster=args.cluster, git_repo=args.git_repo,
                           git_ref=args.git_ref, remote_out=args.remote_out)

    def world_size(self, opts: McliOptions) -> int:
        return opts.gpus

    def prepare(self, spec, names, opts) -> list[Path]:
        paths = write_mcli(spec, names, opts)
        for path in paths:
            validate_mcli(path)
        return paths

    def launch(self, spec, names, opts, *, dry_run=False, test_only=False) -> Outcome:
        outcome = Outcome(files=self.prepare(spec, names, opts))
        if not (dry_run or test_only):
            outcome.submitted = dict(submit_mcli(spec, outcome.files))
        return outcome


BACKEND = McliBackend()
