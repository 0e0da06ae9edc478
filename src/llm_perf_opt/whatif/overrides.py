"""What-if keys: which inputs of an analytic report a scenario may change, how values parse, how they apply.

Every key belongs to one part of :class:`~llm_perf_opt.data.analytic_report.AnalyticInputs`:

* workload — ``mode``, ``page_size`` (``WxH``), ``max_crops``, ``max_new_tokens``, ``batch_size``,
  ``num_pages``, ``prompt_tokens``;
* hardware — ``hardware`` (a table id such as ``h100-sxm``, an exact CUDA device name, or a YAML
  file) and single figures ``hardware.<field>`` (``bandwidth_tbs``, ``bf16_tflops``, ``memory_gb`` …);
* precision — ``dtype`` (all dtypes at once, as ``analyze --dtype``) and the single fields
  ``weight_dtype``, ``kv_dtype``, ``activation_dtype``, ``compute_dtype``;
* roofline — ``roofline.bandwidth_efficiency``, ``roofline.launch_overhead_us``, ``roofline.host_overhead_us``,
  ``roofline.use_achievable_peaks``, ``roofline.gemm_table``, ``roofline.expert_load_ratio``,
  ``roofline.kernel_floor_us``,
  ``roofline.graph_launch_us``, the eager stages' ``roofline.stage_host_overhead_us``, ``roofline.stage_overhead_us``,
  ``roofline.biased_attention_efficiency``, ``roofline.biased_attention_cta_us``,
  ``roofline.biased_attention_block_us``, ``roofline.broadcast_bandwidth_efficiency``,
  ``roofline.elementwise_bandwidth_efficiency``, the replayed stages' ``roofline.graph_stage_overhead_us``,
  ``roofline.graph_span_overhead_us``, ``roofline.range_gap_us``, ``roofline.attention_floor_us``,
  ``roofline.vision_attention_floor_us``, ``roofline.attention_floor_per_key_ns``,
  ``roofline.vision_attention_cta_us``, ``roofline.vision_attention_cta_per_key_ns``,
  ``roofline.prefill_attention_efficiency``, ``roofline.compute_efficiency``
  (every category at once) and ``roofline.compute_efficiency.<category>``; ``execution`` and
  ``prefill_execution`` (graph | eager).

Values come as text from the command line or typed from Python; both go through the same parser,
and a bad one is a :class:`~llm_perf_opt.errors.UserError` naming the key and the value. Overrides
apply in a fixed order whatever order they were given in: ``hardware`` before ``hardware.*``,
``dtype`` before the single dtype fields, ``roofline.compute_efficiency`` before one category.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

import attrs
from attrs import frozen

from llm_perf_opt.analytic.base import DTYPE_BYTES, Precision
from llm_perf_opt.analytic.roofline import CATEGORY_IDS, RooflineParams
from llm_perf_opt.data.analytic_report import AnalyticInputs, AnalyticModelReport
from llm_perf_opt.errors import UserError
from llm_perf_opt.hardware.table import HARDWARE_FIELDS, HardwareSpec, load_hardware
from llm_perf_opt.specs.execution import EXECUTIONS
from llm_perf_opt.specs.image_tokens import RESOLUTION_MODES
from llm_perf_opt.specs.workload import parse_page_size

WORKLOAD, HARDWARE, PRECISION, ROOFLINE = "workload", "hardware", "precision", "roofline"
DTYPE_CHOICES = ("bf16", "fp16", "fp8", "fp32")
"""Values of ``dtype`` (the same choices as ``analyze --dtype``)."""
STORAGE_DTYPES = tuple(DTYPE_BYTES)
COMPUTE_DTYPES = ("bf16", "fp16", "fp8", "tf32", "fp32")
EFFICIENCY_RANGE = "a number in (0, 2]"


class _Invalid(Exception):
    """A value that does not parse; the caller adds the key and the value to the message."""


@frozen(kw_only=True)
class KeyInfo:
    """One what-if key: its part of the inputs, what it expects, and its parser."""

    name: str
    group: str
    expects: str
    parse: Callable[[Any], Any]


# -- value parsers -----------------------------------------------------------------------------
def _int_parser(minimum: int) -> Callable[[Any], int]:
    def parse(raw: Any) -> int:
        if isinstance(raw, bool):
            raise _Invalid
        if isinstance(raw, int):
            value = raw
        elif isinstance(raw, str) and re.fullmatch(r"\s*[+-]?\d+\s*", raw):
            value = int(raw)
        else:
            raise _Invalid
        if value < minimum:
            raise _Invalid
        return value

    return parse


def _float_parser(low: float, high: float = math.inf, *, low_inclusive: bool = False) -> Callable[[Any], float]:
    def parse(raw: Any) -> float:
        if isinstance(raw, bool):
            raise _Invalid
        if isinstance(raw, int | float):
            value = float(raw)
        elif isinstance(raw, str):
            try:
                value = float(raw)
            except ValueError:
                raise _Invalid from None
        else:
            raise _Invalid
        if not math.isfinite(value) or value > high or value < low or (value == low and not low_inclusive):
            raise _Invalid
        return value

    return parse


def _choice_parser(choices: tuple[str, ...]) -> Callable[[Any], str]:
    def parse(raw: Any) -> str:
        value = raw.strip().lower() if isinstance(raw, str) else raw
        if value not in choices:
            raise _Invalid
        return str(value)

    return parse


_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def _parse_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in _TRUE + _FALSE:
        return raw.strip().lower() in _TRUE
    raise _Invalid


def _parse_page(raw: Any) -> tuple[int, int]:
    if isinstance(raw, str):
        try:
            return parse_page_size(raw)
        except UserError:
            raise _Invalid from None
    if isinstance(raw, tuple | list) and len(raw) == 2:
        w, h = raw
        if all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (w, h)):
            return (w, h)
    raise _Invalid


def _parse_hardware(raw: Any) -> HardwareSpec:
    if isinstance(raw, HardwareSpec):
        return raw
    if not isinstance(raw, str) or not raw.strip():
        raise _Invalid
    return load_hardware(raw.strip())


# -- the key table -----------------------------------------------------------------------------
ROOFLINE_FIELDS: tuple[tuple[str, str], ...] = (
    ("bandwidth_efficiency", "efficiency"), ("launch_overhead_us", "us"), ("host_overhead_us", "us"),
    ("use_achievable_peaks", "bool"), ("gemm_table", "bool"), ("expert_load_ratio", "fraction"),
    ("kernel_floor_us", "us"), ("graph_launch_us", "us"), ("stage_host_overhead_us", "us"),
    ("stage_overhead_us", "us"), ("expert_host_overhead_us", "us"), ("graph_stage_overhead_us", "us"),
    ("graph_span_overhead_us", "us"), ("range_gap_us", "us"), ("attention_floor_us", "us"),
    ("vision_attention_floor_us", "us"), ("attention_floor_per_key_ns", "us"), ("vision_attention_cta_us", "us"),
    ("vision_attention_cta_per_key_ns", "us"), ("prefill_attention_efficiency", "fraction"),
    ("biased_attention_efficiency", "fraction"), ("biased_attention_cta_us", "us"),
    ("biased_attention_block_us", "us"), ("broadcast_bandwidth_efficiency", "fraction"),
    ("elementwise_bandwidth_efficiency", "fraction"), ("transpose_bandwidth_efficiency", "fraction"),
)
"""Single RooflineParams fields a ``roofline.<field>`` key sets, with the kind of value each takes (the
help text lists them in this order; ``compute_efficiency`` has its own keys)."""


def _keys() -> dict[str, KeyInfo]:
    modes = tuple(RESOLUTION_MODES)
    table = [
        KeyInfo(name="mode", group=WORKLOAD, expects=f"one of {', '.join(modes)}", parse=_choice_parser(modes)),
        KeyInfo(name="page_size", group=WORKLOAD, expects="WxH in pixels, e.g. 1654x2339", parse=_parse_page),
        KeyInfo(name="max_crops", group=WORKLOAD, expects="an integer >= 1 (>= 2 in crop mode)",
                parse=_int_parser(1)),
        KeyInfo(name="max_new_tokens", group=WORKLOAD, expects="an integer >= 0", parse=_int_parser(0)),
        KeyInfo(name="batch_size", group=WORKLOAD, expects="an integer >= 1", parse=_int_parser(1)),
        KeyInfo(name="num_pages", group=WORKLOAD, expects="an integer >= 1", parse=_int_parser(1)),
        KeyInfo(name="prompt_tokens", group=WORKLOAD, expects="an integer >= 1", parse=_int_parser(1)),
        KeyInfo(name="hardware", group=HARDWARE, expects="a hardware id, an exact CUDA device name or a YAML file",
                parse=_parse_hardware),
    ]
    for name in HARDWARE_FIELDS:
        if name.endswith(("_tflops", "_tbs", "_gb")):
            table.append(KeyInfo(name=f"hardware.{name}", group=HARDWARE, expects="a number > 0",
                                 parse=_float_parser(0.0)))
    table.append(KeyInfo(name="dtype", group=PRECISION, expects=f"one of {', '.join(DTYPE_CHOICES)}",
                         parse=_choice_parser(DTYPE_CHOICES)))
    for f in attrs.fields(Precision):
        choices = COMPUTE_DTYPES if f.name == "compute_dtype" else STORAGE_DTYPES
        table.append(KeyInfo(name=f.name, group=PRECISION, expects=f"one of {', '.join(choices)}",
                             parse=_choice_parser(choices)))
    kinds: dict[str, tuple[str, Callable[[Any], Any]]] = {
        "efficiency": (EFFICIENCY_RANGE, _float_parser(0.0, 2.0)),
        "fraction": ("a number in (0, 1]", _float_parser(0.0, 1.0)),
        "us": ("a number >= 0", _float_parser(0.0, low_inclusive=True)),
        "bool": ("true or false", _parse_bool),
    }
    for name, kind in ROOFLINE_FIELDS:
        expects, parse = kinds[kind]
        table.append(KeyInfo(name=f"roofline.{name}", group=ROOFLINE, expects=expects, parse=parse))
    table += [
        KeyInfo(name="execution", group=ROOFLINE, expects="graph or eager (decode steps)",
                parse=_choice_parser(EXECUTIONS)),
        KeyInfo(name="prefill_execution", group=ROOFLINE,
                expects="graph or eager (vision, projector, prefill; eager under eager execution)",
                parse=_choice_parser(EXECUTIONS)),
        KeyInfo(name="roofline.compute_efficiency", group=ROOFLINE, expects=EFFICIENCY_RANGE + " (every category)",
                parse=_float_parser(0.0, 2.0)),
    ]
    for cat in CATEGORY_IDS:
        table.append(KeyInfo(name=f"roofline.compute_efficiency.{cat}", group=ROOFLINE, expects=EFFICIENCY_RANGE,
                             parse=_float_parser(0.0, 2.0)))
    return {k.name: k for k in table}


KEYS: dict[str, KeyInfo] = _keys()
"""Every valid what-if key, in the order of the help text."""
_CATEGORY_PREFIX = "roofline.compute_efficiency."


def valid_keys_text() -> str:
    """The valid keys in one line (the per-category efficiency keys as one pattern)."""
    plain = [k for k in KEYS if not k.startswith(_CATEGORY_PREFIX)]
    return f"{', '.join(plain)}, {_CATEGORY_PREFIX}<category> (category: {', '.join(CATEGORY_IDS)})"


def key_info(key: str) -> KeyInfo:
    """The KeyInfo of ``key``; an unknown key is a UserError listing the valid ones."""
    info = KEYS.get(key)
    if info is None:
        close = difflib.get_close_matches(key, list(KEYS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UserError(f"unknown what-if key {key!r}{hint}; valid keys: {valid_keys_text()}")
    return info


def parse_value(key: str, raw: Any) -> Any:
    """The typed value of ``key`` from text or a Python value; errors name the key and the value."""
    info = key_info(key)
    try:
        return info.parse(raw)
    except _Invalid:
        raise UserError(f"invalid value {raw!r} for {key}: expected {info.expects}") from None
    except UserError as exc:
        raise UserError(f"invalid value {raw!r} for {key}: {exc.message}") from None


def parse_overrides(overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """Every key checked and every value parsed (keys keep their order)."""
    return {key: parse_value(key, raw) for key, raw in (overrides or {}).items()}


def split_assignment(text: str, option: str) -> tuple[str, str]:
    """``'KEY=VALUE'`` → (key, value); anything else is a UserError naming the option."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UserError(f"{option} {text!r} must be KEY=VALUE; valid keys: {valid_keys_text()}")
    return key, value.strip()


