"""What in-graph timing events cost a graph-mode call: the same calls with and without them; one JSON row each.

Why: graphed SAM, CLIP and projector are timed by timing events captured inside their graphs
(:mod:`llm_perf_opt.profiling.timers`). This runs one page at batch 1 through graph-mode generation under
the profiler's stage clock, first with the stage graphs captured without those events, then with them,
and prints per variant the means of the vision and prefill ranges, the host gaps between the nested
ranges, each stage's bracket and (with events) its in-graph span.

    python benchmarks/bench_stage_spans.py --mode base --calls 6
"""

from __future__ import annotations

import argparse
import json
import statistics
from typing import Any

import torch

from llm_perf_opt.models import deepseek_ocr as dso
from llm_perf_opt.models.deepseek_ocr import static_prefill
from llm_perf_opt.profiling.synthetic import synthetic_page
from llm_perf_opt.profiling.timers import measure_call
from llm_perf_opt.specs.image_tokens import resolution_mode
from llm_perf_opt.specs.model_spec import MODEL_REGISTRY

NESTED = ("sam", "clip", "projector")


def one_variant(
    model: dso.DeepseekOCRForCausalLM, inputs: dso.ModelInputs, events: bool, calls: int, tokens: int
) -> dict[str, Any]:
    static_prefill.SPAN_EVENTS = events
    model.__dict__.pop("_static_decoders", None)  # capture again, with or without the events

    def call(ranges: Any) -> Any:
        return dso.generate(model, inputs, max_new_tokens=tokens, min_new_tokens=tokens, decode_mode="graph",
                            ranges=ranges)  # fmt: skip

    for _ in range(2):  # capture and warm up, untimed
        measure_call(call, torch.device("cuda"))
    rows = []
    for _ in range(calls):
        _, clock, _ = measure_call(call, torch.device("cuda"))
        rows.append(clock.timings())
    out: dict[str, object] = {"events": events}
    for name in ("prefill", "vision", *NESTED):
        out[f"{name}_ms"] = statistics.mean(r[name].sum_ms for r in rows)
        out[f"{name}_bracket_ms"] = statistics.mean(r[name].bracket_ms for r in rows)
    order = ["vision", *NESTED]
    gaps = []
    for r in rows:
        ends = [r["vision"].start_ms] + [x for n in NESTED for x in (r[n].start_ms, r[n].end_ms)] + [r["vision"].end_ms]
        gaps.append([1e3 * (ends[i + 1] - ends[i]) for i in range(0, len(ends), 2)])
    out["gaps_us"] = [round(statistics.mean(g[i] for g in gaps), 1) for i in range(len(order))]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", default="base")
    ap.add_argument("--calls", type=int, default=6)
    ap.add_argument("--tokens", type=int, default=8)
    ap.add_argument("--model", default="deepseek-ocr")
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("bench_stage_spans: needs a CUDA device (graph-mode generation)")
        return 2
    spec = MODEL_REGISTRY[args.model]
    model = dso.build_model(spec, device="cuda", dtype=torch.bfloat16, weights="random", seed=0).eval()
    page = dso.prepare_page(synthetic_page("text_heavy"), resolution_mode(args.mode))
    inputs = dso.build_inputs(spec, [page]).to(model.device, torch.bfloat16)
    for events in (False, True, False, True):
        print(json.dumps(one_variant(model, inputs, events, args.calls, args.tokens)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
