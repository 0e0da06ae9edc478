"""``execution = graph | eager``: kernel counts and decode-step time, against hand derivations.

Kernel counts per decode step come from a CUDA kernel census of the runnable model on an H200
(torch 2.11, ``benchmarks/bench_decode_kernels.py``, docs/validation/h200/bench/decode_kernels.jsonl):
measured 498 (eager) and 488.5 (graph: 519 in a profiler window that held 17 lm_head launches per
16 steps, i.e. 519 / 1.0625) at batch 1.
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
#   attention kernels: eager flash split-KV 2; graph memory-efficient 1 (the additive mask is built
#   once per step: compare, zeros, masked_fill = 3 outside the layers)
#   layer: 2 RMSNorms + 2 residual adds + attention + MLP
#   dense MLP 4 (gate_up, silu, mul, down); MoE 29 = router 6 + dispatch 18 + shared experts 4 + add 1
#   outside the layers: embedding 1, final norm 1, lm_head 1, greedy pick 3 (EOS mask, argmax, store)
EAGER_ATTENTION = 1 + 3 + 2 + 2 + 1 + 1
GRAPH_ATTENTION = EAGER_ATTENTION - 1
OUTSIDE = 1 + 1 + 1 + 3
GRAPH_MASK = 3


def _per_step(attention: int) -> int:
    dense = 2 + 2 + attention + 4
    moe = 2 + 2 + attention + 29
    return OUTSIDE + dense + 11 * moe + (GRAPH_MASK if attention == GRAPH_ATTENTION else 0)


def _workload(tokens: int = 257, batch: int = 1) -> Workload:
    return Workload(profile_id="t", mode="base", max_new_tokens=tokens, batch_size=batch)


@pytest.mark.parametrize(("execution", "attention"), [("eager", EAGER_ATTENTION), ("graph", GRAPH_ATTENTION)])
def test_kernels_per_decode_step(execution: str, attention: int) -> None:
    stages = build_stages(DEEPSEEK_OCR, _workload(), execution=execution)
    assert stages["decode"].cost().kernels == 256 * _per_step(attention)
    assert _per_step(EAGER_ATTENTION) == 497 and _per_step(GRAPH_ATTENTION) == 488


def test_graph_step_is_kernels_times_floor_when_every_kernel_is_below_it() -> None:
    # A 1 ms floor on a GPU with 1000 TB/s and 100x the H200 compute: each step costs kernels × floor + one launch
    # (the routed experts' weight reads, charged beside the grouped GEMMs' floors, become ~0.5 µs per step).
    fast = attrs.evolve(H200, bandwidth_tbs=1000.0, bf16_tflops=H200.bf16_tflops * 100)
    params = RooflineParams(kernel_floor_us=1000.0, graph_launch_us=7.0, host_overhead_us=1e6)
    decode = stage_totals(DEEPSEEK_OCR, _workload(), hardware=fast, params=params)["decode"]
    assert decode.predicted_ms == pytest.approx(256 * (488 * 1.0 + 0.007), rel=2e-6)
    assert decode.bound == "launch"


def test_graph_ignores_host_issue_and_eager_ignores_the_floor() -> None:
    def decode_ms(**kw: float | str) -> float:
        return stage_totals(DEEPSEEK_OCR, _workload(), hardware=H200, params=RooflineParams(**kw))[
            "decode"
        ].predicted_ms

    assert decode_ms(execution="graph", host_overhead_us=1.0) == decode_ms(execution="graph", host_overhead_us=500.0)
    assert decode_ms(execution="eager", kernel_floor_us=0.5) == decode_ms(execution="eager", kernel_floor_us=50.0)
    # host-bound eager at 20 µs per kernel: 497 kernels → ≥ 9.94 ms per step
    assert decode_ms(execution="eager", host_overhead_us=20.0) >= 256 * 497 * 0.020 * (1 - 1e-12)


def test_graph_attention_reads_half_a_bucket_more_on_average() -> None:
    # Per step j the graph reads a 256-position bucket; on average 128 positions beyond the context.
    work = _workload()
    graph = build_stages(DEEPSEEK_OCR, work, execution="graph")["decode"].cost()
    eager = build_stages(DEEPSEEK_OCR, work, execution="eager")["decode"].cost()
    dec = DEEPSEEK_OCR.decoder
    kv_per_position = 2 * dec.num_layers * dec.num_kv_heads * dec.head_dim * 2  # bf16: 61,440 B
    assert kv_per_position == 61_440
    # Plus the step's additive mask, read as one bf16 per bucket position: the bucket of step j holds
    # the 283-position base prompt + j + 1 positions plus 128 of padding on average.
    mask_bytes = 2 * 256 * (283 + (1 + 256) / 2 + 128)
    assert graph.bytes_read - eager.bytes_read == pytest.approx(256 * 128 * kv_per_position + mask_bytes, rel=1e-12)


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
