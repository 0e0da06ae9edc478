"""Kernel census of one decode step: CUDA kernel names, counts and GPU µs per step, graph vs eager; prints JSON.

The analytic model counts kernels per layer; this is the measurement it is checked against.

    python benchmarks/bench_decode_kernels.py --batch 1 8 --steps 16
"""

from __future__ import annotations

import argparse
import collections
import json
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile, schedule

from llm_perf_opt.models.deepseek_ocr import MOE_IMPLS, build_inputs, build_model, generate, prepare_page
from llm_perf_opt.models.deepseek_ocr.step_attention import STEP_ATTENTIONS
from llm_perf_opt.profiling.synthetic import synthetic_page
from llm_perf_opt.specs.image_tokens import resolution_mode
from llm_perf_opt.specs.model_spec import MODEL_REGISTRY


def census(model: Any, inputs: Any, mode: str, steps: int) -> dict[str, dict[str, float]]:
    """Kernel name → {"launches", "us"} per decode step over a window of ``steps`` steps (after 4 steps).

    ``us`` is the kernels' summed GPU duration: against the step's wall time it shows how much of the
    step is kernel execution and how much the gaps between kernels.
    """
    launches: collections.Counter[str] = collections.Counter()
    micros: collections.Counter[str] = collections.Counter()

    def collect(prof: Any) -> None:
        for e in prof.events():
            if e.device_type.name == "CUDA":
                launches[e.name] += 1
                micros[e.name] += e.time_range.elapsed_us()

    with profile(
        activities=[ProfilerActivity.CUDA],
        schedule=schedule(wait=4, warmup=1, active=steps, repeat=1),
        on_trace_ready=collect,
    ) as prof:
        generate(
            model,
            inputs,
            max_new_tokens=steps + 8,
            min_new_tokens=steps + 8,
            decode_mode=mode,
            on_token=lambda i, ids: prof.step() if i >= 1 else None,
        )
    return {name: {"launches": n / steps, "us": micros[name] / steps} for name, n in launches.most_common()}


def kernels_per_step(by_name: dict[str, dict[str, float]]) -> float:
    return sum(v["launches"] for v in by_name.values())


def busy_us_per_step(by_name: dict[str, dict[str, float]]) -> float:
    return sum(v["us"] for v in by_name.values())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="deepseek-ocr", choices=sorted(MODEL_REGISTRY))
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--moe-impl", default="auto", choices=MOE_IMPLS, help="routed-expert dispatch (see MoE)")
    ap.add_argument("--step-attention", default="auto", choices=STEP_ATTENTIONS, help="graph step attention form")
    ap.add_argument("--modes", nargs="+", default=["graph", "eager"], choices=["graph", "eager"])
    args = ap.parse_args()
    spec = MODEL_REGISTRY[args.model]
    model = build_model(spec, device="cuda", dtype=torch.bfloat16, weights="random", seed=0)
    model.set_moe_impl(args.moe_impl)
    model.set_step_attention(args.step_attention)
    page = prepare_page(synthetic_page("mixed_layout"), resolution_mode("base"))
    for batch in args.batch:
        inputs = build_inputs(spec, [page] * batch)
        for mode in args.modes:
            generate(model, inputs, max_new_tokens=8, min_new_tokens=8, decode_mode=mode)  # warm-up, capture
            per_step = census(model, inputs, mode, args.steps)
            print(
                json.dumps(
                    {
                        "batch": batch,
                        "mode": mode,
                        "moe_impl": args.moe_impl,
                        "step_attention": args.step_attention,
                        "kernels_per_step": kernels_per_step(per_step),
                        "kernel_us_per_step": busy_us_per_step(per_step),
                        "by_name": per_step,
                    }
                ),
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
