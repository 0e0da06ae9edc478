"""Contract models of DeepSeek-OCR analytic modeling (names and fields fixed by the seed contracts).

Units follow the contracts: ``*_ms`` milliseconds, ``*_tflops`` 10^12 FLOPs (a multiply-add counts
2), ``*_tb`` 10^12 bytes, ``*_gb`` 10^9 bytes. Shares lie in [0, 1.5]: above 1 means the estimator
is wrong, above 1.5 is rejected. Every ``float`` field also accepts an ``int``.
"""

from __future__ import annotations

from typing import Literal, get_args

from attrs import define, field

from llm_perf_opt.contracts.checks import (
    BOOL,
    COUNT,
    ID,
    NON_NEGATIVE,
    OPT_NON_NEGATIVE,
    OPT_POSITIVE_INT,
    OPT_STR,
    POSITIVE_INT,
    SHARE,
    STR,
    ListOf,
    OneOf,
    ensure_unique,
    to_float,
    to_opt_float,
)

AnalyticStage = Literal["vision", "projector", "prefill", "decode", "other"]
"""Stage a module is attributed to in the analytic model."""
Repetition = Literal["none", "for", "parfor"]
"""How a module repeats: once, a sequential loop (layers), or in parallel (views, experts)."""
AnalyticStatus = Literal["queued", "running"]
VisionBackbone = Literal["sam_vit_b", "clip_vit_l", "other"]
DocKind = Literal["text_heavy", "mixed_layout", "image_rich", "synthetic"]

ANALYTIC_STAGES: tuple[str, ...] = get_args(AnalyticStage)
REPETITIONS: tuple[str, ...] = get_args(Repetition)
ANALYTIC_STATUSES: tuple[str, ...] = get_args(AnalyticStatus)
VISION_BACKBONES: tuple[str, ...] = get_args(VisionBackbone)
DOC_KINDS: tuple[str, ...] = get_args(DocKind)


@define(kw_only=True)
class DeepSeekOCRAnalyticRequest:
    """Request to build or refresh the DeepSeek-OCR analytic model."""

    model_id: str = field(validator=ID, metadata={"help": "Canonical model id (e.g. deepseek-ai/DeepSeek-OCR)"})
    model_variant: str = field(validator=ID, metadata={"help": "Internal model variant (e.g. deepseek-ocr-v1-base)"})
    workload_profile_id: str = field(validator=ID, metadata={"help": "Workload profile id (e.g. dsocr-standard-v1)"})
    profile_run_id: str | None = field(
        default=None, validator=OPT_STR, metadata={"help": "Optional Stage 1/2 profiling run id to validate against"}
    )
    force_rebuild: bool = field(
        default=False, validator=BOOL, metadata={"help": "Recompute even if a matching analytic report exists"}
    )


@define(kw_only=True)
class DeepSeekOCRAnalyticAccepted:
    """Answer to an analytic request: where to fetch the report later."""

    report_id: str = field(validator=ID, metadata={"help": "Identifier of the analytic report (used in later GETs)"})
    status: AnalyticStatus = field(validator=OneOf(ANALYTIC_STATUSES), metadata={"help": "Queuing status of the build"})


@define(kw_only=True)
class AnalyticModuleSummary:
    """One module's predicted cost, as listed in a report summary."""

    module_id: str = field(validator=ID, metadata={"help": "Module identifier from the analytic model"})
    name: str = field(validator=STR, metadata={"help": "Human-readable module name"})
    stage: AnalyticStage = field(validator=OneOf(ANALYTIC_STAGES), metadata={"help": "Stage attribution"})
    share_of_model_time: float = field(
        converter=to_float,
        validator=SHARE,
        metadata={"help": "Fraction of total predicted runtime (0..1; >1 flags an error)"},
    )
    total_time_ms: float = field(
        converter=to_float, validator=NON_NEGATIVE, metadata={"help": "Predicted runtime (ms)"}
    )
    total_flops_tflops: float = field(
        converter=to_float, validator=NON_NEGATIVE, metadata={"help": "Predicted FLOPs (10^12, multiply-add = 2)"}
    )
    memory_activations_gb: float = field(
        converter=to_float, validator=NON_NEGATIVE, metadata={"help": "Predicted activation memory (10^9 bytes)"}
    )


@define(kw_only=True)
class DeepSeekOCRAnalyticReportSummary:
    """Stakeholder view of one analytic report."""

    report_id: str = field(validator=ID, metadata={"help": "Identifier of the analytic model"})
    model_variant: str = field(validator=ID, metadata={"help": "Variant name (mirrors the request)"})
    workload_profile_id: str = field(validator=ID, metadata={"help": "Workload profile id (mirrors the request)"})
    predicted_total_time_ms: float = field(
        converter=to_float, validator=NON_NEGATIVE, metadata={"help": "Predicted end-to-end runtime (ms, analytic)"}
    )
    measured_total_time_ms: float | None = field(
        default=None,
        converter=to_opt_float,
        validator=OPT_NON_NEGATIVE,
        metadata={"help": "Measured end-to-end runtime (ms), when a profiling run is linked"},
    )
    predicted_vs_measured_ratio: float | None = field(
        default=None,
        converter=to_opt_float,
        validator=OPT_NON_NEGATIVE,
        metadata={"help": "Predicted / measured runtime; null without a measurement"},
    )
    top_modules: list[AnalyticModuleSummary] = field(
        factory=list, validator=ListOf(AnalyticModuleSummary), metadata={"help": "Top modules by runtime share"}
    )
    notes: str = field(validator=STR, metadata={"help": "Stakeholder-oriented notes and caveats"})


