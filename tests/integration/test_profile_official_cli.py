"""`llm-perf-opt profile --trust-remote-code` on a checkpoint with the official code's structure (CPU)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from PIL import Image

from llm_perf_opt.cli import cli
from llm_perf_opt.specs.image_tokens import image_token_layout, resolution_mode

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "official_ckpt" / "__init__.py"


def write_checkpoint(directory: Path) -> Path:
    spec = importlib.util.spec_from_file_location("official_ckpt_fixture", FIXTURE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("official_ckpt_fixture", module)
    spec.loader.exec_module(module)
    return module.write_official_checkpoint(directory)


def run(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["profile", *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stderr


def records(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_checkpoint(tmp_path_factory.mktemp("official") / "ckpt")


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pages")
    for i in range(2):  # two pages of one size: one batch of 2 with --batch-size 2
        Image.new("RGB", (1300, 700), (255 - 40 * i, 250, 245)).save(d / f"page{i}.png")
    return d


COMMON = ["--trust-remote-code", "--weights", "random", "--device", "cpu", "--quiet", "--no-torch-profiler"]


@pytest.mark.parametrize("batch_size", [1, 2])
def test_gundam_stages_come_from_the_official_modules(ckpt: Path, pages: Path, tmp_path: Path, batch_size: int) -> None:
    out = tmp_path / "run"
    code, err = run(
        [
            *("--model", str(ckpt), *COMMON, "--images", str(pages), "--mode", "gundam", "--max-new-tokens", "5"),
            *("--repeats", "1", "--warmup", "0", "--batch-size", str(batch_size), "--output-dir", str(out)),
        ]
    )
    assert code == 0, err
    layout = image_token_layout(resolution_mode("gundam"), (1300, 700))
    assert layout.tiled  # 1300x700 is cut into tiles: SAM/CLIP/projector run twice per page
    runs = records(out)
    assert len(runs) == 2 // batch_size
    for r in runs:
        assert r["batch_size"] == batch_size
        assert r["new_tokens"] == 5  # EOS suppressed: fixed length
        assert r["prompt_len"] == layout.total_slots + 10
        ranges = r["ranges"]
        for stage in ("sam", "clip", "projector"):
            assert ranges[stage]["count"] == 2 * batch_size
        assert ranges["vision"]["count"] == 1
        assert ranges["prefill"]["count"] == 1
        assert ranges["decode"]["count"] == 1
        pre, vis, dec = ranges["prefill"], ranges["vision"], ranges["decode"]
        assert pre["start_ms"] <= vis["start_ms"] <= ranges["sam"]["start_ms"]
        assert ranges["projector"]["end_ms"] <= vis["end_ms"] <= pre["end_ms"] <= dec["start_ms"]


def test_base_mode_runs_one_view_per_page(ckpt: Path, pages: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    code, err = run(
        [
            *("--model", str(ckpt), *COMMON, "--images", str(pages / "page0.png"), "--mode", "base"),
            *("--max-new-tokens", "3", "--repeats", "1", "--warmup", "0", "--output-dir", str(out)),
        ]
    )
    assert code == 0, err
    (r,) = records(out)
    assert r["ranges"]["sam"]["count"] == 1 and r["ranges"]["projector"]["count"] == 1
    assert r["prompt_len"] == (16 + 1) * 16 + 1 + 10
    assert "official checkpoint code" in (out / "report.md").read_text()  # the report names the implementation
    inventory = json.loads((out / "torchinfo-unique-layers.json").read_text())
    assert inventory["model_class"] == "DeepseekOCRForCausalLM" and "hf-official" in inventory["model"]
    assert {"ImageEncoderViT", "VitModel", "DeepseekV2MoE"} <= {r["class_name"] for r in inventory["layers"]}
    # The routing census hooks the official MoEGate too: its (ids, weights, aux) output, every MoE layer.
    aggregates = json.loads((out / "metrics.json").read_text())["aggregates"]
    census = aggregates["moe_distinct_experts"]
    assert census["count"] >= 1 and 1 <= census["min"] <= census["max"]
    assert 0.0 < aggregates["moe_expert_load_ratio"]["mean"] <= 1.0
    assert "## MoE routing" in (out / "report.md").read_text()


def test_weights_directory_without_safetensors_is_one_line(ckpt: Path, tmp_path: Path) -> None:
    code, err = run(["--model", str(ckpt), "--trust-remote-code", "--device", "cpu", "--quiet"])
    assert code == 2
    assert err.strip().count("\n") == 0 and "safetensors" in err
