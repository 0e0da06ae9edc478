#!/usr/bin/env python3
"""Decode ms/token, CUDA graph vs eager, batch 1/8/32: ``llm-perf-opt experiment decode-bench``.

    python3 scripts/gpu_decode_bench.py --out $OUT/decode-bench --processes 2   # H200: ~3-4 min
    python3 scripts/gpu_decode_bench.py --model tiny --device cpu --batches 1,2 --new-tokens 4 \
        --repeats 2 --page-mode tiny --hardware h200                            # CPU, seconds

See ``llm_perf_opt.experiments.decode_bench`` (``--help`` lists every option).
"""

from _experiment import run

if __name__ == "__main__":
    run("decode-bench")
