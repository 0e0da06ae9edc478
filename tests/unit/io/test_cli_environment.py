"""Output paths and the environment: one clear line and a non-zero exit (issue 12, classes 5 and 8)."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from llm_perf_opt.cli import EXIT_ENVIRONMENT, cli


def _one_error_line(result: Result, code: int, *needles: str) -> str:
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def _analyze(*args: str) -> Result:
    return CliRunner().invoke(cli, ["analyze", "--model", "tiny", *args])


def test_output_dir_under_a_file_or_proc(tmp_path: Path) -> None:
    blocker = tmp_path / "notes.txt"
    blocker.write_text("")
    _one_error_line(_analyze("--output-dir", str(blocker / "out")), 2, "notes.txt is a file, not a directory")
    _one_error_line(_analyze("--output-dir", str(blocker)), 2, "notes.txt' is a file")  # click's own check
    _one_error_line(_analyze("--output-dir", "/proc/llm-perf-opt-test"), 2, "/proc/llm-perf-opt-test")


@pytest.mark.parametrize(("run_id", "needle"), [("r" * 300, "300 characters"), ("   ", "--run-id"),
                                                 ("a\nb", "--run-id"), ("../up", "--run-id")])
def test_run_ids(tmp_path: Path, run_id: str, needle: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _one_error_line(_analyze("--run-id", run_id), 2, needle)
    assert not (tmp_path / "tmp").exists() or not any((tmp_path / "tmp").rglob("*.json"))


def test_full_disk_is_one_line_and_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = Path.write_text

    def full(self: Path, *args: object, **kwargs: object) -> int:
        if self.name == "report.md":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "write_text", full)
    line = _one_error_line(_analyze("--output-dir", str(tmp_path / "out")), EXIT_ENVIRONMENT, "No space left on device")
    assert "report.md" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "no partial set, no staging, no lock"


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_no_permission(tmp_path: Path) -> None:
    locked = tmp_path / "ro"
    locked.mkdir(mode=0o500)
    _one_error_line(_analyze("--output-dir", str(locked / "out")), 2, "permission")


def test_what_if_plot_without_matplotlib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _analyze("--output-dir", str(tmp_path / "a")).exit_code == 0
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib → ImportError, as when not installed
    result = CliRunner().invoke(cli, ["what-if", "--report", str(tmp_path / "a"), "--plot"])
    _one_error_line(result, EXIT_ENVIRONMENT, "'matplotlib'", "llm-perf-opt[plot]")
    assert not (tmp_path / "a" / "whatif").exists(), "refused before any output"


def test_a_terminal_that_cannot_encode_unicode(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONIOENCODING": "ascii", "LC_ALL": "C", "LANG": "C", "COLUMNS": "120"}
    main = "from llm_perf_opt.cli import main; main()"
    args = [sys.executable, "-c", main, "analyze", "--model", "tiny", "--output-dir", str(tmp_path / "a")]
    run = subprocess.run(args, capture_output=True, env=env, timeout=120)
    assert run.returncode == 0 and b"Traceback" not in run.stderr, run.stderr
    bad = subprocess.run([sys.executable, "-c", main, "analyze", "--workload", "é—\x1b.yaml"],
                         capture_output=True, env=env, timeout=120)
    assert bad.returncode == 2 and bad.stderr.count(b"\n") == 1 and b"Traceback" not in bad.stderr, bad.stderr


def test_profile_without_gpu_says_what_it_would_cost(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from llm_perf_opt.profiling import session

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the full model must not be built on the CPU unless asked for")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(session.ProfileSession, "load", classmethod(never))
    result = CliRunner().invoke(cli, ["profile", "-q", "--output-dir", str(tmp_path / "p")])
    line = _one_error_line(result, 2, "no GPU found", "deepseek-ocr", "--model tiny", "--device cpu")
    assert "roughly" in line and "min" in line  # an estimate with a unit (minutes for the default run)
    assert not (tmp_path / "p").exists()


def test_interrupted_what_if_keeps_the_previous_csv_and_json_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llm_perf_opt.io.artifact_set import verify
    from llm_perf_opt.whatif import outputs

    assert _analyze("--output-dir", str(tmp_path / "a")).exit_code == 0
    first = CliRunner().invoke(cli, ["what-if", "--report", str(tmp_path / "a"), "--set", "batch_size=2"])
    assert first.exit_code == 0, first.output
    whatif = tmp_path / "a" / "whatif"
    before = {p.name: p.read_bytes() for p in whatif.iterdir()}

    def interrupted(document: object) -> str:
        raise KeyboardInterrupt  # Ctrl-C after whatif.csv is staged, before whatif.json

    monkeypatch.setattr(outputs, "json_text", interrupted)
    second = CliRunner().invoke(cli, ["what-if", "--report", str(tmp_path / "a"), "--set", "batch_size=8"])
    assert second.exit_code == 130 and second.stderr.strip() == "interrupted (Ctrl-C)"
    assert {p.name: p.read_bytes() for p in whatif.iterdir()} == before, "old CSV and JSON, together"
    assert verify(whatif)["status"] == "complete" and b"batch_size" in before["whatif.csv"]
