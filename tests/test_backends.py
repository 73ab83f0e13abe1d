"""The launch-backend seam: backends are found by module, the CLI's choices, options and dispatch
come from the registry, and a backend added to it is launched with no other edit."""

from __future__ import annotations

import json
import pkgutil
from pathlib import Path

import pytest

from tests.conftest import REPO, require_train_extra

require_train_extra()

from train import backends  # noqa: E402
from train.backends import BACKENDS, Backend, Outcome, RunState, get_backend  # noqa: E402


def test_every_backend_module_is_registered():
    modules = {m.name for m in pkgutil.iter_modules(backends.__path__)} - {"base"}
    assert modules == set(BACKENDS) == {"local", "slurm", "mcli"}
    assert all(isinstance(b, Backend) and b.name == name for name, b in BACKENDS.items())


def test_unknown_backend_is_one_line():
    from scaling.errors import InputError

    with pytest.raises(InputError, match="unknown backend 'k8s': use one of local, mcli, slurm"):
        get_backend("k8s")


class _Recorder(Backend):
    name = "recorder"
    help = "records what it is asked to launch"

    def __init__(self):
        self.calls: list = []

    def add_arguments(self, parser, launching=True):
        parser.add_argument_group("recorder").add_argument("--queue", default="q0")

    def options(self, args):
        return {"queue": args.queue}

    def world_size(self, opts):
        return 2

    def launch(self, spec, names, opts, *, dry_run=False, test_only=False):
        self.calls.append((list(names), opts, dry_run))
        for name in names:
            from train.launch import run_dir, write_launch

            write_launch(run_dir(spec, name), {"backend": self.name, "job_id": f"{opts['queue']}-{name}"})
        return Outcome(submitted={n: f"{opts['queue']}-{n}" for n in names})

    def run_state(self, name, folder, launch, has_checkpoint, snapshot):
        return RunState(name, "queued", f"on {launch['job_id']}")


def test_a_new_backend_needs_no_other_edit(tmp_path, monkeypatch, capsys, data_cache):
    from beyond.cli import main

    recorder = _Recorder()
    monkeypatch.setitem(BACKENDS, recorder.name, recorder)
    spec = tmp_path / "s.yaml"
    spec.write_text((REPO / "yamls" / "sweeps" / "cpu-smoke.yaml").read_text())
    out = tmp_path / "sweep"
    out.mkdir()
    (out / ".cache").symlink_to(data_cache, target_is_directory=True)
    code = main(["sweep", "launch", str(spec), "--out", str(out), "--backend", "recorder", "--queue", "gpu-q",
                 "--skip-checks", "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["backend"] == "recorder" and len(result["submitted"]) == 3
    assert recorder.calls == [(["mpt-tiny-r4", "mpt-tiny-r6", "mpt-tiny-r8"], {"queue": "gpu-q"}, False)]
    assert main(["sweep", "status", str(spec), "--out", str(out), "--json"]) == 0
    states = {r["name"]: (r["state"], r["detail"]) for r in json.loads(capsys.readouterr().out)["runs"]}
    assert states["mpt-tiny-r4"] == ("queued", "on gpu-q-mpt-tiny-r4")
    assert Path(out / "mpt-tiny-r6" / "launch.json").is_file()
