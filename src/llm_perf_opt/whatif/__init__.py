"""What-if analysis: recompute an analytic report for other workloads, GPUs, dtypes and roofline factors.

Python API for external tools (imports no torch, numpy or matplotlib)::

    from llm_perf_opt.whatif import apply_overrides, evaluate, load_report

    report = load_report("tmp/profile-output/RUN/static_analysis/analytic_model/report.json")

    # No overrides: one row that reproduces the report's own numbers exactly.
    assert evaluate(report)[0].latency_ms == report.predicted_total_time_ms

    # A grid: 2 GPUs x 3 batch sizes, everything in fp8. Values may be typed or text ("1,8,32").
    rows = evaluate(report, overrides={"dtype": "fp8"},
                    sweeps={"hardware": ["h100-sxm", "h200"], "batch_size": [1, 8, 32]})
    for row in rows:
        print(row.hardware, row.batch_size, f"{row.ms_per_page:.1f} ms/page",
              f"{row.memory_gb:.1f}/{row.device_memory_gb:g} GB", row.max_batch)

    record = rows[0].to_dict()  # plain, JSON-ready: scenario, stages, latency, throughput, memory

    # The overridden inputs themselves (AnalyticInputs), e.g. to build a full report with
    # per-module metrics: llm_perf_opt.analytic.api.build_report(inputs.model_spec, ...).
    inputs = apply_overrides(report, {"hardware": "h200", "page_size": "1024x1024"})
    assert inputs.workload_spec.page_size == (1024, 1024)

Keys: :data:`~llm_perf_opt.whatif.overrides.KEYS`; row fields: :class:`WhatIfRow`.
"""

from llm_perf_opt.analytic.report_io import load_report
from llm_perf_opt.whatif.evaluate import Evaluator, StageResult, WhatIfRow, evaluate
from llm_perf_opt.whatif.overrides import KEYS, apply_overrides, valid_keys_text
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
