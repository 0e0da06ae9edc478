#!/usr/bin/env bash
# GPU evidence for the grouped expert GEMMs of the prefill MoE (issue 9), about 2 minutes on an H200:
# benchmarks/bench_grouped_table.py adds µs per MoE layer over token-expert pairs and routing skews to the
# GEMM table (src/llm_perf_opt/hardware/gemm_tables/<hw>-bf16.json comes from here).
#
#   RESULTS=$OUT bash scripts/gpu_grouped_table.sh
set -uo pipefail
# shellcheck source=scripts/gpu_common.sh
source "$(dirname "$0")/gpu_common.sh"
gpu_setup tmp/gpu-grouped /tmp/gpu-grouped-runs
versions

step "grouped expert GEMM table"
timeout 300 "$PY" benchmarks/bench_grouped_table.py --table src/llm_perf_opt/hardware/gemm_tables/h200-bf16.json \
  --out "$RESULTS/h200-bf16.json" --budget-s 200 | tee "$RESULTS/grouped_table.log"
echo "rc=$?"
ls -la "$RESULTS"
