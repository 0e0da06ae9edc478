#!/usr/bin/env bash
# GPU evidence for SAM's convolutions and operators (issue 9), about 8 minutes on an H200:
#   1. benchmarks/bench_conv_table.py: µs per F.conv2d call of SAM's convolutions over batch sizes, added to
#      the GEMM table (src/llm_perf_opt/hardware/gemm_tables/<hw>-bf16.json comes from here);
#   2. eager operator profiles of vision + prefill where the graph validation misses SAM (large and tiny
#      at batch 8 over the 3 built-in pages, small at batch 1);
#   3. with SECOND_SET=DIR, the graph validation matrix resumed into a copy of DIR for VALIDATE_S seconds.
# Results go to $RESULTS (default tmp/gpu-conv) as they come; run directories as tarballs.
#
#   RESULTS=$OUT SECOND_SET=docs/validation/h200/rerun-session8 VALIDATE_S=170 bash scripts/gpu_conv_table.sh
set -uo pipefail
# shellcheck source=scripts/gpu_common.sh
source "$(dirname "$0")/gpu_common.sh"
gpu_setup tmp/gpu-conv /tmp/gpu-conv-runs
versions

step "convolution table"
timeout 200 "$PY" benchmarks/bench_conv_table.py --table src/llm_perf_opt/hardware/gemm_tables/h200-bf16.json \
  --out "$RESULTS/h200-bf16.json" --budget-s 150 | tee "$RESULTS/conv_table.log"
echo "rc=$?"

for spec in "large 8" "tiny 8" "small 1"; do
  # shellcheck disable=SC2086
  operator_profile $spec
  pack
done

if [ -n "${SECOND_SET:-}" ]; then
  step "validation matrix (graph) resumed in a copy of $SECOND_SET, ${VALIDATE_S:-170}s"
  rm -rf /tmp/second-set && cp -r "$SECOND_SET" /tmp/second-set
  timeout $((${VALIDATE_S:-170} + 120)) "$PY" -m llm_perf_opt experiment validate --out /tmp/second-set \
    --executions graph --budget-s "${VALIDATE_S:-170}" --quiet
  echo "rc=$?"
  tar czf "$RESULTS/second_set.tgz" --exclude=inputs --exclude=pages --exclude='trace*' --exclude='*.png' \
    -C /tmp/second-set runs plan.json
fi
ls -la "$RESULTS"
