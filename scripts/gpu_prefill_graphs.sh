#!/usr/bin/env bash
# GPU evidence for graph-replayed vision + prefill (issue 9), about 9 minutes on an H200:
#   1. `profile --decode-mode both` of the base page at batch 1 (stage times graph vs eager, one process);
#      with PROFILES=1 also eager operator profiles of vision + prefill (base, Gundam, tiny at batch 1; base at 4);
#      with BENCH=1 decode ms/token graph vs eager at batch 1/8/32 and a kernel census of a batch-1 step;
#   2. the graph validation matrix for VALIDATE_S seconds (resumable: run it again to finish it);
#   3. the runnable-model tests on the GPU (graph vs eager prefill and decode, Triton kernels vs torch).
# Results go to $RESULTS (default tmp/gpu-prefill) as they come; run directories as one tarball.
#
#   RESULTS=$OUT VALIDATE_S=300 bash scripts/gpu_prefill_graphs.sh
set -uo pipefail
# shellcheck source=scripts/gpu_common.sh
source "$(dirname "$0")/gpu_common.sh"
gpu_setup tmp/gpu-prefill /tmp/gpu-prefill-runs
versions

step "profile base batch 1, graph vs eager"
timeout 150 "$PY" -m llm_perf_opt profile --model deepseek-ocr --weights random --dtype bf16 --mode base \
  --max-new-tokens 64 --repeats 3 --decode-mode both \
  --output-dir "$RUNS/base-b1-both" --run-id base-b1-both --quiet
echo "rc=$?"
pack

if [ -n "${PROFILES:-}" ]; then  # operator tables of eager vision + prefill: the kernels the graphs replay
  for spec in "base 1" "gundam 1" "tiny 1" "base 4"; do
    # shellcheck disable=SC2086
    operator_profile $spec
  done
  pack
fi

if [ -n "${BENCH:-}" ]; then  # decode ms/token graph vs eager, and the kernel census of a step
  step "decode ms/token, graph vs eager"
  timeout 200 "$PY" benchmarks/bench_decode_modes.py --batch 1 8 32 --tokens 257 --repeats 3 --check-batch 1 \
    | grep '^{"batch"' | tee "$RESULTS/decode_modes.jsonl"
  step "kernel census of a decode step (batch 1)"
  timeout 120 "$PY" benchmarks/bench_decode_kernels.py --batch 1 --steps 16 >"$RESULTS/decode_kernels.jsonl"
  echo "rc=$?"
fi

step "validation matrix (graph), ${VALIDATE_S:-300}s"
timeout $((${VALIDATE_S:-300} + 120)) "$PY" -m llm_perf_opt experiment validate --out "$RUNS/validation" \
  --executions graph --budget-s "${VALIDATE_S:-300}" --quiet
echo "rc=$?"
pack

step "runnable-model tests on the GPU"
timeout "${TESTS_S:-150}" "$PY" -m pytest -q -p no:cacheprovider tests/unit/models/test_dsocr_static_prefill.py \
  tests/unit/models/test_dsocr_static_decode.py tests/unit/models/test_dsocr_generate.py \
  tests/unit/models/test_dsocr_moe_triton.py tests/unit/models/test_dsocr_attention_triton.py 2>&1 \
  | tail -25 | tee "$RESULTS/pytest_models.txt"
ls -la "$RESULTS"
