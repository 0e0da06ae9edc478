"""Measured grouped expert GEMMs of one GPU: µs per MoE layer over token-expert pairs and routing skew.

Why: the prefill's routed experts run as two grouped GEMMs (``torch._grouped_mm``) with the SwiGLU
between them, and their time does not follow the per-expert roofline: the H200 operator tables give
0.93 / 1.28 / 1.81 ms per prefill at 83 / 283 / 913 prompt tokens (11 MoE layers) where the model had
1.14 / 1.20 / 1.38 (uniform routing) — CUTLASS's tile shapes, its scheduling of many small groups and the weight reads
of the touched experts set it. The analytic model reads it from this table instead, as it does dense
matmuls and convolutions (kernel-database style), and splits a layer's time over its experts by pairs.

Grid: every MoE shape of the model (E experts, hidden D, width I, top-k), pairs P = k·T for T = 1, 2,
3, 4, 6, 8, … up to 12,288 tokens (ratio ≈ 1.5), and routing skews r = 0.75 … 1.0: the j-th most
loaded expert gets P·r^j/Σ r^i pairs (``analytic.moe.expert_shares``, rounded to whole pairs), as the
runnable model with random weights routes (census r = 0.80–0.86); r = 1 is uniform.

Method: the runnable model's ``_grouped`` on sorted pairs (gate-up grouped GEMM on [E, 2I, D] weights
seen transposed, SiLU · up, down grouped GEMM), one CUDA graph of two layers' worth on two weight
copies (each ≫ L2), median of 5 replays. The result is the GEMM table given by ``--table`` with its
``grouped`` replaced, written to ``--out``.

    python benchmarks/bench_grouped_table.py --table src/llm_perf_opt/hardware/gemm_tables/h200-bf16.json \
        --out src/llm_perf_opt/hardware/gemm_tables/h200-bf16.json
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from bench_gemm_table import graph_us, read_table, write_table

from llm_perf_opt.analytic.moe import expert_shares
from llm_perf_opt.hardware.gemm_table import GroupedShape
from llm_perf_opt.specs.model_spec import MODEL_REGISTRY

RATIOS = (0.75, 0.8, 0.85, 0.9, 0.95, 1.0)
MAX_TOKENS = 12288
WEIGHT_COPIES = 2


def token_grid(max_tokens: int = MAX_TOKENS) -> list[int]:
    """1, 2, 3, 4, 6, 8, 12, … (ratio ≈ 1.5) up to max_tokens."""
    points, g = {1}, 2
    while g <= max_tokens:
        points |= {g, g * 3 // 2}
        g *= 2
    return sorted(p for p in points if p <= max_tokens)


def expert_rows(pairs: int, experts: int, ratio: float) -> list[int]:
    """Whole pairs per expert, largest first, summing to ``pairs``: the shares rounded by largest remainder."""
    exact = [pairs * s for s in expert_shares(experts, ratio)]
    rows = [int(x) for x in exact]
    for j in sorted(range(experts), key=lambda j: rows[j] - exact[j])[: pairs - sum(rows)]:
        rows[j] += 1
    return rows


def grouped_layer(xs: torch.Tensor, gate_up: torch.Tensor, down: torch.Tensor, ends: torch.Tensor) -> torch.Tensor:
    """The runnable model's ``_grouped``: gate-up grouped GEMM, SiLU(gate) · up, down grouped GEMM."""
    inter = down.shape[2]
    g = torch._grouped_mm(xs, gate_up.transpose(1, 2), offs=ends)
    return torch._grouped_mm(F.silu(g[..., :inter]) * g[..., inter:], down.transpose(1, 2), offs=ends)


def time_layer(pairs: int, ratio: float, experts: int, hidden: int, inter: int) -> float:
    """µs per MoE layer's grouped GEMMs at ``pairs`` pairs spread with skew ``ratio``."""
    rows = expert_rows(pairs, experts, ratio)
    ends = torch.tensor(rows, device="cuda").cumsum(0).to(torch.int32)
    xs = torch.randn(pairs, hidden, device="cuda", dtype=torch.bfloat16)
    weights = [
        (torch.randn(experts, 2 * inter, hidden, device="cuda", dtype=torch.bfloat16) * 0.02,
         torch.randn(experts, hidden, inter, device="cuda", dtype=torch.bfloat16) * 0.02)
        for _ in range(WEIGHT_COPIES)
    ]  # fmt: skip
    return graph_us([functools.partial(grouped_layer, xs, gu, dn, ends) for gu, dn in weights])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", type=Path, required=True, help="the GEMM table (JSON) the grouped GEMMs join")
    ap.add_argument("--out", type=Path, required=True, help="JSON file to write (the table with its grouped)")
    ap.add_argument("--budget-s", type=float, default=120.0, help="stop measuring new skews after this long")
    args = ap.parse_args(argv)
    table = read_table(args.table, "bench_grouped_table")
    if table is None:
        return 2
    if not torch.cuda.is_available() or not hasattr(torch, "_grouped_mm"):
        print("bench_grouped_table: needs a CUDA GPU and torch._grouped_mm")
        return 2
    dec = MODEL_REGISTRY["deepseek-ocr"].decoder
    e, d, i, k = dec.n_routed_experts, dec.hidden_size, dec.moe_intermediate_size, dec.num_experts_per_tok
    started = time.perf_counter()
    grouped = []
    for ratio in RATIOS:
        if time.perf_counter() - started > args.budget_s:
            print(f"budget reached: skew {ratio} and later not measured")
            break
        pairs = [k * t for t in token_grid()]
        us = [round(time_layer(p, ratio, e, d, i), 3) for p in pairs]
        shape = GroupedShape(experts=e, hidden=d, inter=i, load_ratio=ratio, rows=tuple(pairs), us=tuple(us))
        grouped.append(shape.to_json())
        print(json.dumps({"load_ratio": ratio, "pairs": pairs, "us": us}), flush=True)
    table["grouped"] = grouped
    table["grouped_command"] = (
        f"python benchmarks/bench_grouped_table.py --table {args.table} --out {args.out} "
        f"({torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda})"
    )
    write_table(table, args.out, f"{len(grouped)} skews", started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
