"""JSON / YAML round trips of every contract class and of the frozen specs elsewhere in the package."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import pytest
import yaml

from llm_perf_opt.contracts.models import CONTRACT_CLASSES, LLMProfileRequest, OperatorSummary, Stats
from llm_perf_opt.errors import UserError
from llm_perf_opt.hardware.table import HARDWARE_TABLE, HardwareSpec
from llm_perf_opt.io.convert import (
    converter,
    dump,
    from_json,
    from_yaml,
    load,
    structure,
    to_json,
    to_yaml,
    unstructure,
)
from llm_perf_opt.specs.model_spec import MODEL_REGISTRY, ModelSpec
from llm_perf_opt.specs.workload import WORKLOAD_PROFILES, Workload

CLASS_IDS = [c.__name__ for c in CONTRACT_CLASSES]


def _default_of(attribute: attrs.Attribute[Any]) -> Any:
    default = attribute.default
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        return default.factory()
    return default


@pytest.mark.parametrize("cls", CONTRACT_CLASSES, ids=CLASS_IDS)
def test_samples_set_every_field_to_a_non_default(cls: type, samples: dict[type, Any]) -> None:
    obj = samples[cls]
    same = [
        a.name for a in attrs.fields(cls) if a.default is not attrs.NOTHING and getattr(obj, a.name) == _default_of(a)
    ]
    assert not same, f"{cls.__name__} sample leaves {same} at their defaults; the round trip would not test them"


@pytest.mark.parametrize("cls", CONTRACT_CLASSES, ids=CLASS_IDS)
def test_json_round_trip(cls: type, samples: dict[type, Any]) -> None:
    obj = samples[cls]
    text = to_json(obj)
    assert json.loads(text) == unstructure(obj)
    assert from_json(text, cls) == obj


@pytest.mark.parametrize("cls", CONTRACT_CLASSES, ids=CLASS_IDS)
def test_yaml_round_trip(cls: type, samples: dict[type, Any]) -> None:
    obj = samples[cls]
    assert from_yaml(to_yaml(obj), cls) == obj


@pytest.mark.parametrize("suffix", [".json", ".yaml", ".yml"])
@pytest.mark.parametrize("cls", CONTRACT_CLASSES, ids=CLASS_IDS)
def test_file_round_trip(cls: type, suffix: str, samples: dict[type, Any], tmp_path: Path) -> None:
    path = dump(samples[cls], tmp_path / "sub" / f"obj{suffix}")
    assert path.is_file()
    assert load(path, cls) == samples[cls]
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")], "atomic write left a temp file"


def test_yaml_keeps_field_order(samples: dict[type, Any]) -> None:
    data = yaml.safe_load(to_yaml(samples[LLMProfileRequest]))
    assert list(data) == [a.name for a in attrs.fields(LLMProfileRequest)]


def test_float_fields_accept_json_ints() -> None:
    stats = from_json('{"mean": 3, "std": 0, "min": 1, "max": 5}', Stats)
    assert stats == Stats(mean=3.0, std=0.0, min=1.0, max=5.0)
    assert type(stats.mean) is float and type(stats.min) is float
    # Direct construction converts too, so objects built in code compare equal to loaded ones.
    assert type(Stats(mean=3, std=0).mean) is float


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"mean": "3", "std": 0}, "expected a number, got '3' @ $.mean"),
        ({"mean": True, "std": 0}, "expected a number, got True @ $.mean"),
        ({"mean": 1, "std": 0, "count": 2.0}, "expected an integer, got 2.0 @ $.count"),
        ({"mean": 1, "std": 0, "typo": 1}, "unknown field(s) typo @ $"),
        ({"mean": 1}, "required field missing @ $.std"),
    ],
)
def test_structuring_is_strict(data: dict[str, Any], problem: str) -> None:
    with pytest.raises(UserError) as info:
        structure(data, Stats, source="stats.json")
    assert str(info.value) == f"stats.json: invalid Stats: {problem}"


def test_strict_bool_str_and_literal() -> None:
    base = {"op_name": "aten::mm", "total_time_ms": 1, "cuda_time_ms": 1, "calls": 1}
    with pytest.raises(UserError, match=r"expected one of .*got 'warmup' @ \$\.stage"):
        structure({**base, "stage": "warmup"}, OperatorSummary)
    with pytest.raises(UserError, match=r"expected a string, got 5 @ \$\.op_name"):
        structure({**base, "op_name": 5}, OperatorSummary)
    request = {"model": "tiny", "images": ["/a.png"]}
    assert structure(request, LLMProfileRequest).images == ["/a.png"]
    from llm_perf_opt.contracts.models import DeepSeekOCRAnalyticRequest

    with pytest.raises(UserError, match=r"expected true or false, got 'false' @ \$\.force_rebuild"):
        structure(
            {"model_id": "m", "model_variant": "v", "workload_profile_id": "w", "force_rebuild": "false"},
            DeepSeekOCRAnalyticRequest,
        )


# --- frozen specs from other packages -------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MODEL_REGISTRY))
def test_model_spec_round_trip(name: str) -> None:
    spec = MODEL_REGISTRY[name]
    for back in (from_json(to_json(spec), ModelSpec), from_yaml(to_yaml(spec), ModelSpec)):
        assert back == spec
        assert isinstance(back.sam.global_attn_indexes, tuple)
        assert isinstance(back.sam.downsample_channels, tuple)


@pytest.mark.parametrize("name", sorted(WORKLOAD_PROFILES))
def test_workload_round_trip(name: str) -> None:
    workload = WORKLOAD_PROFILES[name]
    for back in (from_json(to_json(workload), Workload), from_yaml(to_yaml(workload), Workload)):
        assert back == workload
        assert isinstance(back.page_size, tuple)


def test_workload_without_page_round_trips() -> None:
    workload = Workload(profile_id="p", mode="base", page_size=None)
    assert from_yaml(to_yaml(workload), Workload) == workload


@pytest.mark.parametrize("hw_id", sorted(HARDWARE_TABLE))
def test_hardware_round_trip(hw_id: str, tmp_path: Path) -> None:
    hw = HARDWARE_TABLE[hw_id]
    for suffix in (".json", ".yaml"):
        back = load(dump(hw, tmp_path / f"hw{suffix}"), HardwareSpec)
        assert back == hw
        assert isinstance(back.cuda_names, tuple)


def test_tuples_unstructure_to_lists_for_safe_yaml() -> None:
    data = converter.unstructure(MODEL_REGISTRY["tiny"])
    assert data["sam"]["global_attn_indexes"] == [1, 3]
    yaml.safe_dump(data)  # would raise RepresenterError on a tuple


def test_spec_validation_errors_are_user_errors() -> None:
    with pytest.raises(UserError, match=r"^w\.yaml: invalid Workload: unknown resolution mode 'huge'"):
        from_yaml("profile_id: x\nmode: huge\n", Workload, source="w.yaml")
