"""Skewed MoE routing: the geometric spread, its fit to a census, and what it changes (and does not) in the tree."""

from __future__ import annotations

import pytest

from llm_perf_opt.analytic.base import BF16
from llm_perf_opt.analytic.implementations import active_experts
from llm_perf_opt.analytic.moe import MoE, expert_shares, fit_load_ratio
from llm_perf_opt.specs.model_spec import MODEL_REGISTRY

SPEC = MODEL_REGISTRY["deepseek-ocr"]
DEC = SPEC.decoder


def test_shares_are_geometric_and_sum_to_one() -> None:
    assert expert_shares(4, 0.5) == pytest.approx((8 / 15, 4 / 15, 2 / 15, 1 / 15))
    assert expert_shares(64, 1.0) == pytest.approx((1 / 64,) * 64)


def test_fit_recovers_the_ratio_of_a_geometric_census() -> None:
    counts = [round(1000 * 0.8**j) for j in range(64)]  # experts below 3 pairs are left out as noise
    assert fit_load_ratio(counts) == pytest.approx(0.8, abs=0.005)
    assert fit_load_ratio([50] * 64) == 1.0  # flat: uniform
    assert fit_load_ratio([700, 2, 1] + [0] * 61) == 1.0  # one usable expert: nothing to fit


def _moe(tokens: int, ratio: float) -> MoE:
    return MoE(tokens=tokens, dec=DEC, load_ratio=ratio, stage="prefill", prec=BF16)


def test_skew_keeps_flops_and_reads_fewer_expert_weights() -> None:
    uniform, skewed = _moe(283, 1.0).cost(), _moe(283, 0.85).cost()
    # Every token runs k experts whatever the routing: 6·T·k·D·I routed FLOPs + the same gate and shared work.
    assert skewed.flops == pytest.approx(uniform.flops)
    expert_bytes = 3 * DEC.hidden_size * DEC.moe_intermediate_size * 2
    # Uniform: ~64 experts touched at 283 tokens; skewed at 0.85: ~40, so ≥ 20 experts' weights fewer.
    assert uniform.bytes_read - skewed.bytes_read > 20 * expert_bytes


def test_active_experts_at_one_token_is_exactly_k_and_grows_with_tokens() -> None:
    k, e = DEC.num_experts_per_tok, DEC.n_routed_experts
    assert active_experts(SPEC, 1, 0.85) == k and active_experts(SPEC, 1) == k
    assert active_experts(SPEC, 283) == e  # uniform worst case min(E, T·k)
    skewed = [active_experts(SPEC, t, 0.85) for t in (2, 83, 283, 7304)]
    assert skewed == sorted(skewed) and skewed[-1] < e
