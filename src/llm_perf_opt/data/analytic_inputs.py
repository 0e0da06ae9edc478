"""Inputs of the analytic model that reports store: storage/compute precision and roofline parameters.

They live in ``data`` (below ``analytic``) because :class:`~llm_perf_opt.data.analytic_report.AnalyticInputs`
records them so a report can be recomputed; ``llm_perf_opt.analytic.base`` and
``llm_perf_opt.analytic.roofline`` re-export them. This module imports no torch or numpy.
"""

from __future__ import annotations

from typing import Any

from attrs import define, field, frozen

from llm_perf_opt.errors import UserError, unknown_id
from llm_perf_opt.specs.execution import EXECUTIONS, GRAPH_STAGE_TIMINGS, IMPLEMENTATIONS
from llm_perf_opt.specs.limits import MAX_OVERHEAD_US, check_float

DTYPE_BYTES: dict[str, int] = {"fp32": 4, "bf16": 2, "fp16": 2, "fp8": 1}
"""Bytes per element of each storage dtype."""
COMPUTE_DTYPES = ("bf16", "fp16", "fp8", "tf32", "fp32")

def _storage_dtype(_inst: object, attr: Any, value: str) -> None:
    if value not in DTYPE_BYTES:
        raise unknown_id(f"{attr.name}", value, list(DTYPE_BYTES))


def _compute_dtype(_inst: object, attr: Any, value: str) -> None:
    if value not in COMPUTE_DTYPES:
        raise unknown_id(f"{attr.name}", value, COMPUTE_DTYPES)


@frozen(kw_only=True)
class Precision:
    """Storage dtypes of weights, activations and the KV cache, and the matmul compute dtype.

    The compute dtype picks the hardware peak (``HardwareSpec.peak_tflops``); the storage dtypes
    set bytes moved and bytes resident. Defaults are the official bf16 inference.
    """

    weight_dtype: str = field(default="bf16", validator=_storage_dtype)
    activation_dtype: str = field(default="bf16", validator=_storage_dtype)
    kv_dtype: str = field(default="bf16", validator=_storage_dtype)
    compute_dtype: str = field(default="bf16", validator=_compute_dtype)

    @property
    def w(self) -> int:
        """Bytes per weight element."""
        return DTYPE_BYTES[self.weight_dtype]

    @property
    def a(self) -> int:
        """Bytes per activation element."""
        return DTYPE_BYTES[self.activation_dtype]

    @property
    def kv(self) -> int:
        """Bytes per KV-cache element."""
        return DTYPE_BYTES[self.kv_dtype]


CATEGORY_IDS = (
    "vision_conv",
    "vision_attention",
    "vision_mlp",
    "norm",
    "embedding",
    "projector",
    "decoder_attention",
    "dense_mlp",
    "moe_router",
    "moe_experts",
    "lm_head",
    "elementwise",
)

DEFAULT_COMPUTE_EFFICIENCY: dict[str, float] = {
    "vision_conv": 0.7,  # cuDNN convs with few channels (patch embed) or small maps (net_2/net_3)
    "vision_attention": 0.5,  # memory-efficient SDPA reading a materialised bias (no flash kernel)
    "vision_mlp": 0.8,  # large GEMMs
    "norm": 0.8,
    "embedding": 0.8,
    "projector": 0.8,
    "decoder_attention": 0.7,  # projections + flash attention
    "dense_mlp": 0.8,
    "moe_router": 0.5,  # skinny fp32 GEMM (N = 64)
    "moe_experts": 0.6,  # many small per-expert GEMMs
    "lm_head": 0.8,
    "elementwise": 0.8,
}
"""Fraction of the dense datasheet peak each operator category reaches when compute-bound."""


def _efficiencies(value: Any) -> dict[str, float]:
    merged = dict(DEFAULT_COMPUTE_EFFICIENCY)
    merged.update({k: float(v) for k, v in dict(value).items()})
    return merged


def _check_efficiencies(_inst: object, _attr: Any, value: dict[str, float]) -> None:
    for key, eff in value.items():
        if key not in CATEGORY_IDS:
            valid = ", ".join(CATEGORY_IDS)
            raise UserError(f"unknown operator category {key!r} in compute_efficiency; valid: {valid}")
        if not 0.0 < eff <= 2.0:
            raise UserError(f"compute_efficiency[{key!r}] must be in (0, 2], got {eff!r}")


def _check_fraction(_inst: object, attr: Any, value: float) -> None:
    if not 0.0 < value <= 2.0:
        raise UserError(f"{attr.name} must be in (0, 2], got {value!r}")


