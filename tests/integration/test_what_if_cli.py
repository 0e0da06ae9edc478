"""`llm-perf-opt what-if` end to end: files, stdout formats, plots and user errors (exit code 2)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from llm_perf_opt.cli import cli


def run(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, args)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def report_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "analytic_model"
    code, _, stderr = run(["analyze", "--hardware", "h100-sxm", "--output-dir", str(out), "--json"])
    assert code == 0, stderr
    return out / "report.json"


def test_default_run_reproduces_the_report(report_path: Path) -> None:
    code, stdout, stderr = run(["what-if", "--report", str(report_path)])
    assert code == 0, stderr
    out = report_path.parent / "whatif"
    assert "decode ms" in stdout and "latency" in stdout and f"wrote whatif.csv, whatif.json to {out}" in stdout
    report = json.loads(report_path.read_text())
    row = json.loads((out / "whatif.json").read_text())["rows"][0]
    assert row["latency_ms"] == report["predicted_total_time_ms"]
    assert {s["stage"]: s["predicted_ms"] for s in report["stages"]} == {
        k: v["predicted_ms"] for k, v in row["stages"].items()}
    assert row["memory_gb"] == report["memory"]["total_gb"]


def test_sweep_grid_csv_on_stdout(report_path: Path, tmp_path: Path) -> None:
    code, stdout, stderr = run(["what-if", "--report", str(report_path), "--set", "dtype=fp8",
                                "--sweep", "hardware=h100-sxm,h200", "--sweep", "batch_size=1,8,32",
                                "--output-dir", str(tmp_path), "--format", "csv"])
    assert code == 0, stderr
    records = list(csv.DictReader(io.StringIO(stdout)))
    assert [(r["hardware"], r["batch_size"]) for r in records] == [
        (hw, b) for hw in ("h100-sxm", "h200") for b in ("1", "8", "32")]
    assert all(r["dtype"] == "fp8" and r["weight_dtype"] == "fp8" for r in records)
    assert (tmp_path / "whatif.csv").read_text() == stdout
    assert "wrote whatif.csv, whatif.json" in stderr


def test_json_on_stdout_and_plots(report_path: Path, tmp_path: Path) -> None:
    code, stdout, stderr = run(["what-if", "--report", str(report_path.with_name("report.yaml")),
                                "--sweep", "max_new_tokens=128,256,512", "--sweep", "hardware=l40s,h200",
                                "--output-dir", str(tmp_path), "--format", "json", "--plot"])
    assert code == 0, stderr
    doc = json.loads(stdout)
    assert len(doc["rows"]) == 6 and doc == json.loads((tmp_path / "whatif.json").read_text())
    for name in ("whatif_latency.png", "whatif_stages.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def test_list_keys() -> None:
    code, stdout, _ = run(["what-if", "--list-keys"])
    assert code == 0
    assert "hardware.bandwidth_tbs" in stdout and "roofline.compute_efficiency.moe_experts" in stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--set", "batchsize=4"], "unknown what-if key 'batchsize' (did you mean 'batch_size'?); valid keys: mode,"),
        (["--set", "batch_size=four"], "invalid value 'four' for batch_size: expected an integer >= 1"),
        (["--sweep", "hardware.bandwidth_tbs=3,-1"], "invalid value '-1' for hardware.bandwidth_tbs"),
        (["--sweep", "hardware=h100-sxm,h900"], "invalid value 'h900' for hardware: unknown hardware 'h900'"),
        (["--set", "batch_size"], "--set 'batch_size' must be KEY=VALUE"),
        (["--set", "batch_size=2", "--sweep", "batch_size=1,2"], "batch_size is both set and swept"),
        (["--set", "dtype=fp8", "--set", "hardware=a100-sxm"], "scenario dtype=fp8, hardware=a100-sxm: hardware "
                                                                 "a100-sxm has no FP8"),
    ],
)
def test_bad_keys_and_values(report_path: Path, args: list[str], needle: str) -> None:
    code, stdout, stderr = run(["what-if", "--report", str(report_path), *args])
    assert code == 2 and needle in stderr, stderr
    assert stderr.count("\n") == 1 and stdout == ""


def test_bad_report_files(report_path: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    data = json.loads(report_path.read_text())
    other.write_text(json.dumps({**data, "schema_version": "llm-perf-opt.analytic-report/2"}))
    cases = [
        ([], "--report PATH is required"),
        (["--report", str(tmp_path / "missing.json")], "missing.json does not exist"),
        (["--report", str(report_path.with_name("summary.json"))], "is not an AnalyticModelReport"),
        (["--report", str(other)], "schema version 'llm-perf-opt.analytic-report/2'"),
    ]
    for args, needle in cases:
        code, _, stderr = run(["what-if", *args])
        assert code == 2 and needle in stderr and stderr.count("\n") == 1, (args, stderr)


def test_real_process_exit_code_and_one_line(report_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "llm_perf_opt", "what-if", "--report", str(report_path),
                           "--sweep", "page_size=1024x1024,huge"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr == "error: invalid value 'huge' for page_size: expected WxH in pixels, e.g. 1654x2339\n"
    assert "Traceback" not in proc.stderr
