"""Training text: the embedded default corpus (this Python's own standard library sources,
present on every machine without a download) or any text file or folder a user points at."""

from __future__ import annotations

import sysconfig
from pathlib import Path

from scaling.errors import InputError

TEXT_SUFFIXES = (".txt", ".md", ".py", ".rst", ".json", ".jsonl", ".csv", ".html", ".tex")
DEFAULT_CORPUS = "stdlib"
DEFAULT_CORPUS_BYTES = 16_000_000  # all of a 3.11 standard library (12 MB): ~3.7M tokens with a 4K BPE


def stdlib_files(max_bytes: int = DEFAULT_CORPUS_BYTES) -> list[Path]:
    """The standard library's .py files (tests and site-packages excluded), sorted by path,
    up to ``max_bytes`` bytes in all: the same list on every machine with this Python."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files, total = [], 0
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).parts
        if rel[0] in ("site-packages", "test", "idlelib", "lib2to3") or "tests" in rel:
            continue
        size = path.stat().st_size
        if size == 0:
            continue
        files.append(path)
        total += size
        if total >= max_bytes:
            break
    if not files:
        raise InputError(f"no Python sources found under {root}")
    return files


def corpus_files(source: str, max_bytes: int = DEFAULT_CORPUS_BYTES) -> list[Path]:
    """Text files for ``source``: "stdlib", a text file, or a folder (searched recursively
    for files ending in one of TEXT_SUFFIXES)."""
    if source == DEFAULT_CORPUS:
        return stdlib_files(max_bytes)
    path = Path(source)
    if not path.exists():
        raise InputError(f"data not found: {source}")
    if path.is_file():
        files = [path]
    else:
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
    files = [p for p in files if p.stat().st_size > 0]
    if not files:
        raise InputError(f"no non-empty text files ({', '.join(TEXT_SUFFIXES)}) in {source}")
    return files


def is_mds_dataset(path: Path) -> bool:
    """True for an existing MDS dataset with a train split (``train/index.json``)."""
    return (path / "train" / "index.json").is_file()
