#!/usr/bin/env python3
"""Rebuild the validation table from saved run directories (CPU, seconds): ``experiment validate --offline``.

    python3 scripts/make_validation_table.py --out docs/validation/h200     # reads docs/validation/h200/runs/

See ``llm_perf_opt.experiments.validate_table``. The H100 table of 2026-11 (old JSON format) is kept as
history in docs/validation/h100/ and is not rebuilt by this script.
"""

from _experiment import run

if __name__ == "__main__":
    run("validate", extra=("--offline",))
