#!/usr/bin/env bash
# Set up ./.venv with the project, the training stack and the dev tools.
# Usage: bash scripts/setup.sh [EXTRAS]   default dev,train; `bash scripts/setup.sh dev` skips
# llm-foundry/torch (the scaling tools alone need only numpy/scipy).
# constraints/train.txt pins the whole llm-foundry 0.22.0 dependency tree (resolved once with
# `uv pip compile`). The install uses uv (from PyPI, into the venv: parallel downloads, about half
# pip's time) and falls back to pip if uv cannot be installed or fails; see docs/install.md.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-dev,train}"
python3 -m venv .venv
if .venv/bin/python -m pip install --quiet uv >/dev/null 2>&1 \
    && .venv/bin/uv pip install --quiet --compile-bytecode --python .venv/bin/python -c constraints/train.txt -e ".[${extras}]"; then
  installer=uv
else
  echo "uv unavailable or failed; installing with pip" >&2
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -c constraints/train.txt -e ".[${extras}]"
  installer=pip
fi
echo "set up .venv with extras [${extras}] (${installer})"
