"""Expert loads of the decoder prefill's MoE layers, per workload; prints one JSON row per workload.

Why: the grouped expert GEMMs of the prefill pad every expert's rows to whole tiles and read an
expert's weights once per row tile, so their time follows how the T·k token-expert pairs spread over
the E experts, not only their count. The analytic model assumes uniform routing; the runnable model
with random weights (what ``profile --weights random`` runs) routes by a random gate. This prints,
per MoE layer, the rows of every expert (sorted, largest first), the distinct experts touched and
Σ ⌈rows/128⌉ (row tiles of a 128-row grouped GEMM) beside what uniform routing expects.

    python benchmarks/bench_moe_routing.py --cases base:1 gundam:1 base:4
"""

from __future__ import annotations

import argparse
import functools
import json
import math

import torch

from llm_perf_opt.models import deepseek_ocr as dso
from llm_perf_opt.profiling.routing import census_counts
from llm_perf_opt.profiling.synthetic import synthetic_page
from llm_perf_opt.specs.image_tokens import resolution_mode
from llm_perf_opt.specs.model_spec import MODEL_REGISTRY

TILE = 128


def uniform_tiles(pairs: int, experts: int) -> float:
    """E[Σ_e ⌈n_e/128⌉] when ``pairs`` assignments fall uniformly on ``experts`` (n_e binomial):
    E ⌈n/128⌉ = Σ_j P(n > 128·j), with the binomial pmf in log space (no underflow at 50,000 pairs)."""
    p = 1.0 / experts
    top = min(pairs, int(pairs * p + 12 * math.sqrt(pairs * p) + TILE + 1))

    def pmf(x: int) -> float:
        return math.exp(
            math.lgamma(pairs + 1) - math.lgamma(x + 1) - math.lgamma(pairs - x + 1)
            + x * math.log(p) + (pairs - x) * math.log1p(-p)
        )  # fmt: skip

    cdf, expect, below = 0.0, 0.0, 0
    for j in range(top // TILE + 1):
        while below <= TILE * j:
            cdf += pmf(below)
            below += 1
        expect += max(1.0 - cdf, 0.0)
    return experts * expect


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", default=["tiny:1", "small:1", "base:1", "gundam:1", "base:4", "base:8"])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--model", default="deepseek-ocr")
    args = ap.parse_args(argv)
    spec = MODEL_REGISTRY[args.model]
    dtype = torch.bfloat16 if args.device == "cuda" else torch.float32
    model = dso.build_model(spec, device=args.device, dtype=dtype, weights="random", seed=0).eval()
    experts, k = spec.decoder.n_routed_experts, spec.decoder.num_experts_per_tok
    for case in args.cases:
        mode, batch = case.split(":")
        pages = [
            dso.prepare_page(synthetic_page("mixed_layout", seed=i), resolution_mode(mode), max_crops=9)
            for i in range(int(batch))
        ]
        inputs = dso.build_inputs(spec, pages).to(args.device, dtype)
        cache = dso.new_cache(model, inputs.batch_size, inputs.prompt_len)
        run = functools.partial(dso.prefill, model, inputs, cache)
        layers = []
        for counts in census_counts(model, run):
            layers.append({
                "rows_sorted": sorted(counts, reverse=True),
                "distinct": sum(1 for c in counts if c),
                "row_tiles": sum(math.ceil(c / TILE) for c in counts),
            })  # fmt: skip
        tokens = inputs.batch_size * inputs.prompt_len
        print(json.dumps({
            "case": case, "tokens": tokens, "pairs": tokens * k, "layers": layers,
            "uniform_row_tiles": round(uniform_tiles(tokens * k, experts), 2),
            "uniform_distinct": round(experts * (1 - (1 - k / experts) ** tokens), 2),
        }), flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
