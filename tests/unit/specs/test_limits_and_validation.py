"""Bounds, model-spec invariants and the linear tile-grid search (issue 12, classes 1-3 and 7)."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from llm_perf_opt.cli import cli
from llm_perf_opt.errors import UserError
from llm_perf_opt.hardware.table import HARDWARE_TABLE, hardware_from_mapping
from llm_perf_opt.specs.image_tokens import candidate_grids, select_tile_grid
from llm_perf_opt.specs.limits import MAX_CROPS_LIMIT, check_run_id
from llm_perf_opt.specs.loader import load_model_spec
from llm_perf_opt.specs.model_spec import DEEPSEEK_OCR, MODEL_REGISTRY
from llm_perf_opt.specs.workload import Workload, check_context, parse_page_size

FIXTURE = Path(__file__).parents[2] / "fixtures" / "deepseek-ocr-config.json"


def official_grid(width: int, height: int, tile: int, min_num: int, max_num: int) -> tuple[int, int]:
    """The official ``dynamic_preprocess`` choice, transcribed (the cubic candidate set)."""
    if width <= tile and height <= tile:
        return (1, 1)
    ratios = {
        (i, j)
        for n in range(min_num, max_num + 1)
        for i in range(1, n + 1)
        for j in range(1, n + 1)
        if min_num <= i * j <= max_num
    }
    aspect, best_diff, best = width / height, float("inf"), (1, 1)
    for i, j in sorted(ratios, key=lambda r: r[0] * r[1]):
        diff = abs(aspect - i / j)
        if diff < best_diff:
            best_diff, best = diff, (i, j)
        elif diff == best_diff and width * height > 0.5 * tile * tile * i * j:
            best = (i, j)
    return best


def test_linear_grid_search_matches_the_official_rule() -> None:
    rng = random.Random(12)
    pages = [(rng.randint(1, 9000), rng.randint(1, 9000)) for _ in range(500)]
    # exact aspect ties (multiples of one ratio) exercise the "later candidate" rule
    pages += [(640 * a, 640 * b) for a in range(1, 7) for b in range(1, 7)] + [(1654, 2339), (3000, 1000)]
    for max_num in (2, 3, 6, 9, 12, 20):
        for w, h in pages:
            assert select_tile_grid(w, h, max_num=max_num) == official_grid(w, h, 640, 2, max_num), (w, h, max_num)
    assert set(candidate_grids(2, 12)) == {(i, j) for i in range(1, 13) for j in range(1, 13) if 2 <= i * j <= 12}


def test_max_crops_is_bounded_before_any_search() -> None:
    assert select_tile_grid(60000, 100, max_num=MAX_CROPS_LIMIT) == (MAX_CROPS_LIMIT, 1)
    with pytest.raises(UserError, match="--max-crops must be from 2 to 64, got 1000"):
        select_tile_grid(3000, 1000, max_num=1000)
    with pytest.raises(UserError, match="max_crops must be from 1 to 64"):
        Workload(profile_id="w", max_crops=1000)


@pytest.mark.parametrize(
    ("text", "needle"),
    [("9" * 400 + "x5", "not WxH in pixels with sides up to 65535"), ("70000x10", "width must be from 1 to 65,535"),
     ("0x10", "positive"), ("10 by 10", "not WxH")],
)
def test_page_sizes(text: str, needle: str) -> None:
    with pytest.raises(UserError, match=needle):
        parse_page_size(text)


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_new_tokens", 10**400), ("batch_size", 5000), ("num_pages", -1), ("prompt_tokens", 1.5),
     ("max_crops", True), ("page_size", (1, 10**9))],
)
def test_workload_fields_have_bounds(field: str, value: Any) -> None:
    with pytest.raises(UserError, match=field.split("_")[0]):
        Workload(profile_id="w", **{field: value})


def test_context_beyond_the_model_is_an_error() -> None:
    fits = Workload(profile_id="w", max_new_tokens=7000)  # 913 prompt positions + 6,999 = 7,912 ≤ 8,192
    check_context(fits, DEEPSEEK_OCR.decoder.max_position_embeddings)
    with pytest.raises(UserError, match=r"= 8,312 positions, beyond deepseek-ocr's context of 8,192"):
        check_context(fits.replace(max_new_tokens=7400), 8192, "deepseek-ocr")
    result = CliRunner().invoke(cli, ["analyze", "--max-new-tokens", "9000", "--output-dir", "unused"])
    assert result.exit_code == 2 and "context of 8,192" in result.output


def _config(tmp_path: Path, **changes: Any) -> str:
    config = json.loads(FIXTURE.read_text())
    for key, value in changes.items():
        if key.startswith("sam_"):
            config.setdefault("vision_config", {}).setdefault("width", {}).setdefault("sam_vit_b", {})[key[4:]] = value
        else:
            config[key] = value
            config.get("language_config", {}).pop(key, None)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return str(path)


IMPOSSIBLE = [
    ({"num_experts_per_tok": 100}, "num_experts_per_tok 100 exceeds n_routed_experts 64"),
    ({"first_k_dense_replace": 13}, "first_k_dense_replace 13 exceeds num_layers 12"),
    ({"num_attention_heads": 7, "num_key_value_heads": 7}, "width 1280 is not divisible by num_heads 7"),
    ({"num_key_value_heads": 20}, "num_kv_heads 20 must divide num_heads 10"),
    ({"num_key_value_heads": 3}, "num_kv_heads 3 must divide num_heads 10"),
    ({"sam_global_attn_indexes": [2, 5, 12]}, "global_attn_indexes [2, 5, 12] must be distinct block indexes"),
    ({"rope_theta": 0}, "rope_theta must be a finite number > 0, got 0"),
    ({"eos_token_id": 10**6}, "eos_token_id 1000000 is outside the vocabulary"),
    ({"vision_config": [1, 2]}, "field vision_config must be a mapping"),
]


@pytest.mark.parametrize(("changes", "needle"), IMPOSSIBLE)
def test_impossible_models_are_refused_with_file_and_field(
    tmp_path: Path, changes: dict[str, Any], needle: str
) -> None:
    with pytest.raises(UserError) as err:
        load_model_spec(_config(tmp_path, **changes))
    assert str(tmp_path / "config.json") in str(err.value) and needle in str(err.value)


def test_builtin_specs_pass_their_own_checks() -> None:
    for spec in MODEL_REGISTRY.values():
        assert spec.replace() == spec  # evolve re-runs every validator


def test_analyze_and_profile_refuse_an_impossible_model_before_building(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _config(tmp_path, num_experts_per_tok=100)
    from llm_perf_opt.profiling import session

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model must not be built")

    monkeypatch.setattr(session.ProfileSession, "load", classmethod(never))
    runner = CliRunner()
    for args in (["analyze", "--model", path, "--output-dir", str(tmp_path / "a")],
                 ["profile", "--model", path, "--device", "cpu", "--output-dir", str(tmp_path / "p"), "-q"],
                 ["profile", "--model", "tiny", "--max-crops", "1", "--output-dir", str(tmp_path / "q"), "-q"],
                 ["profile", "--model", "tiny", "--peak-tflops", "nan", "--output-dir", str(tmp_path / "r"), "-q"]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 2, (args, result.output)
        assert result.output.count("\n") == 1 and result.output.startswith("error: "), result.output
    assert not any((tmp_path / d).exists() for d in "apqr")


@pytest.mark.parametrize(
    ("figure", "value", "needle"),
    [("bf16_tflops", float("nan"), "finite"), ("memory_gb", float("inf"), "finite"),
     ("fp8_tflops", 0, "from 0.001 to 1e+06, got 0"), ("memory_gb", 1e308, "from 0.001 to 1e+06"),
     ("bf16_tflops", 1e-300, "from 0.001"),
     ("bandwidth_tbs", "fast", "must be a number")],
)
def test_hardware_figures_are_finite_positive_and_bounded(figure: str, value: Any, needle: str) -> None:
    data = {"bf16_tflops": 100.0, "bandwidth_tbs": 1.0, "memory_gb": 24.0, figure: value}
    with pytest.raises(UserError, match=rf"gpu\.yaml: invalid hardware: hardware field {figure} .*{re.escape(needle)}"):
        hardware_from_mapping(data, "gpu.yaml")
    assert all(hw.peak_tflops("bf16") > 0 for hw in HARDWARE_TABLE.values())


@pytest.mark.parametrize("run_id", ["a" * 300, "   ", "a\nb", "../x", ".hidden", " padded"])
def test_run_ids_that_cannot_be_one_directory_name(run_id: str) -> None:
    with pytest.raises(UserError, match="--run-id"):
        check_run_id(run_id)
    assert check_run_id("20261202-1015_gundam.v2") == "20261202-1015_gundam.v2"


def test_every_numeric_profile_option_has_an_upper_bound() -> None:
    import typing

    import attrs

    from llm_perf_opt.contracts.profile_config import ProfileConfig

    hints = typing.get_type_hints(ProfileConfig)
    numeric = [f for f in attrs.fields(ProfileConfig)
               if {int, float} & {hints[f.name], *typing.get_args(hints[f.name])}]
    assert len(numeric) >= 10
    unbounded = [f.name for f in numeric if f.metadata.get("maximum") is None]
    assert unbounded == [], f"options without a documented upper bound: {unbounded}"
