# Sourced by the scripts/gpu_*.sh passes (not run on its own): the repository root as working directory,
# src/ on PYTHONPATH, $PY, the $RESULTS folder and the $RUNS folder (defaults: $1 and $2 of `gpu_setup`),
# `step` (a timestamped heading), `pack` (the run directories as one tarball, without traces, inputs and
# plots), `versions` (torch, CUDA, transformers, Triton and the device into $RESULTS/env.txt) and
# `operator_profile MODE BATCH` (an eager profile with operator tables into $RUNS/ops-MODE-bBATCH).
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY="${PYTHON:-python3}"

gpu_setup() {  # gpu_setup DEFAULT_RESULTS DEFAULT_RUNS
  RESULTS="${RESULTS:-$1}"
  RUNS="${RUNS_DIR:-$2}"  # run directories: many files, so they come back as one tarball
  mkdir -p "$RESULTS" "$RUNS"
}
step() { echo "== $(date +%T) $*"; }
pack() { tar czf "$RESULTS/runs.tgz" --exclude=inputs --exclude='trace*' --exclude='*.png' -C "$RUNS" .; }
versions() {
  step "versions"
  "$PY" -c "import torch, transformers, triton; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'transformers', transformers.__version__, 'triton', triton.__version__, torch.cuda.get_device_name())" \
    | tee "$RESULTS/env.txt"
}
operator_profile() {  # eager vision + prefill under the torch profiler, 2 tokens
  step "operator profile: $1 batch $2 (eager, torch profiler)"
  timeout 120 "$PY" -m llm_perf_opt profile --model deepseek-ocr --weights random --dtype bf16 --mode "$1" \
    --batch-size "$2" --max-new-tokens 2 --repeats 1 --decode-mode eager --top-k 40 \
    --output-dir "$RUNS/ops-$1-b$2" --run-id "ops-$1-b$2" --quiet >/dev/null
  echo "rc=$?"
}
