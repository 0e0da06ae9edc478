"""`analyze --calibrate-from` / `--compare-with` / `--calibration` end to end, and what-if on a calibrated report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from llm_perf_opt.analytic.api import load_roofline_params
from llm_perf_opt.cli import cli
from llm_perf_opt.profiling.synthetic import synthetic_page

H100 = "NVIDIA H100 80GB HBM3"


def run(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, args)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def profile_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real tiny profile run on CPU whose env.json is then labelled as an H100 run."""
    root = tmp_path_factory.mktemp("calibrate-cli")
    synthetic_page("mixed_layout", size=(700, 900), seed=3).save(root / "page.png")
    out = root / "run"
    code, _, stderr = run(
        [
            "profile",
            "--model",
            "tiny",
            "--mode",
            "tiny",
            "--device",
            "cpu",
            "--quiet",
            "--images",
            str(root / "page.png"),
            "--repeats",
            "2",
            "--max-new-tokens",
            "4",
            "--no-torch-profiler",
            "--output-dir",
            str(out),
            "--run-id",
            "cli-calib",
        ]
    )
    assert code == 0, stderr
    env = json.loads((out / "env.json").read_text())
    env.update(device="cuda:0", device_name=H100)
    (out / "env.json").write_text(json.dumps(env))
    return out


def measured_total(run_dir: Path) -> float:
    recs = [json.loads(line) for line in (run_dir / "runs.jsonl").read_text().splitlines()]
    return sum(r["total_ms"] for r in recs) / len(recs)


