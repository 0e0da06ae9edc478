"""validate: the plan, real tiny-model profile runs with resume, and the table's counts for hand-set errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import validate_config

from llm_perf_opt.cli import cli
from llm_perf_opt.errors import UserError
from llm_perf_opt.experiments.validate import PAGE_WORKLOADS, ValidateConfig, plan, run_validate
from llm_perf_opt.experiments.validate_table import stage_counts, table_for
from llm_perf_opt.hardware.table import load_hardware

RECORD_COLUMN = {"sam": "sam_ms", "clip": "clip_ms", "vision": "vision_ms", "projector": "projector_ms",
                 "prefill_decoder": "prefill_decoder_ms", "prefill": "prefill_ms", "decode": "decode_ms",
                 "total": "total_ms"}


def test_default_plan_covers_each_axis() -> None:
    entries = plan(ValidateConfig(out=Path("unused")))
    keys = [e.key for e in entries]
    assert len(keys) == len(set(keys)) == 26 + 6  # graph: 6·2 + 2 + 4·2 + 2·2; eager: 6
    graph = [e for e in entries if e.execution == "graph"]
    assert graph[0].id == "base-b1-n256" and keys.index("eager/base-b1-n256") == 26  # calibration first
    assert {(e.workload, e.batch) for e in graph if e.tokens == 256} >= {(w, b) for w in PAGE_WORKLOADS for b in (1, 8)}
    assert {e.batch for e in graph} == {1, 4, 8} and {e.tokens for e in graph} == {64, 256, 1024}
    assert {e.workload for e in graph if e.tokens == 1024 and e.batch == 1} == {"tiny", "base", "gundam-a4",
                                                                               "gundam-wide"}
    assert {e.page_size for e in graph if e.workload.startswith("gundam")} == {(1654, 2339), (2000, 1000)}


def test_runs_are_written_and_a_second_call_resumes(matrix_dir: Path) -> None:
    status = json.loads((matrix_dir / "plan.json").read_text(encoding="utf-8"))
    assert [(e["id"], e["status"]) for e in status["entries"]] == [("tiny-b1-n3", "done"), ("base-b1-n2", "done")]
    metrics = matrix_dir / "runs" / "eager" / "tiny-b1-n3" / "metrics.json"
    stamp = metrics.stat().st_mtime_ns
    again = run_validate(validate_config(matrix_dir))
    assert [e["status"] for e in again["entries"]] == ["done", "done"]
    assert metrics.stat().st_mtime_ns == stamp  # not measured again
    records = [json.loads(x) for x in (metrics.parent / "runs.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {r["new_tokens"] for r in records} == {3} and len(records) == 3  # 3 built-in pages × 1 repeat


def _set_measurements(run: Path, values: dict[str, float]) -> None:
    lines = []
    for line in (run / "runs.jsonl").read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        rec.update({RECORD_COLUMN[stage]: v for stage, v in values.items()})
        lines.append(json.dumps(rec))
    (run / "runs.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_table_counts_follow_hand_set_errors(matrix_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(matrix_dir / "runs", root / "runs")
    eager, hw = root / "runs" / "eager", load_hardware("h100-sxm")
    first = table_for(eager, calibrate_on="tiny-b1-n3", hardware=hw)
    pred = {r["stage"]: r for r in first["rows"] if r["run"] == "base-b1-n2"}
    assert set(pred) == set(RECORD_COLUMN) and all(r["held_out"] for r in pred.values())
    assert not any(r["held_out"] for r in first["rows"] if r["run"] == "tiny-b1-n3")
    # Measured = calibrated prediction / (1 + e): the calibrated error becomes e exactly.
    errors = {"sam": 0.05, "clip": -0.08, "vision": 0.20, "projector": -0.25, "prefill_decoder": 0.50,
              "prefill": -0.40, "decode": 0.09, "total": 0.31}
    measured = {s: pred[s]["calibrated_ms"] / (1 + e) for s, e in errors.items()}
    _set_measurements(eager / "base-b1-n2", measured)
    second = table_for(eager, calibrate_on="tiny-b1-n3", hardware=hw)
    assert second["fit"] == first["fit"]  # held-out measurements never move the calibration
    rows = {r["stage"]: r for r in second["rows"] if r["run"] == "base-b1-n2"}
    for stage, e in errors.items():
        assert rows[stage]["error_calibrated"] == pytest.approx(e)
    uncal = {s: pred[s]["uncalibrated_ms"] / measured[s] - 1 for s in errors}
    counts = {c["stage"]: c for c in second["counts"]}
    assert counts["all"]["cells"] == 8
    assert counts["all"]["calibrated_within_10"] == 3  # sam, clip, decode
    assert counts["all"]["calibrated_within_30"] == 5  # + vision, projector
    assert counts["all"]["uncalibrated_within_10"] == sum(abs(v) <= 0.10 for v in uncal.values())
    assert counts["all"]["uncalibrated_within_30"] == sum(abs(v) <= 0.30 for v in uncal.values())
    u = abs(uncal["decode"])
    assert counts["decode"] == {"stage": "decode", "cells": 1, "uncalibrated_within_10": int(u <= 0.1),
                                "calibrated_within_10": 1, "uncalibrated_within_30": int(u <= 0.3),
                                "calibrated_within_30": 1}


def test_stage_counts_on_hand_made_rows() -> None:
    def row(stage: str, cal: float, uncal: float, held_out: bool = True) -> dict[str, Any]:
        return {"stage": stage, "error_calibrated": cal, "error_uncalibrated": uncal, "held_out": held_out}

    rows = [row("decode", 0.10, 0.31), row("decode", -0.29, -0.30), row("sam", 0.5, 0.05), row("sam", 0, 0, False)]
    counts = {c["stage"]: c for c in stage_counts(rows)}
    assert counts["decode"] == {"stage": "decode", "cells": 2, "uncalibrated_within_10": 0, "calibrated_within_10": 1,
                                "uncalibrated_within_30": 1, "calibrated_within_30": 2}
    assert counts["sam"]["cells"] == 1 and counts["all"]["cells"] == 3


def test_offline_table_from_the_cli(matrix_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "offline"
    shutil.copytree(matrix_dir / "runs", root / "runs")
    bad = root / "runs" / "eager" / "base-b1-n2" / "metrics.json"
    data = json.loads(bad.read_text(encoding="utf-8"))
    bad.write_text(json.dumps({**data, "incomplete": True}), encoding="utf-8")
    res = CliRunner().invoke(cli, ["experiment", "validate", "--out", str(root), "--offline", "--hardware",
                                   "h100-sxm", "--calibrate-on", "tiny-b1-n3", "--quiet"])
    assert res.exit_code == 0, res.output
    table = json.loads((root / "validation.json").read_text(encoding="utf-8"))
    assert table["executions"]["eager"]["not_used"] == ["eager/base-b1-n2: incomplete or unfinished (not used)"]
    assert "## eager mode (calibrated on `tiny-b1-n3`" in (root / "validation.md").read_text(encoding="utf-8")


def test_offline_table_of_runs_that_name_a_checkpoint_directory_gone_here(
    matrix_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Official-code runs name the checkpoint directory they ran from; --model stands in for its spec."""
    monkeypatch.chdir(tmp_path)  # the relative checkpoint path resolves here, where it never exists
    root = tmp_path / "moved"
    shutil.copytree(matrix_dir / "runs", root / "runs")
    for metrics in (root / "runs" / "eager").glob("*/metrics.json"):
        data = json.loads(metrics.read_text(encoding="utf-8"))
        data["model"].update(id="/machine/gone/official-code", model_path="official-code")
        metrics.write_text(json.dumps(data), encoding="utf-8")
    eager, hw = root / "runs" / "eager", load_hardware("h100-sxm")
    with pytest.raises(UserError, match=r"calibration run cannot be read: .*cannot rebuild the model spec"):
        table_for(eager, calibrate_on="tiny-b1-n3", hardware=hw)
    args = ["experiment", "validate", "--out", str(root), "--offline", "--hardware", "h100-sxm", "--calibrate-on",
            "tiny-b1-n3", "--quiet"]
    res = CliRunner().invoke(cli, args)  # not the default --model (the full-size spec): one line naming the run
    assert res.exit_code == 2 and res.output.count("\n") == 1 and "tiny-b1-n3: " in res.output, res.output
    assert "pass --model" in res.output
    res = CliRunner().invoke(cli, [*args, "--model", "tiny"])
    assert res.exit_code == 0, res.output
    moved = json.loads((root / "validation.json").read_text(encoding="utf-8"))["executions"]["eager"]
    named = table_for(matrix_dir / "runs" / "eager", calibrate_on="tiny-b1-n3", hardware=hw)
    assert moved["rows"] == named["rows"] and moved["not_used"] == []  # as if the runs named their spec


def test_validate_input_errors_are_one_line(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["experiment", "validate", "--out", str(tmp_path), "--offline"])
    assert res.exit_code == 2 and res.output.count("\n") == 1 and "has no runs/ directory" in res.output
    res = CliRunner().invoke(cli, ["experiment", "validate", "--out", str(tmp_path), "--list", "--calibrate-on", "x"])
    assert res.exit_code == 2 and res.output.count("\n") == 1 and "--calibrate-on 'x'" in res.output
    res = CliRunner().invoke(cli, ["experiment", "validate", "--out", str(tmp_path), "--list", "--workloads", "huge"])
    assert res.exit_code == 2 and "--workloads huge" in res.output
