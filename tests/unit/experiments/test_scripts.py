"""The GPU scripts are thin entry points: each hands its arguments to its ``llm-perf-opt experiment`` command."""

from __future__ import annotations

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


def test_validation_script_lists_the_plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert run_script("gpu_validation.py", ["--out", str(tmp_path), "--list"], monkeypatch) == 0
    lines = capsys.readouterr().out.split()
    assert lines[0] == "graph/base-b1-n256" and len(lines) == 32


def test_table_script_is_the_offline_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert run_script("make_validation_table.py", ["--out", str(tmp_path)], monkeypatch) == 2
    assert "has no runs/ directory" in capsys.readouterr().err


@pytest.mark.parametrize(("script", "command"), [("gpu_decode_bench.py", "decode-bench"), ("gpu_model_e2e.py", "e2e"),
                                                  ("bench_decode_vs_transformers.py", "decode-vs-hf")])
def test_other_scripts_reach_their_command(script: str, command: str, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert run_script(script, ["--help"], monkeypatch) == 0
    assert f"llm-perf-opt experiment {command}" in capsys.readouterr().out
    assert all(len(p.read_text(encoding="utf-8").splitlines()) < 400 for p in SCRIPTS.glob("*.py"))


def test_stage_table_puts_runs_side_by_side(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    import json

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
