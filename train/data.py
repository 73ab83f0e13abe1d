"""Text -> tokenised MDS shards (mosaicml-streaming) through llm-foundry's own data-prep
dataset (``ConcatTokensFromFilesDataset``, as in ``convert_text_to_mds``), cached by content.

The layout is llm-foundry's: ``<dataset>/train`` and ``<dataset>/val``, each an MDS split whose
samples are ``tokens`` (int32 arrays of max_seq_len tokens), read by its ``text`` loader.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from scaling.errors import InputError
from train.tokenizer import EOS, corpus_digest

VAL_EVERY = 20  # every 20th file goes to the validation split


def dataset_key(files: list[Path], tokenizer_cfg: dict, max_seq_len: int) -> str:
    """Cache key: the corpus, the tokenizer and the sequence length."""
    spec = json.dumps({"corpus": corpus_digest(files), "tokenizer": tokenizer_cfg, "seq": max_seq_len},
                      sort_keys=True, default=str)
    return hashlib.sha256(spec.encode()).hexdigest()[:16]


def prepare_mds(files: list[Path], tokenizer_cfg: dict, max_seq_len: int, cache_dir: Path) -> Path:
    """Tokenise ``files`` into MDS train/val splits of ``max_seq_len``-token samples; reuse a
    finished dataset with the same key. Returns the dataset folder."""
    out = cache_dir / f"mds-{dataset_key(files, tokenizer_cfg, max_seq_len)}"
    if (out / "train" / "index.json").is_file():
        return out
    cache_dir.mkdir(parents=True, exist_ok=True)
    # One builder per dataset: concurrent launches sharing a cache (a local sweep next to a Slurm
    # array, parallel test workers) wait for the first one instead of racing it to the rename.
    with open(cache_dir / f".{out.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes or the process dies
        if (out / "train" / "index.json").is_file():
            return out
        return _build_mds(files, tokenizer_cfg, max_seq_len, cache_dir, out)


def _build_mds(files: list[Path], tokenizer_cfg: dict, max_seq_len: int, cache_dir: Path, out: Path) -> Path:
    """Tokenise into a temporary folder, then rename it to ``out`` (atomic: never half a dataset)."""
    from llmfoundry.command_utils.data_prep.convert_text_to_mds import ConcatTokensFromFilesDataset
    from llmfoundry.utils.builders import build_tokenizer
    from streaming import MDSWriter
    from tqdm import tqdm

    tokenizer = build_tokenizer(tokenizer_cfg["name"], dict(tokenizer_cfg.get("kwargs") or {}))
    tokenizer.model_max_length = 5_000_000_000  # as llm-foundry's data prep: no length warnings
    val = files[::VAL_EVERY] if len(files) >= VAL_EVERY else []
    held_out = set(val)
    train = [f for f in files if f not in held_out]
    tmp = Path(tempfile.mkdtemp(dir=cache_dir, prefix=".tmp-mds-"))
    try:
        counts = {}
        for split, split_files in (("train", train), ("val", val)):
            if not split_files:
                continue
            dataset = ConcatTokensFromFilesDataset(
                files=[str(f) for f in split_files], tokenizer=tokenizer, max_length=max_seq_len,
                bos_text="", eos_text=EOS, no_wrap=False)
            n = 0
            with MDSWriter(out=str(tmp / split), columns={"tokens": "ndarray:int32"}, compression="zstd") as w:
                for sample in tqdm(dataset, desc=f"tokenising {split}", unit="seq", leave=False):
                    w.write(sample)
                    n += 1
            counts[split] = n
        if counts.get("train", 0) == 0:
            raise InputError(f"the data gives no full {max_seq_len}-token training sequence: "
                             "use more text or a shorter max_seq_len")
        (tmp / "dataset.json").write_text(json.dumps({
            "files": len(files), "sequences": counts, "max_seq_len": max_seq_len,
            "tokenizer": tokenizer_cfg}, indent=2, default=str))
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
