"""Configuration, progress events and the mutable state of one profiling run."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import torch
from attrs import define, field

from llm_perf_opt.errors import UserError
from llm_perf_opt.profiling import mfu as mfu_mod
from llm_perf_opt.profiling.inputs import InputCollection
from llm_perf_opt.profiling.records import RunRecord
from llm_perf_opt.profiling.session import Batch, ProfileSession
from llm_perf_opt.profiling.torch_profiler import OperatorTables
from llm_perf_opt.specs.image_tokens import resolution_mode

DEFAULT_OUTPUT_ROOT = Path("tmp/profile-output")


@define(frozen=True)
class ProgressEvent:
    """``phase`` is one of inputs, load, prepare, warmup, timed, profile, report."""

    phase: str
    done: int
    total: int
    message: str = ""


ProgressCallback = Callable[[ProgressEvent], None]


@define(kw_only=True)
class ProfileConfig:
    """Everything ``llm-perf-opt profile`` can be asked for (CLI flags map one to one)."""

    model: str = "deepseek-ocr"
    weights: str | None = None
    images: tuple[str, ...] = ()
    mode: str = "gundam"
    max_crops: int = 9
    repeats: int = 3
    warmup: int = 1
    max_new_tokens: int = 64
    min_new_tokens: int | None = None
    """None: every page generates exactly ``max_new_tokens`` (EOS suppressed), so runs compare."""
    no_repeat_ngram_size: int = 0
    device: str | None = None
    dtype: str | None = None
    attn_impl: str = "sdpa"
    batch_size: int = 1
    top_k: int = 20
    trace: bool = False
    torch_profiler: bool = True
    output_dir: Path | None = None
    run_id: str | None = None
    strict: bool = False
    trust_remote_code: bool = False
    seed: int = 0
    peak_tflops: float | None = None
    peak_bandwidth_tbs: float | None = None

    def validate(self) -> None:
        resolution_mode(self.mode)
        for name in ("repeats", "max_new_tokens", "batch_size", "top_k", "max_crops"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.warmup < 0:
            raise UserError(f"--warmup must be 0 or more, got {self.warmup}")
        if self.min_new_tokens is not None and not 0 <= self.min_new_tokens <= self.max_new_tokens:
            raise UserError("--min-new-tokens must lie between 0 and --max-new-tokens")
        for name in ("peak_tflops", "peak_bandwidth_tbs"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise UserError(f"--{name.replace('_', '-')} must be positive, got {value}")
        if self.run_id is not None and (not self.run_id.strip() or "/" in self.run_id or self.run_id in (".", "..")):
            raise UserError(f"--run-id {self.run_id!r} must be a non-empty name without '/'")


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:8]


@define(kw_only=True)
class ProfileState:
    """Everything measured so far; the artifact writers read it at the end or on interruption."""

    config: ProfileConfig
    run_id: str
    created_at: datetime
    output_dir: Path
    device: torch.device
    dtype: str
    inputs: InputCollection
    env: dict[str, object] = field(factory=dict)
    session: ProfileSession | None = None
    batches: list[Batch] = field(factory=list)
    costs: dict[int, dict[str, mfu_mod.StageCost]] = field(factory=dict)
    records: list[RunRecord] = field(factory=list)
    tables: OperatorTables | None = None
    peaks: mfu_mod.Peaks | None = None
    warnings: list[str] = field(factory=list)
    notes: list[str] = field(factory=list)
    phase: str = "inputs"
    phase_seconds: dict[str, float] = field(factory=dict)
    incomplete_reason: str | None = None
    trace_path: Path | None = None

    @property
    def incomplete(self) -> bool:
        return self.incomplete_reason is not None

    @property
    def planned_runs(self) -> int:
        return self.config.repeats * len(self.batches)


@define(kw_only=True)
class ProfileResult:
    state: ProfileState
    report: object | None
    """The written :class:`~llm_perf_opt.data.profile.LLMProfileReport` (None if it failed to build)."""


class ProfileIncomplete(UserError):
    """The run stopped early (e.g. out of memory); artifacts marked incomplete were written."""

    exit_code = 1

    def __init__(self, reason: str, output_dir: Path) -> None:
        super().__init__(f"{reason}; partial report (marked incomplete) in {output_dir}")
        self.output_dir = output_dir
