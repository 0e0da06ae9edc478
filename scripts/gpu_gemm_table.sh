#!/usr/bin/env bash
# GPU evidence for the measured GEMM table and the routing census (issue 9), about 5 minutes on an H200:
#   1. benchmarks/bench_gemm_table.py: µs per F.linear call of every dense matmul shape of the model over a
#      grid of row counts (src/llm_perf_opt/hardware/gemm_tables/<hw>-bf16.json comes from here);
#   2. benchmarks/bench_moe_routing.py: expert loads of the prefill MoE with random weights;
#   3. the graph validation matrix for VALIDATE_S seconds (resumable: run it again to finish it).
# Results go to $RESULTS (default tmp/gpu-gemm) as they come; run directories as one tarball.
#
#   RESULTS=$OUT GEMM_S=150 VALIDATE_S=220 bash scripts/gpu_gemm_table.sh
set -uo pipefail
# shellcheck source=scripts/gpu_common.sh
source "$(dirname "$0")/gpu_common.sh"
gpu_setup tmp/gpu-gemm /tmp/gpu-gemm-runs
versions

step "GEMM table, ${GEMM_S:-150}s"
timeout $((${GEMM_S:-150} + 60)) "$PY" benchmarks/bench_gemm_table.py --out "$RESULTS/h200-bf16.json" \
  --budget-s "${GEMM_S:-150}" | tail -5
echo "rc=$?"

step "MoE routing of the prefill (random weights)"
timeout 120 "$PY" benchmarks/bench_moe_routing.py --cases tiny:1 small:1 base:1 gundam:1 base:4 small:8 base:8 \
  gundam:8 >"$RESULTS/moe_routing.jsonl"
echo "rc=$?"

step "validation matrix (graph), ${VALIDATE_S:-220}s"
timeout $((${VALIDATE_S:-220} + 120)) "$PY" -m llm_perf_opt experiment validate --out "$RUNS/validation" \
  --executions graph --budget-s "${VALIDATE_S:-220}" --quiet
echo "rc=$?"
pack
ls -la "$RESULTS"
