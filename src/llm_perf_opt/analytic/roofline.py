"""Roofline time of a layer tree on one accelerator, with explicit, fittable efficiency factors.

Per leaf (one call):

    compute = executed_flops / (peak(compute_dtype) · eff[category])
    memory  = (bytes_read + bytes_written) / (bandwidth · eff_bw)
    launch  = kernels · launch_overhead
    time    = max(compute, memory) + launch

and the leaf's bound is ``launch`` when launch exceeds max(compute, memory), else ``compute`` or
``memory``.

Host issue: the CPU spends ``host_overhead_us`` per kernel of a decode step and
``stage_host_overhead_us`` per kernel of the other stages (Python, dispatcher, launch call; the official
code's prefill runs its decoder modules and pays ``host_overhead_us``, its per-expert MoE loop
``expert_host_overhead_us``) and
runs ahead of the GPU only while it is faster. The eager stages (vision, projector, prefill: each
range CUDA-synchronised at its ends) follow the kernel queue kernel by kernel (:mod:`.eager`: the
GPU runs kernel k once the host has issued it and kernel k − 1 is done), plus ``stage_overhead_us``
per synchronised range. An eager decode step (one host sync for the EOS check) keeps the
stage-level overlap:

    step_j  = max(gpu_j, kernels_step · host_overhead)      (summed in closed form over j)

Two kernel families run far below the category efficiencies and get their own measured factors:
attention with a materialised additive bias (``biased_attention_efficiency``: no flash kernel) and
the broadcasting add that materialises it (``broadcast_bandwidth_efficiency`` on its
``broadcast_write_bytes``).

A stage or step that the host limits is reported with bound ``launch``.

A composite's time is Σ count × child time; its bound is the class (compute / memory
/ launch) whose bound leaves take the most time. Non-matmul FLOPs do not enter the compute term:
elementwise and norm kernels are memory-bound, and their traffic is charged in full.

Decode steps (:class:`~llm_perf_opt.analytic.base.Swept`): compute and memory are affine in the
step index, so Σ_j max(c_j, m_j) splits at the crossover into two arithmetic series — closed form.
"""

from __future__ import annotations

from llm_perf_opt.analytic.base import BaseLayer, Cost, Swept
from llm_perf_opt.analytic.eager import EMPTY, Span, leaf_span
from llm_perf_opt.analytic.moe import ExpertMLP
from llm_perf_opt.analytic.occupancy import attention_floor_s, biased_attention_waves_s, measured_gemm_s, sm_fill
from llm_perf_opt.analytic.primitives import AttentionCore
from llm_perf_opt.analytic.series import sum_max_affine, sum_max_lines

# RooflineParams is recorded in reports, so it is declared in data (below analytic); re-exported here.
from llm_perf_opt.data.analytic_inputs import CATEGORY_IDS as CATEGORY_IDS
from llm_perf_opt.data.analytic_inputs import DEFAULT_COMPUTE_EFFICIENCY as DEFAULT_COMPUTE_EFFICIENCY
from llm_perf_opt.data.analytic_inputs import RooflineParams as RooflineParams
from llm_perf_opt.hardware.gemm_table import GemmTable, gemm_table
from llm_perf_opt.hardware.table import HardwareSpec
from llm_perf_opt.specs.execution import SPLIT_KV_BLOCK


class Timing:
    """Seconds of one call: raw compute, memory and launch terms, roofline total, and time by bound."""

    __slots__ = ("by_bound", "compute_s", "host_s", "launch_s", "memory_s", "total_s")

    def __init__(self) -> None:
        self.compute_s = 0.0
        self.memory_s = 0.0
        self.launch_s = 0.0
        self.host_s = 0.0
        """Host issue time of the kernels (overlaps with GPU time; see the module docstring)."""
        self.total_s = 0.0
        self.by_bound = {"compute": 0.0, "memory": 0.0, "launch": 0.0}

    @property
    def bound(self) -> str:
        if self.total_s <= 0:
            return "none"
        return max(self.by_bound.items(), key=lambda kv: kv[1])[0]

    def add(self, other: Timing, n: float) -> None:
        self.compute_s += n * other.compute_s
        self.memory_s += n * other.memory_s
        self.launch_s += n * other.launch_s
        self.host_s += n * other.host_s
        self.total_s += n * other.total_s
        for key in self.by_bound:
            self.by_bound[key] += n * other.by_bound[key]


