"""`beyond check` (train.preflight): honest on a CPU node, one line per problem, exit 1 on problems
and 2 on bad input."""

from __future__ import annotations

import json
import os
import stat

import pytest

from beyond.cli import main
from tests.conftest import run_cli

GPU_NODE = dict(torch="2.7.0+cu126", cuda="12.6", nccl="2.26.2", gpus=("NVIDIA H100 80GB HBM3",) * 8, bf16=True)


def _check(capsys, *args: str) -> tuple[int, dict]:
    code = main(["check", *args, "--json"])
    return code, json.loads(capsys.readouterr().out)


def _by_name(out: dict) -> dict:
    return {c["name"]: c for c in out["checks"]}


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


@pytest.fixture
def no_cloud(monkeypatch, tmp_path):
    """No object-store credentials and no Slurm/mcli on this 'node'."""
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE",
                "AWS_WEB_IDENTITY_TOKEN_FILE", "GOOGLE_APPLICATION_CREDENTIALS", "GCS_KEY", "GCS_SECRET",
                "MOSAICML_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    return empty


def test_this_node_json_is_honest(capsys):
    """The real node, nothing faked: a CPU machine says what it could not check."""
    code, out = _check(capsys)
    checks = _by_name(out)
    assert set(out) == {"ok", "checks", "problems"}
    assert all(c["status"] in ("ok", "problem", "info", "not_checked") for c in out["checks"])
    assert out["ok"] == (not out["problems"]) and code == (0 if out["ok"] else 1)
    assert [p for p in out["problems"]] == [f"{c['name']}: {c['detail']}" for c in out["checks"]
                                            if c["status"] == "problem"]
    assert checks["disk"]["status"] == "not_checked" and checks["data"]["status"] == "not_checked"
    assert checks["backend"]["status"] == "info"  # not judged without --backend
    if not _cuda():
        assert checks["gpu"]["status"] == "not_checked"
        assert "no GPU: CUDA/NCCL/bf16/flash-attn checks not applicable" in checks["gpu"]["detail"]
        assert "cuda" not in checks and "flash-attn" not in checks


@pytest.mark.skipif(_cuda(), reason="a GPU node")
def test_gpu_model_on_cpu_node_is_a_problem(capsys):
    code, out = _check(capsys, "mpt-150m", "--tokens", "3B")
    gpu = _by_name(out)["gpu"]
    assert code == 1 and gpu["status"] == "problem" and "attn_impl: flash" in gpu["detail"]
    # the disk check counts fp32 weights + Lion's one moment: 8 bytes/param
    disk = _by_name(out)["disk"]
    assert disk["status"] in ("ok", "problem") and "151,407,360 params x 8 bytes" in disk["detail"]


def test_data_token_shortfall_is_a_problem(capsys, tmp_path):
    from tests.test_dataset_size import write_mds

    data = write_mds(tmp_path / "mds" / "train", 10, 128)  # mpt-tiny's max_seq_len: 1,280 tokens
    code, out = _check(capsys, "mpt-tiny", "--data", str(data), "--tokens", "5000")
    problem = _by_name(out)["data"]
    assert problem["status"] == "problem" and "1,280 tokens" in problem["detail"] and "5,000" in problem["detail"]
    assert code == 1 and any(p.startswith("data: ") for p in out["problems"])
    code, out = _check(capsys, "mpt-tiny", "--data", str(data), "--tokens", "1280")
    assert _by_name(out)["data"]["status"] == "ok"


def test_run_tokens_from_max_duration_and_seq_len_mismatch(tmp_path):
    from tests.test_dataset_size import write_mds
    from train.preflight import NodeFacts, load_run, run_checks, run_tokens_of

    config, label = load_run("mpt-tiny")
    assert label == "mpt-tiny" and run_tokens_of(config) is None
    config["max_duration"] = "10ba"
    assert run_tokens_of(config) == 10 * 16 * 128
    data = write_mds(tmp_path / "mds" / "train", 5, 64)  # prepared for 64-token samples
    checks = {c.name: c for c in run_checks(config, data=str(data), facts=NodeFacts(torch="2.7.0"))}
    assert checks["data"].status == "problem" and f"{10 * 16 * 128:,}" in checks["data"].detail
    assert checks["data (sequence length)"].status == "problem"
    assert "64-token samples" in checks["data (sequence length)"].detail


def test_s3_save_folder_without_credentials(no_cloud, monkeypatch):
    from train.preflight import NodeFacts, load_run, run_checks

    config, _ = load_run("mpt-tiny")
    config["save_folder"] = "s3://bucket/ckpt"
    facts = NodeFacts(torch="2.7.0")
    creds = {c.name: c for c in run_checks(config, facts=facts)}["credentials (save folder)"]
    assert creds.status == "problem" and "AWS_ACCESS_KEY_ID" in creds.detail and "s3://bucket/ckpt" in creds.detail
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    assert {c.name: c for c in run_checks(config, facts=facts)}["credentials (save folder)"].status == "ok"
    # on mcli the platform's secrets are used: reported, not judged
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    creds = {c.name: c for c in run_checks(config, facts=facts, backend="mcli")}["credentials (save folder)"]
    assert creds.status == "info"


