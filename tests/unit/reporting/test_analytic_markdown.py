"""What a reader of report.md and layers/*.md sees, for inputs whose numbers are known by hand."""

from __future__ import annotations

from llm_perf_opt.analytic import api
from llm_perf_opt.data.layer_pages import LayerClassPage, LayerRow
from llm_perf_opt.hardware.table import HARDWARE_TABLE
from llm_perf_opt.reporting.analytic_markdown import render_layer_pages, render_report_md
from llm_perf_opt.specs.model_spec import TINY
from llm_perf_opt.specs.workload import WORKLOAD_PROFILES


def test_layer_page_shows_the_rows_it_is_given() -> None:
    report = api.build_report(TINY, WORKLOAD_PROFILES["tiny"], HARDWARE_TABLE["h100-sxm"])
    row = LayerRow(module_id="deepseek_ocr/x", shapes="tokens=8", calls=3, gflops=1.5, non_matmul_gflops=0.25,
                   mb_moved=2048.0, weight_params=4096, kernels=2, roofline_us=12.5, bound="memory")  # fmt: skip
    page = LayerClassPage(name="Toy", qualname="pkg.Toy", doc="A toy layer.", formula="2·t·h", rows=(row,) * 13)
    text = render_layer_pages(report, [page])["Toy"]
    assert text.startswith("# Toy\n\n`pkg.Toy`\n\nA toy layer.\n")
    assert "    2·t·h" in text
    assert "| `deepseek_ocr/x` | tokens=8 | 3 | 1.50 | 0.25 | 2,048.0 | 4,096 | 2 | 12.50 | memory |" in text
    assert text.count("`deepseek_ocr/x`") == 12  # at most 12 rows per class, then a count of the rest
    assert "… and 1 more instances." in text


def test_report_md_states_hardware_and_sums_the_prefill_call() -> None:
    report = api.build_report(TINY, WORKLOAD_PROFILES["tiny"], HARDWARE_TABLE["h100-sxm"])
    text = render_report_md(report)
    assert text.startswith(f"# Analytic model: {report.model.model_variant} · tiny · {HARDWARE_TABLE['h100-sxm'].name}")
    by_stage = {s.stage: s.predicted_ms for s in report.stages}
    prefill_call = by_stage["vision"] + by_stage["projector"] + by_stage["prefill"]
    assert f"prefill call (vision + projector + prefill): {prefill_call:,.1f} ms." in text
