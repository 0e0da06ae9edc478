"""Bytes one decode step must move from HBM at least: the weights it reads plus the KV cache it attends over.

Weights read by one step of B sequences (counted on the loaded model's parameters):

* every decoder parameter except the routed experts and the embedding table: attention, norms,
  the dense MLP layer(s), router gates, shared experts, final norm and ``lm_head``;
* routed experts: per MoE layer, the EXPECTED number of distinct experts B tokens touch under
  uniform routing, E·(1 − (1 − k/E)^B) (exact at B = 1: k experts; ≈ E at large B), times one
  expert's bytes (:func:`llm_perf_opt.analytic.decoder.expected_distinct_experts`);
* the embedding table: the B rows looked up.

KV cache read: step j = 1 … S attends over P + j positions (P prompt tokens, the first generated
token came from prefill), so the mean over the S steps is P + (S + 1) / 2 positions, each
2 · layers · kv_heads · head_dim · dtype bytes per sequence. Activations and writes are left out, so
this is a lower bound on the traffic and the roofline time it gives is the fastest a step can be.
"""

from __future__ import annotations

from typing import Any

from attrs import define

from llm_perf_opt.analytic.decoder import expected_distinct_experts

GB = 1e9
"""Decimal gigabyte (10^9 bytes); bandwidth in TB/s is 10^12 bytes/s."""
_DECODER_PREFIXES = ("model.layers.", "model.norm.", "lm_head.")


@define(frozen=True, kw_only=True)
class DecoderBytes:
    """Parameter bytes of the decoder, split by how a decode step reads them."""

    always_bytes: int
    """Read in full by every step (all decoder parameters but routed experts and embeddings)."""
    expert_bytes: int
    """One routed expert (gate, up and down projections)."""
    moe_layers: int
    experts: int
    top_k: int
    embedding_row_bytes: int
    kv_bytes_per_position: int
    """Per sequence: 2 · layers · kv_heads · head_dim · dtype bytes."""

    def weights_read(self, batch: int) -> float:
        """Weight bytes one decode step of ``batch`` sequences reads (expected, uniform routing)."""
        distinct = expected_distinct_experts(batch, self.experts, self.top_k)
        return self.always_bytes + self.moe_layers * distinct * self.expert_bytes + batch * self.embedding_row_bytes

    def kv_read(self, batch: int, prompt_len: int, steps: int) -> float:
        """Mean KV-cache bytes one of ``steps`` decode steps reads (context P + (S + 1) / 2)."""
        return batch * self.kv_bytes_per_position * (prompt_len + (steps + 1) / 2.0)

    def step_bytes(self, batch: int, prompt_len: int, steps: int) -> float:
        return self.weights_read(batch) + self.kv_read(batch, prompt_len, steps)


def decoder_bytes(model: Any) -> DecoderBytes:
    """Split ``model``'s decoder parameters (official names; any packing of the routed experts)."""
    dec = model.spec.decoder
    always = experts = embed = 0
    for name, p in model.named_parameters():
        size = int(p.numel()) * int(p.element_size())
        if name.startswith("model.embed_tokens."):
            embed += size
        elif ".mlp.experts." in name or name.endswith(".mlp.experts"):
            experts += size
        elif name.startswith(_DECODER_PREFIXES):
            always += size
    moe_layers = max(dec.num_layers - min(dec.first_k_dense_replace, dec.num_layers), 0)
    per_expert = experts // (moe_layers * dec.n_routed_experts) if moe_layers and dec.n_routed_experts else 0
    elem = next(model.parameters()).element_size()
    kv = 2 * dec.num_layers * dec.num_kv_heads * dec.head_dim * int(elem)
    return DecoderBytes(
        always_bytes=always,
        expert_bytes=per_expert,
        moe_layers=moe_layers,
        experts=dec.n_routed_experts,
        top_k=dec.num_experts_per_tok,
        embedding_row_bytes=embed // dec.vocab_size if dec.vocab_size else 0,
        kv_bytes_per_position=kv,
    )


def roofline_pct(step_bytes: float, bandwidth_tbs: float, ms_per_step: float) -> float:
    """Achieved share of the peak bandwidth: 100 · bytes / (bandwidth · time)."""
    return 100.0 * step_bytes / (bandwidth_tbs * 1e12 * ms_per_step / 1e3)
