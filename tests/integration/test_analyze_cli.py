"""`llm-perf-opt analyze` end to end: artifacts, terminal output and user errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from llm_perf_opt.cli import cli


def run(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, args)
    return result.exit_code, result.stdout, result.stderr


def test_defaults_write_every_artifact(tmp_path: Path) -> None:
    out = tmp_path / "analytic"
    code, stdout, stderr = run(["analyze", "--mode", "analytic", "--output-dir", str(out)])
    assert code == 0, stderr
    for name in ("report.json", "report.yaml", "summary.json", "report.md"):
        assert (out / name).is_file(), name
    assert list((out / "layers").glob("*.md")), "one page per layer class"
    report = json.loads((out / "report.json").read_text())
    assert report == yaml.safe_load((out / "report.yaml").read_text())
    summary = json.loads((out / "summary.json").read_text())
    assert summary["workload_profile_id"] == "dsocr-standard-v1"
    assert summary["predicted_total_time_ms"] > 0
    assert "vision" in stdout and "decode" in stdout
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")], "no temp files left behind"


def test_default_output_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, stderr = run(["analyze", "--run-id", "r1"])
    assert code == 0, stderr
    assert (tmp_path / "tmp/profile-output/r1/static_analysis/analytic_model/report.json").is_file()


def test_json_prints_the_summary(tmp_path: Path) -> None:
    code, stdout, _ = run(["analyze", "--output-dir", str(tmp_path), "--json", "--hardware", "h100-sxm"])
    assert code == 0
    summary = json.loads(stdout)
    assert summary == json.loads((tmp_path / "summary.json").read_text())


def test_page_size_changes_image_tokens(tmp_path: Path) -> None:
    code, _, _ = run(["analyze", "--output-dir", str(tmp_path / "a"), "--page-size", "2000x1000", "--json"])
    assert code == 0
    report = json.loads((tmp_path / "a" / "report.json").read_text())
    assert report["workload"]["seq_len"] == 10 + 1093  # 4×2 tiles (see test_image_tokens)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--model", "gpt-9"], "unknown model 'gpt-9'; valid: deepseek-ocr, tiny"),
        (["--workload", "huge"], "unknown workload 'huge'; valid:"),
        (["--hardware", "tpu"], "unknown hardware 'tpu'; valid:"),
        (["--page-size", "0x0"], "page size"),
        (["--max-new-tokens", "-3"], "max_new_tokens"),
        (["--batch-size", "0"], "batch_size"),
        (["--resolution", "ultra"], "unknown resolution mode"),
        (["--workload", "/nonexistent/w.yaml"], "does not exist"),
    ],
)
def test_user_errors_are_one_line_exit_2(tmp_path: Path, args: list[str], needle: str) -> None:
    out = tmp_path / "out"
    code, _, stderr = run(["analyze", "--output-dir", str(out), *args])
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], stderr
    assert not out.exists() or not any(out.iterdir()), "nothing half-written"


def test_malformed_yaml_workload(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("mode: [gundam\n")
    code, _, stderr = run(["analyze", "--workload", str(bad), "--output-dir", str(tmp_path / "o")])
    assert code == 2 and "bad.yaml" in stderr and "not valid YAML" in stderr


def test_checkpoint_config_as_model(tmp_path: Path) -> None:
    fixture = Path(__file__).parents[1] / "fixtures" / "deepseek-ocr-config.json"
    code, _, stderr = run(["analyze", "--model", str(fixture), "--output-dir", str(tmp_path), "--json"])
    assert code == 0, stderr


def test_console_entry_and_module_entry_do_not_import_torch(tmp_path: Path) -> None:
    probe = (
        "import sys; from llm_perf_opt.cli import cli\n"
        f"cli(['analyze', '--output-dir', {str(tmp_path)!r}, '--json'], standalone_mode=False)\n"
        "assert 'torch' not in sys.modules, 'analyze imported torch'\n"
        "assert 'numpy' not in sys.modules, 'analyze imported numpy'\n"
    )
    subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True)
    done = subprocess.run([sys.executable, "-m", "llm_perf_opt", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and "0.1.0" in done.stdout
