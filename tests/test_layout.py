"""The import rule of docs/layout.md, checked on the source (no imports run):

    beyond/ (CLI)  ->  eval/, train/  ->  scaling/  ->  ioutil/

- nothing outside beyond/ imports beyond/;
- scaling/ imports neither train/ nor eval/, and no torch, llm-foundry or composer (the base
  install has no torch);
- ioutil/ imports nothing of the project;
- no module imports another room's private (underscore) names.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

ROOMS = ("beyond", "eval", "train", "scaling", "ioutil")
ALLOWED = {
    "beyond": {"beyond", "eval", "train", "scaling", "ioutil"},
    "eval": {"eval", "train", "scaling", "ioutil"},
    "train": {"train", "scaling", "ioutil"},
    "scaling": {"scaling", "ioutil"},
    "ioutil": {"ioutil"},
}
HEAVY = {"torch", "llmfoundry", "composer", "streaming", "transformers"}


def _imports(path: Path):
    """(module, names) for every import in a file, function-level imports included."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module, [a.name for a in node.names]


def _sources():
    for room in ROOMS:
        for path in sorted((REPO / room).rglob("*.py")):
            yield room, path


@pytest.mark.parametrize("room, path", list(_sources()), ids=lambda v: str(v.relative_to(REPO)) if isinstance(v, Path) else v)
def test_imports_point_one_way(room, path):
    for module, names in _imports(path):
        top = module.split(".")[0]
        if top in ROOMS:
            assert top in ALLOWED[room], f"{path.relative_to(REPO)} imports {module}: {room}/ may import only {sorted(ALLOWED[room])}"
            if top != room:
                private = [n for n in names if n.startswith("_")]
                assert not private, f"{path.relative_to(REPO)} imports private {private} from {module}"
        if room == "scaling":
            assert top not in HEAVY, f"{path.relative_to(REPO)} imports {module}: scaling/ is numpy/scipy only"


def test_the_rule_sees_a_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from beyond.output import dumps\n    from train.run import _private\n")
    assert list(_imports(bad)) == [("beyond.output", ["dumps"]), ("train.run", ["_private"])]
