"""Flatten a layer tree into contract nodes and per-module metrics (totals over one call).

Node ids are slash paths of child names from the root (``prefill/layers.moe/mlp/experts``), so
they are unique and the tree is acyclic by construction. A node with repetition ``for`` /
``parfor`` and count c stands for c runs; its metrics are totals over every run in the request:
``calls`` = product of the counts on its path, FLOPs/bytes/time = per-call × calls. Memory:
weights and KV cache are the node's resident state (× counts of distinct instances on the path,
not of repeated runs such as decode steps); activations are the node's peak working set.
"""

from __future__ import annotations

from collections.abc import Iterator

from attrs import frozen

from llm_perf_opt.analytic.base import BaseLayer
from llm_perf_opt.analytic.roofline import Roofline, Timing
from llm_perf_opt.contracts.analytic import AnalyticModuleNode, ModuleMetricsSnapshot, OperatorMetrics

ROOT_ID = "deepseek_ocr"
TFLOP, TB, GB, MS = 1e12, 1e12, 1e9, 1e3
_STAGES = ("vision", "projector", "prefill", "decode")


@frozen
class Visit:
    """One node of the walk: where it is, how often it runs, and how much of its state is distinct."""

    module_id: str
    name: str
    layer: BaseLayer
    parent_id: str | None
    repetition: str
    count: int
    calls: float
    """Runs of this node in one request (product of counts on the path)."""
    state_mult: float
    """Distinct instances of its state (product of counts of non-shared children on the path)."""
    children: tuple[str, ...]


def walk(root: BaseLayer, root_id: str = ROOT_ID) -> Iterator[Visit]:
    """Depth-first, parents before children."""
    stack: list[tuple[BaseLayer, str, str, str | None, str, int, float, float]] = [
        (root, root_id, root_id, None, "none", 1, 1.0, 1.0)
    ]
    while stack:
        layer, mid, name, parent, rep, count, calls, mult = stack.pop()
        kids = layer.children()
        ids = tuple(f"{mid}/{c.name}" for c in kids)
        yield Visit(mid, name, layer, parent, rep, count, calls, mult, ids)
        for child, cid in reversed(list(zip(kids, ids, strict=True))):
            child_mult = mult if child.shared_state else mult * child.count
            stack.append(
                (child.layer, cid, child.name, mid, child.repetition, child.count, calls * child.count, child_mult)
            )


def _stage(layer: BaseLayer) -> str:
    return layer.stage if layer.stage in _STAGES else "other"


def qualified_name(layer: BaseLayer) -> str:
    cls = layer.kind()
    return f"{cls.__module__}.{cls.__qualname__}"


def module_nodes(visits: list[Visit]) -> list[AnalyticModuleNode]:
    return [
        AnalyticModuleNode(
            module_id=v.module_id,
            name=v.name,
            qualified_class_name=qualified_name(v.layer),
            stage=_stage(v.layer),  # type: ignore[arg-type]
            parent_id=v.parent_id,
            children=list(v.children),
            repetition=v.repetition,  # type: ignore[arg-type]
            repetition_count=None if v.repetition == "none" else v.count,
        )
        for v in visits
    ]


def module_metrics(
    visits: list[Visit], profile_id: str, roofline: Roofline | None, total_s: float
) -> list[ModuleMetricsSnapshot]:
    out = []
    for v in visits:
        cost = v.layer.cost()
        timing = roofline.time(v.layer) if roofline is not None else Timing()
        seconds = timing.total_s * v.calls
        breakdown = [
            OperatorMetrics(
                category_id=cat,
                calls=round(vals[0] * v.calls),
                flops_tflops=vals[1] * v.calls / TFLOP,
                io_tb=vals[2] * v.calls / TB,
                share_of_module_flops=min(vals[1] / cost.flops, 1.0) if cost.flops else 0.0,
            )
            for cat, vals in sorted(cost.categories.items())
        ]
        out.append(
            ModuleMetricsSnapshot(
                module_id=v.module_id,
                profile_id=profile_id,
                calls=round(v.calls),
                total_time_ms=seconds * MS,
                total_flops_tflops=cost.flops * v.calls / TFLOP,
                total_io_tb=cost.bytes_moved * v.calls / TB,
                memory_weights_gb=cost.weight_bytes * v.state_mult / GB,
                memory_activations_gb=cost.activation_bytes / GB,
                memory_kvcache_gb=cost.kv_cache_bytes * v.state_mult / GB,
                share_of_model_time=min(seconds / total_s, 1.5) if total_s > 0 else 0.0,
                operator_breakdown=breakdown,
            )
        )
    return out
