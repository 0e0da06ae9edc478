"""What-if keys: parsing, validation messages, and how overrides apply to a report's inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_perf_opt.analytic.roofline import CATEGORY_IDS, RooflineParams
from llm_perf_opt.data.analytic_report import AnalyticModelReport
from llm_perf_opt.errors import UserError
from llm_perf_opt.hardware.table import HARDWARE_TABLE
from llm_perf_opt.whatif import KEYS, apply_overrides
from llm_perf_opt.whatif.overrides import parse_value, split_assignment


def test_key_table_covers_the_issue() -> None:
    for key in ("mode", "page_size", "max_crops", "max_new_tokens", "batch_size", "num_pages", "prompt_tokens",
                "hardware", "hardware.bandwidth_tbs", "hardware.bf16_tflops", "hardware.memory_gb",
                "hardware.fp8_tflops", "dtype", "kv_dtype", "weight_dtype", "roofline.bandwidth_efficiency",
                "roofline.launch_overhead_us", "roofline.compute_efficiency"):
        assert key in KEYS, key
    # Per-category efficiencies use RooflineParams' real category ids.
    assert {f"roofline.compute_efficiency.{c}" for c in CATEGORY_IDS} <= set(KEYS)


@pytest.mark.parametrize(
    ("key", "raw", "value"),
    [
        ("batch_size", "8", 8),
        ("batch_size", 8, 8),
        ("max_new_tokens", "0", 0),
        ("page_size", "1024x768", (1024, 768)),
        ("page_size", [640, 640], (640, 640)),
        ("mode", "Base", "base"),
        ("dtype", "fp8", "fp8"),
        ("kv_dtype", "fp16", "fp16"),
        ("hardware.bandwidth_tbs", "6.7", 6.7),
        ("hardware.memory_gb", 40, 40.0),
        ("roofline.launch_overhead_us", "0", 0.0),
        ("roofline.bandwidth_efficiency", "1", 1.0),
        ("roofline.use_achievable_peaks", "yes", True),
        ("roofline.gemm_table", "true", True),
        ("roofline.compute_efficiency.moe_experts", 0.9, 0.9),
    ],
)
def test_values_parse_from_text_and_python(key: str, raw: object, value: object) -> None:
    assert parse_value(key, raw) == value


def test_hardware_value_is_a_table_row_or_a_yaml_file(tmp_path: Path) -> None:
    assert parse_value("hardware", "h200") is HARDWARE_TABLE["h200"]
    assert parse_value("hardware", "NVIDIA H100 80GB HBM3") is HARDWARE_TABLE["h100-sxm"]
    path = tmp_path / "mygpu.yaml"
    path.write_text("bf16_tflops: 500\nbandwidth_tbs: 2.5\nmemory_gb: 64\n")
    hw = parse_value("hardware", str(path))
    assert (hw.id, hw.bandwidth_tbs, hw.memory_gb) == ("mygpu", 2.5, 64)


def test_unknown_key_lists_valid_keys_and_suggests() -> None:
    with pytest.raises(UserError) as err:
        parse_value("batchsize", "4")
    msg = str(err.value)
    assert "unknown what-if key 'batchsize'" in msg and "did you mean 'batch_size'" in msg
    for key in ("mode", "page_size", "hardware.bandwidth_tbs", "dtype", "roofline.launch_overhead_us"):
        assert key in msg
    assert "\n" not in msg


@pytest.mark.parametrize(
    ("key", "raw", "needle"),
    [
        ("batch_size", "abc", "an integer >= 1"),
        ("batch_size", "0", "an integer >= 1"),
        ("batch_size", True, "an integer >= 1"),
        ("batch_size", 2.5, "an integer >= 1"),
        ("max_new_tokens", "-1", "an integer >= 0"),
        ("page_size", "1024", "WxH"),
        ("page_size", "0x10", "WxH"),
        ("mode", "huge", "one of tiny, small, base, large, gundam"),
        ("dtype", "int4", "one of bf16, fp16, fp8"),
        ("hardware.bandwidth_tbs", "-3", "a number > 0"),
        ("hardware.bandwidth_tbs", "nan", "a number > 0"),
        ("hardware.memory_gb", "lots", "a number > 0"),
        ("roofline.bandwidth_efficiency", "3", "(0, 2]"),
        ("roofline.compute_efficiency", "0", "(0, 2]"),
        ("roofline.launch_overhead_us", "-1", ">= 0"),
        ("roofline.use_achievable_peaks", "maybe", "true or false"),
    ],
)
def test_bad_values_name_key_and_value(key: str, raw: object, needle: str) -> None:
    with pytest.raises(UserError) as err:
        parse_value(key, raw)
    msg = str(err.value)
    assert key in msg and repr(raw) in msg and needle in msg, msg


def test_unknown_hardware_names_the_key_and_the_valid_ids() -> None:
    needle = r"invalid value 'h900' for hardware: unknown hardware 'h900'; valid: .*h100-sxm"
    with pytest.raises(UserError, match=needle):
        parse_value("hardware", "h900")


def test_assignment_syntax() -> None:
    assert split_assignment(" batch_size = 8 ", "--set") == ("batch_size", "8")
    for bad in ("batch_size", "=8", ""):
        with pytest.raises(UserError, match="must be KEY=VALUE"):
            split_assignment(bad, "--set")


def test_no_overrides_returns_the_reports_inputs(ocr_report: AnalyticModelReport) -> None:
    assert apply_overrides(ocr_report) is ocr_report.inputs
    assert apply_overrides(ocr_report, {}) is ocr_report.inputs


def test_overrides_build_new_inputs_and_leave_the_report_alone(ocr_report: AnalyticModelReport) -> None:
    before = ocr_report.inputs
    new = apply_overrides(ocr_report, {"batch_size": "4", "page_size": "1024x1024", "mode": "base",
                                       "kv_dtype": "fp8", "roofline.launch_overhead_us": 0})
    assert ocr_report.inputs is before and before.workload_spec.batch_size == 1
    assert (new.workload_spec.batch_size, new.workload_spec.page_size, new.workload_spec.mode) == (4, (1024, 1024),
                                                                                                   "base")
    assert new.precision.kv_dtype == "fp8" and new.precision.weight_dtype == "bf16"
    assert new.roofline.launch_overhead_us == 0.0
    assert new.model_spec is before.model_spec and new.hardware is before.hardware
    assert apply_overrides(new, {"batch_size": 2}).workload_spec.batch_size == 2  # inputs accepted too


def test_hardware_then_its_figures_whatever_the_order(ocr_report: AnalyticModelReport) -> None:
    new = apply_overrides(ocr_report, {"hardware.bandwidth_tbs": 10, "hardware": "h200"})
    assert new.hardware.id == "h200" and new.hardware.bandwidth_tbs == 10.0
    assert new.hardware.memory_gb == HARDWARE_TABLE["h200"].memory_gb


def test_dtype_then_single_dtypes(ocr_report: AnalyticModelReport) -> None:
    prec = apply_overrides(ocr_report, {"kv_dtype": "bf16", "dtype": "fp8"}).precision
    assert (prec.weight_dtype, prec.activation_dtype, prec.kv_dtype, prec.compute_dtype) == ("fp8", "fp8", "bf16",
                                                                                             "fp8")


def test_compute_efficiency_all_then_one(ocr_report: AnalyticModelReport) -> None:
    params = apply_overrides(ocr_report, {"roofline.compute_efficiency.lm_head": 0.3,
                                          "roofline.compute_efficiency": 0.5}).roofline
    assert params.compute_efficiency["lm_head"] == 0.3
    assert {v for k, v in params.compute_efficiency.items() if k != "lm_head"} == {0.5}


def test_cross_field_workload_rule(ocr_report: AnalyticModelReport) -> None:
    with pytest.raises(UserError, match="max_crops must be at least 2 in crop mode"):
        apply_overrides(ocr_report, {"max_crops": 1})
    assert apply_overrides(ocr_report, {"max_crops": 1, "mode": "base"}).workload_spec.max_crops == 1


def test_every_numeric_roofline_parameter_is_a_what_if_key(ocr_report: AnalyticModelReport) -> None:
    """A planner can vary any number the analytic model runs on, new ones included."""
    import attrs as _attrs

    from llm_perf_opt.data.analytic_inputs import RooflineParams

    numeric = [f.name for f in _attrs.fields(RooflineParams) if f.type in ("float", float, "bool", bool)]
    assert "stage_overhead_us" in numeric and "broadcast_bandwidth_efficiency" in numeric
    for name in numeric:
        assert f"roofline.{name}" in KEYS, name
    overrides = {"roofline.stage_overhead_us": "420", "roofline.biased_attention_efficiency": 0.5}
    params = apply_overrides(ocr_report, overrides).roofline
    assert (params.stage_overhead_us, params.biased_attention_efficiency) == (420.0, 0.5)


def test_prefill_execution_is_a_what_if_key(ocr_report: AnalyticModelReport) -> None:
    """Graph decode with eager vision and prefill (a dtype without a host-sync-free MoE) is a scenario."""
    params = apply_overrides(ocr_report, {"prefill_execution": "eager"}).roofline
    assert (params.execution, params.prefill_execution) == ("graph", "eager")
    assert apply_overrides(ocr_report, {"execution": "eager"}).roofline.prefill_execution == "eager"


def test_every_scalar_roofline_field_has_a_key() -> None:
    """A RooflineParams field added without a what-if key would be silently unreachable from what-if."""
    import attrs

    from llm_perf_opt.whatif.overrides import KEYS, ROOFLINE_FIELDS

    # graph_stage_timing says how a profile run timed its stages: a comparison's input, no scenario.
    own_keys = {"compute_efficiency", "execution", "prefill_execution", "implementation", "graph_stage_timing"}
    scalar = {f.name for f in attrs.fields(RooflineParams)} - own_keys
    assert {name for name, _ in ROOFLINE_FIELDS} == scalar
    assert all(f"roofline.{name}" in KEYS for name in scalar)
