"""I/O helpers every room shares (the bottom of the import graph: it imports nothing of the
project): JSON with plain floats, atomic file and figure writes, human number formatting, one-line
error text, and keeping library console output off stdout."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path


def plain(value):
    """numpy scalars/arrays -> plain Python floats/lists, recursively."""
    import numpy as np

    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist()) if value.ndim else float(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def dumps(value) -> str:
    """One JSON document, numpy values as plain numbers, no NaN."""
    return json.dumps(plain(value), indent=2, allow_nan=False)


def _new_file_mode() -> int:
    """The mode ``open(path, "w")`` would give a new file (0o666 less the umask). mkstemp makes
    its files 0o600, which would leave results unreadable to the rest of a team."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def write_atomic(path: str | Path, text: str) -> None:
    """Write text to path via a temporary file in the same folder and a rename (the file gets
    the usual mode for a new file, not mkstemp's 0o600)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, _new_file_mode())
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_figure_atomic(fig, path: str | Path) -> None:
    """Save a matplotlib figure (format from the suffix) via a temporary file and a rename, then close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.fchmod(fd, _new_file_mode())
    os.close(fd)
    try:
        fig.savefig(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
        plt.close(fig)


def human(x: float, unit: str = "") -> str:
    """1.23e9 -> '1.23B'; FLOPs and dollars keep scientific/K-M notation."""
    x = float(x)
    if unit == "FLOPs":
        return f"{x:.3e}"
    for suffix, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(x) >= scale:
            return f"{'$' if unit == '$' else ''}{x / scale:.3g}{suffix}"
    return f"{'$' if unit == '$' else ''}{x:.3g}"


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type's name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def error_line(exc: BaseException) -> str:
    """``Type: first line of the message`` (the type alone when there is no message)."""
    text = one_line(exc)
    return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text


@contextlib.contextmanager
def stdout_to_stderr():
    """Send everything written to file descriptor 1 (Python or native code) to 2 meanwhile, so a
    library's console logging cannot mix with a command's --json output."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