def test_calibrate_from_fits_saves_and_is_reused(profile_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "cal"
    code, _, stderr = run(["analyze", "--calibrate-from", str(profile_run), "--output-dir", str(out), "--json"])
    assert code == 0, stderr
    report = json.loads((out / "report.json").read_text())
    assert report["inputs"]["hardware"]["id"] == "h100-sxm", "hardware from env.json, not the --hardware default"
    assert report["inputs"]["model_spec"]["name"] == "tiny"
    fitted = load_roofline_params(out / "calibration.yaml")
    assert report["inputs"]["roofline"] == yaml.safe_load((out / "calibration.yaml").read_text())
    assert fitted.launch_overhead_us != 5.0, "the per-kernel overhead was fitted"
    # Started from how the run executed (eager on the CPU) and kept the routing its census measured.
    census = json.loads((profile_run / "metrics.json").read_text())["aggregates"]["moe_expert_load_ratio"]["mean"]
    assert fitted.execution == "eager" and fitted.expert_load_ratio == pytest.approx(census) and census < 1.0
    text = (out / "calibration.yaml").read_text()
    assert text.startswith("# Roofline parameters fitted") and "run: cli-calib" in text
    md = (out / "report.md").read_text()
    assert "## Calibration (fitted to profile run `cli-calib`)" in md and "fitted in step" in md
    fit = json.loads((out / "calibration_fit.json").read_text())
    assert fit["run_id"] == "cli-calib" and fit["fit"]["scheme"] == "staged"
    # --calibration FILE reuses it: the same report numbers without the run
    again = tmp_path / "again"
    code, _, stderr = run(
        [
            "analyze",
            "--model",
            "tiny",
            "--hardware",
            "h100-sxm",
            "--dtype",
            "fp32",
            "--calibration",
            str(out / "calibration.yaml"),
            "--output-dir",
            str(again),
            "--json",
        ]
    )
    assert code == 0, stderr
    assert json.loads((again / "report.json").read_text())["predicted_total_time_ms"] == pytest.approx(
        report["predicted_total_time_ms"], rel=1e-12
    )
    # what-if recomputes from report.inputs, so it keeps the calibrated parameters
    code, _, stderr = run(
        ["what-if", "--report", str(out / "report.json"), "--output-dir", str(tmp_path / "w"), "--format", "json"]
    )
    assert code == 0, stderr
    row = json.loads((tmp_path / "w" / "whatif.json").read_text())["rows"][0]
    assert row["latency_ms"] == pytest.approx(report["predicted_total_time_ms"], rel=1e-12)
    code, _, _ = run(
        [
            "analyze",
            "--model",
            "tiny",
            "--hardware",
            "h100-sxm",
            "--dtype",
            "fp32",
            "--output-dir",
            str(tmp_path / "plain"),
            "--json",
        ]
    )
    plain = json.loads((tmp_path / "plain" / "report.json").read_text())["predicted_total_time_ms"]
    assert plain != pytest.approx(report["predicted_total_time_ms"], rel=1e-3)


def test_compare_with_fills_the_summary_and_the_stage_table(profile_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    code, stdout, stderr = run(["analyze", "--compare-with", str(profile_run), "--output-dir", str(out), "--json"])
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert summary == json.loads((out / "summary.json").read_text())
    measured = measured_total(profile_run)
    assert summary["measured_total_time_ms"] == pytest.approx(measured)
    assert summary["predicted_vs_measured_ratio"] == pytest.approx(summary["predicted_total_time_ms"] / measured)
    report = json.loads((out / "report.json").read_text())
    recs = [json.loads(line) for line in (profile_run / "runs.jsonl").read_text().splitlines()]
    assert report["workload"]["seq_len"] == recs[0]["prompt_len"], "the run's exact input"
    assert report["workload"]["max_new_tokens"] == 4 and report["profile_run_id"] == "cli-calib"
    md = (out / "report.md").read_text()
    assert "## Measured vs predicted (profile run `cli-calib`)" in md
    assert "| prefill, decoder only |" in md and "measured prefill − vision range" in md
    comparison = json.loads((out / "comparison.json").read_text())
    assert {r["stage"] for r in comparison["rows"]} >= {"sam", "clip", "decode", "total"}


def test_calibrate_and_compare_together(profile_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "both"
    code, stdout, stderr = run(
        [
            "analyze",
            "--calibrate-from",
            str(profile_run),
            "--compare-with",
            str(profile_run),
            "--output-dir",
            str(out),
            "--json",
        ]
    )
    assert code == 0, stderr
    summary = json.loads(stdout)
    md = (out / "report.md").read_text()
    assert md.index("## Measured vs predicted") < md.index("## Calibration")
    assert summary["predicted_vs_measured_ratio"] > 0


@pytest.mark.parametrize(
    ("setup", "args", "needle"),
    [
        ("missing", [], "does not exist"),
        ("no_metrics", [], "no metrics.json"),
        ("bad_json", [], "not valid JSON"),
        ("unknown_gpu", [], "--hardware"),
        ("incomplete", [], "marked incomplete"),
        ("ok", ["--workload", "base"], "drop --workload"),
    ],
)
def test_bad_run_directories(profile_run: Path, tmp_path: Path, setup: str, args: list[str], needle: str) -> None:
    bad = tmp_path / "bad"
    if setup != "missing":
        shutil.copytree(profile_run, bad)
    if setup == "no_metrics":
        (bad / "metrics.json").unlink()
    elif setup == "bad_json":
        (bad / "metrics.json").write_text("{not json")
    elif setup == "unknown_gpu":
        env = json.loads((bad / "env.json").read_text())
        env["device_name"] = "NVIDIA Mystery GPU"
        (bad / "env.json").write_text(json.dumps(env))
    elif setup == "incomplete":
        m = json.loads((bad / "metrics.json").read_text())
        m["incomplete"] = True
        (bad / "metrics.json").write_text(json.dumps(m))
    for flag in ("--calibrate-from", "--compare-with"):
        if setup == "ok" and flag == "--calibrate-from":
            continue
        code, _, stderr = run(["analyze", flag, str(bad), *args, "--output-dir", str(tmp_path / "o")])
        assert code == 2, (flag, stderr)
        assert needle in stderr and "Traceback" not in stderr
        assert len(stderr.strip().splitlines()) == 1


def test_unknown_gpu_with_hardware_works(profile_run: Path, tmp_path: Path) -> None:
    bad = shutil.copytree(profile_run, tmp_path / "mystery")
    env = json.loads((bad / "env.json").read_text())
    env["device_name"] = "NVIDIA Mystery GPU"
    (bad / "env.json").write_text(json.dumps(env))
    code, _, stderr = run(
        ["analyze", "--calibrate-from", str(bad), "--hardware", "h200", "--output-dir", str(tmp_path / "o"), "--json"]
    )
    assert code == 0, stderr
    assert json.loads((tmp_path / "o" / "report.json").read_text())["inputs"]["hardware"]["id"] == "h200"
