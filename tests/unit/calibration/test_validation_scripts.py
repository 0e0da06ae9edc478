"""scripts/gpu_validation.py (--smoke: tiny model on CPU) → JSON → scripts/make_validation_table.py → docs.

Also the matrix reader and the validation report on hand-made data.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from llm_perf_opt.calibration import fit_params
from llm_perf_opt.calibration.gpu_matrix import read_matrix
from llm_perf_opt.calibration.validation import validate
from llm_perf_opt.errors import UserError
from llm_perf_opt.hardware.table import load_hardware
from llm_perf_opt.reporting.validation_plot import render_scatter
from llm_perf_opt.reporting.validation_table import render_readme, render_table_md
from llm_perf_opt.specs.loader import load_model_spec

SCRIPTS = Path(__file__).resolve().parents[3] / "scripts"


def load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_calib_script_{name}", SCRIPTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gpu-validation")
    assert load_script("gpu_validation").main(["--smoke", "--out", str(out)]) == 0
    return out


def test_the_gpu_script_writes_every_number(smoke: Path) -> None:
    (path,) = smoke.glob("validation-*.json")
    data = json.loads(path.read_text())
    assert data["schema"] == "llm-perf-opt.gpu-validation/1"
    assert data["calibration_run"]["status"] == "ok", data["calibration_run"]["output_tail"]
    assert (smoke / "calibration-run" / "metrics.json").is_file()
    ids = [c["id"] for c in data["configs"]]
    assert ids == ["tiny-b1", "tiny-b2", "gundam-wide-b1"]
    for cfg in data["configs"]:
        assert cfg["status"] == "ok", cfg.get("error")
        assert len(cfg["runs"]) == 2
        for run in cfg["runs"]:
            d = run["decode_ms"]
            assert set(d) == {"2", "4", "8"} and 0 < d["2"] < d["4"] < d["8"]
            assert run["total_ms"]["8"] == pytest.approx(run["stages_ms"]["prefill_end_ms"] + d["8"])
            assert run["total_ms"]["8"] <= run["clock_total_ms"] + 1e-6
            assert run["new_tokens"] == 8
    wide = data["configs"][2]
    assert wide["tile_grid"] == [4, 2] and wide["prompt_len"] == 10 + 1093


def test_list_and_parts() -> None:
    gv = load_script("gpu_validation")
    args = gv.parse_args(["--list", "--part", "1/2"])
    part1 = [c["id"] for c in gv.configs_of(args)]
    part2 = [c["id"] for c in gv.configs_of(gv.parse_args(["--list", "--part", "2/2"]))]
    assert len(part1) == len(part2) == 6 and not set(part1) & set(part2)
    assert all(c.endswith("-b1") for c in part1) and "gundam-wide-b4" in part2
    assert gv.parse_args(["--list", "--new-tokens", "300"]).checkpoint_list == [64, 256, 300]
    with pytest.raises(SystemExit):
        gv.parse_args(["--list", "--part", "3/2"])


def test_make_validation_table_end_to_end(smoke: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mvt = load_script("make_validation_table")
    out = tmp_path / "docs"
    assert mvt.main(["--in", str(smoke), "--out", str(out), "--hardware", "h100-sxm"]) == 0
    for name in ("README.md", "table.md", "predicted_vs_measured.png", "calibration.yaml", "results.json"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert (out / "predicted_vs_measured.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    readme = (out / "README.md").read_text()
    assert "profile run `calibration-tiny-b1-n4`" in readme and "## Findings" in readme
    results = json.loads((out / "results.json").read_text())
    flagged = {r["key"] for r in results["rows"] if r["calibration_input"]}
    assert flagged == {"tiny-b1-n2", "tiny-b1-n4", "tiny-b1-n8"}
    assert "within ±15% after calibration" in capsys.readouterr().out
    assert (
        mvt.main(
            [
                "--in",
                str(smoke),
                "--out",
                str(out),
                "--hardware",
                "h100-sxm",
                "--calibrate-on",
                "tiny-b2@4",
                "--fit-scheme",
                "joint",
            ]
        )
        == 0
    )
    assert "matrix entry `tiny-b2-n4`" in (out / "README.md").read_text()
    assert mvt.main(["--in", str(smoke), "--out", str(out), "--hardware", "h100-sxm", "--calibrate-on", "x@1"]) == 2
    assert mvt.main(["--in", str(smoke), "--out", str(out)]) == 2, "cpu is not a table GPU: --hardware needed"


def config(**changes: Any) -> dict[str, Any]:
    run = {
        "stages_ms": {
            "sam_ms": 10.0,
            "clip_ms": 3.0,
            "vision_ms": 14.0,
            "projector_ms": 0.2,
            "prefill_decoder_ms": 8.0,
            "prefill_ms": 22.5,
        },
        "decode_ms": {"64": 600.0, "256": 2400.0},
        "total_ms": {"64": 622.5, "256": 2422.5},
    }
    cfg = {
        "id": "base-b1",
        "mode": "base",
        "page_size": [1654, 2339],
        "batch_size": 1,
        "max_crops": 9,
        "image_tokens": 273,
        "tile_grid": [1, 1],
        "prompt_len": 283,
        "status": "ok",
        "runs": [run, run],
    }
    cfg.update(changes)
    return cfg


def write_matrix(path: Path, configs: list[dict[str, Any]], env: dict[str, Any] | None = None) -> Path:
    path.write_text(
        json.dumps(
            {
                "schema": "llm-perf-opt.gpu-validation/1",
                "env": env or {"gpu_name": "x"},
                "args": {"model": "deepseek-ocr", "dtype": "bf16"},
                "configs": configs,
            }
        )
    )
    return path


def test_matrix_reader_on_hand_made_data(tmp_path: Path) -> None:
    f = write_matrix(
        tmp_path / "validation-a.json",
        [config(), config(id="large-b1", status="oom", error="CUDA out of memory", runs=[])],
    )
    m = read_matrix([tmp_path])
    assert [w.key for w in m.measured] == ["base-b1-n64", "base-b1-n256"]
    assert m.measured[1].stages["decode"].mean_ms == 2400.0 and m.measured[1].workload.max_new_tokens == 256
    assert m.measured[0].stages["sam"].mean_ms == 10.0 and m.measured[0].group == "base-b1"
    assert m.not_measured == ["large-b1: oom (CUDA out of memory)"]
    write_matrix(f, [config(tile_grid=[2, 3])])
    with pytest.raises(UserError, match="analytic layout"):
        read_matrix([f])
    f.write_text('{"schema": "other"}')
    with pytest.raises(UserError, match=r"not a gpu_validation\.py result"):
        read_matrix([f])
    write_matrix(f, [config(image_tokens=999)])
    with pytest.raises(UserError, match="config base-b1: workload field prompt_tokens"):
        read_matrix([f])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no validation"):
        read_matrix([tmp_path / "empty"])


def test_validation_report_renders(tmp_path: Path) -> None:
    m = read_matrix([write_matrix(tmp_path / "validation-a.json", [config(), config(id="base-b4", batch_size=4)])])
    spec, hw = load_model_spec("deepseek-ocr"), load_hardware("h100-sxm")
    cal = next(w for w in m.measured if w.key == "base-b1-n256")
    fit = fit_params([cal], spec=spec, hardware=hw)
    result = validate(
        m.measured,
        spec=spec,
        hardware=hw,
        precision="bf16",
        fit=fit,
        calibration="test",
        calibration_workload=cal.workload,
    )
    assert {r.key for r in result.rows if r.calibration_input} == {"base-b1-n64", "base-b1-n256"}
    assert all(not r.calibration_input for r in result.others())
    table = render_table_md(result, {"gpu_name": "NVIDIA H100 80GB HBM3"})
    assert "| base-b1-n256 † |" in table and "## By stage" in table
    readme = render_readme(
        result,
        {"gpu_name": "NVIDIA H100 80GB HBM3"},
        configs=m.configs,
        not_measured=["x: oom"],
        sources=["validation-a.json"],
        args={"checkpoint_list": [64, 256], "repeats": 2},
    )
    assert "## Not measured" in readme and "- x: oom" in readme
    assert render_scatter(result)[:4] == b"\x89PNG"
