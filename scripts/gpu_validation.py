#!/usr/bin/env python3
"""The validation matrix as profile runs, resumable: ``llm-perf-opt experiment validate``.

    python3 scripts/gpu_validation.py --out /tmp/val --list   # the plan
    python3 scripts/gpu_validation.py --out /tmp/val && tar czf $OUT/validation.tgz -C /tmp/val .
    # (a run directory holds ~12 files: bring the matrix back as one tarball, not as files under $OUT)
    (run the same command again after a timeout: finished runs are kept and skipped)

See ``llm_perf_opt.experiments.validate`` (``--help`` lists every option).
"""

from _experiment import run

if __name__ == "__main__":
    run("validate")