def display_value(value: Any) -> Any:
    """A parsed value as it appears in tables, CSV and JSON (hardware → id, page → ``WxH``)."""
    if isinstance(value, HardwareSpec):
        return value.id
    if isinstance(value, tuple) and len(value) == 2:
        return f"{value[0]}x{value[1]}"
    return value


# -- applying ----------------------------------------------------------------------------------
def inputs_of(source: AnalyticModelReport | AnalyticInputs) -> AnalyticInputs:
    """The inputs section of a report (an AnalyticInputs passes through)."""
    if isinstance(source, AnalyticModelReport):
        return source.inputs
    if isinstance(source, AnalyticInputs):
        return source
    raise TypeError(f"expected an AnalyticModelReport or AnalyticInputs, got {type(source).__name__}")


def _precision(base: Precision, parsed: Mapping[str, Any]) -> Precision:
    prec = base
    if "dtype" in parsed:
        from llm_perf_opt.analytic.api import precision_for

        prec = precision_for(parsed["dtype"])
    fields = {f.name: parsed[f.name] for f in attrs.fields(Precision) if f.name in parsed}
    return attrs.evolve(prec, **fields) if fields else prec


def _roofline(base: RooflineParams, parsed: Mapping[str, Any]) -> RooflineParams:
    changes: dict[str, Any] = {}
    effs = dict(base.compute_efficiency)
    if "roofline.compute_efficiency" in parsed:
        effs = dict.fromkeys(effs, parsed["roofline.compute_efficiency"])
    effs.update({k[len(_CATEGORY_PREFIX):]: v for k, v in parsed.items() if k.startswith(_CATEGORY_PREFIX)})
    if effs != base.compute_efficiency:
        changes["compute_efficiency"] = effs
    for name, _ in ROOFLINE_FIELDS:
        if f"roofline.{name}" in parsed:
            changes[name] = parsed[f"roofline.{name}"]
    for name in ("execution", "prefill_execution"):
        if name in parsed:
            changes[name] = parsed[name]
    return attrs.evolve(base, **changes) if changes else base