@define(kw_only=True)
class DeepSeekOCRModelSpec:
    """Contract view of the model architecture the analytic model was built for."""

    model_id: str = field(validator=ID, metadata={"help": "Canonical model id"})
    model_variant: str = field(validator=ID, metadata={"help": "Internal variant name"})
    hf_revision: str | None = field(
        default=None, validator=OPT_STR, metadata={"help": "Hugging Face revision, if pinned"}
    )
    hidden_size: int = field(validator=POSITIVE_INT, metadata={"help": "Decoder hidden width"})
    intermediate_size: int = field(validator=POSITIVE_INT, metadata={"help": "Dense MLP (SwiGLU) width"})
    num_layers: int = field(validator=POSITIVE_INT, metadata={"help": "Decoder layers"})
    num_attention_heads: int = field(validator=POSITIVE_INT, metadata={"help": "Decoder attention heads"})
    vision_backbone: VisionBackbone = field(
        validator=OneOf(VISION_BACKBONES), metadata={"help": "Vision encoder family"}
    )
    uses_moe: bool = field(validator=BOOL, metadata={"help": "Whether the decoder has mixture-of-experts layers"})


@define(kw_only=True)
class OCRWorkloadProfile:
    """Contract view of the workload (one request shape) the analytic model was built for."""

    profile_id: str = field(validator=ID, metadata={"help": "Workload profile id"})
    description: str = field(validator=STR, metadata={"help": "One-line description"})
    seq_len: int = field(validator=COUNT, metadata={"help": "Prefill sequence length (text + image tokens)"})
    base_size: int = field(validator=POSITIVE_INT, metadata={"help": "Global view side (px)"})
    image_size: int = field(validator=POSITIVE_INT, metadata={"help": "Local tile side (px) in crop mode"})
    crop_mode: bool = field(validator=BOOL, metadata={"help": "Whether pages are tiled beside the global view"})
    max_new_tokens: int = field(validator=COUNT, metadata={"help": "Generated tokens per page"})
    doc_kind: DocKind = field(validator=OneOf(DOC_KINDS), metadata={"help": "Kind of document"})
    num_pages: int = field(validator=POSITIVE_INT, metadata={"help": "Pages in the job"})


@define(kw_only=True)
class AnalyticModuleNode:
    """One node of the analytic module tree."""

    module_id: str = field(validator=ID, metadata={"help": "Unique module id within the model"})
    name: str = field(validator=STR, metadata={"help": "Human-readable name"})
    qualified_class_name: str = field(validator=STR, metadata={"help": "Analytic layer class (module.Class)"})
    stage: AnalyticStage = field(validator=OneOf(ANALYTIC_STAGES), metadata={"help": "Stage attribution"})
    parent_id: str | None = field(
        default=None, validator=OPT_STR, metadata={"help": "Parent module id; null at a root"}
    )
    children: list[str] = field(factory=list, validator=ListOf(str), metadata={"help": "Child module ids, in order"})
    repetition: Repetition = field(
        default="none", validator=OneOf(REPETITIONS), metadata={"help": "none, for (sequential) or parfor (parallel)"}
    )
    repetition_count: int | None = field(
        default=None, validator=OPT_POSITIVE_INT, metadata={"help": "Repeat count when repetition is not none"}
    )

    def __attrs_post_init__(self) -> None:
        if self.repetition != "none" and self.repetition_count is None:
            raise ValueError(f"module {self.module_id!r}: repetition {self.repetition!r} needs repetition_count")


@define(kw_only=True)
class OperatorCategory:
    """A family of operators (e.g. matmul, attention, norm) used to break module costs down."""

    category_id: str = field(validator=ID, metadata={"help": "Category id (e.g. matmul)"})
    display_name: str = field(validator=STR, metadata={"help": "Name shown in reports"})
    description: str = field(validator=STR, metadata={"help": "What the category covers"})
    match_classes: list[str] = field(
        factory=list, validator=ListOf(str), metadata={"help": "Analytic/torch classes that fall in this category"}
    )


@define(kw_only=True)
class OperatorMetrics:
    """Cost of one operator category inside one module."""

    category_id: str = field(validator=ID, metadata={"help": "Operator category id"})
    calls: int = field(validator=COUNT, metadata={"help": "Operator invocations"})
    flops_tflops: float = field(converter=to_float, validator=NON_NEGATIVE, metadata={"help": "FLOPs (10^12)"})
    io_tb: float = field(converter=to_float, validator=NON_NEGATIVE, metadata={"help": "Bytes moved (10^12)"})
    share_of_module_flops: float = field(
        converter=to_float, validator=SHARE, metadata={"help": "Fraction of the module's FLOPs (0..1)"}
    )


