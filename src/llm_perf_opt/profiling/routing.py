"""Routing census of the decoder prefill: how the MoE spreads token-expert pairs over the experts.

The grouped expert GEMMs pad each expert's rows to whole tiles and read each touched expert's
weights, so their time follows the spread of the pairs, not only their count. The analytic model
takes that spread as one number (``expert_load_ratio``, analytic/moe.py); this module measures it:
one untimed, eager prefill of a batch with a forward hook on every MoE gate, the pairs per expert
counted per layer, a geometric fit per layer (:func:`~llm_perf_opt.analytic.moe.fit_load_ratio`).
The results go to ``metrics.json`` as aggregates over the MoE layers (mean, std, min, max):

* ``moe_expert_load_ratio`` — the fitted ratio (1 = uniform routing);
* ``moe_distinct_experts`` — experts that got at least one pair;
* ``moe_top_expert_share`` — the most loaded expert's share of the pairs.
"""

from __future__ import annotations

from typing import Any

import torch

from llm_perf_opt.analytic.moe import fit_load_ratio
from llm_perf_opt.contracts.profile import Stats
from llm_perf_opt.data.stats import summarize


def census_counts(model: Any, inputs: Any) -> list[list[int]]:
    """Pairs per expert of every MoE layer (in layer order) over one eager prefill of ``inputs``."""
    from llm_perf_opt.models import deepseek_ocr as dso
    from llm_perf_opt.models.deepseek_ocr.mlp import MoEGate

    gates = [m for m in model.modules() if isinstance(m, MoEGate)]
    ids: list[torch.Tensor] = []
    hooks = [g.register_forward_hook(lambda _m, _i, out: ids.append(out[1].detach())) for g in gates]
    try:
        cache = dso.new_cache(model, inputs.batch_size, inputs.prompt_len)
        dso.prefill(model, inputs, cache)
    finally:
        for hook in hooks:
            hook.remove()
    return [
        torch.bincount(layer.reshape(-1), minlength=gate.weight.shape[0]).tolist()
        for layer, gate in zip(ids, gates, strict=True)
    ]


def census_aggregates(counts: list[list[int]]) -> dict[str, Stats]:
    """The census as ``metrics.json`` aggregates over the MoE layers (empty when no layer routed a pair)."""
    layers = [c for c in counts if sum(c)]
    if not layers:
        return {}
    figures = {
        "moe_expert_load_ratio": [fit_load_ratio(c) for c in layers],
        "moe_distinct_experts": [float(sum(1 for n in c if n)) for c in layers],
        "moe_top_expert_share": [max(c) / sum(c) for c in layers],
    }
    out: dict[str, Stats] = {}
    for key, values in figures.items():
        stats = summarize(values)
        if stats is not None:
            out[key] = stats
    return out
