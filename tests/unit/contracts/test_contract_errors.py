"""Every way a file can be bad ends as one UserError line naming the file and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_perf_opt.contracts.models import (
    DeepSeekOCRAnalyticModel,
    LLMProfileReportSummary,
    OCRWorkloadProfile,
    Stats,
)
from llm_perf_opt.errors import UserError
from llm_perf_opt.io.convert import MAX_PROBLEMS, dump, load


def _load_error(path: Path, cls: type) -> str:
    with pytest.raises(UserError) as info:
        load(path, cls)
    message = str(info.value)
    assert "\n" not in message, message
    assert message.startswith(f"{path}: "), message
    return message


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        ("bad.json", '{"mean": 1,', "not valid JSON: Expecting property name enclosed in double quotes at line 1"),
        ("bad.yaml", "mean: [1,\n  std: 2\n", "not valid YAML: "),
        ("list.json", "[1, 2]", "expected a mapping of Stats fields, got list"),
        ("scalar.yaml", "3\n", "expected a mapping of Stats fields, got int"),
        ("empty.yaml", "", "expected a mapping of Stats fields, got nothing (empty document)"),
        ("neg.json", '{"mean": 1, "std": -2}', "invalid Stats: std must be >= 0, got -2.0 @ $"),
        ("type.yml", "mean: fast\nstd: 1\n", "invalid Stats: expected a number, got 'fast' @ $.mean"),
        ("extra.json", '{"mean": 1, "std": 0, "median": 1}', "invalid Stats: unknown field(s) median @ $"),
    ],
)
def test_malformed_files(tmp_path: Path, name: str, text: str, problem: str) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    assert problem in _load_error(path, Stats)


def test_missing_file_and_unknown_suffix(tmp_path: Path) -> None:
    assert _load_error(tmp_path / "nope.json", Stats).endswith("file does not exist")
    txt = tmp_path / "stats.txt"
    txt.write_text("{}", encoding="utf-8")
    assert "unknown file type '.txt'" in _load_error(txt, Stats)
    with pytest.raises(UserError, match="unknown file type"):
        dump(Stats(mean=1, std=0), tmp_path / "out.toml")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin.yaml"
    path.write_bytes(b"mean: \xff\n")
    assert "cannot read" in _load_error(path, Stats)


def test_nested_problems_name_their_path(tmp_path: Path) -> None:
    path = tmp_path / "summary.yaml"
    path.write_text(
        "run_id: r\nmfu_model_level: 0.3\nmfu_per_stage: {prefill: 2.0}\n"
        "top_operators:\n- {op_name: mm, total_time_ms: 1, cuda_time_ms: -1, calls: 1}\n"
        "aggregates: {t: {mean: 1}}\n",
        encoding="utf-8",
    )
    message = _load_error(path, LLMProfileReportSummary)
    assert "cuda_time_ms must be >= 0, got -1.0 @ $.top_operators[0]" in message
    assert "required field missing @ $.aggregates['t'].std" in message


def test_long_error_lists_are_capped(tmp_path: Path) -> None:
    path = tmp_path / "workload.json"
    path.write_text("{}", encoding="utf-8")  # all nine required fields missing
    message = _load_error(path, OCRWorkloadProfile)
    assert message.count("required field missing") == MAX_PROBLEMS
    assert message.endswith(f"and {9 - MAX_PROBLEMS} more")


def test_model_validation_error_from_file(tmp_path: Path) -> None:
    from contract_samples import make_samples, node

    model = make_samples()[DeepSeekOCRAnalyticModel]
    path = dump(model, tmp_path / "model.json")
    assert load(path, DeepSeekOCRAnalyticModel) == model
    model.modules.append(node("vision"))  # lists are mutable; the file is where it gets caught
    dump(model, path)
    assert _load_error(path, DeepSeekOCRAnalyticModel).endswith("duplicate module_id 'vision' @ $")
