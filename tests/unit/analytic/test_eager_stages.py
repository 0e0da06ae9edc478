"""Eager stages (vision, projector, prefill): the kernel queue, per-range fixed cost and SAM's kernel
families, against hand derivations (analytic/eager.py, analytic/roofline.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llm_perf_opt.analytic.api import stage_totals
from llm_perf_opt.analytic.eager import EMPTY, Span, kernels, leaf_span
from llm_perf_opt.analytic.primitives import AttentionCore, Elementwise
from llm_perf_opt.analytic.roofline import Roofline
from llm_perf_opt.analytic.sam import RelPosBias
from llm_perf_opt.data.analytic_inputs import RooflineParams
from llm_perf_opt.hardware.table import load_hardware
from llm_perf_opt.specs.model_spec import DEEPSEEK_OCR
from llm_perf_opt.specs.workload import load_workload

H200 = load_hardware("h200")
US = 1e-6


def simulate(seq: list[tuple[float, float]]) -> float:
    """The queue by brute force: the GPU starts kernel k once issued and k − 1 is done."""
    issued = done = 0.0
    for host, gpu in seq:
        issued += host
        done = max(done, issued) + gpu
    return max(done, issued)


def test_host_bound_and_gpu_bound_limits() -> None:
    # 10 kernels, host 20 µs, GPU 5 µs each: the host sets the pace, the last kernel's GPU time trails.
    assert kernels(20.0, 5.0, 10).wall == pytest.approx(10 * 20 + 5)
    # GPU 50 µs each: the first issue, then the GPU back to back.
    assert kernels(20.0, 50.0, 10).wall == pytest.approx(20 + 10 * 50)


def test_order_matters_a_stage_level_max_does_not_see() -> None:
    big, small = kernels(20.0, 1000.0, 1), kernels(20.0, 5.0, 10)
    # A 1 ms GEMM first: the host issues the 10 small kernels while it runs; they drain after it.
    assert big.then(small).wall == pytest.approx(20 + 1000 + 10 * 5)
    # The small kernels first: they are host-bound (11 issues before the GEMM starts), then the GEMM.
    assert small.then(big).wall == pytest.approx(11 * 20 + 1000)
    # max(Σ host, Σ GPU) = 1050 µs for both orders: a lower bound only.
    assert max(big.then(small).host, big.then(small).gpu) == pytest.approx(1050)


@given(
    st.lists(st.tuples(st.floats(0.0, 100.0), st.floats(0.0, 100.0), st.integers(1, 5)), min_size=1, max_size=6),
    st.integers(1, 9),
)
def test_span_algebra_equals_the_queue_by_brute_force(runs: list[tuple[float, float, int]], reps: int) -> None:
    span, seq = EMPTY, []
    for host, gpu, n in runs:
        span = span.then(kernels(host, gpu, n))
        seq += [(host, gpu)] * n
    assert span.repeat(reps).wall == pytest.approx(simulate(seq * reps), rel=1e-9, abs=1e-9)


def test_leaf_puts_its_work_on_the_main_kernel() -> None:
    # 3 kernels, 100 µs of roofline work, 5 µs launch gap, 20 µs host: the main kernel ends at 20 + 105;
    # the host issued the other two meanwhile (at 40 and 60 µs), so they follow back to back.
    assert leaf_span(100.0, 3, 20.0, 5.0).wall == pytest.approx(20 + 105 + 2 * 5)
    # 1 µs of work: host-bound, each kernel waits for its issue.
    assert leaf_span(1.0, 3, 20.0, 5.0).wall == pytest.approx(3 * 20 + 5)
    assert leaf_span(100.0, 3, 20.0, 5.0).gpu == pytest.approx(100 + 3 * 5)
    assert leaf_span(0.0, 0, 20.0, 5.0) == EMPTY
    assert Span(1.0, 2.0, 3.0).repeat(0) == EMPTY


def test_a_stage_leaf_by_hand() -> None:
    """One copy leaf in the projector stage: queue of its 3 kernels + the range's fixed cost."""
    params = RooflineParams(
        stage_host_overhead_us=20.0, launch_overhead_us=5.0, stage_overhead_us=150.0, prefill_execution="eager"
    )
    leaf = Elementwise(label="copy", elements=50_000_000, kernels=3, stage="projector")
    work = 2 * 50e6 * 2 / (4.8e12 * 0.4)  # read + write, bf16, a copy at 40 % of 4.8 TB/s: 104.2 µs
    t = Roofline(H200, params, "bf16").stage_time(leaf)
    # The main kernel (104.2 + 5 µs) outlasts two issues (40 µs), so the others follow it back to back.
    assert t.total_s == pytest.approx(20 * US + (work + 5 * US) + 2 * 5 * US + 150 * US, rel=1e-12)
    assert t.host_s == pytest.approx(3 * 20 * US)


