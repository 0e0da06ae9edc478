"""Routing census of the prefill on the tiny model (CPU): pairs per expert per MoE layer and their summary."""

from __future__ import annotations

import torch

from llm_perf_opt.models import deepseek_ocr as dso
from llm_perf_opt.profiling.routing import census_aggregates, census_counts
from llm_perf_opt.profiling.synthetic import synthetic_page
from llm_perf_opt.specs.image_tokens import resolution_mode
from llm_perf_opt.specs.model_spec import MODEL_REGISTRY


def test_census_counts_every_pair_of_every_moe_layer() -> None:
    spec = MODEL_REGISTRY["tiny"]
    model = dso.build_model(spec, device="cpu", dtype=torch.float32, weights="random", seed=0).eval()
    page = dso.prepare_page(synthetic_page("text_heavy", size=(320, 240)), resolution_mode("tiny"), max_crops=2)
    inputs = dso.build_inputs(spec, [page, page])
    counts = census_counts(model, lambda: dso.generate(model, inputs, max_new_tokens=1, decode_mode="eager"))
    dec = spec.decoder
    assert len(counts) == dec.num_layers - dec.first_k_dense_replace  # one row per MoE layer
    pairs = inputs.batch_size * inputs.prompt_len * dec.num_experts_per_tok
    assert all(len(row) == dec.n_routed_experts and sum(row) == pairs for row in counts)
    agg = census_aggregates(counts)
    assert agg["moe_distinct_experts"].max <= dec.n_routed_experts
    assert 0.0 < agg["moe_expert_load_ratio"].mean <= 1.0
    top = max(max(row) / sum(row) for row in counts)
    assert agg["moe_top_expert_share"].max == top


def test_no_routed_pairs_gives_no_figures() -> None:
    assert census_aggregates([[0, 0, 0]]) == {}
