#!/usr/bin/env python3
"""The validation matrix as profile runs, resumable: ``llm-perf-opt experiment validate``.

    python3 scripts/gpu_validation.py --out $OUT/validation          # runs, then validation.md/.json
    python3 scripts/gpu_validation.py --out $OUT/validation --list   # the plan
    (run the same command again after a timeout: finished runs are kept and skipped)

See ``llm_perf_opt.experiments.validate`` (``--help`` lists every option).
"""

from _experiment import run

if __name__ == "__main__":
    run("validate")
