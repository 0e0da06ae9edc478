"""``execution = graph | eager``: kernel counts and decode-step time, against hand derivations.

Kernel counts per decode step come from a CUDA kernel census of the runnable model on an H200
(torch 2.11, ``benchmarks/bench_decode_kernels.py``, docs/validation/h200/bench/
decode_kernels_flash_gather.jsonl) at batch 1: eager 490 per step; graph 403.1 in a profiler
window that holds a fraction of a step more (flash attention 12.5 per 12 layers, lm_head 1.06),
i.e. ≈ 384–396 per step.
"""

from __future__ import annotations

import attrs
import pytest

from llm_perf_opt.analytic.api import stage_totals
from llm_perf_opt.analytic.deepseek_ocr import build_stages
from llm_perf_opt.data.analytic_inputs import RooflineParams
from llm_perf_opt.errors import UserError
from llm_perf_opt.hardware.table import load_hardware
from llm_perf_opt.specs.model_spec import DEEPSEEK_OCR
from llm_perf_opt.specs.workload import Workload

H200 = load_hardware("h200")

# Per layer, by hand from the census (decode step, batch 1):
#   attention: qkv GEMM 1 + RoPE 3 (mul, roll, addcmul) + cache write 2 + attention + head merge 1 + o_proj 1
#   attention kernels: eager flash split-KV 2; graph varlen flash 1 (key counts filled by the host)
#   layer: 2 RMSNorms + 2 residual adds + attention + MLP
#   dense MLP 4 (gate_up, silu, mul, down)
#   MoE = router 5 (cast, dot, reduce, softmax, unsorted top-k) + dispatch + shared experts 4 + add 1;
#   dispatch: eager grouped GEMMs 18; graph at batch 1 (6 pairs) gathered weights 11
#   outside the layers: embedding 1, final norm 1, lm_head 1, greedy pick 6 (EOS mask, chunk max,
#   argmax, gather, add, store); graph only: step inputs 3 (ids copy, position and key-count fills)
EAGER_ATTENTION = 1 + 3 + 2 + 2 + 1 + 1
GRAPH_ATTENTION = EAGER_ATTENTION - 1
OUTSIDE = 1 + 1 + 1 + 6
STEP_INPUTS = 3
CENSUS_PER_STEP = {"eager": (490.0,), "graph": (384.0, 396.0)}
"""Measured kernels per decode step, batch 1 (graph: the range the window normalisation allows)."""


def _per_step(execution: str) -> int:
    graph = execution == "graph"
    attention = GRAPH_ATTENTION if graph else EAGER_ATTENTION
    dense = 2 + 2 + attention + 4
    moe = 2 + 2 + attention + 5 + (11 if graph else 18) + 4 + 1
    return OUTSIDE + (STEP_INPUTS if graph else 0) + dense + 11 * moe


def _workload(tokens: int = 257, batch: int = 1) -> Workload:
    return Workload(profile_id="t", mode="base", max_new_tokens=tokens, batch_size=batch)


@pytest.mark.parametrize("execution", ["eager", "graph"])
def test_kernels_per_decode_step(execution: str) -> None:
    stages = build_stages(DEEPSEEK_OCR, _workload(), execution=execution)
    assert stages["decode"].cost().kernels == 256 * _per_step(execution)
    assert _per_step("eager") == 489 and _per_step("graph") == 403
    # the analytic tree's own count within ±5% of the census (see the module docstring)
    per_step = stages["decode"].cost().kernels / 256
    for measured in CENSUS_PER_STEP[execution]:
        assert abs(per_step / measured - 1) < 0.05


def test_batch_8_graph_step_uses_grouped_dispatch() -> None:
    # 8 tokens · 6 experts = 48 pairs > GATHER_MAX_PAIRS: grouped GEMMs (18) as in eager, graph attention.
    stages = build_stages(DEEPSEEK_OCR, _workload(batch=8), execution="graph")
    per_step = OUTSIDE + STEP_INPUTS + (2 + 2 + GRAPH_ATTENTION + 4) + 11 * (2 + 2 + GRAPH_ATTENTION + 5 + 18 + 5)
    assert stages["decode"].cost().kernels == 256 * per_step == 256 * 480


def test_graph_step_is_kernels_times_floor_when_every_kernel_is_below_it() -> None:
    # A 1 ms floor on a GPU with 1000 TB/s and 100x the H200 compute: each step costs kernels × floor + one launch
    # (the routed experts' weight reads, charged beside the grouped GEMMs' floors, become ~0.5 µs per step).
    fast = attrs.evolve(H200, bandwidth_tbs=1000.0, bf16_tflops=H200.bf16_tflops * 100)
    params = RooflineParams(kernel_floor_us=1000.0, graph_launch_us=7.0, host_overhead_us=1e6)
    decode = stage_totals(DEEPSEEK_OCR, _workload(), hardware=fast, params=params)["decode"]
    assert decode.predicted_ms == pytest.approx(256 * (403 * 1.0 + 0.007), rel=2e-6)
    assert decode.bound == "launch"


def test_graph_ignores_host_issue_and_eager_ignores_the_floor() -> None:
    def decode_ms(**kw: float | str) -> float:
        return stage_totals(DEEPSEEK_OCR, _workload(), hardware=H200, params=RooflineParams(**kw))[
            "decode"
        ].predicted_ms

    assert decode_ms(execution="graph", host_overhead_us=1.0) == decode_ms(execution="graph", host_overhead_us=500.0)
    assert decode_ms(execution="eager", kernel_floor_us=0.5) == decode_ms(execution="eager", kernel_floor_us=50.0)
    # host-bound eager at 20 µs per kernel: 489 kernels → ≥ 9.78 ms per step
    assert decode_ms(execution="eager", host_overhead_us=20.0) >= 256 * 489 * 0.020 * (1 - 1e-12)


def test_graph_step_reads_the_filled_positions_plus_the_gathered_expert_copies() -> None:
    # Flash attention with the key counts on the device reads exactly the filled positions, as eager
    # does. At batch 1 the graph step's gathered MoE dispatch writes the 6 experts' weights once more
    # and reads them again: 2 · 6 · 3·D·I · 2 B per MoE layer; the grouped eager dispatch does not.
    work = _workload()
    graph = build_stages(DEEPSEEK_OCR, work, execution="graph")["decode"].cost()
    eager = build_stages(DEEPSEEK_OCR, work, execution="eager")["decode"].cost()
    copy = 6 * 3 * 1280 * 896 * 2  # 20.6 MB per MoE layer
    inputs = 3 * 2  # the step-input fills: 3 elements, bf16 activation bytes
    assert graph.bytes_read - eager.bytes_read == pytest.approx(256 * (11 * copy + inputs), rel=1e-9)
    assert graph.bytes_written - eager.bytes_written == pytest.approx(256 * (11 * copy + inputs), rel=1e-9)


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
