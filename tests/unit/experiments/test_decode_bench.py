"""decode-bench on the tiny model (CPU): bytes per step by hand, and the JSON numbers agree with each other."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from llm_perf_opt.cli import cli
from llm_perf_opt.errors import UserError
from llm_perf_opt.experiments.decode_bench import DecodeBenchConfig, agreement, run_decode_bench
from llm_perf_opt.experiments.roofline_bytes import decoder_bytes, roofline_pct
from llm_perf_opt.specs.model_spec import MODEL_REGISTRY

TINY = MODEL_REGISTRY["tiny"].decoder


def hand_bytes() -> dict[str, int]:
    """The tiny decoder's parameter bytes (fp32) from its spec, written out by hand."""
    d, h, kv, hd = TINY.hidden_size, TINY.num_heads, TINY.num_kv_heads, TINY.hidden_size // TINY.num_heads
    attention = d * h * hd + 2 * d * kv * hd + h * hd * d + 2 * d  # q, k, v, o, two norms
    dense = 3 * d * TINY.intermediate_size
    moe_layers = TINY.num_layers - TINY.first_k_dense_replace
    moe_fixed = TINY.n_routed_experts * d + 3 * d * TINY.moe_intermediate_size * TINY.n_shared_experts  # gate, shared
    always = TINY.num_layers * attention + dense + moe_layers * moe_fixed + d + TINY.vocab_size * d  # norm, lm_head
    return {"always": 4 * always, "expert": 4 * 3 * d * TINY.moe_intermediate_size, "moe_layers": moe_layers,
            "kv": 4 * 2 * TINY.num_layers * kv * hd}


def test_decoder_bytes_match_the_spec_by_hand() -> None:
    import torch

    from llm_perf_opt.models.deepseek_ocr import build_model

    model = build_model(MODEL_REGISTRY["tiny"], device="cpu", dtype=torch.float32, weights="random")
    sizes, hand = decoder_bytes(model), hand_bytes()
    assert sizes.always_bytes == hand["always"]
    assert sizes.expert_bytes == hand["expert"]
    assert sizes.kv_bytes_per_position == hand["kv"]
    # Batch 1 reads exactly k experts per MoE layer, and one embedding row.
    k = TINY.num_experts_per_tok
    assert sizes.weights_read(1) == hand["always"] + hand["moe_layers"] * k * hand["expert"] + 4 * TINY.hidden_size
    # Very large batches touch every expert.
    assert sizes.weights_read(10_000) == pytest.approx(
        hand["always"] + hand["moe_layers"] * TINY.n_routed_experts * hand["expert"] + 10_000 * 4 * TINY.hidden_size)
    # Steps j = 1..S attend over P + j positions: mean P + (S + 1) / 2.
    assert sizes.kv_read(2, 100, 3) == 2 * hand["kv"] * (100 + 2)


def test_roofline_pct_by_hand() -> None:
    # 2.4 GB in 1 ms on 4.8 TB/s = 2.4e9 / (4.8e12 · 1e-3) = 50 %.
    assert roofline_pct(2.4e9, 4.8, 1.0) == pytest.approx(50.0)


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    import torch

    out = tmp_path_factory.mktemp("decode-bench")
    cfg = DecodeBenchConfig(model="tiny", device="cpu", batches=(1, 2), new_tokens=4, repeats=2, warmup=1,
                            page_mode="tiny", hardware="h200", out=out)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_decode_bench(cfg)
    finally:
        torch.set_num_threads(threads)
    return {"out": out, "json": json.loads((out / "decode_bench.json").read_text(encoding="utf-8"))}


def test_bench_numbers_are_consistent(bench: dict[str, Any]) -> None:
    data, hand = bench["json"], hand_bytes()
    assert data["status"] == "ok" and data["hardware"]["bandwidth_tbs"] == 4.8
    assert [e["batch"] for e in data["batches"]] == [1, 2]
    for entry in data["batches"]:
        graph, eager = entry["modes"]["graph"], entry["modes"]["eager"]
        assert graph["status"] == "unavailable" and "CUDA" in graph["reason"]  # never silently eager
        assert eager["status"] == "ok"
        steps = 4 - 1
        assert entry["decode_steps_per_call"] == steps
        assert eager["decode_steps_total"] == 2 * steps  # repeats × steps
        assert [c["decode_steps"] for c in eager["calls"]] == [steps, steps]
        per_call = [c["decode_ms"] / steps for c in eager["calls"]]
        assert eager["ms_per_token"]["mean"] == pytest.approx(statistics.fmean(per_call))
        assert eager["ms_per_token"]["std"] == pytest.approx(statistics.stdev(per_call))
        b, p = entry["batch"], entry["prompt_len"]
        e, k = TINY.n_routed_experts, TINY.num_experts_per_tok
        distinct = e * (1 - (1 - k / e) ** b)  # 2 experts at b = 1, 3.5 at b = 2
        weights = hand["always"] + hand["moe_layers"] * distinct * hand["expert"] + b * 4 * TINY.hidden_size
        kv = b * hand["kv"] * (p + (steps + 1) / 2)
        assert entry["weights_read_bytes"] == pytest.approx(weights)
        assert entry["kv_read_bytes"] == pytest.approx(kv)
        assert entry["bytes_per_step"] == pytest.approx(weights + kv)
        # % of roofline = bytes / (bandwidth · time), by hand.
        by_hand = 100 * entry["bytes_per_step"] / (4.8e12 * eager["ms_per_token"]["mean"] / 1e3)
        assert eager["roofline_pct"] == pytest.approx(by_hand)
        assert entry["roofline_ms_per_token"] == pytest.approx(entry["bytes_per_step"] / 4.8e12 * 1e3)
        if eager["calls"][0]["on_token_calls"] is not None:  # generate(on_token=…) exists: every token, prefill's too
            assert all(c["on_token_calls"] == 4 for c in eager["calls"])
    table = (bench["out"] / "decode_bench.md").read_text(encoding="utf-8")
    assert "| 2 | eager |" in table and "CUDA-graph decode needs a CUDA device" in table


def test_agreement_of_two_hand_made_results() -> None:
    def result(ms: float) -> dict[str, Any]:
        ok = {"status": "ok", "ms_per_token": {"mean": ms}}
        return {"batches": [{"batch": 1, "modes": {"graph": ok, "eager": {"status": "unavailable"}}}]}

    rows = agreement(result(1.00), result(1.04))
    assert rows == [{"batch": 1, "mode": "graph", "process_1_ms": 1.00, "process_2_ms": 1.04,
                     "disagreement_pct": pytest.approx(100 * 0.04 / 1.02)}]


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="--new-tokens"):
        DecodeBenchConfig(new_tokens=1).validate()
    with pytest.raises(UserError, match="--processes 2 needs --out"):
        DecodeBenchConfig(processes=2).validate()
    res = CliRunner().invoke(cli, ["experiment", "decode-bench", "--batches", "1,x", "--device", "cpu"])
    assert res.exit_code == 2
    assert res.output.strip().splitlines() == ["error: --batches '1,x': expected comma-separated integers, e.g. 1,8,32"]
    res = CliRunner().invoke(cli, ["experiment", "decode-bench", "--modes", "fast", "--device", "cpu"])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1 and "--modes" in res.output
