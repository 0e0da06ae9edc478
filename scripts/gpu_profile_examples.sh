#!/usr/bin/env bash
# Example profiles on a GPU: full-size DeepSeek-OCR, random weights, bf16, Base and Gundam modes,
# the three built-in synthetic pages (text-heavy, mixed layout, image-rich; A4 at 200 dpi),
# 3 repeats, 128 new tokens. Writes small artifacts only (no traces, no page PNGs) into
# docs/examples/profile-<mode>/ and prints a compact summary table at the end.
#
#   bash scripts/gpu_profile_examples.sh                 # both modes
#   MODES="gundam" bash scripts/gpu_profile_examples.sh  # one mode
#   BENCH=1 bash scripts/gpu_profile_examples.sh         # also the harness-overhead benchmark
#
# Needs: torch with CUDA, transformers, attrs, cattrs, click, PyYAML, rich, matplotlib, Pillow,
# safetensors (nvtx optional: NVTX ranges then go through torch.cuda.nvtx).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
PY="${PYTHON:-python}"
MODES="${MODES:-base gundam}"
MODEL="${MODEL:-deepseek-ocr}"
OUT_ROOT="${OUT_ROOT:-docs/examples}"
TOKENS="${TOKENS:-128}"
REPEATS="${REPEATS:-3}"
PAGES="tmp/profile-inputs/synthetic"

ALLOW_CPU="${ALLOW_CPU:-0}" "$PY" - <<'EOF'
import importlib.util, sys
need = ["torch", "transformers", "attrs", "cattrs", "click", "yaml", "rich", "matplotlib", "PIL", "safetensors"]
missing = [m for m in need if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"missing Python packages: {', '.join(missing)} (pip install them or carry their wheels)")
import torch
import os
if not torch.cuda.is_available() and os.environ.get("ALLOW_CPU") != "1":
    sys.exit("no CUDA device visible: this script profiles on a GPU")
print(f"GPU: {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none (ALLOW_CPU=1)'}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
      f"nvtx package: {'yes' if importlib.util.find_spec('nvtx') else 'no (torch.cuda.nvtx used)'}")
EOF

# Pages outside docs/ so the (multi-MB) PNGs never land in the examples; inputs.yaml keeps sha256.
"$PY" -c "from pathlib import Path; from llm_perf_opt.profiling.synthetic import write_synthetic_pages as w; w(Path('$PAGES'))"

for mode in $MODES; do
  out="$OUT_ROOT/profile-$mode"
  rm -rf "$out"
  echo "== profile: $mode mode -> $out"
  "$PY" -m llm_perf_opt profile --model "$MODEL" --weights random --dtype bf16 --mode "$mode" \
    --images "$PAGES" --repeats "$REPEATS" --warmup 1 --max-new-tokens "$TOKENS" --top-k 20 \
    --output-dir "$out" --run-id "example-$mode" --quiet
done

if [[ "${BENCH:-0}" == "1" ]]; then
  echo "== harness overhead (gundam)"
  "$PY" scripts/bench_profile_overhead.py --model "$MODEL" --mode gundam --max-new-tokens "$TOKENS" \
    --repeats 5 --json-out tmp/bench_profile_overhead.json
fi

MODES="$MODES" OUT_ROOT="$OUT_ROOT" "$PY" - <<'EOF'
import json, os
from pathlib import Path
rows, gpu = [], ""
for mode in os.environ["MODES"].split():
    path = Path(os.environ["OUT_ROOT"]) / f"profile-{mode}" / "metrics.json"
    if not path.is_file():
        rows.append((mode, "missing metrics.json")); continue
    m = json.loads(path.read_text())
    agg, a = m["aggregates"], m["analytic"]
    g = lambda k: agg[k]["mean"] if k in agg else float("nan")
    pct = lambda k: f"{100 * a[k]:.1f}%" if k in a else "n/a"
    rows.append((mode, f"{g('total_ms'):8.1f} {g('ttft_ms'):8.1f} {g('vision_ms'):8.1f} {g('prefill_decoder_ms'):8.1f} "
                       f"{g('decode_ms'):8.1f} {g('tpot_ms'):7.2f} {pct('total_mfu_raw'):>6} {pct('prefill_mfu_raw'):>7} "
                       f"{pct('decode_mfu_raw'):>6} {pct('decode_bw_util_raw'):>6} {g('peak_memory_gb'):6.2f}"
                       + ("  INCOMPLETE" if m["incomplete"] else "")))
    gpu = m["meta"]["gpu_name"]
print(f"\nSummary (ms, mean over pages x repeats; {gpu})")
print(f"{'mode':<7} {'total':>8} {'TTFT':>8} {'vision':>8} {'prefill':>8} {'decode':>8} {'ms/tok':>7} "
      f"{'MFU':>6} {'MFU pf':>7} {'MFU dc':>6} {'BW dc':>6} {'mem GB':>6}")
for mode, text in rows:
    print(f"{mode:<7} {text}")
print("(prefill = decoder part of prefill; MFU pf = whole first forward; BW dc = decode DRAM bandwidth / peak)")
EOF
