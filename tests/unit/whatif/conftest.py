"""Analytic reports written to disk once per session, as ``analyze`` writes them."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_perf_opt.analytic import api
from llm_perf_opt.data.analytic_report import AnalyticModelReport
from llm_perf_opt.hardware.table import load_hardware
from llm_perf_opt.specs.model_spec import MODEL_REGISTRY
from llm_perf_opt.specs.workload import WORKLOAD_PROFILES
from llm_perf_opt.whatif import load_report


def write_report(out: Path, model: str = "deepseek-ocr", hardware: str = "h100-sxm", **work: object) -> Path:
    workload = WORKLOAD_PROFILES["dsocr-standard-v1"]
    if work:
        workload = workload.replace(**work)
    report = api.build_report(MODEL_REGISTRY[model], workload, load_hardware(hardware), report_id=out.name)
    api.write_report(report, out)
    return out / "report.json"


@pytest.fixture(scope="session")
def ocr_report_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """DeepSeek-OCR, dsocr-standard-v1 (Gundam, A4 at 200 dpi, 512 new tokens), H100 SXM."""
    return write_report(tmp_path_factory.mktemp("reports") / "ocr")


@pytest.fixture(scope="session")
def ocr_report(ocr_report_path: Path) -> AnalyticModelReport:
    return load_report(ocr_report_path)


@pytest.fixture(scope="session")
def tiny_report_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny variant, batch 3 of 7 pages, on an RTX 5090."""
    return write_report(tmp_path_factory.mktemp("reports") / "tiny", model="tiny", hardware="rtx5090",
                        batch_size=3, num_pages=7, max_new_tokens=64)