def _check_unit_ratio(_inst: object, attr: Any, value: float) -> None:
    if not 0.0 < value <= 1.0:
        raise UserError(f"{attr.name} must be in (0, 1], got {value!r}")


def _check_non_negative(_inst: object, attr: Any, value: float) -> None:
    # Finite and at most a second per kernel: 1e308 µs overflowed the totals to inf (not JSON).
    check_float(attr.name, value, MAX_OVERHEAD_US, positive=False)


def _one_of(choices: tuple[str, ...]) -> Any:
    """An attrs validator: the value is one of ``choices`` (a UserError naming the field otherwise)."""

    def check(_inst: object, attr: Any, value: str) -> None:
        if value not in choices:
            raise UserError(f"{attr.name} must be one of {', '.join(choices)}, got {value!r}")

    return check


@define(kw_only=True)
class RooflineParams:
    """Efficiency factors of the roofline; a calibration step fits them to measurements."""

    compute_efficiency: dict[str, float] = field(
        factory=lambda: dict(DEFAULT_COMPUTE_EFFICIENCY), converter=_efficiencies, validator=_check_efficiencies
    )
    """Per operator category: fraction of the compute peak reached (defaults: 0.8 GEMM-heavy, 0.5 SAM attention)."""
    bandwidth_efficiency: float = field(default=0.9, converter=float, validator=_check_fraction)
    """Fraction of the DRAM bandwidth reached by memory-bound kernels (measured copy ≈ 0.9 on H100)."""
    launch_overhead_us: float = field(default=5.0, converter=float, validator=_check_non_negative)
    """Fixed cost per kernel launch (µs), added to each kernel's roofline time (eager PyTorch ≈ 5 µs)."""
    host_overhead_us: float = field(default=20.0, converter=float, validator=_check_non_negative)
    """Host (CPU) time to issue one kernel in eager PyTorch: Python, dispatcher, launch call (µs).

    Overlaps with GPU work between synchronisations (see the module docstring). 20 µs is typical
    of eager PyTorch on a server CPU; calibration from a profile run fits it (≈ 24 µs on the H100
    host of docs/validation)."""
    use_achievable_peaks: bool = False
    """Use the hardware's measured ceilings (achievable_*) instead of datasheet peaks when present."""
    expert_load_ratio: float = field(default=1.0, converter=float, validator=_check_unit_ratio)
    """Routing skew of the MoE's grouped dispatch: the j-th most loaded expert receives ratio^j of the top
    one's share of the token-expert pairs (analytic/moe.py). 1 = uniform routing (the default: trained
    weights balance the load). A profile run of our model measures it from its own prefill (routing
    census, ``moe_expert_load_ratio`` in metrics.json) and a calibration from that run uses it: random
    weights route at 0.84–0.86 on DeepSeek-OCR (23–50 of 64 experts per layer get tokens)."""
    gemm_table: bool = True
    """Time the dense matmuls outside the decode step, the convolutions and the grouped expert GEMMs of the MoE from
    the GPU's measured GEMM table (``hardware/gemm_tables/<id>-<dtype>.json``; ``benchmarks/bench_gemm_table.py``,
    ``bench_conv_table.py``, ``bench_grouped_table.py``) where it has the shape, instead of the roofline with SM
    fill (analytic/occupancy.py; a GPU without a table keeps the roofline; the official code's per-expert loop keeps
    it too). The grouped GEMMs are read per MoE layer at its token-expert pairs and routing skew
    (``expert_load_ratio``) and split over its experts by pairs: on the H200 the decoder part of prefill was then
    within −4.5% to +6.1% uncalibrated at every validation workload of both sets, where the per-expert roofline was
    8–17% low from base-size prompts up. On by default: on the H200 the table's times match the GEMMs of the
    operator tables (CLIP at base batch 8: 2.03 ms against 1.98 measured; SAM at a tiny page 0.47 against 0.48; the
    projector's linear 6.9–7.2 µs at 64–256 rows against 7) where the fill model, charging 128-row tiles, gave 2.87
    ms, 0.54 ms and 11.3 µs. It was off while CLIP's attention was held at one CTA's latency at every batch: the
    fill model's excess hid that error, so the table alone made batch-8 CLIP 13% fast
    (docs/validation/h200/NOTES.md). A what-if key (``roofline.gemm_table``) for comparing the two."""
    execution: str = field(default="graph", validator=_one_of(EXECUTIONS))
    """How decode steps reach the GPU: ``graph`` (captured CUDA graphs, the default: each kernel costs
    max(compute, memory, kernel_floor_us), plus one graph launch per step, no host term) or ``eager``
    (kernels issued from Python: launch_overhead_us per kernel and the host_overhead_us model).
    Vision, projector and prefill follow ``prefill_execution``."""
    prefill_execution: str = field(default="graph", validator=_one_of(EXECUTIONS))
    """How SAM, CLIP, the projector and the decoder prefill reach the GPU: ``graph`` (one captured graph
    per stage and input shape, the runnable model's default under graph execution: kernels at
    max(compute, memory, kernel_floor_us), one graph launch and the range's ``stage_overhead_us``)
    or ``eager`` (the host-issue queue model). Always ``eager`` under eager execution; ``eager`` with
    graph decode for runs profiled before prefill graphs existed, or whose MoE dispatch needs a host sync."""
    graph_stage_timing: str = field(default="span", validator=_one_of(GRAPH_STAGE_TIMINGS))
    """Under graph prefill, what a measured SAM, CLIP or projector time holds (a comparison's or a fit's
    input, not the analytic report's: its stages are whole ranges): ``span`` (the profiler's timing events
    inside each stage's graph, the default) — the stage's kernels alone, its graph launch and
    ``graph_stage_overhead_us`` counted in the vision range around it — or ``range`` (runs made before
    in-graph spans): the stage's synchronised range, launch and overhead included."""
    implementation: str = field(default="ours", validator=_one_of(IMPLEMENTATIONS))
    """Which code runs the model: ``ours`` or ``hf-official`` (the checkpoint's own code: lm_head on every
    prompt position, per-expert MoE loop with a host sync per MoE layer, eager decode whatever
    ``execution`` says; analytic/implementations.py)."""
    kernel_floor_us: float = field(default=3.0, converter=float, validator=_check_non_negative)
    """Least GPU time of one kernel inside a replayed graph (µs). 3.0: an H200 graph decode step of
    ~560 kernels took 2.1 ms for ~0.3 ms of HBM traffic (docs/validation/h200); calibration fits it."""
    graph_launch_us: float = field(default=10.0, converter=float, validator=_check_non_negative)
    """Host cost of one graph replay plus the few eager kernels around it (µs per decode step)."""
    stage_host_overhead_us: float = field(default=20.0, converter=float, validator=_check_non_negative)
    """Host time to issue one kernel in the eager stages (vision, projector, prefill: other Python than the
    decode step's, so fitted apart from ``host_overhead_us``). 20: CLIP is host-bound at batch 1 and took
    6.37 ms for its 316 kernels in an H200 run with eager vision (graph decode), base page, batch 1
    (docs/validation/h200 at commit ca0400a, runs/graph/base-b1-n256; the eager runs there: 5.94 ms)."""
    expert_host_overhead_us: float = field(default=10.0, converter=float, validator=_check_non_negative)
    """hf-official only: host time to issue one kernel of the official MoE's per-expert Python loop
    (``moe_infer``: one small SwiGLU — 3 ``nn.Linear`` calls, SiLU, mul — per expert that got tokens),
    lean Python next to the rest of the decoder (``host_overhead_us``). 10: the official prefill on the
    H200 (docs/official/h200/validation runs/hf-official/base-b1-n128) took 60.6 ms for 4449 kernels,
    3520 of them in this loop (11 MoE layers × 64 experts × 5), the other 929 at the decode step's
    ≈ 25 µs; calibration fits it from the decoder part of the prefill."""
    stage_overhead_us: float = field(default=150.0, converter=float, validator=_check_non_negative)
    """Fixed host cost of one CUDA-synchronised eager stage range (sam, clip, projector, prefill): the
    synchronisations and events at its boundaries and the Python around the modules (µs per range).
    150: an H200 run with eager vision (docs/validation/h200 at commit ca0400a, runs/graph/base-b1-n256)
    timed the projector range, three small kernels, at 0.218 ms; calibration fits it from the projector
    stage."""
    graph_stage_overhead_us: float = field(default=8.0, converter=float, validator=_check_non_negative)
    """Fixed cost of one CUDA-synchronised range around a replayed graph (sam, clip, projector under graph
    prefill) beyond the graph launch: the synchronisation and the events at its ends (µs). 8: in the first
    H200 graph validation pass of 2026-12-03 with the stage clock inside the NVTX and record_function ranges
    and inputs staged before the call (its runs since replaced in docs/validation/h200/runs/graph) the
    projector range, ~16 µs of kernels, measured 27–76 µs per run at batch 1; minus the then modelled kernels
    and ``graph_launch_us`` that left −4 to 27 µs, median 7.5 (before the clock moved inside, host work in
    the range made it 54–290 µs).
    Calibration fits it from the projector stage."""
    graph_span_overhead_us: float = field(default=6.0, converter=float, validator=_check_non_negative)
    """What a stage's in-graph span (``graph_stage_timing = span``) holds beyond the stage's kernels: the
    timing events are the graph's first and last nodes, and the GPU's steps from the opening event to the
    first kernel and from the last kernel to the closing event take time (µs per timed stage: sam, clip,
    projector). A measurement's cost, not the model's: analyze's stage times leave it out. 6: on the H200
    the projector's span of one two-kernel pass (concat + linear; tiny and base at batch 1, base at batch 4)
    measured 4.8–12.1 µs above the same kernels' times in the operator tables, median 6.3 over 14 runs
    (docs/validation/h200: runs/graph and rerun-session8 against prefill-ops). Calibration keeps it as
    started: one run's projector cannot tell it from the projector's kernels."""
    range_gap_us: float = field(default=127.0, converter=float, validator=_check_non_negative)
    """Host time at the ends of each synchronised range nested in the vision range (sam, clip, projector):
    the synchronisation's return, the Python around the next range and its first event, while the GPU
    idles (µs per nested range). The measured vision stage (its range minus the projector's) holds it
    beside SAM and CLIP. 127: the H200 calibration run of docs/validation/h200 (base, batch 1) measured
    vision 11.98 ms, SAM 10.11 and CLIP 1.50: 0.38 ms over its 3 nested ranges; calibration fits it from the
    vision stage."""
    attention_floor_us: float = field(default=12.0, converter=float, validator=_check_non_negative)
    """Least GPU time of one fused attention kernel of vision or prefill (SDPA's flash / memory-efficient
    forward; µs). 12: on the H200 the prefill's causal flash took 12.3 µs per call at 83 prompt tokens and
    12.7 at 283 (batch 1, 10 heads of 128), CLIP's 11.8 µs at 257 tokens (16 heads of 64) and 10 µs at
    101, well above the 0.2–1 µs their FLOPs need (docs/validation/h200/prefill-ops, operator tables)."""
    vision_attention_floor_us: float = field(default=4.7, converter=float, validator=_check_non_negative)
    """Fixed part of the least GPU time of one flash attention kernel of vision (CLIP: no bias, not causal;
    µs); the kernel's CTAs walk the keys, so its floor grows with them by ``attention_floor_per_key_ns``.
    On the H200 CLIP's flash forward took 6.5 µs per call at 65 keys (tiny) and 11.8 at 257 (base), batch 1,
    16 heads of 64 (docs/validation/h200/prefill-ops, operator tables): 4.7 µs + 27.6 ns per key."""
    attention_floor_per_key_ns: float = field(default=27.6, converter=float, validator=_check_non_negative)
    """Growth of a vision flash attention kernel's floor per key it reads (ns; see ``vision_attention_floor_us``)."""
    vision_attention_cta_us: float = field(default=0.85, converter=float, validator=_check_non_negative)
    """SM time of one CTA of a vision flash attention kernel beyond its keys (µs; with
    ``vision_attention_cta_per_key_ns``): what sets the kernel's time once its B·h·⌈q/128⌉ CTAs outnumber the
    SMs. Solved from the H200 operator tables (docs/validation/h200/prefill-b8) of CLIP at batch 8: base,
    384 CTAs over 257 keys, 28.8 µs per call (9.90 µs of SM time per CTA), and Gundam A4, the same global
    pass plus 768 CTAs over 101 keys, 55.0 µs per layer (4.45 µs per CTA): 0.85 µs + 35.6 ns per key. Base
    at batch 4 (prefill-ops: 192 CTAs, 14.7 µs per call) checks it (10.1 µs per CTA)."""
    vision_attention_cta_per_key_ns: float = field(default=35.6, converter=float, validator=_check_non_negative)
    """SM time per key of one CTA of a vision flash attention kernel (ns; see ``vision_attention_cta_us``)."""
    prefill_attention_efficiency: float = field(default=0.14, converter=float, validator=_check_fraction)
    """Fraction of the compute peak reached by the prefill's causal attention (SDPA's flash forward, head
    dim 128, over the visible scores). 0.14 on the H200: 1.51 ms for 205 GFLOP at 8 Gundam A4 pages
    (docs/validation/h200/prefill-b8/gundam-b8) and 0.37 ms for 25 GFLOP at one (913 prompt tokens,
    docs/validation/h200/prefill-ops); the decoder's GEMMs keep ``decoder_attention``'s factor."""
    biased_attention_efficiency: float = field(default=0.0963, converter=float, validator=_check_fraction)
    """Fraction of the compute peak reached by attention with a materialised additive bias (SAM's relative
    positions: PyTorch's memory-efficient SDPA kernel, as flash takes no bias), the rate its CTA waves
    (``biased_attention_cta_us``, ``biased_attention_block_us``) approach when full: 4 CTAs per SM each
    doing 4·64³ FLOPs per 5.81 µs key block on 132 SMs = 95.3 TFLOP/s, 0.0963 of the H200's 989.4, so the
    waves, not this rate, set every call (0.068 and 0.081 before; both made the rate exceed the waves)."""
    biased_attention_cta_us: float = field(default=0.0, converter=float, validator=_check_non_negative)
    """Fixed time of one CTA of the memory-efficient attention kernel (SAM's biased attention; µs). The kernel
    runs B·h·⌈q/64⌉ CTAs, four per SM at a time (occupancy.BIASED_ATTENTION_CTAS_PER_SM), each walking
    ⌈kv/64⌉ key blocks; a call then takes waves × (this + blocks × ``biased_attention_block_us``) when that
    exceeds its FLOPs at ``biased_attention_efficiency``. 0 and 5.81 fit the kernel's time in seven H200
    operator tables within ±6% (tiny, small, base, Gundam at one page, tiny, base and large at three:
    0.527–19.26 ms per SAM pass; docs/validation/h200/prefill-ops and sam-ops); the two-per-SM fit to a tiny
    and a base page alone (4.35 + 3.44 per block) put 3 large pages 16% and one small page 29% high."""
    biased_attention_block_us: float = field(default=5.81, converter=float, validator=_check_non_negative)
    """Time of one 64-key block in one CTA of the memory-efficient attention kernel (µs; see
    ``biased_attention_cta_us``)."""
    broadcast_bandwidth_efficiency: float = field(default=0.166, converter=float, validator=_check_fraction)
    """Fraction of the DRAM bandwidth peak reached by a broadcasting add that writes a large tensor (SAM's
    bias = rel_h[..., None] + rel_w[..., None, :]). 0.166 on the H200: that add writes 8–2949 MB at
    0.68–0.80 TB/s of 4.8 in benchmarks/bench_sam_ops.py (docs/validation/h200/bench/sam_ops.jsonl;
    0.78–0.80 from 61 MB up); 0.136 before, when the residual adds beside it in the operator tables were charged at
    full bandwidth instead of the strided rate they run at."""

    transpose_bandwidth_efficiency: float = field(default=0.20, converter=float, validator=_check_fraction)
    """Fraction of the DRAM bandwidth peak reached by a copy that transposes an operand: the projector's concat,
    which reads SAM's [C, g²] features as [g², C] beside the CLIP tokens (one generic strided ``aten::cat``).
    0.20 on the H200: alone, back to back, it took 57.6 µs for 56.1 MB (Gundam A4 batch 8) and 30.0 µs for
    26.2 MB (large batch 8), 0.97 and 0.87 TB/s of 4.8 (``benchmarks/bench_stage_launch.py``,
    docs/validation/h200/bench/stage_launch.jsonl). SAM's channel-major residual stream runs at the same
    kind of rate: its strided residual adds at 0.61–0.89 TB/s and the copies before its LayerNorms at
    0.55–0.74 TB/s (``benchmarks/bench_sam_ops.py``, docs/validation/h200/bench/sam_ops.jsonl)."""
    elementwise_bandwidth_efficiency: float = field(default=0.40, converter=float, validator=_check_fraction)
    """Fraction of the DRAM bandwidth peak reached by kernels without matmuls (elementwise, copies, gathers,
    scatters, reductions), whose operands in this model are often broadcast or strided (torch's
    non-vectorised kernels). 0.40 on the H200: the decoder prefill of 8 Gundam A4 pages (7,304 tokens,
    GPU-bound) spent 16.2 ms in such operators (aten::mul, copy_, index_copy_, silu, roll, sum, addcmul,
    sort, gather, add, rms_norm) for bytes the model puts at 7.3 ms at 90% of the peak
    (docs/validation/h200/prefill-b8/gundam-b8). Matmul operands stream at ``bandwidth_efficiency``."""

    def __attrs_post_init__(self) -> None:
        # The one place of this rule: the official generate has no graph path, its decode runs eager
        # (reports built, evolved, loaded or swept all carry the execution that was modelled).
        if self.implementation == "hf-official":
            self.execution = "eager"
        if self.execution == "eager":
            self.prefill_execution = "eager"  # no runnable mode graphs the prefill but not the decode

    def efficiency(self, category: str) -> float:
        return self.compute_efficiency.get(category, 0.8)


