"""Loading a report for what-if: one clear error for each kind of wrong file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llm_perf_opt.errors import UserError
from llm_perf_opt.whatif import load_report


def test_json_yaml_and_directory_load_the_same_report(ocr_report_path: Path) -> None:
    from_json = load_report(ocr_report_path)
    assert load_report(ocr_report_path.with_name("report.yaml")) == from_json
    assert load_report(ocr_report_path.parent) == from_json
    assert from_json.inputs.hardware.id == "h100-sxm"


OLD_SCHEMA = "llm-perf-opt.analytic-report/0"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _data(ocr_report_path: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads(ocr_report_path.read_text())
    return data


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda t, r: t / "nope.json", "report file .*nope.json does not exist"),
        (lambda t, r: t, "report directory .* has no report.json"),
        (lambda t, r: _write(t, "report.txt", "{}"), "must be .json, .yaml or .yml"),
        (lambda t, r: _write(t, "report.json", "{not json"), "report.json: not valid JSON"),
        (lambda t, r: _write(t, "report.yaml", "a: [1,"), "report.yaml: not valid YAML"),
        (lambda t, r: _write(t, "list.json", "[1, 2]"), "is not an AnalyticModelReport \\(no schema_version"),
        (lambda t, r: r.with_name("summary.json"), "is not an AnalyticModelReport \\(no schema_version"),
        (lambda t, r: _write(t, "p.json", json.dumps({"schema_version": "llm-perf-opt.profile-report/1"})),
         "is not an AnalyticModelReport \\(schema_version 'llm-perf-opt.profile-report/1'"),
        (lambda t, r: _write(t, "old.json", json.dumps({**_data(r), "schema_version": OLD_SCHEMA})),
         "schema version 'llm-perf-opt.analytic-report/0'.*re-run 'llm-perf-opt analyze'"),
        (lambda t, r: _write(t, "broken.json", json.dumps({k: v for k, v in _data(r).items() if k != "inputs"})),
         "invalid AnalyticModelReport: required field missing @ \\$.inputs"),
    ],
)
def test_bad_report_files(tmp_path: Path, ocr_report_path: Path, make: object, needle: str) -> None:
    path = make(tmp_path, ocr_report_path)  # type: ignore[operator]
    with pytest.raises(UserError, match=needle) as err:
        load_report(path)
    assert "\n" not in str(err.value)