def test_a_graphed_stage_leaf_by_hand() -> None:
    """The same leaf replayed from a graph: work + 2 kernel floors + one graph launch + the range's cost
    (the replayed range's own, not the eager range's 150 µs of Python)."""
    params = RooflineParams(
        kernel_floor_us=3.0, graph_launch_us=10.0, stage_overhead_us=150.0, graph_stage_overhead_us=30.0
    )
    assert params.prefill_execution == "graph"  # the default with graph execution
    leaf = Elementwise(label="copy", elements=50_000_000, kernels=3, stage="projector")
    work = 2 * 50e6 * 2 / (4.8e12 * 0.4)
    t = Roofline(H200, params, "bf16").stage_time(leaf)
    assert t.total_s == pytest.approx(work + 2 * 3 * US + 10 * US + 30 * US, rel=1e-12)
    assert t.host_s == 0.0
    # Eager execution has no graphed prefill; neither has the official code.
    assert RooflineParams(execution="eager").prefill_execution == "eager"
    assert RooflineParams(implementation="hf-official").prefill_execution == "eager"


def test_biased_attention_and_its_broadcast_add_use_their_own_factors() -> None:
    params = RooflineParams(biased_attention_efficiency=0.05, broadcast_bandwidth_efficiency=0.1)
    roof = Roofline(H200, params, "bf16")
    attn = AttentionCore(
        batch=1,
        heads=12,
        q_len=4096,
        kv_len=4096,
        head_dim=64,
        kv_heads=12,
        bias=True,
        op_category="vision_attention",
        stage="vision",
    )
    flops = 4 * 12 * 4096 * 4096 * 64
    fill = 384 / 396  # 12 heads × 32 blocks of 128 queries = 384 CTAs: three waves of 132 SMs
    assert roof.time(attn).compute_s == pytest.approx(flops / (989.4e12 * 0.05 * fill), rel=1e-12)
    plain = AttentionCore(
        batch=1,
        heads=12,
        q_len=4096,
        kv_len=4096,
        head_dim=64,
        kv_heads=12,
        op_category="vision_attention",
        stage="vision",
    )
    assert roof.time(plain).compute_s == pytest.approx(flops / (989.4e12 * 0.5 * fill), rel=1e-12)  # category
    rel = RelPosBias(seqs=1, side=64, heads=12, head_dim=64, stored_rows=127, stage="vision")
    bias = 12 * 64**4 * 2  # the [1, 12, 4096, 4096] bf16 bias the broadcast add writes
    rest = rel.cost().bytes_moved - bias
    assert roof.time(rel).memory_s == pytest.approx(rest / (4.8e12 * 0.9) + bias / (4.8e12 * 0.1), rel=1e-12)


def _totals(**kw: float | str) -> dict[str, float]:
    work = load_workload("base").replace(max_new_tokens=16, batch_size=1)
    return {
        k: v.predicted_ms
        for k, v in stage_totals(DEEPSEEK_OCR, work, hardware=H200, params=RooflineParams(**kw)).items()
    }


def test_decode_and_eager_stages_have_separate_host_costs() -> None:
    base = _totals(execution="eager")
    stage_knobs = _totals(execution="eager", stage_host_overhead_us=80.0, stage_overhead_us=900.0)
    assert stage_knobs["decode"] == base["decode"]
    assert all(stage_knobs[s] > base[s] for s in ("vision", "projector", "prefill"))
    decode_knob = _totals(execution="eager", host_overhead_us=80.0)
    assert all(decode_knob[s] == base[s] for s in ("vision", "projector", "prefill"))
    assert decode_knob["decode"] > base["decode"]


def test_host_bound_prefill_grows_with_tokens_once_the_gpu_dominates() -> None:
    # The old stage model gave batch 1 and batch 8 the same host-bound time; the queue lets the GPU show.
    small = stage_totals(DEEPSEEK_OCR, load_workload("base").replace(max_new_tokens=16, batch_size=1), hardware=H200)
    big = stage_totals(DEEPSEEK_OCR, load_workload("gundam").replace(max_new_tokens=16, batch_size=8), hardware=H200)
    assert big["prefill"].predicted_ms > 1.2 * small["prefill"].predicted_ms


def test_a_transposing_copy_moves_its_bytes_at_its_own_rate() -> None:
    """The projector's concat reads SAM's features transposed: its bytes at transpose_bandwidth_efficiency of
    the peak, a plain copy's at elementwise_bandwidth_efficiency."""
    params = RooflineParams(transpose_bandwidth_efficiency=0.2, elementwise_bandwidth_efficiency=0.4)
    roof = Roofline(H200, params, "bf16")
    plain = Elementwise(label="copy", elements=10_000_000, flops_per_element=0.0, stage="projector")
    strided = Elementwise(label="cat", elements=10_000_000, flops_per_element=0.0, stage="projector", transposing=True)
    assert roof.time(plain).memory_s == pytest.approx(2 * 10e6 * 2 / (4.8e12 * 0.4), rel=1e-12)
    assert roof.time(strided).memory_s == pytest.approx(2 * 10e6 * 2 / (4.8e12 * 0.2), rel=1e-12)
    a, b = strided.cost(), plain.cost()  # same bytes and FLOPs: only the rate differs
    assert (a.bytes_moved, a.flops, a.kernels) == (b.bytes_moved, b.flops, b.kernels)
