"""Configs checked by llm-foundry before anything is scheduled, and the single-epoch rule.

llm-foundry 0.22's own train-config validation (the ``TrainConfig`` dataclass build with its
transforms, and ``validate_config``) plus key checks against the signatures of the classes its
registries build, on: every zoo YAML, every run of the paper sweep (at its 8-GPU world size),
the parameters of all 47 mcli run YAMLs, and what ``beyond plan`` writes. A typo in ``--set``
costs one line and exit 2 in ``--dry-run``. A run that needs more tokens than the data holds is
refused with both numbers, unless ``--allow-repeat`` (then the record stores the epochs)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.conftest import require_train_extra, run_cli

require_train_extra()

from omegaconf import OmegaConf  # noqa: E402

from scaling.errors import InputError  # noqa: E402
from train.validate import validate_train_config  # noqa: E402
from train.zoo import MODELS_DIR  # noqa: E402

ZOO = sorted(p.stem for p in MODELS_DIR.glob("*.yaml"))


def _filled(stem: str) -> dict:
    """A zoo YAML with the fields `beyond train` fills (duration, warmup, data, record callback)."""
    cfg = OmegaConf.to_container(OmegaConf.load(MODELS_DIR / f"{stem}.yaml"), resolve=True)
    cfg.pop("variables")
    cfg.update(max_duration="100ba", save_folder="/tmp/x/checkpoints")
    cfg["scheduler"]["t_warmup"] = "10ba"
    cfg["train_loader"]["dataset"]["local"] = "/tmp/x/mds"
    cfg["callbacks"]["run_record"] = {"path": "/tmp/x/record.json", "params": 1, "run_info": {}}
    return cfg


@pytest.mark.parametrize("stem", ZOO)
def test_zoo_yaml_passes_llmfoundry_validation(stem):
    validate_train_config(_filled(stem), world_size=8)


@pytest.mark.parametrize("where, value, needle", [
    ("model.n_layer", 4, "unknown setting model.n_layer"),
    ("model.attn_config.kv_n_head", 2, "unknown setting model.attn_config.kv_n_head"),
    ("optimizer.beta", [0.9, 0.95], "unknown setting optimizer.beta"),
    ("scheduler.alpha", 0.1, "unknown setting scheduler.alpha"),
    ("train_loader.dataset.shufle", True, "unknown setting train_loader.dataset.shufle"),
    ("algorithms.gradient_clipping.threshold", 1.0, "unknown setting algorithms.gradient_clipping.threshold"),
    ("fsdp_config.sharding", "FULL_SHARD", "unknown setting fsdp_config.sharding"),
    ("optimizer.name", "lion", "optimizer.name: unknown 'lion'"),
    ("global_train_bach_size", 8, "Unused parameters ['global_train_bach_size']"),
])
def test_typos_are_rejected(where, value, needle):
    cfg = _filled("mpt-150m")
    node = cfg
    *parents, leaf = where.split(".")
    for key in parents:
        node = node[key]
    node[leaf] = value
    with pytest.raises(InputError, match=needle.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")):
        validate_train_config(cfg)


def test_batch_must_divide_over_the_world():
    cfg = _filled("mpt-tiny")
    validate_train_config(cfg, world_size=2)
    with pytest.raises(InputError, match="llm-foundry rejects the config: Global batchsize 16 is not divisible"):
        validate_train_config(cfg, world_size=3)


def test_bad_set_key_is_rejected_in_dry_run(tmp_path):
    """Rejected before any data is tokenised (the cache stays empty)."""
    run_dir = tmp_path / "r"
    proc = run_cli("train", "mpt-tiny", "-r", "4", "--set", "model.nonsense_key=3", "--dry-run", "--run-dir",
                   str(run_dir), "--cache-dir", str(tmp_path / "cache"))
    assert not (tmp_path / "cache").exists()
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("beyond")]
    assert len(lines) == 1 and "unknown setting model.nonsense_key" in lines[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and not (run_dir / "config.yaml").exists()


def test_nproc_batch_arithmetic_is_checked_in_dry_run(tmp_path):
    proc = run_cli("train", "mpt-tiny", "-r", "4", "--nproc", "3", "--dry-run", "--run-dir", str(tmp_path / "r"),
                   "--cache-dir", str(tmp_path / "cache"))
    assert proc.returncode == 2 and "not divisible by" in proc.stderr, proc.stderr[-2000:]


@pytest.fixture(scope="module")
def paper_sweep(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("paper-validate")
    proc = run_cli("sweep", "launch", "paper", "--data", "s3://my-bucket/mds", "--out", str(out), "--backend", "mcli",
                   "--dry-run", "--git-repo", "example/beyond-chinchilla", "--remote-out", "s3://my-bucket/sweeps",
                   "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(json.loads(proc.stdout)["run_yamls"]) == 47
    return out


def test_every_paper_run_config_passes_validation(paper_sweep):
    configs = sorted(paper_sweep.glob("*/config.yaml"))
    assert len(configs) == 47
    for path in configs:
        validate_train_config(OmegaConf.to_container(OmegaConf.load(path), resolve=True), world_size=8)


def test_every_mcli_run_passes_mcli_and_llmfoundry(paper_sweep):
    from mcli.models.run_config import FinalRunConfig, RunConfig

    paths = sorted((paper_sweep / "mcli").glob("*.yaml"))
    assert len(paths) == 47
    for path in paths:
        final = FinalRunConfig.finalize_config(RunConfig.from_file(path))
        validate_train_config(dict(final.parameters), world_size=final.compute["gpus"])


def test_beyond_plan_output_passes_validation(tmp_path):
    out = tmp_path / "plan"
    proc = run_cli("plan", "--like-params", "7B", "--inference-tokens", "1T", "--data", "s3://b/m", "--out", str(out),
                   "--backend", "mcli", "--git-repo", "example/beyond-chinchilla", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    validate_train_config(OmegaConf.to_container(OmegaConf.load(result["run_config"]), resolve=True), world_size=8)
    for path in result["launch_files"]:
        from mcli.models.run_config import RunConfig

        validate_train_config(dict(RunConfig.from_file(path).parameters), world_size=8)
    model = OmegaConf.to_container(OmegaConf.load(result["model_yaml"]), resolve=True)
    model.pop("variables", None)
    model.update(max_duration="10ba", save_folder="/tmp/x")
    model["scheduler"]["t_warmup"] = "1ba"
    model["train_loader"]["dataset"]["local"] = "/tmp/x/mds"
    validate_train_config(model, world_size=8)


# --- single epoch ------------------------------------------------------------------------------

SMALL = ["--set", "model.vocab_size=300", "--set", "tokenizer.kwargs.vocab_size=300", "--set", "max_duration=12ba",
         "--set", "scheduler.t_warmup=2ba", "--set", "save_interval=100ba"]


@pytest.fixture(scope="module")
def small_text(tmp_path_factory) -> Path:
    """About 8,000 tokens of text: fewer than 12 batches of 16 x 128 (24,576 tokens) hold."""
    from train.corpus import stdlib_files

    folder = tmp_path_factory.mktemp("small-text")
    text, files = "", stdlib_files()
    for f in files:
        text += f.read_text(errors="ignore")
        if len(text) > 30_000:
            break
    for i in range(20):  # 20 files: train/data.py keeps the first (every 20th) for the val split
        (folder / f"{i:02d}.txt").write_text(text[i * 1500:(i + 1) * 1500])
    return folder


def test_repeating_data_is_refused_with_both_numbers(small_text, tmp_path):
    run_dir = tmp_path / "r"
    proc = run_cli("train", "mpt-tiny", *SMALL, "--data", str(small_text), "--run-dir", str(run_dir), "--cache-dir",
                   str(tmp_path / "cache"), "--dry-run")
    assert proc.returncode == 2, proc.stderr[-2000:]
    line = [ln for ln in proc.stderr.splitlines() if ln.startswith("beyond")][-1]
    assert "the run trains on 24,576 tokens but the data" in line and "--allow-repeat" in line, line
    held = int(line.split(" holds ")[1].split(":")[0].replace(",", ""))
    assert 0 < held < 24_576
    assert not (run_dir / "config.yaml").exists()


def test_allow_repeat_trains_and_records_epochs(small_text, tmp_path):
    """--allow-repeat trains and records the epochs. The run also logs to a real MLflow file store
    (Composer's MLflow logger, named in the config as a sweep's `loggers:` would): the run record's
    numbers are read back from it under their beyond/* names. Validation every 5 of the 12 batches:
    Composer runs the last pass after FIT_END, and the record waits for it."""
    from mlflow.tracking import MlflowClient

    store = f"file://{tmp_path / 'mlruns'}"
    mlflow = ["--set", f"loggers.mlflow.tracking_uri={store}", "--set", "loggers.mlflow.experiment_name=beyond-test",
              "--set", "loggers.mlflow.log_system_metrics=false", "--set", "loggers.mlflow.synchronous=true"]
    proc = run_cli("train", "mpt-tiny", *SMALL, "--data", str(small_text), "--run-dir", str(tmp_path / "r"),
                   "--cache-dir", str(tmp_path / "cache"), "--allow-repeat", "--json", "--set", "eval_interval=5ba", *mlflow)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads(proc.stdout)
    assert record["tokens"] == 24_576 and record["allow_repeat"] is True
    assert record["epochs"] == pytest.approx(24_576 / record["data_tokens"]) and record["epochs"] > 1
    # one eval batch (2% of 24,576 tokens is less): the whole val split, 1,024 tokens, 127 targets per sequence
    assert math.isfinite(record["val_loss"]) and record["val_split_tokens"] == 1024 and record["val_tokens"] == 8 * 127
    client = MlflowClient(store)
    runs = client.search_runs([client.get_experiment_by_name("beyond-test").experiment_id])
    assert len(runs) == 1
    logged = {k: v for k, v in runs[0].data.metrics.items() if k.startswith("beyond/")}
    assert logged == {f"beyond/{k}": float(record[k]) for k in
                      ("smoothed_loss", "val_loss", "initial_loss", "params", "tokens", "tokens_per_param", "flops")}
    passes = client.get_metric_history(runs[0].info.run_id, "metrics/eval/LanguageCrossEntropy")
    assert [m.step for m in passes] == [5, 10, 12]  # every 5 batches, and the last (after FIT_END)
    assert passes[-1].value == pytest.approx(record["val_loss"])


def test_cpu_recipes_fit_the_embedded_corpus(tmp_path, data_cache):
    """The README's CPU line and the smoke sweep plan without --allow-repeat."""
    proc = run_cli("train", "mpt-tiny", "-r", "8", "--nproc", "2", "--dry-run", "--run-dir", str(tmp_path / "r"),
                   "--cache-dir", str(data_cache))
    assert proc.returncode == 0, proc.stderr[-2000:]
    (tmp_path / "smoke").mkdir()
    (tmp_path / "smoke" / ".cache").symlink_to(data_cache, target_is_directory=True)
    proc = run_cli("sweep", "plan", "cpu-smoke", "--out", str(tmp_path / "smoke"), "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