def test_gcs_and_oci_credentials(no_cloud, monkeypatch, tmp_path):
    from train.preflight import credentials_for

    assert credentials_for("gs://b/x")[0] is False
    key = tmp_path / "key.json"
    key.write_text("{}")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
    assert credentials_for("gs://b/x")[0] is True
    assert credentials_for("oci://b/x")[0] is False
    (tmp_path / "home" / ".oci").mkdir(parents=True)
    (tmp_path / "home" / ".oci" / "config").write_text("[DEFAULT]\n")
    assert credentials_for("oci://b/x")[0] is True
    assert credentials_for("azure://b/x")[0] is None


def test_backend_slurm_without_sinfo(no_cloud, capsys):
    code, out = _check(capsys, "--backend", "slurm")
    backend = _by_name(out)["backend"]
    assert code == 1 and backend["status"] == "problem" and "sinfo not on PATH" in backend["detail"]


def test_backend_slurm_and_mcli_reachable(no_cloud, monkeypatch):
    from train.preflight import NodeFacts, run_checks

    for tool, text in (("sinfo", "a100\ncpu"), ("squeue", "")):
        script = no_cloud / tool
        script.write_text(f"#!/bin/sh\nprintf '{text}\\n'\n")
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{no_cloud}{os.pathsep}/bin{os.pathsep}/usr/bin")
    backend = {c.name: c for c in run_checks(backend="slurm", facts=NodeFacts(torch="2.7.0"))}["backend"]
    assert backend.status == "ok" and "a100, cpu" in backend.detail
    pytest.importorskip("mcli")
    monkeypatch.setenv("MOSAICML_API_KEY", "key")
    backend = {c.name: c for c in run_checks(backend="mcli", facts=NodeFacts(torch="2.7.0"))}["backend"]
    assert backend.status == "ok"


def test_gpu_node_flash_attn_bf16_and_count():
    """A fake 8 x H100 node: flash-attn below 2.4.2 with ALiBi is a problem that says what to --set."""
    from train.preflight import NodeFacts, load_run, run_checks

    config, _ = load_run("150M")
    checks = {c.name: c for c in run_checks(config, facts=NodeFacts(**GPU_NODE, flash_attn="2.3.6"), gpus=8)}
    assert checks["gpu"].status == "ok" and "8 x NVIDIA H100" in checks["gpu"].detail
    assert checks["cuda"].status == "info" and "NCCL 2.26.2" in checks["cuda"].detail
    assert checks["flash-attn"].status == "problem"
    assert ">= 2.4.2" in checks["flash-attn"].detail and "--set model.attn_config.attn_impl=torch" in checks["flash-attn"].detail
    checks = {c.name: c for c in run_checks(config, facts=NodeFacts(**{**GPU_NODE, "bf16": False}, flash_attn="2.7.4"),
                                            gpus=16)}
    assert checks["flash-attn"].status == "ok"
    assert checks["gpu"].status == "problem" and "--gpus expects 16" in checks["gpu"].detail
    assert checks["bf16"].status == "problem" and "amp_fp16" in checks["bf16"].detail


def test_disk_shortfall(monkeypatch, tmp_path):
    import shutil

    import train.preflight as pf

    assert pf.checkpoint_bytes(1_000_000, "decoupled_lionw") == 8_000_000
    assert pf.checkpoint_bytes(1_000_000, "decoupled_adamw") == 12_000_000
    config, _ = pf.load_run("mpt-150m")
    config["save_folder"] = str(tmp_path / "run" / "checkpoints")
    monkeypatch.setattr(pf.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**12, 10**12 - 10**9, 10**9))
    disk = {c.name: c for c in pf.run_checks(config, facts=pf.NodeFacts(torch="2.7.0"))}["disk"]
    assert disk.status == "problem"
    assert "1 GB free" in disk.detail and "2.42 GB" in disk.detail and str(tmp_path) in disk.detail


def test_cheap_checks_skip_downloads_and_torch(no_cloud):
    from train.preflight import cheap_checks, load_run

    config, _ = load_run("mpt-150m")
    config["train_loader"]["dataset"]["remote"] = "s3://bucket/mds"
    checks = {c.name: c for c in cheap_checks(config, "slurm", 10**9)}
    assert checks["gpu"].status == "not_checked" and "cheap" in checks["gpu"].detail
    assert checks["data"].status == "not_checked" and "remote" in checks["data"].detail
    assert checks["credentials (data)"].status == "problem"


def test_help_and_human_output(capsys):
    proc = run_cli("check", "--help")
    assert proc.returncode == 0 and "--json" in proc.stdout and "--backend" in proc.stdout
    code = main(["check", "mpt-tiny", "--backend", "local"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "beyond check mpt-tiny:" and any("backend: local" in line for line in lines)
    problems = [line for line in lines if line.lstrip().startswith("PROBLEM")]
    assert lines[-1] == ("no problems" if code == 0 else f"{len(problems)} problem{'s' if len(problems) > 1 else ''}")


@pytest.mark.parametrize("args", [["nope"], ["runs/does-not-exist"], ["BAD_YAML"], ["mpt-tiny", "--tokens", "0"],
                                  ["RUN_DIR"]])
def test_bad_input_is_one_line_exit_2(args, tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    (tmp_path / "run").mkdir()
    args = [str(bad) if a == "BAD_YAML" else str(tmp_path / "run") if a == "RUN_DIR" else a for a in args]
    assert main(["check", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("beyond: error: ") and err.count("\n") == 1


def test_bad_flag_exit_2():
    proc = run_cli("check", "--backend", "kubernetes")
    assert proc.returncode == 2 and proc.stderr.startswith("beyond check: error:")
    assert proc.stderr.count("\n") == 1
