"""Write a report's files as one artifact set: all of them from this report, or none.

Every text is rendered in memory first, then written into the staging directory of an
:class:`~llm_perf_opt.io.artifact_set.ArtifactSet` beside ``out_dir``, which is renamed onto
``out_dir`` in one step (a previous report there is replaced whole, with its ``layers/`` and any
what-if outputs under it). A failure or Ctrl-C before that leaves the previous set untouched.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from llm_perf_opt.analytic.layer_pages import layer_pages
from llm_perf_opt.contracts.analytic import DeepSeekOCRAnalyticReportSummary
from llm_perf_opt.data.analytic_report import AnalyticModelReport
from llm_perf_opt.io.artifact_set import ArtifactSet
from llm_perf_opt.io.convert import unstructure
from llm_perf_opt.reporting.analytic_markdown import render_layer_pages, render_report_md

_Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _json(data: Any) -> str:
    return json.dumps(data, indent=2, allow_nan=False, ensure_ascii=False) + "\n"


def render_files(report: AnalyticModelReport, summary: DeepSeekOCRAnalyticReportSummary) -> dict[str, str]:
    """Relative path → text of every file, ``report.json`` last."""
    data = unstructure(report)
    pages = layer_pages(report)
    files = {
        "report.yaml": yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True),
        "summary.json": _json(unstructure(summary)),
        "report.md": render_report_md(report, pages),
    }
    for name, text in sorted(render_layer_pages(report, pages).items()):
        files[f"layers/{name}.md"] = text
    files["report.json"] = _json(data)
    return files


def write_files(files: dict[str, str], directory: Path) -> list[Path]:
    """Write rendered ``files`` (relative path → text) into ``directory`` (a staging directory)."""
    written = []
    for rel, text in files.items():
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def write_report_files(
    report: AnalyticModelReport, out_dir: Path, summary: DeepSeekOCRAnalyticReportSummary
) -> list[Path]:
    """Render, stage beside ``out_dir``, rename into place as one set; returns the final paths."""
    files = render_files(report, summary)
    with ArtifactSet(out_dir, kind="analyze", run_id=report.report_id) as artifacts:
        write_files(files, artifacts.work_dir)
        target = artifacts.commit()
    return [target / rel for rel in files]
