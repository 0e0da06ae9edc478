"""SIGINT and SIGTERM at many points of a tiny ``profile`` run, and two runs into one directory.

Each run's output directory must end up absent, complete, or marked incomplete in every document
it holds — never half-written and never mixed with another run (issue 12, class 6).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from llm_perf_opt.io.artifact_set import MANIFEST, verify

pytestmark = pytest.mark.slow

_MAIN = "from llm_perf_opt.cli import main; main()"
# Points in the staging directory's life at which the signal is sent (polled every few ms).
POINTS: list[tuple[signal.Signals, str]] = [
    (signal.SIGTERM, "lock"),  # output directory locked: inputs being collected, model not loaded yet
    (signal.SIGINT, "lock"),
    (signal.SIGTERM, "runs.jsonl"),  # timed runs under way
    (signal.SIGINT, "runs.jsonl"),
    (signal.SIGTERM, "inputs.yaml"),  # artifact writing started
    (signal.SIGINT, "metrics.json"),  # half the artifacts written
    (signal.SIGTERM, "report.md"),  # last file written, commit next
    (signal.SIGINT, "done"),  # after the run: nothing to interrupt
]


def _page(tmp: Path) -> Path:
    from PIL import Image

    path = tmp / "page.png"
    Image.new("RGB", (400, 300), "white").save(path)
    return path


def _profile_cmd(page: Path, out: Path) -> list[str]:
    return [sys.executable, "-c", _MAIN, "profile", "--model", "tiny", "--device", "cpu", "--max-new-tokens", "2",
            "--repeats", "1", "--warmup", "0", "--mode", "tiny", "--images", str(page), "--output-dir", str(out), "-q"]


def _reached(out: Path, point: str) -> bool:
    if point == "lock":
        return (out.parent / f".{out.name}.lock").exists()
    return any((stage / point).exists() for stage in out.parent.glob(f".{out.name}.staging-*"))


# A fork server: one fresh interpreter imports the CLI and torch once (no torch work, so forking is safe)
# and forks one child per run; each child is a real process running `llm-perf-opt profile`, receiving
# real signals, but without paying ~4 s of imports eight times over.
_SERVER = r"""
import atexit, json, os, signal, sys
import torch
import llm_perf_opt.cli, llm_perf_opt.profiling.runner, llm_perf_opt.profiling.artifacts
import llm_perf_opt.models.deepseek_ocr, llm_perf_opt.profiling.session, matplotlib.pyplot, torch.profiler
import transformers.modeling_utils, torchinfo, PIL.Image  # imported lazily by a run: pay once, here
print("ready", flush=True)
for line in sys.stdin:
    req = json.loads(line)
    if "wait" in req:
        _, status = os.waitpid(req["wait"], 0)
        print(json.dumps({"code": os.waitstatus_to_exitcode(status)}), flush=True)
        continue
    pid = os.fork()
    if pid == 0:
        err = os.open(req["err"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(err, 2); os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        signal.signal(signal.SIGINT, signal.default_int_handler); signal.signal(signal.SIGTERM, signal.SIG_DFL)
        torch.set_num_threads(1)  # three runs share two cores
        code = 0
        try:
            sys.argv = ["llm-perf-opt", *req["argv"]]
            llm_perf_opt.cli.main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        finally:  # what interpreter exit would do
            atexit._run_exitfuncs(); sys.stderr.flush(); os._exit(code)
    print(json.dumps({"pid": pid}), flush=True)
"""


class ForkServer:
    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", _SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"
        self.lock = threading.Lock()

    def _ask(self, request: dict[str, object]) -> dict[str, int]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        with self.lock:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
            return json.loads(self.proc.stdout.readline())  # type: ignore[no-any-return]

    def start(self, argv: list[str], err: Path) -> int:
        return self._ask({"argv": argv, "err": str(err)})["pid"]

    def wait(self, pid: int) -> int:
        return self._ask({"wait": pid})["code"]

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


def _interrupt(server: ForkServer, page: Path, out: Path, sig: signal.Signals, point: str) -> tuple[int, str]:
    err = out.parent / "stderr.txt"
    pid = server.start(_profile_cmd(page, out)[3:], err)
    deadline = time.monotonic() + 120
    while point != "done" and time.monotonic() < deadline:
        if _reached(out, point) or _finished(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            break
        time.sleep(0.002)
    while not _finished(pid) and time.monotonic() < deadline:  # reaped only once it exited: the server never blocks
        time.sleep(0.01)
    code = server.wait(pid)
    return code, err.read_text()


def _finished(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ", 1)[1].startswith("Z")  # exited, not yet reaped
    except OSError:
        return True


def _check_set(out: Path) -> str:
    """'absent', 'complete' or 'incomplete' after checking the set is whole and consistently marked."""
    leftovers = [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]
    assert not leftovers, f"staging or lock left behind: {leftovers}"
    if not out.exists():
        return "absent"
    manifest = verify(out)  # every listed file present with its size and hash
    files = set(manifest["files"])
    for name in ("report.md", "metrics.json", "summary.json", "inputs.yaml", "env.json", "assumptions.md"):
        assert name in files, f"{name} missing from a committed set"
    if manifest["status"] == "complete":
        assert json.loads((out / "metrics.json").read_text())["incomplete"] is False
        return "complete"
    assert manifest["incomplete_reason"]
    assert json.loads((out / "metrics.json").read_text())["incomplete"] is True
    assert json.loads((out / "summary.json").read_text())["incomplete"] is True
    assert yaml.safe_load((out / "inputs.yaml").read_text())["run_status"] == "incomplete"
    assert json.loads((out / "env.json").read_text())["run_status"] == "incomplete"
    for name in ("report.md", "assumptions.md"):
        assert "INCOMPLETE" in (out / name).read_text()
    for line in (out / "runs.jsonl").read_text().splitlines():
        assert json.loads(line)["run_status"] == "incomplete"
    return "incomplete"


def test_signals_at_many_points_leave_whole_sets(tmp_path: Path) -> None:
    page = _page(tmp_path)
    server = ForkServer()

    def one(index: int) -> tuple[str, int, str]:
        sig, point = POINTS[index]
        out = tmp_path / f"run{index}" / "out"
        out.parent.mkdir()
        code, err = _interrupt(server, page, out, sig, point)
        try:
            return _check_set(out), code, err
        except AssertionError as exc:
            raise AssertionError(f"{sig.name} at {point}: exit {code}, stderr {err!r}: {exc}") from None

    try:
        with ThreadPoolExecutor(max_workers=3) as pool:
            results = list(pool.map(one, range(len(POINTS))))
    finally:
        server.close()
    for (sig, point), (state, code, err) in zip(POINTS, results, strict=True):
        assert "Traceback" not in err, (sig, point, err)
        if point == "done":
            assert (state, code) == ("complete", 0)
        else:
            assert code in (0, 130), (sig, point, code, err)
            assert state in ("absent", "complete", "incomplete")
            if code == 130:
                name = "SIGTERM" if sig == signal.SIGTERM else "Ctrl-C"
                assert f"interrupted ({name})" in err or "interrupted;" in err
    states = {state for state, _, _ in results}
    assert "incomplete" in states, "some signal landed mid-run and produced a marked set"


def test_a_second_run_into_a_busy_directory_fails_at_once(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from llm_perf_opt.cli import cli
    from llm_perf_opt.io.artifact_set import ArtifactSet

    out = tmp_path / "out"
    holder = ArtifactSet(out, kind="profile", run_id="first")
    holder.open()  # a run in progress holds the directory (flock: a second open file conflicts, same process or not)
    try:
        result = CliRunner().invoke(cli, _profile_cmd(_page(tmp_path), out)[3:])
    finally:
        holder.close()
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "in use by another llm-perf-opt run" in lines[0]
    assert not out.exists()


def test_concurrent_analyze_runs_never_mix(tmp_path: Path) -> None:
    out = tmp_path / "analytic"
    cmds = [[sys.executable, "-c", _MAIN, "analyze", "--model", "tiny", "--run-id", f"run{i}", "--output-dir", str(out)]
            for i in range(3)]
    procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for c in cmds]
    results = [(p.wait(timeout=120), p.stderr.read() if p.stderr else "") for p in procs]
    assert any(code == 0 for code, _ in results)
    for code, err in results:
        assert code == 0 or (code == 2 and "in use by another llm-perf-opt run" in err), err
    manifest = verify(out)
    report = json.loads((out / "report.json").read_text())
    assert report["report_id"] == manifest["run_id"], "report and manifest from the same run"
    assert (out / MANIFEST).exists()
