"""The interface every launch backend implements (one module per backend in this package)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class RunState:
    """What is known about one run: done, queued, running, interrupted, failed, planned, launched,
    missing."""

    name: str
    state: str
    detail: str = ""


@dataclass
class Outcome:
    """What a launch did: files written, what was submitted (run -> job id), checks, exit code."""

    files: list[Path] = field(default_factory=list)
    submitted: dict[str, str] = field(default_factory=dict)
    checked: dict[str, str] = field(default_factory=dict)
    exit_codes: dict[str, int] = field(default_factory=dict)
    code: int = 0


class Backend:
    """A place runs go. Subclasses set ``name`` and ``help`` and implement the methods; a module
    in ``train/backends`` that defines ``BACKEND = MyBackend()`` is registered by that alone."""

    name: str = ""
    help: str = ""
    verb: str = "submitted"  # what `sweep launch` says it did with the runs
    trains_here: bool = True  # runs train on this machine (its GPUs are the run's), not on other nodes
    files_key: str = "files"  # the --json keys for what it wrote and what it submitted
    submitted_key: str = "submitted"

    def add_arguments(self, parser: argparse.ArgumentParser, launching: bool = True) -> None:
        """Add this backend's options (an argument group named after it). ``launching``: the
        command submits runs (``sweep launch``), rather than only writing launch files (``plan``)."""

    def options(self, args: argparse.Namespace) -> Any:
        """This backend's options from parsed arguments (validated: InputError on bad values)."""
        return None

    def world_size(self, opts: Any) -> int:
        """Processes each run will use (for llm-foundry's batch arithmetic at planning time)."""
        return 1

    def prepare(self, spec, names: list[str], opts: Any) -> list[Path]:
        """Write what launching ``names`` needs (scripts, run YAMLs) and return their paths."""
        return []

    def launch(self, spec, names: list[str], opts: Any, *, dry_run: bool = False,
               test_only: bool = False) -> Outcome:
        """Prepare, then start or submit ``names`` (nothing is started with ``dry_run``)."""
        raise NotImplementedError

    def snapshot(self) -> Any:
        """State to share across one ``states()`` pass (e.g. one squeue call for all runs)."""
        return None

    def run_state(self, name: str, folder: Path, launch: dict, has_checkpoint: bool, snapshot: Any) -> RunState | None:
        """What this backend knows about a run it launched (``launch``: the run's launch.json);
        None leaves it to the generic rules (interrupted, launched, planned)."""
        return None
