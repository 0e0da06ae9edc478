"""Routing census of the decoder prefill: how the MoE spreads token-expert pairs over the experts.

The grouped expert GEMMs pad each expert's rows to whole tiles and read each touched expert's
weights (the official code launches one SwiGLU per expert that got tokens), so their time follows
the spread of the pairs, not only their count. The analytic model takes that spread as one number
(``expert_load_ratio``, analytic/moe.py); this module measures it: one untimed, eager call that
generates one token (the prefill) with a forward hook on every MoE gate, the pairs per expert
counted per layer, a geometric fit per layer (:func:`~llm_perf_opt.analytic.moe.fit_load_ratio`).
The results go to ``metrics.json`` as aggregates over the MoE layers (mean, std, min, max):

* ``moe_expert_load_ratio`` — the fitted ratio (1 = uniform routing);
* ``moe_distinct_experts`` — experts that got at least one pair;
* ``moe_top_expert_share`` — the most loaded expert's share of the pairs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from llm_perf_opt.analytic.moe import fit_load_ratio
from llm_perf_opt.contracts.profile import Stats
from llm_perf_opt.data.stats import summarize

GATE_CLASS = "MoEGate"
"""Class name of the router in our model and in the official DeepSeek-V2 code alike."""


def _expert_ids(out: Any) -> torch.Tensor | None:
    """The integer (expert id) tensor among a gate's outputs: ours returns (weights, ids), the official
    code (ids, weights, aux_loss)."""
    items = out if isinstance(out, tuple | list) else (out,)
    return next((x for x in items if isinstance(x, torch.Tensor) and not x.is_floating_point()), None)


def census_counts(model: Any, run_prefill: Callable[[], Any]) -> list[list[int]]:
    """Pairs per expert of every MoE layer (in call order) over ``run_prefill()``, which must run one eager
    prefill of ``model`` (hooks do not fire inside replayed graphs)."""
    gates = [m for m in model.modules() if type(m).__name__ == GATE_CLASS]
    picks: list[tuple[int, torch.Tensor]] = []

    def hook(gate: Any) -> Callable[..., None]:
        experts = int(gate.weight.shape[0])

        def record(_m: Any, _i: Any, out: Any) -> None:
            ids = _expert_ids(out)
            if ids is not None:
                picks.append((experts, ids.detach()))

        return record

    handles = [g.register_forward_hook(hook(g)) for g in gates]
    try:
        with torch.inference_mode():
            run_prefill()
    finally:
        for handle in handles:
            handle.remove()
    return [torch.bincount(ids.reshape(-1), minlength=n).tolist() for n, ids in picks]


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


def session_census(session: Any, batch: Any) -> dict[str, Stats]:
    """The census of ``batch`` through ``session``: one untimed eager call generating one token (the prefill),
    for our model and the official code alike."""

    def prefill() -> Any:
        return session.generate(batch, max_new_tokens=1, min_new_tokens=1, decode_mode="eager")

    return census_aggregates(census_counts(session.model, prefill))
