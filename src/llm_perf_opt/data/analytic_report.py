"""The analytic report: the seed's DeepSeekOCRAnalyticModel fields plus stages, memory and inputs.

``inputs`` holds everything needed to recompute the report (model spec, workload, hardware,
roofline parameters, precision), so ``what-if`` can load a report, override any of them and call
the same :mod:`llm_perf_opt.analytic.api` functions. Units: ``*_tflops`` 10^12 FLOPs (multiply-add
= 2), ``*_tb`` 10^12 bytes, ``*_gb`` 10^9 bytes, ``*_ms`` milliseconds. Serialise with
:mod:`llm_perf_opt.io.convert`. This module imports no torch.
"""

from __future__ import annotations

from attrs import define, field

from llm_perf_opt.contracts.analytic import (
    AnalyticModuleNode,
    DeepSeekOCRAnalyticModel,
    DeepSeekOCRModelSpec,
    ModuleMetricsSnapshot,
    OCRWorkloadProfile,
    OperatorCategory,
    validate_module_tree,
)
from llm_perf_opt.data.analytic_inputs import Precision, RooflineParams
from llm_perf_opt.hardware.table import HardwareSpec
from llm_perf_opt.specs.model_spec import ModelSpec
from llm_perf_opt.specs.workload import Workload, check_context

SCHEMA_VERSION = "llm-perf-opt.analytic-report/1"
BOUNDS = ("compute", "memory", "launch", "none", "n/a")


def _schema(_inst: object, _attr: object, value: str) -> None:
    if value != SCHEMA_VERSION:
        raise ValueError(f"schema_version {value!r} is not supported; expected {SCHEMA_VERSION!r}")


def _bound(_inst: object, _attr: object, value: str) -> None:
    if value not in BOUNDS:
        raise ValueError(f"bound must be one of {', '.join(BOUNDS)}, got {value!r}")


@define(kw_only=True)
class StageTotals:
    """Totals of one stage for one generation call (B pages); times are None without hardware."""

    stage: str
    calls: int
    """Decoder calls (prefill 1, decode = steps) or encoder passes (vision, projector)."""
    tokens: int
    """Tokens processed: vision/projector feature vectors, prefill B·P, decode B·steps."""
    flops_tflops: float
    """Matmul-class FLOPs as torch.utils.flop_counter counts them (full score matrix under a causal mask)."""
    executed_tflops: float
    """FLOPs a causal flash kernel executes (masked score blocks skipped); used by the roofline."""
    non_matmul_tflops: float
    """Norms, softmax, activations, RoPE, adds: not counted by the flop counter, not in flops_tflops."""
    io_tb: float
    """Bytes read + written (weights, activations, KV cache)."""
    kernels: int
    weights_gb: float
    kv_cache_gb: float
    activations_gb: float
    compute_ms: float | None = None
    memory_ms: float | None = None
    launch_ms: float | None = None
    predicted_ms: float | None = None
    bound: str = field(default="n/a", validator=_bound)

    @property
    def flops(self) -> float:
        """Raw FLOPs (for MFU)."""
        return self.flops_tflops * 1e12

    @property
    def io_bytes(self) -> float:
        return self.io_tb * 1e12


@define(kw_only=True)
class MemorySummary:
    """Device memory for one call: resident weights + KV cache at the final context + peak activations."""

    weights_gb: float
    kv_cache_gb: float
    """KV cache of B sequences at final_context (prefill + decode steps)."""
    activations_gb: float
    """Largest working set of one operator (inputs + outputs + materialised intermediates)."""
    total_gb: float
    device_memory_gb: float
    fits: bool


@define(kw_only=True)
class ImageTokenFacts:
    """How the page(s) become image-token slots and the sequence lengths that follow."""

    mode: str
    base_size: int
    image_size: int
    crop_mode: bool
    page_size: list[int] | None
    tile_grid: list[int]
    num_tiles: int
    views: list[list[int]]
    """[view side px, views per page] for each encoder pass."""
    global_side: int
    tile_side: int
    image_tokens: int
    """Image-token slots per page (features + newlines + separator)."""
    feature_tokens: int
    """Image slots holding projected vision features (global view + local tiles; no newlines, no separator)."""
    newline_tokens: int
    """Learned ``image_newline`` slots, one after each row of features (global grid and tile mosaic)."""
    prompt_tokens: int
    """Text tokens of the prompt, BOS included."""
    prefill_tokens: int
    """Sequence length of the first forward per page: prompt_tokens + image_tokens."""
    max_new_tokens: int
    """Tokens generated per page, N (the first comes from prefill)."""
    decode_steps: int
    """Decode forwards per page, N − 1: one per generated token after the first."""
    final_context: int
    """KV-cache length per page after the last decode step: prefill_tokens + decode_steps."""
    batch_size: int
    """Pages per generation call."""


@define(kw_only=True)
class AnalyticInputs:
    """Everything the report was computed from; override any part and recompute."""

    model_spec: ModelSpec
    workload_spec: Workload
    hardware: HardwareSpec
    roofline: RooflineParams
    precision: Precision

    def __attrs_post_init__(self) -> None:
        # One check for analyze, what-if and report loading: a context the model cannot hold never "fits".
        check_context(self.workload_spec, self.model_spec.decoder.max_position_embeddings, self.model_spec.name)


@define(kw_only=True)
class AnalyticModelReport:
    """DeepSeekOCRAnalyticModel (seed fields) plus stage totals, memory, token facts and inputs."""

    schema_version: str = field(default=SCHEMA_VERSION, validator=_schema)
    report_id: str
    created_at: str
    """ISO 8601 UTC time of the build."""
    model: DeepSeekOCRModelSpec
    workload: OCRWorkloadProfile
    modules: list[AnalyticModuleNode]
    operator_categories: list[OperatorCategory]
    module_metrics: list[ModuleMetricsSnapshot]
    profile_run_id: str | None = None
    stages: list[StageTotals]
    memory: MemorySummary
    predicted_total_time_ms: float
    """One generation call of batch_size pages: vision + projector + prefill + decode."""
    predicted_job_time_ms: float
    """⌈num_pages / batch_size⌉ calls (a last partial batch is costed as a full one)."""
    image_tokens: ImageTokenFacts
    assumptions: list[str] = field(factory=list)
    inputs: AnalyticInputs

    def __attrs_post_init__(self) -> None:
        validate_module_tree(self.modules)
        known = {m.module_id for m in self.modules}
        cats = {c.category_id for c in self.operator_categories}
        for snap in self.module_metrics:
            if snap.module_id not in known:
                raise ValueError(f"module_metrics refers to unknown module_id {snap.module_id!r}")
            for op in snap.operator_breakdown:
                if op.category_id not in cats:
                    raise ValueError(f"module {snap.module_id!r}: unknown category_id {op.category_id!r}")

    def stage(self, name: str) -> StageTotals:
        for s in self.stages:
            if s.stage == name:
                return s
        raise KeyError(name)

    def to_contract(self) -> DeepSeekOCRAnalyticModel:
        """The seed contract view (DeepSeekOCRAnalyticModel) of this report."""
        return DeepSeekOCRAnalyticModel(
            report_id=self.report_id,
            model=self.model,
            workload=self.workload,
            modules=list(self.modules),
            operator_categories=list(self.operator_categories),
            module_metrics=list(self.module_metrics),
            profile_run_id=self.profile_run_id,
        )
