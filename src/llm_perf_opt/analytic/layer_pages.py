"""Numbers of every layer class in a report's tree, handed to ``reporting`` to render ``layers/*.md``."""

from __future__ import annotations

import inspect
from typing import Any

from llm_perf_opt.analytic.deepseek_ocr import build_root
from llm_perf_opt.analytic.implementations import build_implementation_stages
from llm_perf_opt.analytic.report_tree import walk
from llm_perf_opt.analytic.roofline import Roofline
from llm_perf_opt.data.analytic_report import AnalyticModelReport
from llm_perf_opt.data.layer_pages import LayerClassPage, LayerRow


def _short(value: Any) -> str:
    if hasattr(value, "__attrs_attrs__"):
        return type(value).__name__
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def layer_pages(report: AnalyticModelReport) -> list[LayerClassPage]:
    """One page per layer class of the tree rebuilt from ``report.inputs``, rows in tree order."""
    inp = report.inputs
    spec, work, r = inp.model_spec, inp.workload_spec, inp.roofline
    stages = build_implementation_stages(
        spec, work, inp.precision, r.execution, r.implementation, r.expert_load_ratio
    )
    root = build_root(stages, inp.precision)
    roof = Roofline(inp.hardware, inp.roofline, inp.precision.compute_dtype)
    rows: dict[type, list[LayerRow]] = {}
    for v in walk(root):
        cost = v.layer.cost()
        timing = roof.time(v.layer)
        rows.setdefault(v.layer.kind(), []).append(
            LayerRow(
                module_id=v.module_id,
                shapes=", ".join(f"{k}={_short(val)}" for k, val in v.layer.shapes().items()),
                calls=round(v.calls),
                gflops=cost.flops / 1e9,
                non_matmul_gflops=cost.vector_flops / 1e9,
                mb_moved=cost.bytes_moved / 1e6,
                weight_params=cost.weight_params,
                kernels=cost.kernels,
                roofline_us=timing.total_s * 1e6,
                bound=timing.bound,
            )
        )
    return [
        LayerClassPage(
            name=cls.__name__,
            qualname=f"{cls.__module__}.{cls.__qualname__}",
            doc=inspect.getdoc(cls) or "",
            formula=getattr(cls, "formula", "") or "",
            rows=tuple(items),
        )
        for cls, items in rows.items()
    ]
