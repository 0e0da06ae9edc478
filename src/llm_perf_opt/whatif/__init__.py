"""What-if analysis: recompute an analytic report for other workloads, GPUs, dtypes and roofline factors.

Python API for external tools (no torch, numpy or matplotlib is imported)::

    from llm_perf_opt.whatif import apply_overrides, evaluate, load_report

    report = load_report("tmp/profile-output/RUN/static_analysis/analytic_model/report.json")
    inputs = apply_overrides(report, {"hardware": "h100-sxm", "batch_size": 8})
    rows = evaluate(report, overrides={"dtype": "fp8"}, sweeps={"batch_size": [1, 8, 32]})
    print(rows[0].to_dict()["latency_ms"])

Keys: :data:`~llm_perf_opt.whatif.overrides.KEYS`; row fields: :class:`WhatIfRow`.
"""

from llm_perf_opt.whatif.evaluate import Evaluator, StageResult, WhatIfRow, evaluate
from llm_perf_opt.whatif.overrides import KEYS, apply_overrides, valid_keys_text
from llm_perf_opt.whatif.report_io import load_report
from llm_perf_opt.whatif.scenarios import MAX_SCENARIOS, Scenario, build_grid

__all__ = [
    "KEYS",
    "MAX_SCENARIOS",
    "Evaluator",
    "Scenario",
    "StageResult",
    "WhatIfRow",
    "apply_overrides",
    "build_grid",
    "evaluate",
    "load_report",
    "valid_keys_text",
]
