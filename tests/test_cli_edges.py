"""Every subcommand's edges: `--help` for each (found from the parser, so a new command is covered
the day it is added), and a table of bad inputs for the commands test_cli.py does not cover. Each
bad input gives one line on stderr naming the problem, exit 2, no traceback, and leaves nothing
behind at the output path it was given."""

from __future__ import annotations

import argparse

import pytest

from beyond.cli import build_parser, main
from tests.conftest import run_cli


def _subcommands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out.append(prefix + (name,))
                out += _subcommands(sub, prefix + (name,))
    return out


SUBCOMMANDS = _subcommands(build_parser())


def test_every_documented_command_is_found():
    top = {c[0] for c in SUBCOMMANDS}
    assert top == {"optimize", "fit", "law", "tables", "train", "sweep", "eval", "analyze", "report", "plan",
                   "demo", "check", "export", "data"}
    assert {("sweep", s) for s in ("plan", "launch", "status", "collect")} <= set(SUBCOMMANDS)
    assert ("data", "prep") in set(SUBCOMMANDS)


@pytest.mark.parametrize("cmd", SUBCOMMANDS, ids=" ".join)
def test_help_of_every_subcommand(cmd, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*cmd, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: beyond {' '.join(cmd)}") and "--help" in out


BAD = [  # (args, the output path the command was given or None, words the one line must hold)
    (["train", "mpt-7b", "-r", "20", "--dry-run", "--run-dir", "{tmp}/out"], "out", "unknown model size"),
    (["train", "mpt-tiny", "-r", "0", "--dry-run", "--run-dir", "{tmp}/out"], "out", "must be positive"),
    (["sweep", "plan", "{tmp}/missing.yaml", "--out", "{tmp}/out"], "out", "not found"),
    (["sweep", "plan", "{tmp}/bad.yaml", "--out", "{tmp}/out"], "out", "cannot read YAML"),
    (["sweep", "status", "{tmp}/missing.yaml", "--out", "{tmp}/out"], "out", "not found"),
    (["sweep", "collect", "{tmp}/missing.yaml", "--out", "{tmp}/out"], "out", "not found"),
    (["eval", "{tmp}/no-run"], None, "not found"),
    (["analyze", "{tmp}/missing.csv"], None, "cannot read"),
    (["analyze", "{tmp}/bad.csv"], None, "column"),
    (["report", "{tmp}/missing.csv", "--out", "{tmp}/out"], "out", "no such file"),
    (["report", "{tmp}/bad.csv", "--out", "{tmp}/out"], "out", "no column"),
    (["plan", "--loss", "1.0", "--inference-tokens", "2T", "--data", "s3://b/m", "--out", "{tmp}/out"], "out",
     "floor"),
    (["plan", "--like-params", "7B", "--inference-tokens", "-1", "--data", "s3://b/m", "--out", "{tmp}/out"], "out",
     ">= 0"),
    (["demo", "--spec", "{tmp}/missing.yaml", "--out", "{tmp}/out"], "out", "not found"),
    (["demo", "--spec", "{tmp}/bad.yaml", "--out", "{tmp}/out"], "out", "cannot read YAML"),
    (["check", "--data", "{tmp}/missing-data", "--json"], None, None),  # a preflight: problems, then exit 1
    (["optimize", "cost", "--like-params", "7B", "--requests", "1e9", "--train-mfu", "1.5"], None, "mfu"),
    (["law", "--params", "7B", "--tokens", "-1"], None, "--tokens must be > 0"),
    (["tables", "--runs", "{tmp}/missing.csv"], None, "no such file"),
    (["export", "{tmp}/no-run", "--out", "{tmp}/out"], "out", "run folder not found"),
    # issue 17: --inference-model roofline, --unique-tokens, --gauntlet-target
    (["optimize", "cost", "--like-params", "70B", "--requests", "1e9", "--inference-model", "roofline",
      "--serving-batch", "4096", "--serving-gpus", "1"], None, "does not fit"),
    (["optimize", "cost", "--like-params", "7B", "--requests", "1e9", "--inference-gpu", "h200"], None, "unknown GPU"),
    (["optimize", "cost", "--like-params", "7B", "--requests", "1e9", "--inference-model", "roofline",
      "--inference-gpu", "v100"], None, "invalid choice"),
    (["law", "--params", "7B", "--chinchilla", "--unique-tokens", "0"], None, "must be > 0"),
    (["optimize", "compute", "--gauntlet-target", "0.3", "--inference-tokens", "1T", "--gauntlet-runs",
      "{tmp}/bad.csv"], None, "column"),
    (["plan", "--like-params", "7B", "--inference-tokens", "1T", "--unique-tokens", "0", "--data", "s3://b/m",
      "--out", "{tmp}/out"], "out", "must be > 0"),
    (["plan", "--like-params", "70B", "--requests", "1e9", "--inference-model", "roofline", "--serving-batch", "4096",
      "--serving-gpus", "1", "--data", "s3://b/m", "--out", "{tmp}/out"], "out", "does not fit"),
]


@pytest.mark.parametrize("args, out, words", BAD, ids=lambda v: " ".join(v[:2]) if isinstance(v, list) else None)
def test_bad_input(tmp_path, args, out, words):
    (tmp_path / "bad.yaml").write_text("name: x\ngrid: [\n")
    (tmp_path / "bad.csv").write_text("just,a,header\n1,2,3\n")
    proc = run_cli(*[a.replace("{tmp}", str(tmp_path)) for a in args], subprocess_only=True)
    assert "Traceback" not in proc.stderr
    if args[0] == "check":  # the preflight reports the problem in its table and exits 1
        assert proc.returncode == 1 and "data not found" in proc.stdout
        return
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and "pkg_resources" not in ln
             and "warnings.warn" not in ln and not ln.startswith("  import")]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("beyond") and words in lines[0], lines[0]
    if out is not None:
        assert not (tmp_path / out).exists()
