"""The GPU scripts are thin entry points: each hands its arguments to its ``llm-perf-opt experiment`` command."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[3] / "scripts"


def run_script(name: str, argv: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(sys, "argv", [str(SCRIPTS / name), *argv])
    monkeypatch.syspath_prepend(str(SCRIPTS))
    with pytest.raises(SystemExit) as exc:
        runpy.run_path(str(SCRIPTS / name), run_name="__main__")
    return int(exc.value.code or 0)


def test_validation_script_lists_the_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_script("gpu_validation.py", ["--out", str(tmp_path), "--list"], monkeypatch) == 0
    lines = capsys.readouterr().out.split()
    assert lines[0] == "graph/base-b1-n256" and len(lines) == 32


def test_table_script_is_the_offline_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_script("make_validation_table.py", ["--out", str(tmp_path)], monkeypatch) == 2
    assert "has no runs/ directory" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("script", "command"),
    [
        ("gpu_decode_bench.py", "decode-bench"),
        ("gpu_model_e2e.py", "e2e"),
        ("bench_decode_vs_transformers.py", "decode-vs-hf"),
    ],
)
def test_other_scripts_reach_their_command(
    script: str, command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_script(script, ["--help"], monkeypatch) == 0
    assert f"llm-perf-opt experiment {command}" in capsys.readouterr().out
    assert all(len(p.read_text(encoding="utf-8").splitlines()) < 400 for p in SCRIPTS.glob("*.py"))


def test_stage_table_puts_runs_side_by_side(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:

    for name, sam in (("a", 12.5), ("b", 30.0)):
        (tmp_path / name).mkdir()
        aggregates = {"sam_ms": {"p50": sam, "mean": sam + 1}, "tpot_ms": {"p50": 1.0, "mean": 1.0}}
        (tmp_path / name / "metrics.json").write_text(json.dumps({"aggregates": aggregates}))
    argv = [f"official={tmp_path / 'a'}", f"ours={tmp_path / 'b'}"]
    assert run_script("stage_table.py", argv, monkeypatch) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "| stage | official p50 (mean) | ours p50 (mean) |"
    assert "| SAM | 12.50 (13.50) | 30.00 (31.00) |" in out and "| CLIP | — | — |" in out
    monkeypatch.setattr(sys, "argv", ["stage_table.py", f"x={tmp_path / 'missing'}"])
    with pytest.raises(SystemExit) as exc:  # one line naming the run directory, not a traceback
        runpy.run_path(str(SCRIPTS / "stage_table.py"), run_name="__main__")
    assert "missing: no readable metrics.json aggregates" in str(exc.value.code)


def _validation_json(path: Path, cells: dict[tuple[str, str], tuple[float, float, bool]]) -> Path:
    rows = [
        {"run": run, "stage": stage, "measured_ms": ms, "error_calibrated": err, "held_out": held}
        for (run, stage), (ms, err, held) in cells.items()
    ]
    path.write_text(json.dumps({"executions": {"graph": {"rows": rows}}}), encoding="utf-8")
    return path


def test_validation_sets_compare_per_stage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Set B measures run r1 10% slower and r2 unchanged; r0 is the calibration run (not held out), r3 is in A only.
    a = _validation_json(
        tmp_path / "a.json",
        {
            ("r0", "sam"): (1.0, 0.0, False),
            ("r1", "sam"): (2.0, 0.05, True),
            ("r2", "sam"): (4.0, 0.20, True),
            ("r3", "sam"): (8.0, 0.0, True),
        },
    )
    b = _validation_json(
        tmp_path / "b.json",
        {("r0", "sam"): (1.0, 0.0, False), ("r1", "sam"): (2.2, -0.12, True), ("r2", "sam"): (4.0, 0.08, True)},
    )
    assert run_script("compare_validation_sets.py", [str(a), str(b)], monkeypatch) == 0
    rows = capsys.readouterr().out.splitlines()
    # Ratios 1.0, 1.1, 1.0: median 1.000, worst 10.0% at r1; held out in both: r1, r2 (A: r1 within, B: r2 within).
    assert rows[2] == "| sam | 3 | 1.000 | 10.0% (r1) | 1/2 | 1/2 |"
    monkeypatch.setattr(sys, "argv", ["compare_validation_sets.py", str(a), str(tmp_path / "none.json")])
    with pytest.raises(SystemExit) as exc:  # one line naming the file, not a traceback
        runpy.run_path(str(SCRIPTS / "compare_validation_sets.py"), run_name="__main__")
    assert "none.json: no 'graph' rows" in str(exc.value.code)
