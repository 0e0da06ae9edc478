"""Analytic time of every measured stage of one workload, cheap to re-evaluate for new parameters.

The layer tree of a workload is built once (its costs are memoised by the analytic package); each
evaluation only runs a fresh :class:`~llm_perf_opt.analytic.roofline.Roofline` over it, well under
a millisecond, so a fit can evaluate it thousands of times. Times are exactly those of
``analyze`` / ``what-if`` for the same inputs (same functions, same trees).
"""

from __future__ import annotations

from attrs import define, evolve

from llm_perf_opt.analytic.api import precision_for
from llm_perf_opt.analytic.base import BaseLayer, Precision
from llm_perf_opt.analytic.clip import ClipEncoder
from llm_perf_opt.analytic.deepseek_ocr import STAGES
from llm_perf_opt.analytic.implementations import build_implementation_stages
from llm_perf_opt.analytic.projector import ImageTokenAssembly, ProjectorPass
from llm_perf_opt.analytic.roofline import Roofline, RooflineParams
from llm_perf_opt.analytic.sam import SamEncoder
from llm_perf_opt.hardware.table import HardwareSpec
from llm_perf_opt.specs.model_spec import ModelSpec
from llm_perf_opt.specs.workload import Workload

MS = 1e3


def _encoders(layer: BaseLayer, cls: type[BaseLayer], mult: int = 1) -> list[tuple[BaseLayer, int]]:
    """Every ``cls`` sub-tree under ``layer`` with its repetition count (SAM / CLIP inside vision)."""
    out: list[tuple[BaseLayer, int]] = []
    for child in layer.children():
        n = mult * child.count
        if isinstance(child.layer, cls):
            out.append((child.layer, n))
        else:
            out.extend(_encoders(child.layer, cls, n))
    return out


@define(kw_only=True)
class StagePrediction:
    """Predicted ms per measured stage, and the roofline bound of each analytic stage."""

    times_ms: dict[str, float]
    bounds: dict[str, str]


