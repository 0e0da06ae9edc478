"""All-or-nothing artifact sets, the output-directory lock and SIGTERM (issue 12, class 6)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from llm_perf_opt.errors import UserError
from llm_perf_opt.io.artifact_set import MANIFEST, ArtifactSet, verify
from llm_perf_opt.io.signals import Terminated, sigterm_as_interrupt


def _write_set(target: Path, files: dict[str, str], run_id: str = "r1", reason: str | None = None) -> Path:
    with ArtifactSet(target, kind="test", run_id=run_id) as artifacts:
        for name, text in files.items():
            (artifacts.work_dir / name).write_text(text)
        return artifacts.commit(incomplete_reason=reason)


def _hidden(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_commit_publishes_a_verifiable_set(tmp_path: Path) -> None:
    out = _write_set(tmp_path / "run", {"a.txt": "A", "b.txt": "B"})
    manifest = verify(out)
    assert manifest["status"] == "complete" and manifest["run_id"] == "r1"
    assert set(manifest["files"]) == {"a.txt", "b.txt"} and manifest["files"]["a.txt"]["bytes"] == 1
    assert _hidden(tmp_path) == [], "no staging directory, no lock file left behind"
    (out / "a.txt").write_text("changed")
    with pytest.raises(UserError, match=r"a\.txt does not match"):
        verify(out)


def test_a_second_run_replaces_the_first_whole(tmp_path: Path) -> None:
    _write_set(tmp_path / "run", {"old_only.txt": "1", "shared.txt": "old"}, run_id="first")
    out = _write_set(tmp_path / "run", {"shared.txt": "new"}, run_id="second")
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "shared.txt"], "nothing of the first run is mixed in"
    assert (out / "shared.txt").read_text() == "new" and verify(out)["run_id"] == "second"


def test_interrupted_writing_leaves_the_previous_set(tmp_path: Path) -> None:
    out = _write_set(tmp_path / "run", {"a.txt": "old"})
    with pytest.raises(KeyboardInterrupt), ArtifactSet(out, kind="test", run_id="r2") as artifacts:
        (artifacts.work_dir / "a.txt").write_text("new")
        raise KeyboardInterrupt
    assert (out / "a.txt").read_text() == "old" and verify(out)["run_id"] == "r1"
    assert _hidden(tmp_path) == []


def test_incomplete_sets_say_so(tmp_path: Path) -> None:
    out = _write_set(tmp_path / "run", {"a.txt": "partial"}, reason="interrupted (SIGTERM) during timed")
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["status"] == "incomplete" and manifest["incomplete_reason"].startswith("interrupted (SIGTERM)")


def test_foreign_directories_are_never_replaced(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "thesis.tex").write_text("precious")
    with pytest.raises(UserError, match="not an llm-perf-opt artifact set"):
        ArtifactSet(home, kind="test", run_id="r")
    assert (home / "thesis.tex").read_text() == "precious"
    (tmp_path / "empty").mkdir()
    assert verify(_write_set(tmp_path / "empty", {"a": "1"}))["status"] == "complete"


def test_the_lock_refuses_a_concurrent_run_and_is_released(tmp_path: Path) -> None:
    first = ArtifactSet(tmp_path / "run", kind="test", run_id="one")
    first.open()
    second = ArtifactSet(tmp_path / "run", kind="test", run_id="two")
    with pytest.raises(UserError, match=rf"in use by another llm-perf-opt run \(pid {os.getpid()}\)"):
        second.open()
    first.close()
    second.open()  # free again once the first run ended
    second.close()
    assert _hidden(tmp_path) == []


def test_stale_staging_from_a_killed_run_is_cleaned(tmp_path: Path) -> None:
    stale = tmp_path / ".run.staging-dead"
    stale.mkdir()
    (stale / "metrics.json").write_text("{}")
    _write_set(tmp_path / "run", {"a": "1"})
    assert not stale.exists()


def test_long_names_stay_under_name_max(tmp_path: Path) -> None:
    name = "x" * 250  # a legal directory name; ".<name>.staging-XXXX" would not be
    out = _write_set(tmp_path / name, {"a": "1"})
    assert out.name == name and verify(out)["status"] == "complete"


def test_output_dir_that_cannot_exist(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UserError, match=r"is a file, not a directory"):
        ArtifactSet(blocker / "out", kind="test", run_id="r")
    with pytest.raises(UserError, match="exists and is not a directory"):
        ArtifactSet(blocker, kind="test", run_id="r")


def test_sigterm_raises_keyboard_interrupt_inside_the_block() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated), sigterm_as_interrupt():
        os.kill(os.getpid(), signal.SIGTERM)
        signal.pause()  # pragma: no cover - the handler raises before this returns
    assert isinstance(Terminated(), KeyboardInterrupt)
    assert signal.getsignal(signal.SIGTERM) is before


def test_signals_held_defers_an_interrupt_to_the_end_of_the_section() -> None:
    from llm_perf_opt.io.signals import signals_held

    steps = []
    with pytest.raises(KeyboardInterrupt), signals_held():
        os.kill(os.getpid(), signal.SIGINT)
        steps.append("still running after the signal")
    assert steps == ["still running after the signal"]
