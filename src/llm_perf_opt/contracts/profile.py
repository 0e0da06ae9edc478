"""Contract models of Stage 1 profiling (``LLMProfileRequest`` / ``Accepted`` / ``ReportSummary``).

``OperatorSummary`` and ``Stats`` are shared with the domain report
(:class:`llm_perf_opt.data.profile.LLMProfileReport`). Fields beyond the seed contract are
optional with defaults, so older documents still load.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from attrs import define, field

from llm_perf_opt.contracts.checks import (
    ABS_PATH,
    ANY_FLOAT,
    BOOL,
    COUNT,
    ID,
    NON_NEGATIVE,
    OPT_ABS_PATH,
    OPT_ANY_FLOAT,
    OPT_COUNT,
    OPT_NON_NEGATIVE,
    OPT_STR,
    POSITIVE_INT,
    SHARE,
    STR,
    DictOf,
    ListOf,
    OneOf,
    floats_dict,
    to_float,
    to_opt_float,
)
from llm_perf_opt.contracts.profile_config import (
    DTYPES,
    RESOLUTION_MODE_NAMES,
    Dtype,
    ResolutionModeName,
    config_field,
)

ProfileStatus = Literal["queued", "running", "completed", "failed"]
TimedStage = Literal["vision", "sam", "clip", "projector", "prefill", "decode", "total"]
"""Stages the profiler times; vision = sam + clip and is nested in prefill (never summed twice)."""
OperatorStage = Literal["vision", "sam", "clip", "projector", "prefill", "decode", "other"]
"""Stage an operator is attributed to (from the enclosing NVTX range); other = outside all ranges."""

PROFILE_STATUSES: tuple[str, ...] = get_args(ProfileStatus)
TIMED_STAGES: tuple[str, ...] = get_args(TimedStage)
OPERATOR_STAGES: tuple[str, ...] = get_args(OperatorStage)


def _from_config(name: str, validator: Any, *, help: str | None = None) -> Any:
    """A request field whose default and help come from the ``ProfileConfig`` field of that name."""
    declared = config_field(name)
    return field(default=declared.default, validator=validator, metadata={"help": help or declared.metadata["help"]})


@define(kw_only=True)
class LLMProfileRequest:
    """Request to profile DeepSeek-OCR inference over a set of page images.

    Defaults and help text come from :class:`~llm_perf_opt.contracts.profile_config.ProfileConfig`
    (the one declaration of profile options); only the request's stricter path rules differ.
    """

    model: str = field(validator=ID, metadata={"help": config_field("model").metadata["help"]})
    weights: str | None = _from_config(
        "weights", OPT_ABS_PATH, help="Absolute path of a local safetensors checkpoint directory; null = random init"
    )
    images: list[str] = field(
        validator=ListOf(str, check=ABS_PATH, nonempty=True),
        metadata={"help": "Absolute paths of page images, or one absolute directory of images"},
    )
    mode: ResolutionModeName = _from_config("mode", OneOf(RESOLUTION_MODE_NAMES))
    max_crops: int = _from_config("max_crops", POSITIVE_INT)
    repeats: int = _from_config("repeats", POSITIVE_INT)
    warmup: int = _from_config("warmup", COUNT)
    max_new_tokens: int = _from_config("max_new_tokens", POSITIVE_INT)
    device: str | None = _from_config("device", OPT_STR)
    dtype: Dtype | None = _from_config("dtype", OneOf(DTYPES, optional=True))
    batch_size: int = _from_config("batch_size", POSITIVE_INT)
    top_k: int = _from_config("top_k", POSITIVE_INT)
    output_dir: str | None = _from_config(
        "output_dir", OPT_ABS_PATH, help="Absolute output directory; null = tmp/profile-output/<run_id>"
    )
    hardware: str | None = field(
        default=None, validator=OPT_STR, metadata={"help": "Hardware table id for peak FLOP/s; null = detect"}
    )


@define(kw_only=True)
class LLMProfileAccepted:
    """Answer to a profile request: the run id and where its artifacts go."""

    run_id: str = field(validator=ID, metadata={"help": "Run identifier (used in later GETs)"})
    status: ProfileStatus = field(validator=OneOf(PROFILE_STATUSES), metadata={"help": "Run status"})
    output_dir: str = field(validator=ABS_PATH, metadata={"help": "Absolute directory the artifacts are written to"})


@define(kw_only=True)
class OperatorSummary:
    """One operator's aggregate from torch.profiler, per pass over the image set."""

    op_name: str = field(validator=ID, metadata={"help": "Operator name (e.g. aten::mm)"})
    total_time_ms: float = field(
        converter=to_float, validator=NON_NEGATIVE, metadata={"help": "Total (inclusive) CPU-side time (ms)"}
    )
    cuda_time_ms: float = field(
        converter=to_float, validator=NON_NEGATIVE, metadata={"help": "Total device time of its kernels (ms)"}
    )
    calls: int = field(validator=COUNT, metadata={"help": "Invocations"})
    self_time_ms: float | None = field(
        default=None,
        converter=to_opt_float,
        validator=OPT_NON_NEGATIVE,
        metadata={"help": "CPU time excluding child operators (ms)"},
    )
    self_cuda_time_ms: float | None = field(
        default=None,
        converter=to_opt_float,
        validator=OPT_NON_NEGATIVE,
        metadata={"help": "Device time excluding child operators (ms)"},
    )
    stage: OperatorStage | None = field(
        default=None,
        validator=OneOf(OPERATOR_STAGES, optional=True),
        metadata={"help": "Stage the operator ran in; null when not attributed"},
    )


