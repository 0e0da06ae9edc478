"""Domain models of a Stage 1 profiling run (seed data model ``LLMProfileReport`` and friends).

``OperatorSummary`` and ``Stats`` are the contract classes, re-used so a report converts to its
:class:`~llm_perf_opt.contracts.models.LLMProfileReportSummary` without copying shapes
(see :func:`profile_summary`). Serialise with
:mod:`llm_perf_opt.io.convert` (``dump`` / ``load``). This module imports no torch.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, get_args

import attrs
from attrs import define, field
from attrs.validators import instance_of

from llm_perf_opt.contracts.checks import (
    ABS_PATH,
    ANY_FLOAT,
    BOOL,
    COUNT,
    ID,
    NON_NEGATIVE,
    OPT_COUNT,
    OPT_POSITIVE_INT,
    OPT_STR,
    POSITIVE,
    POSITIVE_INT,
    SHARE,
    STR,
    DictOf,
    ListOf,
    OneOf,
    ensure_unique,
    floats_dict,
    to_float,
)
from llm_perf_opt.contracts.profile import (
    DTYPES,
    OPERATOR_STAGES,
    TIMED_STAGES,
    Dtype,
    LLMProfileReportSummary,
    OperatorStage,
    OperatorSummary,
    Stats,
    TimedStage,
    check_sorted_desc,
)

EncoderType = Literal["ViT", "CNN", "Unknown"]
ImageCategory = Literal["text_heavy", "mixed_layout", "image_rich", "synthetic", "unknown"]
"""Seed categories plus ``synthetic`` (generated test pages)."""

ENCODER_TYPES: tuple[str, ...] = get_args(EncoderType)
IMAGE_CATEGORIES: tuple[str, ...] = get_args(ImageCategory)

__all__ = [
    "ENCODER_TYPES",
    "IMAGE_CATEGORIES",
    "OPERATOR_STAGES",
    "TIMED_STAGES",
    "Dtype",
    "EncoderType",
    "ImageCategory",
    "InputImage",
    "InputSet",
    "LLMProfileReport",
    "ModelUnderTest",
    "OperatorStage",
    "OperatorSummary",
    "RunMeta",
    "StageTiming",
    "Stats",
    "TimedStage",
]


@define(kw_only=True)
class ModelUnderTest:
    """The model that was profiled and how it was loaded."""

    id: str = field(validator=ID, metadata={"help": "Human name of the model (spec name or checkpoint name)"})
    model_path: str = field(validator=ID, metadata={"help": "Absolute checkpoint path, or a model id resolved locally"})
    dtype: Dtype = field(validator=OneOf(DTYPES), metadata={"help": "Compute dtype"})
    device: str = field(validator=ID, metadata={"help": "Torch device, e.g. cuda:0"})
    use_flash_attn: bool = field(default=False, validator=BOOL, metadata={"help": "Whether flash attention was used"})
    n_layers: int | None = field(default=None, validator=OPT_POSITIVE_INT, metadata={"help": "Decoder layers"})
    d_model: int | None = field(default=None, validator=OPT_POSITIVE_INT, metadata={"help": "Decoder hidden width"})
    d_ff: int | None = field(default=None, validator=OPT_POSITIVE_INT, metadata={"help": "Dense MLP width"})
    n_heads: int | None = field(default=None, validator=OPT_POSITIVE_INT, metadata={"help": "Attention heads"})
    encoder_type: EncoderType = field(
        default="Unknown", validator=OneOf(ENCODER_TYPES), metadata={"help": "Vision encoder family"}
    )


@define(kw_only=True)
class InputImage:
    """One page image of the input set."""

    path: str = field(validator=ABS_PATH, metadata={"help": "Absolute image path"})
    width: int = field(validator=POSITIVE_INT, metadata={"help": "Width (px)"})
    height: int = field(validator=POSITIVE_INT, metadata={"help": "Height (px)"})
    category: ImageCategory = field(
        default="unknown", validator=OneOf(IMAGE_CATEGORIES), metadata={"help": "Kind of page"}
    )


@define(kw_only=True)
class InputSet:
    """The images of one run (non-empty; 10–20 recommended)."""

    id: str = field(validator=ID, metadata={"help": "Name of the set"})
    root_dir: str = field(validator=ABS_PATH, metadata={"help": "Absolute directory holding the images"})
    count: int = field(validator=POSITIVE_INT, metadata={"help": "Number of images; equals len(images)"})
    images: list[InputImage] = field(validator=ListOf(InputImage, nonempty=True), metadata={"help": "The images"})

    def __attrs_post_init__(self) -> None:
        if self.count != len(self.images):
            raise ValueError(f"input set {self.id!r}: count is {self.count} but it lists {len(self.images)} images")


@define(kw_only=True)
class StageTiming:
    """Measured time of one stage (mean over repeats; spreads go to ``aggregates``).

    ``vision`` (= ``sam`` + ``clip``) and ``projector`` run inside ``prefill``; ``total`` is the
    whole generate call. Never sum nested stages into a total.
    """

    stage: TimedStage = field(validator=OneOf(TIMED_STAGES), metadata={"help": "Stage name"})
    elapsed_ms: float = field(converter=to_float, validator=POSITIVE, metadata={"help": "Elapsed time (ms), > 0"})
    tokens: int = field(
        default=0,
        validator=COUNT,
        metadata={"help": "Tokens processed: generated for decode, prompt + image tokens for prefill"},
    )
    throughput_toks_per_s: float = field(
        default=0.0, converter=to_float, validator=NON_NEGATIVE, metadata={"help": "tokens / elapsed (tokens/s)"}
    )
    repeat: int | None = field(
        default=None, validator=OPT_COUNT, metadata={"help": "0-based timed pass; None = mean over all passes"}
    )


@define(kw_only=True)
class RunMeta:
    """Reproducibility metadata of one run."""

    run_id: str = field(validator=ID, metadata={"help": "Run identifier (uuid)"})
    created_at: datetime = field(validator=instance_of(datetime), metadata={"help": "Start time, ISO 8601 in files"})
    repeats: int = field(validator=POSITIVE_INT, metadata={"help": "Timed passes over the image set"})
    repo_root: str = field(validator=ABS_PATH, metadata={"help": "Absolute repository root"})
    gpu_name: str = field(validator=STR, metadata={"help": "torch.cuda.get_device_name(), or cpu"})
    compute_capability: str = field(validator=STR, metadata={"help": "CUDA compute capability, e.g. 9.0"})
    peak_tflops_bf16: float = field(
        converter=to_float, validator=NON_NEGATIVE, metadata={"help": "Dense bf16 peak used for MFU (0 = unknown)"}
    )
    torch_version: str = field(validator=STR, metadata={"help": "torch.__version__"})
    transformers_version: str = field(validator=STR, metadata={"help": "transformers.__version__ ('' if absent)"})
    cuda_version: str = field(validator=STR, metadata={"help": "torch.version.cuda ('' on CPU builds)"})
    hardware_id: str | None = field(default=None, validator=OPT_STR, metadata={"help": "Hardware table row used"})
    git_commit: str | None = field(default=None, validator=OPT_STR, metadata={"help": "Repository commit, if known"})
    python_version: str = field(default="", validator=STR, metadata={"help": "Python version"})


def _sorted_ops(inst: object, attribute: Any, value: Any) -> None:
    ListOf(OperatorSummary)(inst, attribute, value)
    check_sorted_desc(value, attribute.name)


_OPS_PER_STAGE = DictOf(list, check=_sorted_ops, keys=(*OPERATOR_STAGES, "total"))


@define(kw_only=True)
class LLMProfileReport:
    """The full artifact of one profiling run (``metrics.json``)."""

    run_id: str = field(validator=ID, metadata={"help": "Run identifier; equals meta.run_id"})
    model: ModelUnderTest = field(validator=instance_of(ModelUnderTest), metadata={"help": "Model under test"})
    input_set: InputSet = field(validator=instance_of(InputSet), metadata={"help": "Images profiled"})
    timings: list[StageTiming] = field(validator=ListOf(StageTiming), metadata={"help": "Per-stage timings"})
    operators_topk: list[OperatorSummary] = field(
        validator=ListOf(OperatorSummary), metadata={"help": "Top operators by total_time_ms, largest first"}
    )
    mfu_model_level: float = field(converter=to_float, validator=SHARE, metadata={"help": "Whole-run MFU (0..1)"})
    mfu_per_stage: dict[str, float] = field(
        converter=floats_dict, validator=DictOf(float, check=SHARE), metadata={"help": "MFU per stage"}
    )
    aggregates: dict[str, Stats] = field(validator=DictOf(Stats), metadata={"help": "Metric -> mean/std over repeats"})
    notes: str = field(default="", validator=STR, metadata={"help": "Stakeholder summary"})
    meta: RunMeta = field(validator=instance_of(RunMeta), metadata={"help": "Reproducibility metadata"})
    incomplete: bool = field(default=False, validator=BOOL, metadata={"help": "Run stopped early or a stage failed"})
    warnings: list[str] = field(factory=list, validator=ListOf(str), metadata={"help": "Caveats found during the run"})
    operators_per_stage: dict[str, list[OperatorSummary]] = field(
        factory=dict, validator=_OPS_PER_STAGE, metadata={"help": "Top operators per stage, largest first"}
    )
    bandwidth_utilization: dict[str, float] = field(
        factory=dict,
        converter=floats_dict,
        validator=DictOf(float, check=SHARE),
        metadata={"help": "Achieved / peak DRAM bandwidth per stage (0..1)"},
    )
    analytic: dict[str, float] = field(
        factory=dict,
        converter=floats_dict,
        validator=DictOf(float, check=ANY_FLOAT),
        metadata={"help": "Analytic predictions for the same inputs (e.g. prefill_tflops, decode_time_ms)"},
    )

    def __attrs_post_init__(self) -> None:
        if self.meta.run_id != self.run_id:
            raise ValueError(f"run_id {self.run_id!r} differs from meta.run_id {self.meta.run_id!r}")
        ensure_unique((f"{t.stage}#{t.repeat}" for t in self.timings), "timing (stage#repeat)")
        check_sorted_desc(self.operators_topk, "operators_topk")

    def timing(self, stage: str, repeat: int | None = None) -> StageTiming | None:
        """The timing of ``stage`` (of one pass, or the mean when ``repeat`` is None); None if absent."""
        return next((t for t in self.timings if t.stage == stage and t.repeat == repeat), None)


def profile_summary(report: LLMProfileReport, *, top_n: int | None = None) -> LLMProfileReportSummary:
    """The contract summary of a domain report (copies, so editing one never changes the other).

    ``top_n`` limits ``top_operators`` (all of ``operators_topk`` when None).
    """
    ops = report.operators_topk if top_n is None else report.operators_topk[:top_n]
    return LLMProfileReportSummary(
        run_id=report.run_id,
        mfu_model_level=report.mfu_model_level,
        mfu_per_stage=dict(report.mfu_per_stage),
        top_operators=[attrs.evolve(op) for op in ops],
        aggregates={k: attrs.evolve(v) for k, v in report.aggregates.items()},
        notes=report.notes,
        incomplete=report.incomplete,
        warnings=list(report.warnings),
    )
