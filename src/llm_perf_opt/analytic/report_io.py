"""Read an analytic report back (what-if, notebooks), with one clear error for each way a file can be wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llm_perf_opt.data.analytic_report import SCHEMA_VERSION, AnalyticModelReport
from llm_perf_opt.errors import UserError
from llm_perf_opt.io.documents import load_document
from llm_perf_opt.io.files import MAX_REPORT_BYTES

_SCHEMA_FAMILY = SCHEMA_VERSION.rsplit("/", 1)[0] + "/"


def resolve_report_path(path: str | Path) -> Path:
    """``report.json`` / ``report.yaml``, or a directory holding ``report.json``."""
    p = Path(path)
    if p.is_dir():
        candidate = p / "report.json"
        if not candidate.is_file():
            raise UserError(f"report directory {p} has no report.json")
        return candidate
    if not p.exists():
        raise UserError(f"report file {p} does not exist")
    if p.suffix.lower() not in (".json", ".yaml", ".yml"):
        raise UserError(f"report file {p} must be .json, .yaml or .yml (an AnalyticModelReport from analyze)")
    return p


def _parse(path: Path) -> Any:
    # The package's one reader: regular file, size-capped, no YAML aliases, no NaN in JSON.
    return load_document(path, "report file", max_bytes=MAX_REPORT_BYTES)


def check_report_data(data: Any, source: str) -> None:
    """A UserError unless ``data`` looks like an AnalyticModelReport of this schema version."""
    version = data.get("schema_version") if isinstance(data, dict) else None
    if not isinstance(version, str) or not version.startswith(_SCHEMA_FAMILY):
        what = f"schema_version {version!r}" if version is not None else "no schema_version"
        raise UserError(
            f"{source} is not an AnalyticModelReport ({what}; expected {SCHEMA_VERSION!r}); "
            "pass the report.json or report.yaml written by 'llm-perf-opt analyze'"
        )
    if version != SCHEMA_VERSION:
        raise UserError(
            f"{source} is an AnalyticModelReport of schema version {version!r}, but this version of "
            f"llm-perf-opt reads {SCHEMA_VERSION!r}; re-run 'llm-perf-opt analyze' to regenerate it"
        )


def load_report(path: str | Path) -> AnalyticModelReport:
    """Load ``report.json`` / ``report.yaml`` (or a directory with report.json) as an AnalyticModelReport.

    Every failure — missing file, malformed JSON/YAML, another kind of file, another schema
    version, fields that do not validate — is one :class:`UserError` line naming the file.
    """
    from llm_perf_opt.io.convert import structure

    p = resolve_report_path(path)
    data = _parse(p)
    check_report_data(data, str(p))
    return structure(data, AnalyticModelReport, source=str(p))
