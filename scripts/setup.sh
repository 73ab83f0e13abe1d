#!/usr/bin/env bash
# Set up ./.venv with the project, the training stack and the dev tools.
# Usage: bash scripts/setup.sh [EXTRAS]   default dev,train; `bash scripts/setup.sh dev` skips
# llm-foundry/torch (the scaling tools alone need only numpy/scipy).
# constraints/train.txt pins the whole llm-foundry 0.22.0 dependency tree (resolved once with
# `uv pip compile`), so pip installs it without backtracking; see docs/install.md.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-dev,train}"
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -c constraints/train.txt -e ".[${extras}]"
echo "set up .venv with extras [${extras}]"