@define(kw_only=True)
class Stats:
    """Mean and spread of one metric over repeats (optional order statistics)."""

    mean: float = field(converter=to_float, validator=ANY_FLOAT, metadata={"help": "Arithmetic mean"})
    std: float = field(
        converter=to_float,
        validator=NON_NEGATIVE,
        metadata={"help": "Standard deviation (population; 0 for one sample)"},
    )
    count: int | None = field(default=None, validator=OPT_COUNT, metadata={"help": "Samples"})
    min: float | None = field(
        default=None, converter=to_opt_float, validator=OPT_ANY_FLOAT, metadata={"help": "Minimum"}
    )
    max: float | None = field(
        default=None, converter=to_opt_float, validator=OPT_ANY_FLOAT, metadata={"help": "Maximum"}
    )
    p50: float | None = field(
        default=None, converter=to_opt_float, validator=OPT_ANY_FLOAT, metadata={"help": "Median"}
    )
    p95: float | None = field(
        default=None, converter=to_opt_float, validator=OPT_ANY_FLOAT, metadata={"help": "95th percentile"}
    )

    def __attrs_post_init__(self) -> None:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"stats min {self.min!r} is greater than max {self.max!r}")


def check_sorted_desc(ops: list[OperatorSummary], what: str) -> None:
    """Raise ValueError unless ``ops`` is sorted by ``total_time_ms``, largest first."""
    for i in range(1, len(ops)):
        if ops[i].total_time_ms > ops[i - 1].total_time_ms:
            raise ValueError(
                f"{what} must be sorted by total_time_ms descending: {ops[i].op_name!r} "
                f"({ops[i].total_time_ms:g} ms) follows {ops[i - 1].op_name!r} ({ops[i - 1].total_time_ms:g} ms)"
            )


@define(kw_only=True)
class LLMProfileReportSummary:
    """Stakeholder view of one profiling run."""

    run_id: str = field(validator=ID, metadata={"help": "Run identifier"})
    mfu_model_level: float = field(
        converter=to_float, validator=SHARE, metadata={"help": "Model FLOPs utilisation over the whole run (0..1)"}
    )
    mfu_per_stage: dict[str, float] = field(
        converter=floats_dict,
        validator=DictOf(float, check=SHARE),
        metadata={"help": "MFU per stage (vision, projector, prefill, decode, ...)"},
    )
    top_operators: list[OperatorSummary] = field(
        validator=ListOf(OperatorSummary), metadata={"help": "Top operators by total time, largest first"}
    )
    aggregates: dict[str, Stats] = field(
        validator=DictOf(Stats), metadata={"help": "Metric name -> mean/std over repeats"}
    )
    notes: str = field(default="", validator=STR, metadata={"help": "Stakeholder summary"})
    incomplete: bool = field(
        default=False, validator=BOOL, metadata={"help": "True when the run stopped early or a stage failed"}
    )
    warnings: list[str] = field(factory=list, validator=ListOf(str), metadata={"help": "Caveats found during the run"})

    def __attrs_post_init__(self) -> None:
        check_sorted_desc(self.top_operators, "top_operators")