class StagePredictor:
    """Predicted ms of each measured stage (see :mod:`.measured`) of one workload on one GPU."""

    def __init__(
        self, spec: ModelSpec, workload: Workload, hardware: HardwareSpec, precision: Precision | str = "bf16"
    ) -> None:
        self.spec = spec
        self.workload = workload
        self.hardware = hardware
        self.precision = precision_for(precision)
        self._build("graph")

    def _build(self, execution: str, implementation: str = "ours", load_ratio: float = 1.0) -> None:
        """The layer trees for one decode ``execution``, ``implementation`` and MoE routing skew (rebuilt when
        params ask for another)."""
        self.execution, self.implementation, self.load_ratio = execution, implementation, load_ratio
        self.stages = build_implementation_stages(
            self.spec, self.workload, self.precision, execution, implementation, load_ratio
        )
        vision = self.stages["vision"]
        self.sam = _encoders(vision, SamEncoder)
        self.clip = _encoders(vision, ClipEncoder)
        # The profiler's "projector" range holds only the projector pass (feature fusion + linear);
        # newline/separator assembly runs after it, inside the vision range ("glue").
        # (The official code's stages wrap the batch-1 stage in a page loop: counts multiply through.)
        self.projector_pass = _encoders(self.stages["projector"], ProjectorPass)
        self.assembly = _encoders(self.stages["projector"], ImageTokenAssembly)

    def roofline(self, params: RooflineParams) -> Roofline:
        return Roofline(self.hardware, params, self.precision.compute_dtype)

    def predict(self, params: RooflineParams) -> StagePrediction:
        """Times of every measured stage under ``params`` (one roofline pass over the trees)."""
        if params.implementation == "hf-official" and params.execution != "eager":
            params = evolve(params, execution="eager")  # the official generate has no graph path
        wanted = (params.execution, params.implementation, params.expert_load_ratio)
        if wanted != (self.execution, self.implementation, self.load_ratio):
            self._build(*wanted)
        roof = self.roofline(params)
        t = {name: roof.stage_time(self.stages[name]) for name in STAGES}
        ms = {name: timing.total_s * MS for name, timing in t.items()}

        graphed = roof.prefill_in_graph
        # Graphed stages timed in-graph: their kernels alone; each one's launch and range cost stays in the
        # enclosing vision and prefill ranges (``launch`` per timed stage).
        in_graph = graphed and params.graph_stage_timing == "span"
        launch = (roof.graph_launch_s * MS + params.graph_stage_overhead_us / 1e3) if in_graph else 0.0
        # An in-graph span also holds the GPU's steps between its timing events and the stage's kernels.
        span_extra = params.graph_span_overhead_us / 1e3 if in_graph else 0.0

        def span(parts: list[tuple[BaseLayer, int]], synchronised: bool = True) -> float:
            """One range: a replayed graph or the eager kernel queue (+ the range's fixed cost when synchronised)."""
            if graphed:
                return roof.graph_span(parts, synchronised=synchronised and not in_graph).total_s * MS
            return roof.eager_span(parts, synchronised=synchronised).total_s * MS

        def ranges(parts: list[tuple[BaseLayer, int]]) -> float:
            """hf-official: every pass of every page is a synchronised range of its own."""
            return sum(n * span([(x, 1)]) for x, n in parts)

        one_range = self.implementation != "hf-official"  # ours: one range over all passes
        sam = span(self.sam) if one_range else ranges(self.sam)
        clip = span(self.clip) if one_range else ranges(self.clip)
        projector = span(self.projector_pass) if one_range else ranges(self.projector_pass)
        # Host time at the ends of the nested ranges stays in the vision range (range_gap_us each).
        nested = 3 if one_range else sum(n for parts in (self.sam, self.clip, self.projector_pass) for _, n in parts)
        gaps = nested * params.range_gap_us / 1e3

        def body(parts: list[tuple[BaseLayer, int]]) -> float:  # Σ max(compute, memory): no launch term
            return sum(n * (roof.time(x).total_s - roof.time(x).launch_s) for x, n in parts) * MS

        assembly = span(self.assembly, synchronised=False)
        times = {
            "sam": sam + span_extra,
            "clip": clip + span_extra,
            # Measured vision = its range minus the projector's: SAM, CLIP, the nested ranges' host gaps and,
            # when eager, the assembly (newline / separator rows; in the decoder graph when graphed).
            "vision": sam + clip + gaps + 2 * launch + (0.0 if graphed else assembly),
            "projector": projector + span_extra,
            "prefill_decoder": ms["prefill"] + (assembly if graphed else 0.0),
            "prefill": sam + clip + gaps + 3 * launch + projector + assembly + ms["prefill"],
            "decode": ms["decode"],
            # The call as analyze predicts it (its report's predicted total): the nested ranges' gaps, a profiling
            # artefact of ~0.3 ms, stay out so a comparison's ratio is the report's.
            "total": sum(ms.values()),
            "sam_gpu": body(self.sam),
            "clip_gpu": body(self.clip),
            "projector_gpu": body(self.projector_pass),
            "prefill_decoder_gpu": body([(self.stages["prefill"], 1)]),
            "decode_gpu": body([(self.stages["decode"], 1)]),
        }
        bounds = {name: timing.bound for name, timing in t.items()}
        sam_t = [roof.time(layer) for layer, _ in self.sam]
        clip_t = [roof.time(layer) for layer, _ in self.clip]
        bounds["sam"] = _dominant([(x, n) for x, (_, n) in zip(sam_t, self.sam, strict=True)])
        bounds["clip"] = _dominant([(x, n) for x, (_, n) in zip(clip_t, self.clip, strict=True)])
        bounds["prefill_decoder"] = bounds.pop("prefill")  # measured "prefill" spans three analytic stages
        return StagePrediction(times_ms=times, bounds=bounds)

    def times_ms(self, params: RooflineParams) -> dict[str, float]:
        return self.predict(params).times_ms

    def matmul_categories(self) -> set[str]:
        """Operator categories with matmul-class FLOPs in any stage (the ones a compute efficiency affects)."""
        cats: set[str] = set()
        for layer in self.stages.values():
            for cat, (_calls, flops, _bytes, _kernels) in layer.cost().categories.items():
                if flops > 0:
                    cats.add(cat)
        return cats


def _dominant(parts: list[tuple[object, int]]) -> str:
    """The bound class with the most time over several timings (each × its count)."""
    acc = {"compute": 0.0, "memory": 0.0, "launch": 0.0}
    for timing, n in parts:
        for key, value in getattr(timing, "by_bound", {}).items():
            acc[key] += n * value
    if not any(acc.values()):
        return "none"
    return max(acc.items(), key=lambda kv: kv[1])[0]
