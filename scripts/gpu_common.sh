# Sourced by the scripts/gpu_*.sh passes (not run on its own): the repository root as working directory,
# src/ on PYTHONPATH, $PY, the $RESULTS folder and the $RUNS folder (defaults: $1 and $2 of `gpu_setup`),
# `step` (a timestamped heading), `pack` (the run directories as one tarball, without traces, inputs and
# plots) and `versions` (torch, CUDA, transformers, Triton and the device into $RESULTS/env.txt).
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
