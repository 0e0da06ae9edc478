"""Write a report's files so that a failure never leaves a partial report behind.

Every text is rendered in memory first; the files are then written into a private temporary
directory next to ``out_dir`` and moved into place one by one with ``os.replace`` (atomic per
file), ``report.json`` LAST and after removing any older one: a ``report.json`` in ``out_dir``
means the other files of the same report are there too. The temporary directory is removed whatever happens.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from llm_perf_opt.analytic.layer_pages import layer_pages
from llm_perf_opt.contracts.analytic import DeepSeekOCRAnalyticReportSummary
from llm_perf_opt.contracts.convert import unstructure
from llm_perf_opt.data.analytic_report import AnalyticModelReport
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


def write_report_files(
    report: AnalyticModelReport, out_dir: Path, summary: DeepSeekOCRAnalyticReportSummary
) -> list[Path]:
    """Render, stage in a temp dir, move into ``out_dir`` (report.json last); returns the written paths."""
    files = render_files(report, summary)
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    try:
        for rel, text in files.items():
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        (out_dir / "layers").mkdir(parents=True, exist_ok=True)
        (out_dir / "report.json").unlink(missing_ok=True)  # an older report must not pose as this one
        written = []
        for rel in files:
            target = out_dir / rel
            os.replace(staging / rel, target)
            written.append(target)
        keep = {p.name for p in written if p.parent.name == "layers"}
        for stale in (out_dir / "layers").glob("*.md"):
            if stale.name not in keep:
                stale.unlink()
        return written
    finally:
        shutil.rmtree(staging, ignore_errors=True)
