"""Write every artifact of a run, atomically; also used for incomplete (interrupted) runs.

``<output_dir>/``: ``report.md``, ``operators.md``, ``metrics.json`` (the ``LLMProfileReport``),
``summary.json`` (its ``LLMProfileReportSummary``), ``stakeholder_summary.md``, ``inputs.yaml``,
``env.json``, ``assumptions.md``, ``runs.jsonl`` (one raw record per timed run),
``stage_breakdown.png`` and, with ``--trace``, ``trace.json``. All of them are written into the run's
staging directory (:class:`~llm_perf_opt.io.artifact_set.ArtifactSet`) and published together, with
``artifact_set.json``, by one rename: a reader sees the whole set of one run or none of it. An
interrupted run's set is published too, with ``run_status: incomplete`` in every document.
"""

from __future__ import annotations

import json
from typing import Any

from llm_perf_opt.data.profile import LLMProfileReport, profile_summary
from llm_perf_opt.io.convert import dump
from llm_perf_opt.io_utils import atomic_write_bytes, atomic_write_json, atomic_write_text, atomic_write_yaml
from llm_perf_opt.profiling.report_build import build_report, operator_summaries
from llm_perf_opt.profiling.state import ProfileState
from llm_perf_opt.reporting.profile_assumptions import render_assumptions
from llm_perf_opt.reporting.profile_operators import render_operators
from llm_perf_opt.reporting.profile_plot import render_stage_breakdown
from llm_perf_opt.reporting.profile_report import render_report
from llm_perf_opt.reporting.profile_summary import render_stakeholder_summary
from llm_perf_opt.reporting.profile_timeline_plot import render_roofline, render_timeline

ARTIFACTS: tuple[str, ...] = (
    "report.md",
    "operators.md",
    "metrics.json",
    "summary.json",
    "stakeholder_summary.md",
    "inputs.yaml",
    "env.json",
    "assumptions.md",
    "runs.jsonl",
    "stage_breakdown.png",
    "timeline.png",
    "roofline.png",
)


def inputs_document(state: ProfileState) -> dict[str, Any]:
    inputs = state.inputs
    return {
        "id": inputs.set_id,
        "root_dir": str(inputs.root_dir),
        "synthetic": inputs.synthetic,
        "count": len(inputs.pages),
        "images": [
            {
                "path": str(p.path),
                "width": p.width,
                "height": p.height,
                "category": p.category,
                "sha256": p.sha256,
                "mode": p.source_mode,
                "bytes": p.file_bytes,
            }
            for p in inputs.pages
        ],
        "skipped": [{"path": i.path, "problem": i.problem} for i in inputs.skipped],
        "converted": [{"path": i.path, "problem": i.problem} for i in inputs.converted],
    }


def _status(state: ProfileState) -> dict[str, Any]:
    """The run's status, added to every document artifact (an interrupted run says so in each file)."""
    status = "incomplete" if state.incomplete else "complete"
    return {"run_status": status, "incomplete_reason": state.incomplete_reason}


def write_runs(state: ProfileState) -> None:
    """Rewrite ``runs.jsonl`` with every record so far (atomic; called after each timed run).

    In an incomplete run's final write every record carries ``run_status`` / ``incomplete_reason``."""
    status = _status(state) if state.incomplete else {}
    lines = [json.dumps({**r.to_json(), **status}, allow_nan=False) for r in state.records]
    atomic_write_text(state.work_dir / "runs.jsonl", "".join(line + "\n" for line in lines))


def write_artifacts(state: ProfileState) -> LLMProfileReport | None:
    """Write all artifacts from the current state into the run's staging directory, then commit the set
    (renamed onto ``output_dir`` whole, marked incomplete when interrupted); returns the report (None if
    it could not be built)."""
    out = state.work_dir
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_yaml(out / "inputs.yaml", {**inputs_document(state), **_status(state)})
    atomic_write_json(out / "env.json", {**state.env, **_status(state)})
    write_runs(state)
    report: LLMProfileReport | None = None
    try:
        report = build_report(state, operator_summaries(state, state.config.top_k), notes="")
        report.notes = render_stakeholder_summary(state, report)
    except (ValueError, TypeError) as exc:  # a bug, but never lose the raw runs over it
        state.warnings.append(f"metrics.json not written: the report failed validation: {exc}")
    if report is not None:
        dump(report, out / "metrics.json")
        dump(profile_summary(report, top_n=state.config.top_k), out / "summary.json")
        atomic_write_text(out / "stakeholder_summary.md", report.notes)
    atomic_write_text(out / "operators.md", render_operators(state))
    banner = f"> **INCOMPLETE** — {state.incomplete_reason}\n\n" if state.incomplete else ""
    atomic_write_text(out / "assumptions.md", banner + render_assumptions(state))
    atomic_write_bytes(out / "stage_breakdown.png", render_stage_breakdown(state))
    atomic_write_bytes(out / "timeline.png", render_timeline(state))
    atomic_write_bytes(out / "roofline.png", render_roofline(state))
    atomic_write_text(out / "report.md", render_report(state, report))
    if state.artifacts is not None:
        state.artifacts.commit(incomplete_reason=state.incomplete_reason)
    return report
