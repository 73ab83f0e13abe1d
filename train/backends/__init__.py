"""Launch backends, one module each, found by name: every module here that defines ``BACKEND``
(an instance of ``train.backends.base.Backend``) is registered, so a new backend is one new file.
The CLI reads ``BACKENDS`` for its ``--backend`` choices, options and dispatch."""

from __future__ import annotations

import importlib
import pkgutil

from scaling.errors import InputError
from train.backends.base import Backend, Outcome, RunState


def _discover() -> dict[str, Backend]:
    found: dict[str, Backend] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name == "base":
            continue
        backend = getattr(importlib.import_module(f"{__name__}.{info.name}"), "BACKEND", None)
        if isinstance(backend, Backend):
            found[backend.name] = backend
    return found


BACKENDS: dict[str, Backend] = _discover()


def get_backend(name: str) -> Backend:
    """The backend called ``name``; InputError naming the known ones otherwise."""
    try:
        return BACKENDS[name]
    except KeyError:
        raise InputError(f"unknown backend {name!r}: use one of {', '.join(sorted(BACKENDS))}") from None


__all__ = ["BACKENDS", "Backend", "Outcome", "RunState", "get_backend"]