def peak_rates(hardware: HardwareSpec, params: RooflineParams, compute_dtype: str) -> tuple[float, float]:
    """(FLOP/s, byte/s) before efficiencies; achievable ceilings scale every dtype's peak alike."""
    flops = hardware.peak_tflops(compute_dtype) * 1e12
    bw = hardware.bandwidth_tbs * 1e12
    if params.use_achievable_peaks:
        if hardware.achievable_tflops:
            flops *= hardware.achievable_tflops / hardware.bf16_tflops
        if hardware.achievable_bandwidth_tbs:
            bw = hardware.achievable_bandwidth_tbs * 1e12
    return flops, bw


def _host_work(layer: BaseLayer) -> float:
    """Host seconds of a leaf's Python that launches no kernel (hf-official's n-gram ban), else 0."""
    return float(getattr(layer, "host_us", 0.0)) * 1e-6


class Roofline:
    """Evaluates layer times on one accelerator; memoised per layer within one evaluation."""

    def __init__(self, hardware: HardwareSpec, params: RooflineParams, compute_dtype: str) -> None:
        self.hardware = hardware
        self.params = params
        self.flops_per_s, self.bytes_per_s = peak_rates(hardware, params, compute_dtype)
        self.broadcast_bytes_per_s = hardware.bandwidth_tbs * 1e12 * params.broadcast_bandwidth_efficiency
        # Kernels without matmuls move their bytes at their own (lower) share of the bandwidth.
        self.elementwise_bytes_per_s = self.bytes_per_s * params.elementwise_bandwidth_efficiency
        self.transpose_bytes_per_s = self.bytes_per_s * params.transpose_bandwidth_efficiency
        self.bytes_per_s *= params.bandwidth_efficiency
        self.stage_overhead_s = params.stage_overhead_us * 1e-6
        self.stage_host_s = params.stage_host_overhead_us * 1e-6
        self.launch_s = params.launch_overhead_us * 1e-6
        self.host_s = params.host_overhead_us * 1e-6
        self.expert_host_s = params.expert_host_overhead_us * 1e-6
        # The official code's prefill runs its decoder modules, so their Python, not the vision encoders'.
        self.prefill_host_s = self.host_s if params.implementation == "hf-official" else self.stage_host_s
        self.floor_s = params.kernel_floor_us * 1e-6
        self.graph_launch_s = params.graph_launch_us * 1e-6
        self.gemms: GemmTable | None = gemm_table(hardware.id, compute_dtype) if params.gemm_table else None
        self._memo: dict[BaseLayer, Timing] = {}
        self._stage_memo: dict[BaseLayer, Timing] = {}
        self._span_memo: dict[BaseLayer, Span] = {}

    def _terms(self, layer: BaseLayer, cost: Cost) -> tuple[float, float, float]:
        if isinstance(layer, AttentionCore) and layer.bias:
            eff = self.params.biased_attention_efficiency  # no flash kernel takes a bias
        elif isinstance(layer, AttentionCore) and layer.stage == "prefill":
            eff = self.params.prefill_attention_efficiency  # causal flash over the prompt: its own rate
        else:
            eff = self.params.efficiency(layer.category)
        official = self.params.implementation == "hf-official"  # see analytic/occupancy.py
        # The official code's per-expert loop runs cuBLAS per expert, not the grouped GEMMs the table measured.
        measured = None if official and isinstance(layer, ExpertMLP) else measured_gemm_s(layer, self.gemms)
        if measured is not None and isinstance(layer, ExpertMLP):  # the table's time holds the weight reads
            return measured, 0.0, cost.kernels * self.launch_s
        if measured is not None:  # the GPU's own time for this matmul: no efficiency, no fill
            compute = measured
        else:
            fill = 1.0 if official else sm_fill(layer, self.hardware.sms)
            compute = cost.executed_flops / (self.flops_per_s * eff * fill)
            if isinstance(layer, AttentionCore) and layer.bias:  # short sequences: CTA waves, not the rate
                compute = max(compute, biased_attention_waves_s(layer, self.hardware.sms, self.params))
        slow = min(float(getattr(layer, "broadcast_write_bytes", 0.0)), cost.bytes_moved)
        rate = self.bytes_per_s if cost.flops > 0 else self.elementwise_bytes_per_s
        if getattr(layer, "transposing", False):  # a strided, transposing copy: its own (lower) rate
            rate = self.transpose_bytes_per_s
        memory = (cost.bytes_moved - slow) / rate + slow / self.broadcast_bytes_per_s
        return compute, memory, cost.kernels * self.launch_s

    def _in_graph(self, layer: BaseLayer) -> bool:
        """Work replayed from captured graphs: decode steps under ``execution = graph``, vision, projector and
        prefill when ``prefill_execution`` is graph too (the official code has neither: both eager)."""
        p = self.params
        return p.execution == "graph" and (layer.stage == "decode" or p.prefill_execution == "graph")

    def _graph_leaf(self, layer: BaseLayer) -> Timing:
        """Σ over the leaf's kernels of max(compute, memory, floor), with the work in one kernel.

        A leaf's FLOPs and bytes are not split per kernel; the model puts all of it on its main
        kernel (a GEMM, the attention kernel) and the floor on the others: max(w, floor) + (k − 1)·floor,
        w = max(compute, memory). No launch or host term: the graph replays every kernel at once.
        """
        t = Timing()
        spread = self._sm_share(layer.first if isinstance(layer, Swept) else layer)
        if isinstance(layer, Swept) and layer.steps > 1:
            c0, m0, _ = self._terms(layer.first, layer.first.cost())
            c1, m1, _ = self._terms(layer.last, layer.last.cost())
            m0, m1 = m0 / spread, m1 / spread
            comp_sum, mem_sum = sum_max_affine(c0, c1, m0, m1, layer.steps)
            t.compute_s, t.memory_s = (c0 + c1) / 2, (m0 + m1) / 2
            work, comp_share = (comp_sum + mem_sum) / layer.steps, comp_sum / (comp_sum + mem_sum or 1.0)
            kernels = layer.first.cost().kernels
        else:
            t.compute_s, t.memory_s, _ = self._terms(layer, layer.cost())
            t.memory_s /= spread
            work, comp_share = max(t.compute_s, t.memory_s), float(t.compute_s >= t.memory_s)
            kernels = layer.cost().kernels
        if kernels <= 0:
            t.total_s = work
            floors = 0.0
        else:
            t.total_s = max(work, self._main_floor(layer)) + (kernels - 1) * self.floor_s
            floors = t.total_s - work
        t.launch_s = floors  # the per-kernel floor plays the launch term's part in reports
        t.by_bound["launch"] = floors
        t.by_bound["compute"] = work * comp_share
        t.by_bound["memory"] = work * (1.0 - comp_share)
        return t

    def _main_floor(self, layer: BaseLayer) -> float:
        """Least time of the leaf's main kernel: a fused attention kernel of vision or prefill has its own
        (:func:`~llm_perf_opt.analytic.occupancy.attention_floor_s`), every other kernel ``kernel_floor_us``."""
        if isinstance(layer, AttentionCore) and layer.q_len > 1 and layer.stage != "decode":
            return max(attention_floor_s(layer, self.params, self.hardware.sms), self.floor_s)
        return self.floor_s

    def _sm_share(self, layer: BaseLayer) -> float:
        """Share of the SMs (and so of the bandwidth) the graph step's attention kernels can use.

        The step's split-KV attention runs one CTA per block of SPLIT_KV_BLOCK filled keys of each
        (sequence, head): B·h·⌈L/64⌉ CTAs, e.g. 50 of 132 SMs on an H200 at batch 1 and ~300 keys.
        1.0 for every other kernel, or when the SM count is unknown.
        """
        if not isinstance(layer, AttentionCore) or not layer.read_len or not self.hardware.sms:
            return 1.0
        blocks = -(-layer.read_len // SPLIT_KV_BLOCK)
        return min(1.0, layer.batch * layer.heads * blocks / self.hardware.sms)

    def _leaf(self, layer: BaseLayer) -> Timing:
        if self._in_graph(layer):
            return self._graph_leaf(layer)
        t = Timing()
        if isinstance(layer, Swept) and layer.steps > 1:
            c0, m0, k0 = self._terms(layer.first, layer.first.cost())
            c1, m1, k1 = self._terms(layer.last, layer.last.cost())
            n = layer.steps
            comp_sum, mem_sum = sum_max_affine(c0, c1, m0, m1, n)
            t.compute_s, t.memory_s, t.launch_s = (c0 + c1) / 2, (m0 + m1) / 2, (k0 + k1) / 2
            t.host_s = layer.first.cost().kernels * self._issue_s(layer.first, self.host_s)  # per step
            t.host_s += (_host_work(layer.first) + _host_work(layer.last)) / 2  # affine in the step: exact mean
            body = (comp_sum + mem_sum) / n
            t.total_s = body + t.launch_s
            if t.launch_s > body:
                t.by_bound["launch"] = t.total_s
            else:
                t.by_bound["compute"] = comp_sum / n + t.launch_s * (comp_sum / (body * n) if body else 0.0)
                t.by_bound["memory"] = t.total_s - t.by_bound["compute"]
            return t
        c, m, k = self._terms(layer, layer.cost())
        t.compute_s, t.memory_s, t.launch_s = c, m, k
        t.host_s = layer.cost().kernels * self._issue_s(layer, self.host_s) + _host_work(layer)
        t.total_s = max(c, m) + k
        bound = "launch" if k > max(c, m) else ("compute" if c >= m else "memory")
        t.by_bound[bound] = t.total_s
        return t

    def time(self, layer: BaseLayer) -> Timing:
        """Per-call timing of ``layer`` (seconds)."""
        hit = self._memo.get(layer)
        if hit is not None:
            return hit
        kids = layer.children()
        if not kids:
            t = self._leaf(layer)
        else:
            t = Timing()
            for child in kids:
                part = self.stage_time(child.layer) if layer.syncs_between_children else self.time(child.layer)
                t.add(part, child.count)
        self._memo[layer] = t
        return t

    def _issue_s(self, layer: BaseLayer, default: float) -> float:
        """Host seconds to issue one kernel of ``layer``: the official per-expert loop's own cost, else ``default``."""
        return self.expert_host_s if getattr(layer, "host_kind", "") == "expert_loop" else default

    def kernel_span(self, layer: BaseLayer) -> Span:
        """Host, GPU and idle-start finish time of ``layer``'s kernels issued eagerly (see :mod:`.eager`)."""
        hit = self._span_memo.get(layer)
        if hit is not None:
            return hit
        kids = layer.children()
        if not kids:
            c, m, _ = self._terms(layer, layer.cost())
            eager = self.prefill_host_s if layer.stage == "prefill" else self.stage_host_s
            out = leaf_span(max(c, m), layer.cost().kernels, self._issue_s(layer, eager), self.launch_s)
        else:
            out = EMPTY
            for child in kids:
                out = out.then(self.kernel_span(child.layer).repeat(child.count))
        self._span_memo[layer] = out
        return out

    def eager_span(self, parts: list[tuple[BaseLayer, int]], *, synchronised: bool = True) -> Timing:
        """Timing of ``parts`` (layer, count) issued in order between two synchronisations.

        Wall time = the queue's finish time (:mod:`.eager`) + ``stage_overhead_us`` when the span is a
        synchronised range of its own (``synchronised``). Compute, memory and launch terms are the
        GPU sums; the time the GPU waits on the host (and the range overhead) is bound ``launch``.
        """
        span, gpu = EMPTY, Timing()
        for layer, n in parts:
            span = span.then(self.kernel_span(layer).repeat(n))
            gpu.add(self.time(layer), n)
        t = Timing()
        t.compute_s, t.memory_s, t.launch_s, t.host_s = gpu.compute_s, gpu.memory_s, gpu.launch_s, span.host
        t.total_s = span.wall + (self.stage_overhead_s if synchronised and parts else 0.0)
        busy = min(gpu.total_s, t.total_s)
        for key in t.by_bound:
            t.by_bound[key] = gpu.by_bound[key] * (busy / gpu.total_s) if gpu.total_s else 0.0
        t.by_bound["launch"] += t.total_s - busy
        return t

    @property
    def prefill_in_graph(self) -> bool:
        """Vision, projector and prefill replayed from captured graphs (see :meth:`_in_graph`)."""
        return self.params.execution == "graph" and self.params.prefill_execution == "graph"

    def graph_span(self, parts: list[tuple[BaseLayer, int]], *, synchronised: bool = True) -> Timing:
        """Timing of ``parts`` replayed as one captured graph in a synchronised range: the kernels'
        graph times + one graph launch + ``graph_stage_overhead_us`` (the range's own cost); no host term.
        Not ``synchronised``: part of another graph, the kernels' times alone."""
        t = Timing()
        for layer, n in parts:
            t.add(self.time(layer), n)
        extra = self.graph_launch_s + self.params.graph_stage_overhead_us * 1e-6 if synchronised and parts else 0.0
        t.total_s += extra
        t.launch_s += extra
        t.by_bound["launch"] += extra
        return t

    def stage_time(self, layer: BaseLayer) -> Timing:
        """Timing of ``layer`` run between two host synchronisations (see the module docstring).

        An eager stage (vision, projector, prefill) is one :meth:`eager_span` per synchronised range:
        a layer with ``sync_groups()`` (the vision stage: all SAM passes, then all CLIP passes) has
        several.
        """
        hit = self._stage_memo.get(layer)
        if hit is not None:
            return hit
        if layer.stage != "decode" and not layer.syncs_between_children:
            groups = getattr(layer, "sync_groups", lambda: [[(layer, 1)]])()
            span = self.graph_span if self._in_graph(layer) else self.eager_span
            t = Timing()
            for group in groups:
                t.add(span(group), 1.0)
            self._stage_memo[layer] = t
            return t
        gpu = self.time(layer)
        if self._in_graph(layer):
            # One graph launch per decode step; no host overlap term. The decode stage itself is
            # the sum of its steps' sync spans, each of which already carries its launch.
            if layer.syncs_between_children:
                self._stage_memo[layer] = gpu
                return gpu
            t = Timing()
            t.add(gpu, 1.0)
            t.total_s += self.graph_launch_s
            t.launch_s += self.graph_launch_s
            t.by_bound["launch"] += self.graph_launch_s
            self._stage_memo[layer] = t
            return t
        if isinstance(layer, Swept) and layer.steps > 1:
            # One sync span per step: Σ_j max(g_j, host) with g_j interpolated linearly between the
            # first and last step (exact while no kernel changes bound in between).
            n, host = layer.steps, gpu.host_s
            g0, g1 = self.time(layer.first).total_s, self.time(layer.last).total_s
            gpu_sum, host_sum = sum_max_lines(g0, (g1 - g0) / (n - 1), host, 0.0, 0, n - 1)
            total, host_part = (gpu_sum + host_sum) / n, host_sum / n
        else:
            total, host_part = max(gpu.total_s, gpu.host_s), (gpu.host_s if gpu.host_s > gpu.total_s else 0.0)
        if host_part == 0.0:
            t = gpu
        else:  # the CPU cannot issue kernels as fast as the GPU runs them (for some or all steps)
            t = Timing()
            t.compute_s, t.memory_s, t.launch_s, t.host_s = gpu.compute_s, gpu.memory_s, gpu.launch_s, gpu.host_s
            t.total_s = total
            gpu_share = (total - host_part) / gpu.total_s if gpu.total_s else 0.0
            for key in t.by_bound:
                t.by_bound[key] = gpu.by_bound[key] * gpu_share
            t.by_bound["launch"] += host_part
        self._stage_memo[layer] = t
        return t
