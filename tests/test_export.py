"""`beyond export`: the session's trained tiny run as a Hugging Face folder. Loaded offline with
transformers (`trust_remote_code`, llm-foundry and Composer made unimportable), it gives the
Composer checkpoint's logits to 1e-5 and the training tokenizer's token ids; bad input is one
line, exit 2, nothing written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, TINY_TRAIN, run_cli

SAMPLE = "def beyond(chinchilla: int) -> float:\n    return 1.5e12 / chinchilla  # tokens/param, ünïcödé\n"

# Runs in a fresh process: offline, an empty HF home, llm-foundry/Composer/OmegaConf unimportable,
# so the folder alone (its own modelling code) must do. Writes the logits and the token ids.
_LOAD_OFFLINE = """
import json, sys
for name in ("llmfoundry", "composer", "omegaconf"):
    sys.modules[name] = None
import torch, transformers
folder, ids_path, out_path, text = sys.argv[1:5]
model = transformers.AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True).eval()
tok = transformers.AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
with torch.no_grad():
    logits = model(torch.load(ids_path)).logits
torch.save(logits, out_path)
ids = tok(text)["input_ids"]
print(json.dumps({"ids": ids, "decoded": tok.decode(ids), "dtype": str(model.dtype),
                  "module": type(model).__module__}))
"""


@pytest.fixture(scope="module")
def exported(trained_tiny, tmp_path_factory) -> tuple[Path, dict]:
    """The tiny run exported once (fp32), with what `beyond export --json` printed."""
    out = tmp_path_factory.mktemp("export") / "hf"
    proc = run_cli("export", str(trained_tiny.path), "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, json.loads(proc.stdout)


def _offline_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_HOME=str(home), HF_MODULES_CACHE=str(home / "modules"))
    return env


@pytest.fixture(scope="module")
def loaded_offline(exported, tmp_path_factory) -> dict:
    """The exported folder loaded in a fresh offline process: logits on a fixed batch, SAMPLE's ids."""
    import torch

    folder, _ = exported
    work = tmp_path_factory.mktemp("offline")
    ids = torch.randint(0, 1024, (2, 96), generator=torch.Generator().manual_seed(0))
    torch.save(ids, work / "ids.pt")
    proc = subprocess.run([sys.executable, "-c", _LOAD_OFFLINE, str(folder), str(work / "ids.pt"),
                           str(work / "logits.pt"), SAMPLE], capture_output=True, text=True, cwd=work,
                          env=_offline_env(work / "hf-home"), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"input_ids": ids, "logits": torch.load(work / "logits.pt"), **json.loads(proc.stdout.splitlines()[-1])}


def _training_side(run: Path):
    """(the Composer model from the checkpoint, the training tokenizer), both through llm-foundry."""
    import torch
    from llmfoundry.utils.builders import build_composer_model, build_tokenizer
    from omegaconf import OmegaConf

    cfg = OmegaConf.to_container(OmegaConf.load(run / "config.yaml"), resolve=True)
    tok = build_tokenizer(cfg["tokenizer"]["name"], cfg["tokenizer"].get("kwargs") or {})
    model_cfg = dict(cfg["model"])
    model = build_composer_model(name=model_cfg.pop("name"), cfg=model_cfg, tokenizer=tok)
    state = torch.load(run / "checkpoints" / "latest-rank0.pt", map_location="cpu", weights_only=False)
    model.load_state_dict(state["state"]["model"])
    return model.eval(), tok


def test_export_folder_contents(trained_tiny, exported):
    folder, printed = exported
    names = set(os.listdir(folder))
    assert {"config.json", "model.safetensors", "modeling_mpt.py", "configuration_mpt.py", "tokenizer.json",
            "tokenizer_config.json", "generation_config.json"} <= names
    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"] == {"AutoConfig": "configuration_mpt.MPTConfig",
                                  "AutoModelForCausalLM": "modeling_mpt.MPTForCausalLM"}
    assert config["attn_config"]["attn_impl"] == "torch" and config["torch_dtype"] == "float32"
    for py in folder.glob("*.py"):  # llm-foundry's edit_files_for_hf_compatibility flattened its imports
        assert "from llmfoundry" not in py.read_text() and "import llmfoundry" not in py.read_text(), py.name
    assert printed["params"] == trained_tiny.printed["params"] == 151_872
    assert printed["dtype"] == "fp32" and printed["batch"] == 371 and printed["out"] == str(folder)
    assert sorted(printed["files"]) == sorted(names)
    assert [p.name for p in folder.parent.iterdir()] == ["hf"]  # no temporary folder left beside it