@define(kw_only=True)
class ModuleMetricsSnapshot:
    """Predicted cost of one module for one workload profile."""

    module_id: str = field(validator=ID, metadata={"help": "Module id (see AnalyticModuleNode)"})
    profile_id: str = field(validator=ID, metadata={"help": "Workload profile id"})
    calls: int = field(validator=COUNT, metadata={"help": "Invocations of the module per request"})
    total_time_ms: float = field(converter=to_float, validator=NON_NEGATIVE, metadata={"help": "Predicted time (ms)"})
    total_flops_tflops: float = field(converter=to_float, validator=NON_NEGATIVE, metadata={"help": "FLOPs (10^12)"})
    total_io_tb: float = field(converter=to_float, validator=NON_NEGATIVE, metadata={"help": "Bytes moved (10^12)"})
    memory_weights_gb: float = field(
        converter=to_float, validator=NON_NEGATIVE, metadata={"help": "Weight memory (10^9 bytes)"}
    )
    memory_activations_gb: float = field(
        converter=to_float, validator=NON_NEGATIVE, metadata={"help": "Activation memory (10^9 bytes)"}
    )
    memory_kvcache_gb: float = field(
        converter=to_float, validator=NON_NEGATIVE, metadata={"help": "KV-cache memory (10^9 bytes)"}
    )
    share_of_model_time: float = field(
        converter=to_float, validator=SHARE, metadata={"help": "Fraction of total predicted runtime (0..1)"}
    )
    operator_breakdown: list[OperatorMetrics] = field(
        factory=list, validator=ListOf(OperatorMetrics), metadata={"help": "Per operator-category costs"}
    )


@define(kw_only=True)
class DeepSeekOCRAnalyticModel:
    """The full machine-readable analytic model: module tree, categories and per-module metrics.

    Validated as a whole: module ids are unique, every ``parent_id`` / ``children`` / metrics
    ``module_id`` / breakdown ``category_id`` reference resolves, parent and children agree, and
    the tree has no cycle.
    """

    report_id: str = field(validator=ID, metadata={"help": "Identifier of the analytic report"})
    model: DeepSeekOCRModelSpec = field(metadata={"help": "Architecture the model was built for"})
    workload: OCRWorkloadProfile = field(metadata={"help": "Workload the metrics were computed for"})
    modules: list[AnalyticModuleNode] = field(
        factory=list, validator=ListOf(AnalyticModuleNode), metadata={"help": "Module tree, flattened"}
    )
    operator_categories: list[OperatorCategory] = field(
        factory=list, validator=ListOf(OperatorCategory), metadata={"help": "Operator categories used in breakdowns"}
    )
    module_metrics: list[ModuleMetricsSnapshot] = field(
        factory=list, validator=ListOf(ModuleMetricsSnapshot), metadata={"help": "Predicted cost per module"}
    )
    profile_run_id: str | None = field(
        default=None, validator=OPT_STR, metadata={"help": "Profiling run compared against, if any"}
    )

    def __attrs_post_init__(self) -> None:
        validate_module_tree(self.modules)
        known = {m.module_id for m in self.modules}
        categories = [c.category_id for c in self.operator_categories]
        ensure_unique(categories, "category_id")
        for snap in self.module_metrics:
            if snap.module_id not in known:
                raise ValueError(f"module_metrics refers to unknown module_id {snap.module_id!r}")
            for op in snap.operator_breakdown:
                if categories and op.category_id not in categories:
                    raise ValueError(
                        f"module {snap.module_id!r} operator_breakdown refers to unknown category_id {op.category_id!r}"
                    )


def validate_module_tree(modules: list[AnalyticModuleNode]) -> None:
    """Check ids are unique, references resolve, parents and children agree, and there is no cycle.

    Raises ValueError with a one-line message naming the offending module id.
    """
    ensure_unique((m.module_id for m in modules), "module_id")
    by_id = {m.module_id: m for m in modules}
    for node in modules:
        if node.parent_id is not None and node.parent_id not in by_id:
            raise ValueError(f"module {node.module_id!r} has unknown parent_id {node.parent_id!r}")
        ensure_unique(node.children, f"child of module {node.module_id!r}:")
        for child in node.children:
            if child not in by_id:
                raise ValueError(f"module {node.module_id!r} lists unknown child {child!r}")
            if by_id[child].parent_id != node.module_id:
                raise ValueError(
                    f"module {child!r} is a child of {node.module_id!r} but its parent_id is {by_id[child].parent_id!r}"
                )
    for node in modules:
        if node.parent_id is not None and node.module_id not in by_id[node.parent_id].children:
            raise ValueError(f"module {node.module_id!r} names parent {node.parent_id!r}, which does not list it")
    # Parents and children agree, so following parent_id finds every cycle.
    for node in modules:
        seen = {node.module_id}
        current = node.parent_id
        while current is not None:
            if current in seen:
                raise ValueError(f"module tree has a cycle through {current!r}")
            seen.add(current)
            current = by_id[current].parent_id
