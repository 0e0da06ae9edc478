"""``execution = graph | eager``: kernel counts and decode-step time, against hand derivations.

Kernel counts per decode step come from a CUDA kernel census of the runnable model on an H200
(torch 2.11, Triton 3.6, ``benchmarks/bench_decode_kernels.py``, docs/validation/h200/bench/
decode_kernels_split_fused.jsonl): eager 490 per step at batch 1. Graph: 274.9 (batch 1) and 294.3
(batch 8) in a profiler window that holds a fraction of a step more (per-layer kernels 12.44 and
12.75 per 12 layers, once-per-step ones up to 1.06), i.e. ≈ 259–265 and ≈ 277–284 per step.
"""

from __future__ import annotations

import attrs
import pytest

from llm_perf_opt.analytic.api import stage_totals
from llm_perf_opt.analytic.deepseek_ocr import build_stages
from llm_perf_opt.analytic.moe import MoE
from llm_perf_opt.data.analytic_inputs import RooflineParams
from llm_perf_opt.errors import UserError
from llm_perf_opt.hardware.table import load_hardware
from llm_perf_opt.specs.model_spec import DEEPSEEK_OCR
from llm_perf_opt.specs.workload import Workload

H200 = load_hardware("h200")

# Per layer, by hand from the census (decode step):
#   attention: qkv GEMM 1 + RoPE 3 (mul, roll, addcmul) + cache write 2 + attention + head merge + o_proj 1
#   attention kernels: eager flash split-KV 2; graph split-KV Triton partials + combine 2
#   head merge (transpose copy): eager 1; graph 0 at batch 1 (the output is already in o_proj's layout), 1 above
#   layer: 2 RMSNorms + 2 residual adds + attention + MLP
#   dense MLP 4 (gate_up, silu, mul, down)
#   MoE = router 5 (cast, dot, reduce, softmax, unsorted top-k) + dispatch (+ shared experts 4 + add 1)
#   dispatch: grouped GEMMs 19 (eager, and graph above 96 token-expert pairs); graph at ≤ 96 pairs
#   the fused Triton MoE 3 (gate-up, down, combine), which also runs the shared experts and their add
#   outside the layers: embedding 1, final norm 1, lm_head 1, greedy pick 6 (EOS mask, chunk max,
#   argmax, gather, add, store); graph only: step inputs 3 (ids copy, position and key-count fills)
OUTSIDE = 1 + 1 + 1 + 6
STEP_INPUTS = 3
# grouped: 18 in the census + the uint8 cast of the sort keys added after it (one more kernel per MoE layer)
ROUTER, GROUPED, SHARED_AND_ADD, FUSED = 5, 19, 4 + 1, 3
CENSUS_PER_STEP = {("eager", 1): (490.0,), ("graph", 1): (259.0, 265.0), ("graph", 8): (277.0, 284.0)}
"""Measured kernels per decode step (graph: the range the window normalisation allows)."""


def _per_step(execution: str, batch: int = 1) -> int:
    graph = execution == "graph"
    attention = 1 + 3 + 2 + 2 + (0 if graph and batch == 1 else 1) + 1
    mlp = ROUTER + (FUSED if graph and batch * 6 <= 96 else GROUPED + SHARED_AND_ADD)
    dense = 2 + 2 + attention + 4
    moe = 2 + 2 + attention + mlp
    return OUTSIDE + (STEP_INPUTS if graph else 0) + dense + 11 * moe


def _workload(tokens: int = 257, batch: int = 1) -> Workload:
    return Workload(profile_id="t", mode="base", max_new_tokens=tokens, batch_size=batch)


@pytest.mark.parametrize(("execution", "batch"), [("eager", 1), ("graph", 1), ("graph", 8)])
def test_kernels_per_decode_step(execution: str, batch: int) -> None:
    stages = build_stages(DEEPSEEK_OCR, _workload(batch=batch), execution=execution)
    assert stages["decode"].cost().kernels == 256 * _per_step(execution, batch)
    # the analytic tree's own count within ±5% of the census (see the module docstring)
    per_step = stages["decode"].cost().kernels / 256
    for measured in CENSUS_PER_STEP[(execution, batch)]:
        assert abs(per_step / measured - 1) < 0.05


def test_hand_counts() -> None:
    assert (_per_step("eager"), _per_step("graph"), _per_step("graph", 8), _per_step("graph", 32)) == (
        500, 260, 272, 503,
    )  # fmt: skip


def test_batch_32_graph_step_uses_grouped_dispatch() -> None:
    # 32 tokens · 6 experts = 192 pairs > FUSED_MAX_PAIRS: grouped GEMMs (19) + shared experts as in eager.
    stages = build_stages(DEEPSEEK_OCR, _workload(batch=32), execution="graph")
    assert stages["decode"].cost().kernels == 256 * _per_step("graph", 32)


def test_graph_step_is_kernels_times_floor_when_every_kernel_is_below_it() -> None:
    # A 1 ms floor on a GPU with 1000 TB/s and 100x the H200 compute: each step costs kernels × floor + one
    # launch, plus the work of the leaves that launch nothing of their own: the MoE experts, routed and
    # shared, run inside the fused kernels (weights + activations read, outputs written, at the default
    # 90% of the bandwidth; their FLOPs take ~1/50 of that time at 100x the compute).
    fast = attrs.evolve(H200, bandwidth_tbs=1000.0, bf16_tflops=H200.bf16_tflops * 100)
    params = RooflineParams(kernel_floor_us=1000.0, graph_launch_us=7.0, host_overhead_us=1e6)
    decode = stage_totals(DEEPSEEK_OCR, _workload(), hardware=fast, params=params)["decode"]
    d, i, s = 1280, 896, 1792
    routed = 6 * (3 * d * i + (2 * d + 3 * i) + (3 * i + d)) * 2
    shared = (3 * d * s + (2 * d + 3 * s) + (3 * s + d)) * 2
    experts_ms = 11 * (routed + shared) / (1000e12 * 0.9) * 1e3
    assert decode.predicted_ms == pytest.approx(256 * (260 * 1.0 + 0.007 + experts_ms), rel=2e-6)
    assert decode.bound == "launch"


