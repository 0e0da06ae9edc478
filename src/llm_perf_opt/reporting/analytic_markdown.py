"""Markdown of an analytic report: ``report.md`` and one ``layers/<LayerClass>.md`` page per class.

Pure string building from finished data (the report, and the per-class numbers that
:mod:`llm_perf_opt.analytic.layer_pages` computed); no torch, numpy or matplotlib.
"""

from __future__ import annotations

from collections.abc import Sequence

from llm_perf_opt.data.analytic_report import AnalyticModelReport
from llm_perf_opt.data.layer_pages import LayerClassPage
from llm_perf_opt.reporting.text import MISSING, table

MAX_ROWS_PER_CLASS = 12
TOP_MODULES = 15


def render_report_md(report: AnalyticModelReport, pages: Sequence[LayerClassPage] = ()) -> str:
    """Stage table, top modules, operator categories, memory, token facts and assumptions.

    ``pages`` (from :func:`llm_perf_opt.analytic.layer_pages.layer_pages`) give each module's bound.
    """
    inp, tok, mem = report.inputs, report.image_tokens, report.memory
    hw, w = inp.hardware, inp.workload_spec
    out = [
        f"# Analytic model: {report.model.model_variant} · {w.profile_id} · {hw.name}",
        "",
        f"Report `{report.report_id}` ({report.schema_version}, {report.created_at}). Predicted time of one "
        f"generation call ({tok.batch_size} page(s), {tok.max_new_tokens} new tokens each): "
        f"**{report.predicted_total_time_ms:,.1f} ms**; job of {w.num_pages} page(s): "
        f"{report.predicted_job_time_ms:,.1f} ms.",
        "",
        "## Stages",
        "",
        "Vision and projector run inside the prefill call of `generate`; they are listed apart here and "
        "the prefill row is the decoder only, so the rows add up to the total without double counting.",
        "",
        table(
            [
                "stage",
                "calls",
                "tokens",
                "TFLOP",
                "executed TFLOP",
                "non-matmul TFLOP",
                "GB moved",
                "kernels",
                "compute ms",
                "memory ms",
                "launch ms",
                "predicted ms",
                "bound",
            ],
            [
                [
                    s.stage,
                    s.calls,
                    s.tokens,
                    s.flops_tflops,
                    s.executed_tflops,
                    s.non_matmul_tflops,
                    s.io_tb * 1e3,
                    s.kernels,
                    s.compute_ms,
                    s.memory_ms,
                    s.launch_ms,
                    s.predicted_ms,
                    s.bound,
                ]
                for s in report.stages
            ],
        ),
        "",
        f"prefill call (vision + projector + prefill): "
        f"{sum(s.predicted_ms or 0.0 for s in report.stages if s.stage != 'decode'):,.1f} ms.",
        "",
        "## Top modules by predicted time",
        "",
    ]
    by_id = {m.module_id: m for m in report.modules}
    bounds = {row.module_id: row.bound for page in pages for row in page.rows}
    leaves = sorted(
        (s for s in report.module_metrics if not by_id[s.module_id].children),
        key=lambda s: s.total_time_ms,
        reverse=True,
    )[:TOP_MODULES]
    out += [
        table(
            ["module", "class", "calls", "ms", "share", "TFLOP", "GB moved", "bound"],
            [
                [
                    f"`{s.module_id}`",
                    by_id[s.module_id].qualified_class_name.rsplit(".", 1)[-1],
                    s.calls,
                    s.total_time_ms,
                    s.share_of_model_time,
                    s.total_flops_tflops,
                    s.total_io_tb * 1e3,
                    bounds.get(s.module_id, MISSING),
                ]
                for s in leaves
            ],
        ),
        "",
        "## Operator categories (whole call)",
        "",
    ]
    root = report.module_metrics[0]
    cats = {c.category_id: c for c in report.operator_categories}
    out += [
        table(
            ["category", "calls", "TFLOP", "share of FLOPs", "GB moved", "runnable-model classes"],
            [
                [
                    cats[o.category_id].display_name,
                    o.calls,
                    o.flops_tflops,
                    o.share_of_module_flops,
                    o.io_tb * 1e3,
                    ", ".join(cats[o.category_id].match_classes) or MISSING,
                ]
                for o in root.operator_breakdown
            ],
        ),
        "",
        "## Memory",
        "",
        table(
            ["weights GB", "KV cache GB", "peak activations GB", "total GB", "device GB", "fits"],
            [[mem.weights_gb, mem.kv_cache_gb, mem.activations_gb, mem.total_gb, mem.device_memory_gb, mem.fits]],
        ),
        "",
        "## Image tokens and sequence lengths",
        "",
        table(
            [
                "mode",
                "page px",
                "tile grid",
                "views",
                "image slots",
                "features",
                "prompt",
                "prefill",
                "decode steps",
                "final context",
                "batch",
            ],
            [
                [
                    tok.mode,
                    "x".join(map(str, tok.page_size)) if tok.page_size else MISSING,
                    "x".join(map(str, tok.tile_grid)),
                    ", ".join(f"{n}×{v}px" for v, n in tok.views),
                    tok.image_tokens,
                    tok.feature_tokens,
                    tok.prompt_tokens,
                    tok.prefill_tokens,
                    tok.decode_steps,
                    tok.final_context,
                    tok.batch_size,
                ]
            ],
        ),
        "",
        "## Assumptions",
        "",
        *[f"- {a}" for a in report.assumptions],
        "",
        "## Layer formulas",
        "",
        "One page per layer class in [`layers/`](layers/): its formula, shapes and numbers for this workload.",
        "",
    ]
    return "\n".join(out)


def render_layer_pages(report: AnalyticModelReport, pages: Sequence[LayerClassPage]) -> dict[str, str]:
    """``{LayerClass: markdown}`` for the pages that :func:`llm_perf_opt.analytic.layer_pages.layer_pages` computed."""
    inp = report.inputs
    out = {}
    for page in pages:
        shown = page.rows[:MAX_ROWS_PER_CLASS]
        more = len(page.rows) - len(shown)
        text = [
            f"# {page.name}",
            "",
            f"`{page.qualname}`",
            "",
            page.doc,
            "",
            "## Formula",
            "",
            f"    {page.formula or '(composite: the sum of its children)'}",
            "",
            f"## In this workload ({inp.workload_spec.profile_id}, precision {inp.precision.weight_dtype})",
            "",
            f"Per-call numbers; `calls` = runs in one generation call (decode-step rows are means over steps); "
            f"roofline time on {inp.hardware.name}.",
            "",
            table(
                [
                    "module",
                    "shapes",
                    "calls",
                    "GFLOP",
                    "non-matmul GFLOP",
                    "MB moved",
                    "weight params",
                    "kernels",
                    "µs",
                    "bound",
                ],
                [
                    [
                        f"`{r.module_id}`",
                        r.shapes,
                        r.calls,
                        r.gflops,
                        r.non_matmul_gflops,
                        r.mb_moved,
                        r.weight_params,
                        r.kernels,
                        r.roofline_us,
                        r.bound,
                    ]
                    for r in shown
                ],
            ),
        ]
        if more:
            text += ["", f"… and {more} more instances."]
        out[page.name] = "\n".join(text) + "\n"
    return out
