"""``profile --decode-mode``: validated before loading, recorded per run, reported side by side."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest
from click.testing import CliRunner

from llm_perf_opt.cli import cli
from llm_perf_opt.profiling.report_build import decode_mode_aggregates, decode_mode_figures
from llm_perf_opt.profiling.runner import run_profile
from llm_perf_opt.profiling.state import ProfileConfig


def test_graph_decode_on_cpu_fails_before_loading(tmp_path: Path) -> None:
    out = tmp_path / "run"
    for mode in ("graph", "both"):
        result = CliRunner().invoke(
            cli, ["profile", "--model", "tiny", "--device", "cpu", "--decode-mode", mode, "--output-dir", str(out)]
        )
        assert result.exit_code != 0
        assert "needs a CUDA device" in result.output and "Traceback" not in result.output
        assert not out.exists()


def test_runs_record_their_decode_mode_and_modes_are_compared(tmp_path: Path) -> None:
    config = ProfileConfig(
        model="tiny",
        device="cpu",
        mode="tiny",
        repeats=2,
        max_new_tokens=4,
        torch_profiler=False,
        output_dir=tmp_path / "run",
    )
    result = run_profile(config)
    records = result.state.records
    assert [r.decode_mode for r in records] == ["eager"] * len(records) and len(records) >= 2
    assert all(r.capture_ms == 0.0 for r in records)
    summary = (tmp_path / "run" / "stakeholder_summary.md").read_text()
    assert "Decode execution: eager" in summary and "Implementation: our model" in summary
    assert not any("[" in key for key in result.report.aggregates)  # one mode: nothing side by side

    # Pretend the second run was a graph run 4x faster per token (decode_ms over 3 decode steps).
    eager = records[0]
    graph = attrs.evolve(records[1], decode_mode="graph", decode_ms=eager.decode_ms / 4)
    agg = decode_mode_aggregates([eager, graph])
    assert agg["tpot_ms[eager]"].mean == eager.decode_ms / 3
    assert agg["tpot_ms[graph]"].mean == eager.decode_ms / 12
    figures = decode_mode_figures(agg)
    assert abs(figures["decode_speedup_graph_vs_eager"] - 4.0) < 1e-9
    # Graph mode replays vision and prefill as well: their stages are compared per mode too, and
    # report.md renders both modes side by side.
    graph = attrs.evolve(graph, prefill_mode="graph", clip_ms=eager.clip_ms / 5)
    agg = decode_mode_aggregates([eager, graph])
    assert agg["clip_ms[graph]"].mean == eager.clip_ms / 5 and agg["clip_ms[eager]"].mean == eager.clip_ms
    from llm_perf_opt.reporting.profile_report import _modes_table

    figures = decode_mode_figures(agg)
    assert figures["prefill_speedup_graph_vs_eager"] == pytest.approx(eager.prefill_ms / graph.prefill_ms)
    text = "\n".join(_modes_table(agg))
    row = next(line for line in text.splitlines() if line.startswith("| CLIP"))
    assert "| Metric | eager | graph |" in text
    assert f"{eager.clip_ms:.2f}" in row and f"{eager.clip_ms / 5:.2f}" in row
