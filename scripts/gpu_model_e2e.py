#!/usr/bin/env python3
"""End-to-end run of the full-size model next to the analytic prediction: ``llm-perf-opt experiment e2e``.

    python3 scripts/gpu_model_e2e.py --out $OUT/e2e                            # GPU, Gundam A4, 256 tokens
    python3 scripts/gpu_model_e2e.py --model tiny --device cpu --mode tiny --new-tokens 4 --repeats 1 \
        --hardware h100-sxm --out /tmp/e2e                                      # CPU, seconds

See ``llm_perf_opt.experiments.e2e`` (``--help`` lists every option).
"""

from _experiment import run

if __name__ == "__main__":
    run("e2e")
