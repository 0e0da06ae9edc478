#!/usr/bin/env bash
# Profile runs of the official DeepSeek-OCR checkpoint code for its validation (issue 10): full size,
# random bf16 weights, eager attention, the official n-gram ban, the three built-in pages, 2 timed
# calls + 1 warm-up each. One run is the calibration (base, 128 tokens); the others are held out
# (other modes, batch 2, other token counts). About 6 minutes on an H200.
#
# Needs transformers 4.46.3 (constraints/official-transformers-4.46.3.txt) and the checkpoint's .py
# files + config.json in $CKPT (default official-code/, never committed). Run directories go to
# $RUNS (default tmp/official-runs), one tarball of them (no traces, no page images) to $RESULTS.
# ONLY="id id …" runs a subset; EXTRA="--no-torch-profiler" makes timing-only runs (what the
# validation table reads), much shorter for this code's ~1,300 kernels per decode step. PIN="taskset -c 2,3"
# pins each run to CPU cores (the official code is host-bound: its timings follow the host).
# The predictions are made afterwards, without a GPU:
#   python -m llm_perf_opt experiment validate --offline --out $RUNS --calibrate-on base-b1-n128 --model deepseek-ocr
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
PY="${PYTHON:-python3}"
CKPT="${CKPT:-official-code}"
RESULTS="${RESULTS:-tmp/official-results}"
RUNS="${RUNS:-tmp/official-runs}"
mkdir -p "$RESULTS" "$RUNS/runs/hf-official"
"$PY" -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__, \
torch.cuda.get_device_name())" | tee "$RESULTS/env.txt"

P="$PY -m llm_perf_opt profile --model $CKPT --trust-remote-code --weights random --attn-impl eager \
  --no-repeat-ngram-size 20 --device cuda:0 --dtype bf16 --repeats 2 --warmup 1 --top-k 25 --quiet"
# id mode batch tokens timeout_s: the calibration run first, then the held-out ones, cheapest first.
while read -r id mode batch tokens limit; do
  [[ -n "${ONLY:-}" && " $ONLY " != *" $id "* ]] && continue
  echo "== $(date +%T) $id"
  timeout "$limit" ${PIN:-} $P --mode "$mode" --batch-size "$batch" --max-new-tokens "$tokens" ${EXTRA:-} \
    --output-dir "$RUNS/runs/hf-official/$id" --run-id "official-$id"
  echo "rc=$? $id"
  tar czf "$RESULTS/runs.tgz" --exclude='trace*' --exclude='inputs' -C "$RUNS" runs
done <<'EOF'
base-b1-n128 base 1 128 110
tiny-b1-n64 tiny 1 64 90
small-b1-n64 small 1 64 90
base-b1-n64 base 1 64 90
large-b1-n64 large 1 64 100
base-b2-n64 base 2 64 130
gundam-b1-n64 gundam 1 64 150
EOF
ls -la "$RESULTS"
