"""The matrix reader and the validation report on hand-made data (the old GPU-script JSON format).

The scripts themselves became ``llm-perf-opt experiment validate``; see tests/unit/experiments/.
"""

from __future__ import annotations

import json
from pathlib import Path
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
