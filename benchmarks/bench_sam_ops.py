"""SAM's operators by input shape on the GPU: what each copy, add and norm of one SAM pass costs.

Why: the operator tables of `profile` sum SAM's `aten::copy_` and `aten::add` over every call, so
they cannot say which copy the analytic model misses (tiny pages: 128 copies per pass, 1.41 ms for
3 pages against 0.75 ms of modelled copies). This runs our SAM encoder alone (random weights, bf16,
SDPA) on B views of side S, profiles one call after two warm-ups with input shapes recorded, and
prints one JSON line per (operator, input shapes): calls, self CUDA µs per call in total, and
the shapes, largest first. Eager, as the operator tables are; in a graph the same kernels run.

    python benchmarks/bench_sam_ops.py --case 512:3 --case 1024:1 --top 40 > sam_ops.jsonl
"""

from __future__ import annotations

import argparse
import json

import torch
from torch.profiler import ProfilerActivity, profile

from llm_perf_opt.models.deepseek_ocr.sam import SamEncoder
from llm_perf_opt.specs.model_spec import MODEL_REGISTRY


def census(encoder: torch.nn.Module, side: int, batch: int, top: int) -> list[dict[str, object]]:
    """The ``top`` (operator, input shapes) groups of one SAM pass by self CUDA time."""
    pixels = torch.randn(batch, 3, side, side, device="cuda", dtype=torch.bfloat16)
    with torch.no_grad():
        for _ in range(2):
            encoder(pixels)
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA], record_shapes=True) as prof:
            encoder(pixels)
            torch.cuda.synchronize()
    rows = []
    for avg in prof.key_averages(group_by_input_shape=True):
        us = avg.self_device_time_total
        if us <= 0 or avg.key.startswith(("cuda", "Activity")):
            continue
        rows.append({"side": side, "batch": batch, "op": avg.key, "calls": avg.count, "self_cuda_us": round(us, 1),
                     "shapes": str(avg.input_shapes)})  # fmt: skip
    rows.sort(key=lambda r: -float(r["self_cuda_us"]))  # type: ignore[arg-type]
    total = sum(float(r["self_cuda_us"]) for r in rows)  # type: ignore[arg-type]
    return [{"side": side, "batch": batch, "total_self_cuda_us": round(total, 1)}, *rows[:top]]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", action="append", default=[], help="SIDE:BATCH (pixels, views); repeatable")
    ap.add_argument("--top", type=int, default=40, help="groups printed per case")
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("bench_sam_ops: needs a CUDA GPU")
        return 2
    spec = MODEL_REGISTRY["deepseek-ocr"]
    encoder = SamEncoder(spec.sam, "sdpa").to("cuda", torch.bfloat16).eval()
    for case in args.case or ["512:3", "1024:1"]:
        side, batch = (int(v) for v in case.split(":"))
        for row in census(encoder, side, batch, args.top):
            print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
