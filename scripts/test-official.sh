#!/usr/bin/env bash
# CI job: the test suite against the transformers release the official DeepSeek-OCR checkpoint code
# was written for (transformers 4.46.3 + its tokenizers and huggingface_hub, pinned by
# constraints/official-transformers-4.46.3.txt), in its own virtual environment (.venv-official).
# The official files themselves are not needed: the tests write a small checkpoint directory with the
# official code's structure (tests/fixtures/official_ckpt). Extra pytest arguments are passed through.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv-official}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"
python -m pip install --quiet --upgrade pip
if ! python -c "import torch" 2>/dev/null; then
  python -m pip install --quiet "torch==2.13.0"  # the CPU build on CPU-only machines, as scripts/test.sh
fi
python -m pip install --quiet -c constraints/official-transformers-4.46.3.txt -e ".[all,dev,official]"
python - <<'PY'
import transformers, tokenizers, huggingface_hub
assert transformers.__version__ == "4.46.3", transformers.__version__
print("transformers", transformers.__version__, "tokenizers", tokenizers.__version__, "huggingface_hub", huggingface_hub.__version__)
PY
echo "== pytest (transformers 4.46.3)"; python -m pytest -q "$@"
