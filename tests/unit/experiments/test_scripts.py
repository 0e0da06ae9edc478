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
