#!/usr/bin/env bash
# GPU evidence for issues 9 and 11 in one pass (about 6 minutes on an H200):
#   1. kernel census of a decode step (names, launches and GPU µs per step; graph and eager; batch 1 and 8),
#      and the same at batch 1 with the gathered-weights MoE dispatch;
#   2. decode ms/token graph vs eager at batch 1/8/32 (5 timed calls each), with the agreement check;
#   3. `profile` at the issue's workload (base, 3 built-in pages, 256 tokens) in graph and in eager mode,
#      with --trace: the GPU timeline per stage, kernels per step measured vs analytic, the trace size;
#   4. wall time per phase of `profile` at defaults (the profiling pass against the timed runs).
# Results go to $RESULTS (default tmp/gpu-checks) as they come: *.jsonl, phases.txt, runs.tgz (run
# directories without traces and page images).
#
#   RESULTS=$OUT bash scripts/gpu_decode_timeline_checks.sh
set -uo pipefail
# shellcheck source=scripts/gpu_common.sh
source "$(dirname "$0")/gpu_common.sh"
gpu_setup tmp/gpu-checks /tmp/gpu-check-runs
versions

step "kernel census (graph, eager; batch 1, 8)"
timeout 150 "$PY" benchmarks/bench_decode_kernels.py --batch 1 8 --steps 16 >"$RESULTS/decode_kernels.jsonl"
echo "rc=$?"
timeout 60 "$PY" benchmarks/bench_decode_kernels.py --batch 1 --steps 16 --moe-impl gather \
  >"$RESULTS/decode_kernels_gather.jsonl"
echo "rc=$?"

step "decode ms/token, graph vs eager"
timeout 200 "$PY" benchmarks/bench_decode_modes.py --batch 1 8 32 --tokens 257 --repeats 5 \
  | grep '^{"batch"' >"$RESULTS/decode_modes.jsonl"
echo "rc=$?"

P="$PY -m llm_perf_opt profile --model deepseek-ocr --weights random --dtype bf16 --mode base --max-new-tokens 256"
for mode in graph eager; do
  step "profile, $mode decode, --trace"
  timeout 150 $P --decode-mode "$mode" --trace --output-dir "$RUNS/h200-ours-$mode" --run-id "h200-ours-$mode" --quiet
  echo "rc=$?"
  ls -la "$RUNS/h200-ours-$mode" | grep -i trace
done

step "phase wall times at defaults (graph)"
timeout 150 "$PY" benchmarks/bench_profile_phases.py --model deepseek-ocr --device cuda:0 --mode base \
  --max-new-tokens 256 --decode-mode graph 2>&1 | tee "$RESULTS/phases.txt"

tar czf "$RESULTS/runs.tgz" --exclude='trace*' --exclude='*.json.gz' --exclude='inputs' -C "$RUNS" .
ls -la "$RESULTS"
