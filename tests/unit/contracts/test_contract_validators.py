"""Every validator of the contract classes rejects what it should, with a message naming the culprit."""

from __future__ import annotations

import math
from typing import Any

import attrs
import pytest
from contract_samples import make_samples, node, operator, snapshot

from llm_perf_opt.contracts.checks import Number
from llm_perf_opt.contracts.models import (
    CONTRACT_CLASSES,
    DeepSeekOCRAnalyticAccepted,
    DeepSeekOCRAnalyticModel,
    DeepSeekOCRModelSpec,
    LLMProfileAccepted,
    LLMProfileReportSummary,
    LLMProfileRequest,
    OCRWorkloadProfile,
    OperatorCategory,
    OperatorSummary,
    Stats,
    validate_module_tree,
)


def _bounded_fields() -> list[tuple[type, str, Number]]:
    out = []
    for cls in CONTRACT_CLASSES:
        for a in attrs.fields(cls):
            if isinstance(a.validator, Number):
                out.append((cls, a.name, a.validator))
    return out


BOUNDED = _bounded_fields()
BOUNDED_IDS = [f"{c.__name__}.{n}" for c, n, _ in BOUNDED]


@pytest.mark.parametrize(("cls", "name", "check"), BOUNDED, ids=BOUNDED_IDS)
def test_numbers_reject_out_of_range_bool_and_nan(cls: type, name: str, check: Number) -> None:
    obj = make_samples()[cls]
    bad: list[Any] = [True, "1", math.nan if check.kind is float else 1.5]
    if check.minimum is not None:
        bad.append(-1 if check.kind is int else -0.5)
    if check.maximum is not None:
        bad.append(check.maximum + 0.01)
    for value in bad:
        with pytest.raises((TypeError, ValueError), match=name):
            attrs.evolve(obj, **{name: value})


def test_non_negative_fields_exist_where_the_brief_demands() -> None:
    names = {(c.__name__, n) for c, n, chk in BOUNDED if chk.minimum == 0}
    for expected in [
        ("AnalyticModuleSummary", "total_time_ms"),
        ("ModuleMetricsSnapshot", "total_flops_tflops"),
        ("ModuleMetricsSnapshot", "total_io_tb"),
        ("OperatorMetrics", "calls"),
        ("OperatorSummary", "calls"),
        ("OperatorSummary", "cuda_time_ms"),
        ("Stats", "std"),
    ]:
        assert expected in names
    shares = {(c.__name__, n) for c, n, chk in BOUNDED if chk.maximum == 1.5}
    assert ("AnalyticModuleSummary", "share_of_model_time") in shares
    assert ("OperatorMetrics", "share_of_module_flops") in shares
    assert ("LLMProfileReportSummary", "mfu_model_level") in shares


def test_share_above_one_is_allowed_up_to_the_guardrail() -> None:
    summary = make_samples()[LLMProfileReportSummary]
    assert attrs.evolve(summary, mfu_model_level=1.2).mfu_model_level == 1.2
    with pytest.raises(ValueError, match=r"mfu_per_stage\['decode'\] must be <= 1.5"):
        attrs.evolve(summary, mfu_per_stage={"decode": 1.6})
    with pytest.raises(ValueError, match=r"mfu_per_stage\['decode'\] must be >= 0"):
        attrs.evolve(summary, mfu_per_stage={"decode": -0.1})


def test_assignment_is_validated_too() -> None:
    op = operator("aten::mm", 1.0)
    with pytest.raises(ValueError, match="total_time_ms must be >= 0"):
        op.total_time_ms = -1.0
    op.total_time_ms = 2  # converted like in __init__
    assert op.total_time_ms == 2.0 and type(op.total_time_ms) is float


@pytest.mark.parametrize(
    ("cls", "name", "value"),
    [
        (DeepSeekOCRAnalyticAccepted, "status", "done"),
        (OperatorSummary, "stage", "warmup"),
        (DeepSeekOCRModelSpec, "vision_backbone", "resnet"),
        (OCRWorkloadProfile, "doc_kind", "novel"),
        (LLMProfileRequest, "dtype", "int8"),
        (LLMProfileRequest, "mode", "huge"),
        (LLMProfileAccepted, "status", "paused"),
    ],
)
def test_literals_are_checked(cls: type, name: str, value: str) -> None:
    with pytest.raises(ValueError, match=f"{name} must be one of"):
        attrs.evolve(make_samples()[cls], **{name: value})


