#!/usr/bin/env bash
# GPU evidence for the decode-step forms (issue 9), about 6 minutes on an H200:
#   1. bench_step_attention.py: flash / sdpa / matmul step attention, error vs fp32 and µs per layer;
#   2. decode ms/token graph vs eager at batch 1/8/32 with the defaults, agreement check at batch 1 and 8;
#   3. kernel census of a decode step with the defaults (graph and eager, batch 1 and 8);
#   4. batch-1 graph decode with one lever undone at a time (sdpa attention; grouped MoE dispatch).
# Results go to $RESULTS (default tmp/gpu-forms) as they come.
#
#   RESULTS=$OUT bash scripts/gpu_decode_forms.sh
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY="${PYTHON:-python3}"
RESULTS="${RESULTS:-tmp/gpu-forms}"
mkdir -p "$RESULTS"
step() { echo "== $(date +%T) $*"; }

step "versions"
"$PY" -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'transformers', transformers.__version__, torch.cuda.get_device_name())" | tee "$RESULTS/env.txt"

step "step attention forms"
timeout 90 "$PY" benchmarks/bench_step_attention.py | tee "$RESULTS/step_attention.jsonl"

step "decode ms/token, graph vs eager (defaults)"
timeout 240 "$PY" benchmarks/bench_decode_modes.py --batch 1 8 32 --tokens 257 --repeats 5 --check-batch 1 8 \
  | grep '^{"batch"' | tee "$RESULTS/decode_modes.jsonl"
echo "rc=$?"

step "kernel census (defaults)"
timeout 150 "$PY" benchmarks/bench_decode_kernels.py --batch 1 8 --steps 16 >"$RESULTS/decode_kernels.jsonl"
echo "rc=$?"

for lever in "--step-attention sdpa" "--moe-impl grouped"; do
  name=$(echo "$lever" | tr -d '-' | tr ' ' '_')
  step "batch-1 graph decode with $lever"
  timeout 120 "$PY" benchmarks/bench_decode_modes.py --batch 1 --tokens 257 --repeats 3 --variants graph \
    --check-batch $lever | grep '^{"batch"' | tee "$RESULTS/decode_modes_$name.jsonl"
done
ls -la "$RESULTS"