def apply_parsed(inputs: AnalyticInputs, parsed: Mapping[str, Any]) -> AnalyticInputs:
    """``inputs`` with already parsed overrides applied (see :func:`parse_overrides`)."""
    if not parsed:
        return inputs
    groups = {KEYS[k].group for k in parsed}
    changes: dict[str, Any] = {}
    if HARDWARE in groups:
        hw: HardwareSpec = parsed.get("hardware", inputs.hardware)
        figures = {k.split(".", 1)[1]: v for k, v in parsed.items() if k.startswith("hardware.")}
        changes["hardware"] = attrs.evolve(hw, **figures) if figures else hw
    if PRECISION in groups:
        changes["precision"] = _precision(inputs.precision, parsed)
    if WORKLOAD in groups:
        work = {k: v for k, v in parsed.items() if KEYS[k].group == WORKLOAD}
        changes["workload_spec"] = inputs.workload_spec.replace(**work)
    if ROOFLINE in groups:
        changes["roofline"] = _roofline(inputs.roofline, parsed)
    return attrs.evolve(inputs, **changes)


def apply_overrides(
    source: AnalyticModelReport | AnalyticInputs, overrides: Mapping[str, Any] | None = None
) -> AnalyticInputs:
    """The report's inputs with ``{key: value}`` overrides applied (values as text or typed).

    The result is a new :class:`AnalyticInputs`; the report is not changed. With no overrides
    the report's own inputs come back (the same object).
    """
    inputs = inputs_of(source)
    return apply_parsed(inputs, parse_overrides(overrides))
