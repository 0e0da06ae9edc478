#!/usr/bin/env bash
# GPU evidence for the decode-step forms (issue 9), about 7 minutes on an H200 (+ VALIDATE_S):
#   1. bench_step_attention.py: split / flash / sdpa step attention, error vs fp32 and µs per layer;
#      bench_moe_kernels.py: MoE dispatches (gather / grouped / fused) per token count, the fused tiles
#      (MOE_SWEEP=1: every candidate tile too);
#   2. decode ms/token graph vs eager at batch 1/8/32 with the defaults, agreement check at batch 1 and 8;
#   3. kernel census of a decode step with the defaults (graph and eager, batch 1 and 8);
#   4. batch-1 graph decode with one lever undone at a time (flash attention; gathered MoE weights);
#   5. `experiment decode-bench --processes 2`; `profile --decode-mode graph --trace` (the docs/examples run);
#   6. with VALIDATE_S=seconds: the graph validation matrix for that long (resumable: run it again).
# Results go to $RESULTS (default tmp/gpu-forms) as they come.
#
#   RESULTS=$OUT VALIDATE_S=270 bash scripts/gpu_decode_forms.sh
set -uo pipefail
# shellcheck source=scripts/gpu_common.sh
source "$(dirname "$0")/gpu_common.sh"
gpu_setup tmp/gpu-forms /tmp/gpu-forms-runs
versions

step "step attention forms"
timeout 90 "$PY" benchmarks/bench_step_attention.py --forms split flash sdpa | tee "$RESULTS/step_attention.jsonl"

step "MoE dispatches per layer"
timeout 240 "$PY" benchmarks/bench_moe_kernels.py --tokens 1 2 4 8 16 32 ${MOE_SWEEP:+--sweep} | tee "$RESULTS/moe_kernels.jsonl"

step "decode ms/token, graph vs eager (defaults)"
timeout 240 "$PY" benchmarks/bench_decode_modes.py --batch 1 8 32 --tokens 257 --repeats 5 --check-batch 1 8 \
  | grep '^{"batch"' | tee "$RESULTS/decode_modes.jsonl"
echo "rc=$?"

step "kernel census (defaults)"
timeout 150 "$PY" benchmarks/bench_decode_kernels.py --batch 1 8 --steps 16 >"$RESULTS/decode_kernels.jsonl"
echo "rc=$?"

for lever in "--step-attention flash" "--moe-impl gather"; do
  name=$(echo "$lever" | tr -d '-' | tr ' ' '_')
  step "batch-1 graph decode with $lever"
  timeout 120 "$PY" benchmarks/bench_decode_modes.py --batch 1 --tokens 257 --repeats 3 --variants graph \
    --check-batch $lever | grep '^{"batch"' | tee "$RESULTS/decode_modes_$name.jsonl"
done
step "decode-bench, two processes"
timeout 200 "$PY" -m llm_perf_opt experiment decode-bench --processes 2 --out "$RUNS/decode_bench" --quiet  # in the tarball: $OUT takes few files
echo "rc=$?"

step "profile, graph decode, --trace"
timeout 150 "$PY" -m llm_perf_opt profile --model deepseek-ocr --weights random --dtype bf16 --mode base \
  --max-new-tokens 256 --decode-mode graph --trace --output-dir "$RUNS/h200-ours-graph" --run-id h200-ours-graph --quiet
echo "rc=$?"

if [ -n "${VALIDATE_S:-}" ]; then
  step "validation matrix (graph), ${VALIDATE_S}s"
  timeout $((VALIDATE_S + 150)) "$PY" -m llm_perf_opt experiment validate --out "$RUNS/validation" \
    --executions graph --budget-s "$VALIDATE_S" --quiet
  echo "rc=$?"
fi
gzip -c "$RUNS/h200-ours-graph/trace.json" >"$RESULTS/trace.json.gz" 2>/dev/null
tar czf "$RESULTS/runs.tgz" --exclude=inputs --exclude='trace*' -C "$RUNS" .
ls -la "$RESULTS"
