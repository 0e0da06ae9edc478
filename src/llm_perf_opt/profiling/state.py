"""Configuration, progress events and the mutable state of one profiling run."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import torch
from attrs import define, field

from llm_perf_opt.contracts.profile import Stats
from llm_perf_opt.contracts.profile_config import ProfileConfig
from llm_perf_opt.errors import UserError
from llm_perf_opt.io.artifact_set import ArtifactSet
from llm_perf_opt.profiling import mfu as mfu_mod
from llm_perf_opt.profiling.inputs import InputCollection
from llm_perf_opt.profiling.records import RunRecord
from llm_perf_opt.profiling.session import Batch, ProfileSession
from llm_perf_opt.profiling.timeline import Timeline
from llm_perf_opt.profiling.torch_profiler import OperatorTables

DEFAULT_OUTPUT_ROOT = Path("tmp/profile-output")

__all__ = [
    "DEFAULT_OUTPUT_ROOT",
    "ProfileConfig",
    "ProfileIncomplete",
    "ProfileResult",
    "ProfileState",
    "ProgressEvent",
]
# ProfileConfig is declared (once, torch-free) in llm_perf_opt.contracts.profile_config.


@define(frozen=True)
class ProgressEvent:
    """``phase`` is one of inputs, load, prepare, warmup, timed, profile, report."""

    phase: str
    done: int
    total: int
    message: str = ""


ProgressCallback = Callable[[ProgressEvent], None]


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
    routing: dict[str, Stats] = field(factory=dict)
    """MoE routing census of the prefill (profiling/routing.py), as aggregates over the MoE layers."""
    tables: OperatorTables | None = None
    timeline: Timeline | None = None
    """Busy/idle per stage from the profiled window (None without a profiler pass)."""
    peaks: mfu_mod.Peaks | None = None
    warnings: list[str] = field(factory=list)
    notes: list[str] = field(factory=list)
    phase: str = "inputs"
    phase_seconds: dict[str, float] = field(factory=dict)
    incomplete_reason: str | None = None
    trace_path: Path | None = None
    artifacts: ArtifactSet | None = None
    """The locked, staged output directory; files go to :attr:`work_dir` until it is committed."""

    @property
    def incomplete(self) -> bool:
        return self.incomplete_reason is not None

    @property
    def work_dir(self) -> Path:
        """Where artifacts are written now: the staging directory until the commit, then ``output_dir``."""
        if self.artifacts is not None and self.artifacts.stage is not None:
            return self.artifacts.stage
        return self.output_dir

    @property
    def planned_runs(self) -> int:
        return self.config.repeats * len(self.batches) * len(self.decode_modes)

    @property
    def primary_records(self) -> list[RunRecord]:
        """The runs of the reported (first) decode mode: what every table but the side-by-side one shows."""
        first = self.decode_modes[0]
        return [r for r in self.records if r.decode_mode == first] or list(self.records)

    @property
    def decode_modes(self) -> list[str]:
        """Decode modes timed in this run, the reported one first (``--decode-mode both``: graph, eager)."""
        from llm_perf_opt.models.deepseek_ocr.generate import resolve_decode_mode

        if self.session is not None and not self.session.graph_decode:
            return ["eager"]  # code we do not control (the official checkpoint's generate) runs as it is written
        if self.config.decode_mode == "both":
            return [resolve_decode_mode("graph", self.device), "eager"]
        return [resolve_decode_mode(self.config.decode_mode, self.device)]


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
