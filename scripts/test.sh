#!/usr/bin/env bash
# Install llm-perf-opt with its test tools into .venv (created if missing) and run every check:
# ruff, mypy and the pytest suite (CPU only, tiny fixtures). Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
# CPU-only machines: take the CPU build of torch first, so the [profile] extra's unpinned `torch>=2.4`
# requirement is already met and pip pulls no CUDA packages.
if ! python -c "import torch" 2>/dev/null; then
  python -m pip install --quiet "torch==2.13.0"
fi
python -m pip install --quiet -e ".[all,dev]"

echo "== ruff"; ruff check src tests scripts
echo "== mypy"; mypy
echo "== lint-imports (layer contract, pyproject.toml [tool.importlinter])"; lint-imports
echo "== pytest"; python -m pytest -q "$@"
