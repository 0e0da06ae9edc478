#!/usr/bin/env python3
"""Our decode step next to transformers' DeepseekOcr2TextModel: ``llm-perf-opt experiment decode-vs-hf``.

    python3 scripts/bench_decode_vs_transformers.py --out $OUT/decode-vs-hf
    python3 scripts/bench_decode_vs_transformers.py --model tiny --device cpu --contexts 16,48 --steps 4 \
        --warmup-steps 2 --check-tokens 12                                      # CPU, seconds

See ``llm_perf_opt.experiments.decode_vs_hf`` (``--help`` lists every option).
"""

from _experiment import run

if __name__ == "__main__":
    run("decode-vs-hf")