def test_graph_ignores_host_issue_and_eager_ignores_the_floor() -> None:
    def decode_ms(**kw: float | str) -> float:
        return stage_totals(DEEPSEEK_OCR, _workload(), hardware=H200, params=RooflineParams(**kw))[
            "decode"
        ].predicted_ms

    assert decode_ms(execution="graph", host_overhead_us=1.0) == decode_ms(execution="graph", host_overhead_us=500.0)
    assert decode_ms(execution="eager", kernel_floor_us=0.5) == decode_ms(execution="eager", kernel_floor_us=50.0)
    # host-bound eager at 20 µs per kernel: 500 kernels → ≥ 10.0 ms per step
    assert decode_ms(execution="eager", host_overhead_us=20.0) >= 256 * 500 * 0.020 * (1 - 1e-12)


def test_fused_moe_reads_one_expert_copy_per_pair() -> None:
    # The graph step's fused MoE reads each pair's expert weights in place: T·k copies of 3·D·I bf16
    # weights, plus the shared experts (3·D·2I) and the router (E·D). Grouped GEMMs read each
    # distinct expert once: E·(1 − (1 − k/E)^T) of them. Same FLOPs either way.
    expert = 3 * 1280 * 896 * 2
    shared, router = 3 * 1280 * 1792 * 2, 64 * 1280 * 2
    for tokens in (1, 8):
        fused = MoE(tokens=tokens, dec=DEEPSEEK_OCR.decoder, graph_step=True)
        grouped = MoE(tokens=tokens, dec=DEEPSEEK_OCR.decoder)
        weights_read = fused.cost().bytes_read - fused.cost().activation_bytes
        routed = dict((c.name, c) for c in fused.children())["experts"]
        assert routed.count * routed.layer.cost().bytes_read - tokens * 6 * expert == pytest.approx(
            tokens * 6 * (2 * 1280 + 3 * 896) * 2, rel=1e-9
        )  # the activations the experts read beside their weights
        assert fused.forward_flops() == grouped.forward_flops()
        assert weights_read > tokens * 6 * expert + shared + router
    distinct_8 = 64 * (1 - (1 - 6 / 64) ** 8)  # ≈ 35.9 of 48 pairs
    grouped_experts = dict((c.name, c) for c in MoE(tokens=8, dec=DEEPSEEK_OCR.decoder).children())["experts"]
    assert grouped_experts.count * grouped_experts.layer.touch_prob == pytest.approx(distinct_8, rel=1e-12)


def test_fused_moe_launches_three_kernels_and_no_shared_ones() -> None:
    fused = MoE(tokens=1, dec=DEEPSEEK_OCR.decoder, graph_step=True)
    grouped = MoE(tokens=1, dec=DEEPSEEK_OCR.decoder)
    assert fused.cost().kernels == ROUTER + FUSED
    assert grouped.cost().kernels == ROUTER + GROUPED + SHARED_AND_ADD


def test_unknown_execution_is_a_user_error() -> None:
    with pytest.raises(UserError, match="execution"):
        RooflineParams(execution="turbo")
    with pytest.raises(UserError, match="unknown execution"):
        build_stages(DEEPSEEK_OCR, _workload(), execution="turbo")


def test_the_official_code_is_modelled_eager_and_an_explicit_graph_request_is_refused(tmp_path) -> None:
    from click.testing import CliRunner

    from llm_perf_opt.cli import cli

    assert RooflineParams(implementation="hf-official", execution="graph").execution == "eager"
    assert attrs.evolve(RooflineParams(implementation="hf-official"), execution="graph").execution == "eager"
    result = CliRunner().invoke(
        cli, ["analyze", "--implementation", "hf-official", "--execution", "graph", "--output-dir", str(tmp_path)]
    )
    assert result.exit_code != 0 and "no graph path" in result.output
    assert not any(tmp_path.iterdir())


def test_the_report_says_how_vision_and_prefill_ran_and_times_them_accordingly() -> None:
    """Graph prefill: replayed stages, no host term; eager prefill under graph decode: the eager queue."""
    from llm_perf_opt.analytic import api

    work = _workload(tokens=16)
    graphed = api.build_report(DEEPSEEK_OCR, work, H200, params=RooflineParams())
    eager = api.build_report(DEEPSEEK_OCR, work, H200, params=RooflineParams(prefill_execution="eager"))
    assert any("prefill are replayed the same way" in a for a in graphed.assumptions)
    assert any("prefill_execution = eager" in a for a in eager.assumptions)
    assert (graphed.inputs.roofline.prefill_execution, eager.inputs.roofline.prefill_execution) == ("graph", "eager")
    g = stage_totals(DEEPSEEK_OCR, work, hardware=H200, params=RooflineParams())
    e = stage_totals(DEEPSEEK_OCR, work, hardware=H200, params=RooflineParams(prefill_execution="eager"))
    # CLIP + SAM at batch 1 are host-bound when eager (20 µs per kernel issued), not when replayed.
    assert e["vision"].predicted_ms > g["vision"].predicted_ms
    assert e["decode"].predicted_ms == g["decode"].predicted_ms  # decode is graphed in both
