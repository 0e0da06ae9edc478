"""The bounded profiler window, busy/idle per stage and kernel counts (CPU; GPU events faked)."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from torch.autograd import DeviceType

from llm_perf_opt.profiling.mfu import Peaks, StageCost
from llm_perf_opt.profiling.nvtx_ranges import annotated_range
from llm_perf_opt.profiling.step_window import StepWindow
from llm_perf_opt.profiling.timeline import Timeline, union_us
from llm_perf_opt.profiling.torch_profiler import OperatorTables, ProfiledCall, collect

CPU = torch.device("cpu")
H200 = Peaks(tflops=989.0, bandwidth_tbs=4.8, source="test")  # ridge ≈ 206 FLOP/byte


def test_union_counts_overlaps_once() -> None:
    assert union_us([]) == 0
    assert union_us([(5, 6), (0, 2), (1, 3)]) == 4  # [0, 3) and [5, 6)
    assert union_us([(0, 10), (2, 3), (10, 12)]) == 12  # nested and touching


def test_window_plan() -> None:
    w = StepWindow.plan(max_new_tokens=64, decode_steps=32)
    assert (w.skip, w.steps, w.new_tokens) == (3, 32, 36)  # 63 decode steps in the run: 3 skipped, 32 kept
    short = StepWindow.plan(max_new_tokens=10, decode_steps=32)
    assert (short.skip, short.steps, short.new_tokens) == (0, 9, 10)  # all 9 decode steps
    mid = StepWindow.plan(max_new_tokens=12, decode_steps=9)
    assert (mid.skip, mid.steps) == (2, 9)  # only 2 steps left to skip
    assert StepWindow.plan(max_new_tokens=1, decode_steps=32).steps == 0


def _fake_generate(window: StepWindow, steps: int) -> SimpleNamespace:
    """Prefill then ``steps`` decode steps; step i runs (i + 1) softmaxes, so skipped steps are visible."""
    x = torch.randn(8, 32)
    with annotated_range("prefill"):
        with annotated_range("vision"):
            x = torch.relu(x)
        x = x + 1
        window.on_token(0)
    with annotated_range("decode"):
        for i in range(1, steps + 1):
            for _ in range(i):
                x = torch.softmax(x, dim=-1)
            window.on_token(i)
    return SimpleNamespace(tokens=torch.zeros(1, steps + 1))


def test_window_leaves_out_first_steps_and_scales_decode_to_the_run() -> None:
    window = StepWindow(skip=2, steps=3)
    tables = OperatorTables()
    call = collect(lambda: _fake_generate(window, 5), CPU, tables, window=window, weight=2, run_decode_steps=30)
    assert call.decode_steps == 3 and call.window_start_us is not None
    # Steps 3, 4, 5 are kept: 3 + 4 + 5 = 12 softmaxes over 3 steps (steps 1 and 2 would add 3 more).
    per_step = {r.name: r for r in tables.unit_rows("decode")}
    assert per_step["aten::softmax"].calls == pytest.approx(4.0)
    assert tables.unit_counts["decode"] == 3 and tables.unit_counts["prefill"] == 1
    # Per pass over the inputs: 2 batches of this shape × 30 run steps × 4 per step.
    assert {r.name: r for r in tables.rows("decode")}["aten::softmax"].calls == pytest.approx(240)
    assert {r.name: r for r in tables.rows("vision")}["aten::relu"].calls == 2  # weight 2, once per call
    assert not any(name.startswith("llm_perf_opt::token#") for _, name in tables.leaf), "markers are not ops"
    assert "decode steps 3–5 of 29" in window.describe(30)


def _unmarked_generate() -> SimpleNamespace:
    """A generate without ``on_token``: 5 decode steps, one softmax each, no markers."""
    x = torch.randn(8, 32)
    with annotated_range("decode"):
        for _ in range(5):
            x = torch.softmax(x, dim=-1)
    return SimpleNamespace(tokens=torch.zeros(1, 6))


def test_without_markers_the_whole_decode_is_the_window() -> None:
    window = StepWindow(skip=2, steps=3)
    tables = OperatorTables()
    call = collect(_unmarked_generate, CPU, tables, window=window)
    assert call.window_start_us is None and window.skip == 0 and call.decode_steps == 5
    assert {r.name: r for r in tables.unit_rows("decode")}["aten::softmax"].calls == 1


def _ev(id_: int, name: str, start: float, end: float, parent: Any = None, kind: str = "cpu_op") -> SimpleNamespace:
    return SimpleNamespace(
        id=id_,
        name=name,
        time_range=SimpleNamespace(start=start, end=end),
        cpu_parent=parent,
        cpu_children=[],
        device_type=DeviceType.CPU,
        activity_type=kind,
        is_user_annotation=kind == "user_annotation",
        linked_correlation_id=0,
    )


def _kernel(linked: int, start: float, end: float, kind: str = "kernel") -> SimpleNamespace:
    k = _ev(0, "kernel", start, end, kind=kind)
    k.device_type, k.linked_correlation_id, k.is_user_annotation = DeviceType.CUDA, linked, False
    return k


def _gpu_call() -> ProfiledCall:
    """Hand-built window: SAM kernels overlap, prefill has a gap, decode has one skipped step."""
    prefill = _ev(1, "prefill", 0, 100, kind="user_annotation")
    vision = _ev(2, "vision", 1, 50, prefill, "user_annotation")
    sam = _ev(3, "sam", 2, 40, vision, "user_annotation")
    decode = _ev(4, "decode", 100, 300, kind="user_annotation")
    ops = [
        _ev(10, "aten::mm", 5, 8, sam),
        _ev(11, "aten::mm", 60, 62, prefill),
        _ev(12, "aten::mm", 120, 121, decode),  # before the window marker at 150: left out
        _ev(13, "aten::mm", 160, 161, decode),
        _ev(14, "aten::mm", 230, 231, decode),
    ]
    kernels = [
        _kernel(10, 10, 30),
        _kernel(10, 25, 40),  # overlaps the previous one: SAM busy 30 µs, not 35
        _kernel(11, 70, 80),
        _kernel(11, 90, 95),  # prefill: span 25 µs, busy 15 µs
        _kernel(12, 125, 130),
        _kernel(13, 170, 180),
        _kernel(13, 185, 186, kind="gpu_memcpy"),  # busy, but not a kernel
        _kernel(14, 240, 250),
    ]
    return ProfiledCall(
        events=[prefill, vision, sam, decode, *ops, *kernels], window=None, window_start_us=150.0, decode_steps=2
    )


def test_gpu_timeline_from_kernel_events() -> None:
    tl = Timeline()
    tl.add_call(_gpu_call())
    assert tl.resource == "gpu"
    sam, vision, prefill, step = (tl.stages[s] for s in ("sam", "vision", "prefill", "decode_step"))
    assert (sam.span_us, sam.busy_us, sam.launches) == (30, 30, 2)
    assert vision.busy_us == 30 and sam.launch_us == 35  # durations sum to 35 µs; their union is 30
    assert (prefill.span_us, prefill.busy_us, prefill.idle_us) == (25, 15, 10)
    # Window: 170 → 250 µs over 2 steps; busy 10 + 1 + 10 = 21 µs; 2 kernels (the memcpy is not one).
    assert (step.units, step.span_us, step.busy_us, step.launches) == (2, 80, 21, 2)
    assert tl.measured_kernels_per_step() == 1.0
    assert tl.window_step_ms() == pytest.approx(0.040)
    assert tl.verdict("decode_step", H200) == "host-bound: GPU busy 26% of the step"
    assert tl.verdict("sam", H200).startswith("GPU-bound")  # busy 100%, no analytic SAM cost given
    # Every kernel here was launched under aten::mm: all GEMM time, per stage as the stage's busy.
    assert tl.family_busy_us[("sam", "GEMM")] == 30 and tl.family_busy_us[("decode_step", "GEMM")] == 21
    tl.family_costs = {("decode_step", "GEMM"): StageCost(flops=2e6, bytes=1e6)}
    # 2 MFLOP per step over 21 µs busy / 2 steps = 10.5 µs → 1.9e11 FLOP/s at 2 FLOP/byte.
    assert tl.category_points() == {("decode_step", "GEMM"): (2.0, pytest.approx(2e6 / 10.5e-6))}


def test_graph_replay_kernels_count_by_launch_time() -> None:
    """Graph kernels link to the ``decode`` range itself; the GPU runs behind the host, so the window
    is decided by when the host launched each graph (its runtime call), not by when the kernel ran."""
    decode = _ev(4, "decode", 100, 300, kind="user_annotation")
    early = _ev(50, "cudaGraphLaunch", 120, 121, decode, "cuda_runtime")  # before the marker at 150
    late = _ev(51, "cudaGraphLaunch", 200, 201, decode, "cuda_runtime")
    early.linked_correlation_id = late.linked_correlation_id = 4
    kernels = [_kernel(4, 205, 215), _kernel(4, 216, 226), _kernel(4, 226, 230)]
    kernels[0].id, kernels[1].id, kernels[2].id = 50, 51, 51  # the first ran after the marker, launched before
    kernels[1].name, kernels[2].name = "sm90_xmma_gemm_bf16bf16_bf16f32", "fmha_cutlassF_bf16_aligned"
    # No runtime call recorded: the kernel's own start decides (after the marker: in; before: out).
    orphans = [_kernel(4, 240, 245), _kernel(4, 140, 145)]
    orphans[0].id, orphans[1].id = 98, 99
    tl = Timeline()
    events = [decode, early, late, *kernels, *orphans]
    tl.add_call(ProfiledCall(events=events, window=None, window_start_us=150.0, decode_steps=1))
    step = tl.stages["decode_step"]
    assert (step.launches, step.span_us, step.busy_us) == (3, 29, 19)
    # No aten operator around a graph kernel: its family comes from the kernel name.
    assert tl.family_busy_us == {
        ("decode_step", "GEMM"): 10,
        ("decode_step", "attention"): 4,
        ("decode_step", "other"): 5,
    }


def test_unlinked_graph_kernels_belong_to_the_range_their_launch_fell_in() -> None:
    """torch 2.11 (the H200's) gives graph-replayed kernels no operator link (0): the range open at
    their cudaGraphLaunch decides, and the innermost one wins (a step range inside ``decode``)."""
    prefill = _ev(1, "prefill", 0, 90, kind="user_annotation")
    decode = _ev(4, "decode", 100, 300, kind="user_annotation")
    launches = [_ev(60 + i, "cudaGraphLaunch", t, t + 1, None, "cuda_runtime") for i, t in enumerate((120, 160, 200))]
    kernels = []
    for launch, gpu_start in zip(launches, (165, 205, 245), strict=True):
        for j in range(3):  # three kernels per replayed step, 2 µs each, 1 µs apart
            k = _kernel(0, gpu_start + 3 * j, gpu_start + 3 * j + 2)
            k.id = launch.id
            kernels.append(k)
    stray = _kernel(0, 50, 60)  # no runtime call recorded: its own start (inside prefill) decides
    stray.id = 99
    tl = Timeline()
    events = [prefill, decode, *launches, *kernels, stray]
    tl.add_call(ProfiledCall(events=events, window=None, window_start_us=150.0, decode_steps=2))
    step, pre = tl.stages["decode_step"], tl.stages["prefill"]
    # Launches at 160 and 200 are in the window (after 150), the one at 120 is not: 2 steps × 3 kernels.
    assert (step.launches, step.busy_us, step.span_us) == (6, 12, 253 - 205)
    assert (pre.launches, pre.busy_us) == (1, 10)


def test_graph_kernels_linked_to_their_launch_without_activity_types() -> None:
    """torch 2.11 as seen on the H200: no ``activity_type`` on any event (ranges, runtime calls and
    kernels alike) and graph kernels linked to their own cudaGraphLaunch, which has no parent range.
    The launch is told by its name and the range open at it decides."""
    decode = _ev(4, "decode", 100, 300, kind="user_annotation")
    launches = [_ev(70 + i, "cudaGraphLaunch", t, t + 1, None) for i, t in enumerate((120, 160, 200))]
    greedy = _ev(80, "aten::argmax", 170, 171, decode)
    kernels = []
    for launch, gpu_start in zip(launches, (165, 205, 245), strict=True):
        for j in range(2):
            k = _kernel(launch.id, gpu_start + 3 * j, gpu_start + 3 * j + 2)
            k.id = launch.id
            kernels.append(k)
    pick = _kernel(80, 180, 181)
    for ev in (decode, *launches, greedy, *kernels, pick):
        del ev.activity_type
    tl = Timeline()
    tl.add_call(ProfiledCall(events=[decode, *launches, greedy, *kernels, pick], window=None, window_start_us=150.0,
                             decode_steps=2))
    step = tl.stages["decode_step"]
    # Graph launches at 160 and 200 (2 kernels each) and the argmax launched at 170 are in the window.
    assert (step.launches, step.busy_us) == (5, 9)


def test_verdict_splits_memory_and_compute_bound_at_the_ridge() -> None:
    tl = Timeline(resource="gpu")
    tl.stages["prefill"].units, tl.stages["prefill"].span_us, tl.stages["prefill"].busy_us = 1, 1000.0, 900.0
    tl.stages["vision"].units, tl.stages["vision"].span_us, tl.stages["vision"].busy_us = 1, 1000.0, 1000.0
    # 4.8e9 bytes in 0.9 ms = 5.33e12 B/s > 4.8 TB/s would be >100%; use 1.2e9 B: 1.33 TB/s = 28% of 4.8.
    tl.costs = {"prefill": StageCost(flops=1.2e9 * 10, bytes=1.2e9), "vision": StageCost(flops=4.9e11, bytes=1e9)}
    assert tl.verdict("prefill", H200) == "memory-bound: 28% of peak bandwidth while busy"  # 10 FLOP/B < 206
    # 490 FLOP/B > 206: compute-bound; 4.9e11 FLOP in 1 ms = 490 TFLOP/s = 50% of 989.
    assert tl.verdict("vision", H200) == "compute-bound: 50% of peak FLOP/s while busy"
    assert Timeline().verdict("prefill", H200) == "no GPU kernels (CPU run)"
    x, y = tl.roofline_points()["vision"]
    assert (x, y) == (pytest.approx(490), pytest.approx(4.9e14))


def test_cpu_decode_step_ops_match_the_analytic_count_where_cpu_and_cuda_agree() -> None:
    """What is comparable on a CPU. The analytic kernel count follows the CUDA census (fp32 casts, flash
    split-KV combine, grouped-GEMM setup, device copies), and on a CPU the runnable MoE runs without
    grouped_mm, so the whole step's operator count differs structurally (see report.md). Layers whose
    CPU operators are the CUDA kernels one for one must agree exactly: fused RMSNorm, the embedding, the
    KV-cache writes, RoPE, and one attention call per layer (2 kernels with split-KV on CUDA)."""
    from PIL import Image

    from llm_perf_opt.analytic.api import precision_for
    from llm_perf_opt.analytic.deepseek_ocr import build_stages
    from llm_perf_opt.analytic.report_tree import walk
    from llm_perf_opt.models.deepseek_ocr import build_inputs, build_model, generate, prepare_page
    from llm_perf_opt.profiling.op_categories import _step_layer
    from llm_perf_opt.profiling.torch_profiler import leaf_stage
    from llm_perf_opt.specs.image_tokens import resolution_mode
    from llm_perf_opt.specs.model_spec import TINY
    from llm_perf_opt.specs.workload import Workload

    model = build_model(TINY, device="cpu", dtype=torch.float32, seed=0)
    page = prepare_page(Image.new("RGB", (640, 640), "white"), resolution_mode("tiny"))
    inputs = build_inputs(TINY, [page])
    window = StepWindow(skip=1, steps=4)
    call = collect(
        lambda: generate(
            model, inputs, max_new_tokens=6, min_new_tokens=6, ranges=annotated_range, on_token=window.on_token
        ),
        CPU,
        OperatorTables(),
        window=window,
    )
    assert call.window_start_us is not None
    memo: dict[int, str] = {}
    names = Counter(
        str(ev.name)
        for ev in call.events
        if ev.activity_type == "cpu_op"
        and not (ev.cpu_parent is not None and ev.cpu_parent.activity_type == "cpu_op")
        and ev.time_range.start > call.window_start_us
        and leaf_stage(ev, memo) == "decode"
    )
    measured = {name: n / call.decode_steps for name, n in names.items()}
    workload = Workload(
        profile_id="t",
        mode="tiny",
        page_size=(640, 640),
        max_crops=9,
        prompt_tokens=max(inputs.prompt_len - page.num_image_tokens, 1),
        max_new_tokens=6,
    )
    step = _step_layer(build_stages(TINY, workload, precision_for("fp32"), "eager")["decode"])
    assert step is not None
    kernels: Counter[str] = Counter()
    calls: Counter[str] = Counter()
    for v in walk(step):
        if v.layer.is_leaf:
            kernels[type(v.layer).__name__] += v.calls * v.layer.cost().kernels
            calls[type(v.layer).__name__] += v.calls
    assert measured["aten::rms_norm"] == kernels["RMSNorm"] == 7  # 3 layers × 2 + the final norm
    assert measured["aten::embedding"] == kernels["Embedding"] == 1
    # KV writes into cache slices (K and V per layer) plus the greedy pick storing the new id.
    assert measured["aten::copy_"] == kernels["KVCacheWrite"] + 1 == 7
    assert measured["aten::roll"] == measured["aten::addcmul"] == calls["RoPE"] == 3  # x·cos, roll, addcmul
    assert kernels["RoPE"] == 3 * calls["RoPE"]
    assert measured["aten::scaled_dot_product_attention"] == calls["AttentionCore"] == 3
    assert kernels["AttentionCore"] == 2 * calls["AttentionCore"], "CUDA eager decode: split-KV + combine"


def test_graph_replayed_kernels_get_operator_rows_in_their_stage() -> None:
    """Graph kernels have no operator: without rows of their own the decode table would show only what
    runs outside the graph (the H200 run ranked argmax first). Each becomes ``CUDA graph: <kernel>``."""
    from llm_perf_opt.profiling.graph_kernels import short_kernel_name

    decode = _ev(4, "decode", 100, 300, kind="user_annotation")
    launches = [_ev(70 + i, "cudaGraphLaunch", t, t + 1, decode, "cuda_runtime") for i, t in enumerate((120, 160, 200))]
    kernels = []
    for launch, gpu_start in zip(launches, (165, 205, 245), strict=True):
        for j, name in enumerate(("void at::native::index_copy<8, float>(int, float*)", "nvjet_sm90_tst_64x8_TNT")):
            k = _kernel(0, gpu_start + 4 * j, gpu_start + 4 * j + 3)
            k.id, k.name = launch.id, name
            kernels.append(k)
    for ev in (decode, *launches):
        ev.cpu_time_total = ev.self_cpu_time_total = 1.0
        ev.device_time_total = ev.self_device_time_total = 0.0
    tables = OperatorTables()
    tables.merge_events([decode, *launches, *kernels], window_start_us=150.0, decode_steps=2)
    rows = {r.name: r for r in tables.unit_rows("decode")}
    # Launches at 160 and 200 are in the window, 2 steps: one launch of each kernel per step, 3 µs each.
    copy = rows["CUDA graph: at::native::index_copy"]
    assert (copy.calls, copy.self_device_us) == (1, 3)
    assert rows["CUDA graph: nvjet_sm90_tst_64x8_TNT"].self_device_us == 3
    assert short_kernel_name("void a::b<1, c<2>>(int) [clone]") == "a::b"
    assert short_kernel_name("_Z" + "x" * 100, width=10) == "_Zxxxxxxx…"