def test_module_node_repetition_needs_a_count() -> None:
    with pytest.raises(ValueError, match=r"module 'x': repetition 'for' needs repetition_count"):
        node("x", repetition="for")
    with pytest.raises(ValueError, match="repetition must be one of"):
        node("x", repetition="while", repetition_count=2)
    with pytest.raises(ValueError, match="repetition_count must be >= 1"):
        node("x", repetition="for", repetition_count=0)


@pytest.mark.parametrize(
    ("cls", "name", "value"),
    [
        (LLMProfileRequest, "images", ["pages/p1.png"]),
        (LLMProfileRequest, "weights", "models/dsocr"),
        (LLMProfileRequest, "output_dir", "tmp/out"),
        (LLMProfileAccepted, "output_dir", "out"),
    ],
)
def test_relative_paths_are_rejected(cls: type, name: str, value: Any) -> None:
    with pytest.raises(ValueError, match=f"{name}.* must be an absolute path"):
        attrs.evolve(make_samples()[cls], **{name: value})


def test_request_needs_images() -> None:
    with pytest.raises(ValueError, match="images must not be empty"):
        LLMProfileRequest(model="tiny", images=[])


def test_empty_ids_and_wrong_list_items_are_rejected() -> None:
    with pytest.raises(ValueError, match="op_name must not be empty"):
        operator(" ", 1.0)
    with pytest.raises(TypeError, match=r"match_classes\[1\] has the wrong type: int"):
        OperatorCategory(category_id="c", display_name="C", description="", match_classes=["Linear", 3])  # type: ignore[list-item]


def test_stats_min_above_max() -> None:
    with pytest.raises(ValueError, match=r"min 2\.0 is greater than max 1\.0"):
        Stats(mean=1.5, std=0.1, min=2, max=1)


def test_summary_operators_must_be_sorted() -> None:
    summary = make_samples()[LLMProfileReportSummary]
    with pytest.raises(ValueError, match=r"top_operators must be sorted .*'aten::mm' \(12 ms\) follows 'aten::add'"):
        attrs.evolve(summary, top_operators=[operator("aten::add", 1.0), operator("aten::mm", 12.0)])


# --- module tree of DeepSeekOCRAnalyticModel -----------------------------------------------------------


def _model(**changes: Any) -> DeepSeekOCRAnalyticModel:
    return attrs.evolve(make_samples()[DeepSeekOCRAnalyticModel], **changes)


def test_sample_tree_is_valid() -> None:
    validate_module_tree(make_samples()[DeepSeekOCRAnalyticModel].modules)


@pytest.mark.parametrize(
    ("modules", "message"),
    [
        ([node("a"), node("a")], "duplicate module_id 'a'"),
        ([node("a", "ghost")], "module 'a' has unknown parent_id 'ghost'"),
        ([node("a", None, ("ghost",))], "module 'a' lists unknown child 'ghost'"),
        ([node("a", None, ("b",)), node("b")], "module 'b' is a child of 'a' but its parent_id is None"),
        ([node("a"), node("b", "a")], "module 'b' names parent 'a', which does not list it"),
        ([node("a", None, ("b", "b")), node("b", "a")], "duplicate child of module 'a': 'b'"),
        ([node("a", "b", ("b",)), node("b", "a", ("a",))], "module tree has a cycle through 'a'"),
        ([node("a", "a", ("a",))], "module tree has a cycle through 'a'"),
    ],
)
def test_module_tree_errors(modules: list[Any], message: str) -> None:
    with pytest.raises(ValueError) as info:
        _model(modules=modules, module_metrics=[])
    assert str(info.value) == message
    assert "\n" not in str(info.value)


def test_metrics_must_refer_to_known_modules_and_categories() -> None:
    with pytest.raises(ValueError, match="module_metrics refers to unknown module_id 'ghost'"):
        _model(module_metrics=[snapshot("ghost")])
    with pytest.raises(ValueError, match="refers to unknown category_id 'conv'"):
        _model(module_metrics=[snapshot("vision", category_id="conv")])
    cat = make_samples()[OperatorCategory]
    with pytest.raises(ValueError, match="duplicate category_id 'matmul'"):
        _model(operator_categories=[cat, cat])
