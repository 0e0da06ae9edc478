"""whatif.csv / whatif.json, the terminal table, the plots, the API example, and import hygiene."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from rich.console import Console

import llm_perf_opt.whatif as whatif_pkg
from llm_perf_opt.data.analytic_report import AnalyticModelReport
from llm_perf_opt.whatif import evaluate
from llm_perf_opt.whatif.outputs import json_document, render_table, write_outputs

SWEEPS = {"hardware": "h100-sxm,h200", "batch_size": [1, 8, 32]}


def test_csv_and_json_files(ocr_report: AnalyticModelReport, tmp_path: Path) -> None:
    rows = evaluate(ocr_report, {"dtype": "fp8"}, SWEEPS)
    doc = json_document(rows, ocr_report, report_path="r.json", overrides={"dtype": "fp8"}, sweeps=SWEEPS)
    paths = write_outputs(rows, doc, tmp_path / "out")
    assert [p.name for p in paths] == ["whatif.csv", "whatif.json"]
    records = list(csv.DictReader(io.StringIO(paths[0].read_text())))
    assert len(records) == 6
    assert list(records[0])[:3] == ["dtype", "hardware", "batch_size"]
    for col in ("vision_ms", "projector_ms", "prefill_ms", "decode_ms", "latency_ms", "ms_per_page", "pages_per_s",
                "tokens_per_s", "memory_gb", "device_memory_gb", "fits", "max_batch", "decode_bound"):
        assert col in records[0], col
    assert float(records[4]["latency_ms"]) == rows[4].latency_ms  # repr round-trips exactly
    data = json.loads(paths[1].read_text())
    assert data["schema_version"] == "llm-perf-opt.whatif/1" and data["report_id"] == ocr_report.report_id
    assert data["overrides"] == {"dtype": "fp8"}
    assert data["sweeps"] == {"hardware": ["h100-sxm", "h200"], "batch_size": [1, 8, 32]}
    assert data["rows"] == [r.to_dict() for r in rows] and "latency_ms" in data["semantics"]
    assert not list((tmp_path / "out").glob("*.tmp"))


def test_table_lists_rows_and_says_what_is_hidden(ocr_report: AnalyticModelReport) -> None:
    rows = evaluate(ocr_report, sweeps=SWEEPS)
    console = Console(width=220, record=True, file=io.StringIO())
    console.print(render_table(rows, title="t", max_rows=4))
    text = console.export_text()
    assert "h200" in text and "showing 4 of 6 rows" in text and "max B" in text
    console = Console(width=220, record=True, file=io.StringIO())
    console.print(render_table(rows, title="t", max_rows=0))
    assert "showing" not in console.export_text()


def test_plots(ocr_report: AnalyticModelReport, tmp_path: Path) -> None:
    from llm_perf_opt.whatif.plots import write_plots

    rows = evaluate(ocr_report, sweeps={"page_size": "640x640,1654x2339", **SWEEPS})
    paths = write_plots(rows, tmp_path, ["page_size", *SWEEPS])
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in write_plots(evaluate(ocr_report), tmp_path / "one", [])] == [
        "whatif_latency.png", "whatif_stages.png"]


def test_whatif_imports_no_torch_numpy_or_matplotlib(ocr_report_path: Path) -> None:
    code = (
        "import sys\n"
        "from llm_perf_opt.cli import cli\n"
        f"cli(['what-if', '--report', {str(ocr_report_path)!r}, '--sweep', 'batch_size=1,2', '--format', 'csv'],"
        " standalone_mode=False)\n"
        "heavy = [m for m in ('torch', 'numpy', 'matplotlib') if m in sys.modules]\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in proc.stderr, proc.stderr


def _example(text: str) -> str:
    """The indented block after the first '::' of a docstring."""
    block = text.split("::\n", 1)[1]
    lines = []
    for line in block.splitlines():
        if line.strip() and not line.startswith("    "):
            break
        lines.append(line)
    return textwrap.dedent("\n".join(lines))


def _run_example(code: str, report_path: Path) -> str:
    code = code.replace("tmp/profile-output/RUN/static_analysis/analytic_model/report.json", str(report_path))
    out = io.StringIO()
    stdout, sys.stdout = sys.stdout, out
    try:
        exec(compile(code, "<api example>", "exec"), {})
    finally:
        sys.stdout = stdout
    return out.getvalue()


def test_api_example_in_the_package_docstring_runs(ocr_report_path: Path) -> None:
    printed = _run_example(_example(whatif_pkg.__doc__ or ""), ocr_report_path)
    lines = printed.splitlines()
    assert len(lines) == 6 and lines[0].startswith("h100-sxm 1 ") and lines[-1].startswith("h200 32 ")


def test_api_example_in_the_readme_runs(ocr_report_path: Path) -> None:
    readme = Path(__file__).resolve().parents[3] / "README.md"
    blocks = re.findall(r"```python\n(.*?)```", readme.read_text(encoding="utf-8"), flags=re.S)
    examples = [b for b in blocks if "from llm_perf_opt.whatif import" in b]
    assert examples, "README.md must document the what-if Python API with a runnable example"
    for code in examples:
        assert _run_example(code, ocr_report_path).strip()