def test_logits_match_the_composer_checkpoint(trained_tiny, loaded_offline):
    import torch

    model, _ = _training_side(trained_tiny.path)
    with torch.no_grad():
        want = model({"input_ids": loaded_offline["input_ids"]}).logits
    got = loaded_offline["logits"]
    assert loaded_offline["module"].startswith("transformers_modules.")  # the folder's own code, not llm-foundry
    assert loaded_offline["dtype"] == "torch.float32" and got.shape == want.shape == (2, 96, 1024)
    diff = (got - want).abs().max().item()
    assert diff <= 1e-5, diff


def test_tokenizer_matches_the_training_tokenizer(trained_tiny, loaded_offline):
    _, tok = _training_side(trained_tiny.path)
    assert loaded_offline["ids"] == tok(SAMPLE)["input_ids"]
    assert len(loaded_offline["ids"]) > 10
    assert loaded_offline["decoded"] == SAMPLE


def test_force_replaces_and_dtype_bf16(trained_tiny, tmp_path):
    out = tmp_path / "hf16"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    refused = run_cli("export", str(trained_tiny.path), "--out", str(out), "--dtype", "bf16")
    assert refused.returncode == 2 and "--force" in refused.stderr and (out / "stale.txt").exists()
    proc = run_cli("export", str(trained_tiny.path), "--out", str(out), "--dtype", "bf16", "--force")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "151,872 params" in proc.stdout and str(out) in proc.stdout
    assert not (out / "stale.txt").exists()
    assert json.loads((out / "config.json").read_text())["torch_dtype"] == "bfloat16"
    from safetensors import safe_open

    with safe_open(str(out / "model.safetensors"), "pt") as fh:
        assert {str(fh.get_tensor(k).dtype) for k in fh.keys()} == {"torch.bfloat16"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf16"]  # the old folder and the temporary one gone


def _one_line(proc) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and "pkg_resources" not in ln
             and "warnings.warn" not in ln and not ln.startswith("  import")]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("beyond: error:") and "Traceback" not in proc.stderr
    return lines[0]


def _run_copy(trained_tiny, tmp_path: Path, checkpoint: bytes | None) -> Path:
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text((trained_tiny.path / "config.yaml").read_text())
    if checkpoint is not None:
        (run / "checkpoints" / "latest-rank0.pt").write_bytes(checkpoint)
    return run


@pytest.mark.parametrize("case, words", [
    ("no-checkpoint", "train it first"),
    ("garbage-checkpoint", "cannot read checkpoint"),
    ("no-run", "run folder not found"),
    ("no-config", "no config.yaml"),
    ("out-under-a-file", "is not a folder"),
    ("out-is-the-run", "run's own files"),
])
def test_bad_input_one_line_nothing_written(trained_tiny, tmp_path, case, words):
    run = _run_copy(trained_tiny, tmp_path, b"not a checkpoint" if case == "garbage-checkpoint" else None)
    out = tmp_path / "out" / "hf"
    if case == "no-run":
        run = tmp_path / "missing"
    elif case == "no-config":
        (run / "config.yaml").unlink()
    elif case == "out-under-a-file":
        run = trained_tiny.path
        (tmp_path / "a-file").write_text("x")
        out = tmp_path / "a-file" / "hf"
    elif case == "out-is-the-run":
        run, out = trained_tiny.path, trained_tiny.path
    before = sorted(p.name for p in tmp_path.iterdir())
    line = _one_line(run_cli("export", str(run), "--out", str(out), "--force"))
    assert words in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # not even out's parent folder
    assert (trained_tiny.path / "checkpoints" / "latest-rank0.pt").is_file()


def test_hf_checkpointer_keys_pass_the_train_checks(trained_tiny, data_cache, tmp_path):
    """docs/export.md's way to get HF folders while training: llm-foundry's hf_checkpointer
    callback through --set, accepted by `beyond train`'s checks (llm-foundry's signature)."""
    args = ["train", *TINY_TRAIN, "--dry-run", "--run-dir", str(tmp_path / "run"), "--cache-dir", str(data_cache)]
    hf = ["--set", f"callbacks.hf_checkpointer.save_folder={tmp_path / 'run' / 'hf'}",
          "--set", "callbacks.hf_checkpointer.save_interval=1dur"]
    proc = run_cli(*args, *hf)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "hf_checkpointer:" in (tmp_path / "run" / "config.yaml").read_text()
    typo = run_cli(*args, *hf, "--set", "callbacks.hf_checkpointer.save_foldr=x")
    assert "save_foldr" in _one_line(typo)


def test_export_help_names_the_docs():
    proc = run_cli("export", "--help")
    assert proc.returncode == 0 and "docs/export.md" in proc.stdout.replace("\n", " ")
    assert REPO.joinpath("docs", "export.md").is_file()
