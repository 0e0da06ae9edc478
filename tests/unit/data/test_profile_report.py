"""Domain models of a profiling run: validation, file round trips, and the contract summary."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import attrs
import pytest
import yaml
from profile_samples import RUN_ID, make_report, op

from llm_perf_opt.contracts.models import LLMProfileReportSummary
from llm_perf_opt.data.profile import InputImage, InputSet, LLMProfileReport, RunMeta, StageTiming, profile_summary
from llm_perf_opt.errors import UserError
from llm_perf_opt.io.convert import dump, from_json, from_yaml, load, to_json, to_yaml


def _default_of(attribute: attrs.Attribute[Any]) -> Any:
    default = attribute.default
    return default.factory() if isinstance(default, attrs.Factory) else default  # type: ignore[arg-type]


def test_sample_sets_every_optional_field() -> None:
    report = make_report()
    for obj in (report, report.model, report.meta):
        same = [
            a.name
            for a in attrs.fields(type(obj))
            if a.default is not attrs.NOTHING and getattr(obj, a.name) == _default_of(a)
        ]
        assert not same, f"{type(obj).__name__} leaves {same} at defaults"


def test_round_trip_json_and_yaml() -> None:
    report = make_report()
    assert from_json(to_json(report), LLMProfileReport) == report
    assert from_yaml(to_yaml(report), LLMProfileReport) == report


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_file_round_trip_keeps_datetime(tmp_path: Path, suffix: str) -> None:
    report = make_report()
    back = load(dump(report, tmp_path / f"metrics{suffix}"), LLMProfileReport)
    assert back == report
    assert back.meta.created_at == report.meta.created_at and back.meta.created_at.tzinfo is not None


def test_created_at_is_iso8601_in_files() -> None:
    data = yaml.safe_load(to_yaml(make_report()))
    assert data["meta"]["created_at"] == "2025-01-02T03:04:05.678901+00:00"


def test_unquoted_yaml_timestamp_is_accepted() -> None:
    text = to_yaml(make_report()).replace("'2025-01-02T03:04:05.678901+00:00'", "2025-01-02 03:04:05+00:00")
    assert isinstance(from_yaml(text, LLMProfileReport).meta.created_at, datetime)


def _bad(**changes: Any) -> None:
    attrs.evolve(make_report(), **changes)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: StageTiming(stage="decode", elapsed_ms=0), "elapsed_ms must be > 0"),
        (lambda: StageTiming(stage="decode", elapsed_ms=1, tokens=-1), "tokens must be >= 0"),
        (lambda: StageTiming(stage="decode", elapsed_ms=1, throughput_toks_per_s=-1), "throughput_toks_per_s must"),
        (lambda: StageTiming(stage="warmup", elapsed_ms=1), "stage must be one of"),
        (lambda: InputImage(path="pages/a.png", width=1, height=1), "path must be an absolute path"),
        (lambda: InputImage(path="/a.png", width=0, height=1), "width must be >= 1"),
        (lambda: InputSet(id="s", root_dir="/d", count=0, images=[]), "count must be >= 1"),
        (
            lambda: InputSet(id="s", root_dir="d", count=1, images=[InputImage(path="/a", width=1, height=1)]),
            "root_dir must be an absolute path",
        ),
        (
            lambda: InputSet(id="s", root_dir="/d", count=2, images=[InputImage(path="/a", width=1, height=1)]),
            "count is 2 but it lists 1 images",
        ),
        (lambda: attrs.evolve(make_report().meta, repo_root="."), "repo_root must be an absolute path"),
        (lambda: attrs.evolve(make_report().meta, created_at="2025-01-01"), "created_at"),
        (lambda: _bad(mfu_model_level=1.51), "mfu_model_level must be <= 1.5"),
        (lambda: _bad(mfu_per_stage={"decode": 2}), r"mfu_per_stage\['decode'\] must be <= 1.5"),
        (lambda: _bad(bandwidth_utilization={"decode": -0.1}), "bandwidth_utilization"),
        (lambda: _bad(operators_topk=[op("a", 1), op("b", 2)]), "operators_topk must be sorted"),
        (lambda: _bad(operators_per_stage={"decode": [op("a", 1), op("b", 2)]}), r"operators_per_stage\['decode'\]"),
        (lambda: _bad(operators_per_stage={"warmup": []}), "key 'warmup' is not one of"),
        (lambda: _bad(run_id="other"), "differs from meta.run_id"),
        (
            lambda: _bad(timings=[StageTiming(stage="decode", elapsed_ms=1)] * 2),
            r"duplicate timing \(stage#repeat\) 'decode#None'",
        ),
        (lambda: _bad(analytic={"x": float("inf")}), "must be finite"),
        (lambda: _bad(model="deepseek-ocr"), "'model' must be"),
    ],
)
def test_validation(build: Any, message: str) -> None:
    with pytest.raises((TypeError, ValueError), match=message):
        build()


def test_equal_times_may_tie_in_sorted_lists() -> None:
    assert make_report().operators_topk[1].total_time_ms == make_report().operators_topk[2].total_time_ms


def test_timing_lookup() -> None:
    report = make_report()
    decode = report.timing("decode")
    assert decode is not None and decode.elapsed_ms == 2400.0
    first = report.timing("decode", repeat=0)
    assert first is not None and first.elapsed_ms == 2410.5
    assert report.timing("vision") is None


def test_relative_path_in_file_is_a_user_error(tmp_path: Path) -> None:
    path = dump(make_report(), tmp_path / "metrics.json")
    path.write_text(path.read_text(encoding="utf-8").replace('"/data/pages/b.png"', '"b.png"'), encoding="utf-8")
    with pytest.raises(UserError) as info:
        load(path, LLMProfileReport)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: invalid LLMProfileReport: ")
    assert "path must be an absolute path, got 'b.png' @ $.input_set.images[1]" in message


def test_profile_summary() -> None:
    report = make_report()
    summary = profile_summary(report, top_n=2)
    assert isinstance(summary, LLMProfileReportSummary)
    assert summary.run_id == RUN_ID
    assert summary.top_operators == report.operators_topk[:2]
    assert summary.mfu_per_stage == report.mfu_per_stage
    assert summary.aggregates == report.aggregates
    assert (summary.notes, summary.incomplete, summary.warnings) == (report.notes, True, report.warnings)
    assert len(profile_summary(report).top_operators) == 3
    # The summary is a copy: editing it leaves the report alone.
    summary.top_operators[0].calls = 99
    summary.mfu_per_stage["decode"] = 0.5
    summary.warnings.append("x")
    assert report.operators_topk[0].calls == 4
    assert report.mfu_per_stage["decode"] == 0.02
    assert len(report.warnings) == 1


def test_summary_round_trips() -> None:
    summary = profile_summary(make_report())
    assert from_yaml(to_yaml(summary), LLMProfileReportSummary) == summary


def test_run_meta_accepts_naive_datetime() -> None:
    meta = attrs.evolve(make_report().meta, created_at=datetime(2025, 1, 1, 12, 0))
    assert from_json(to_json(meta), RunMeta) == meta
