"""Short rich renderables for the terminal; the CLI prints them (library code never prints)."""

from __future__ import annotations

from rich.table import Table

from llm_perf_opt.data.analytic_report import AnalyticModelReport
from llm_perf_opt.reporting.text import ms, num


def analytic_stage_table(report: AnalyticModelReport) -> Table:
    facts = report.image_tokens
    hw = report.inputs.hardware
    title = (
        f"DeepSeek-OCR analytic model — {report.workload.profile_id} on {hw.name} "
        f"({facts.mode}, {facts.image_tokens} image tokens, {facts.prefill_tokens} prefill, "
        f"{facts.max_new_tokens} new, batch {facts.batch_size})"
    )
    table = Table(title=title, title_justify="left")
    for column in ("stage", "GFLOP", "GB moved", "predicted ms", "bound", "share"):
        table.add_column(column, justify="left" if column in ("stage", "bound") else "right")
    total = report.predicted_total_time_ms or 1.0
    for stage in report.stages:
        table.add_row(
            stage.stage,
            num(stage.flops_tflops * 1e3, 1),
            num(stage.io_tb * 1e3, 3),
            ms(stage.predicted_ms),
            stage.bound,
            f"{(stage.predicted_ms or 0.0) / total:.1%}",
        )
    table.add_row("total", "", "", ms(report.predicted_total_time_ms), "", "100%", style="bold")
    return table


def analytic_memory_line(report: AnalyticModelReport) -> str:
    mem = report.memory
    return (
        f"memory (GB = 1e9 B): weights {mem.weights_gb:.3f} + KV cache {mem.kv_cache_gb:.3f} + "
        f"activations {mem.activations_gb:.3f} = {mem.total_gb:.3f} of {mem.device_memory_gb:g}"
        f" → {'fits' if mem.fits else 'does NOT fit'}"
    )
