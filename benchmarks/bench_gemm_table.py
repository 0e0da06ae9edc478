"""Measured GEMM table of one GPU: µs per ``F.linear`` call over a grid of row counts, for the analytic model.

Why: small matmuls do not follow a roofline. CLIP-L at batch 1 runs 65- to 257-row GEMMs on a
132-SM H200; which tiles, split-K and waves cuBLAS picks for them sets their time (measured CLIP
GEMMs: 0.61 ms at 65 rows, 0.72 at 257), and no closed form of FLOPs and bytes reproduces that.
Like kernel-database estimators (NVIDIA AIConfigurator), the analytic model then reads such
matmuls from a table measured once per GPU (``llm_perf_opt/hardware/gemm_tables/``) and
interpolates in the row count; shapes the table lacks keep the roofline.

Shapes: every dense matmul (N out, K in, bias) of DeepSeek-OCR outside the decode step, taken from
the analytic layer trees of every resolution mode at batch 1 and 8 (so the table and the model name
the same matmuls). Rows: a geometric grid (1, 2, 3, 4, 6, 8, 12, 16, …; ratio ≈ 1.5) and each point
+ 1 from 64 up, so a tile boundary shows as a step; none of it is chosen from a validation workload.

Method: per shape and row count, one CUDA graph of ``calls`` back-to-back ``F.linear`` calls, each
on its own copy of the weights (≥ 2× the L2 size in all, as consecutive layers of the model read
different weights from HBM), replayed under CUDA events; the median of 5 replays / calls.

    python benchmarks/bench_gemm_table.py --out src/llm_perf_opt/hardware/gemm_tables/h200-bf16.json
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from llm_perf_opt.analytic.api import build_layer_tree
from llm_perf_opt.analytic.base import BaseLayer
from llm_perf_opt.analytic.primitives import Linear
from llm_perf_opt.errors import UserError
from llm_perf_opt.hardware.gemm_table import SCHEMA, GemmShape, parse_table
from llm_perf_opt.specs.model_spec import MODEL_REGISTRY
from llm_perf_opt.specs.workload import Workload

MODES = ("tiny", "small", "base", "large", "gundam")
L2_MULTIPLE = 2.0
"""Weights per graph span at least this many L2 sizes, so each call reads its weights from HBM."""
MAX_COPIES = 64


def model_shapes(model: str = "deepseek-ocr") -> dict[tuple[int, int, bool], int]:
    """(N, K, bias) → largest row count of every dense matmul outside decode, over the modes at batch 1 and 8."""
    spec = MODEL_REGISTRY[model]
    found: dict[tuple[int, int, bool], int] = {}

    def walk(layer: BaseLayer) -> None:
        kids = layer.children()
        if not kids:
            if isinstance(layer, Linear) and layer.stage != "decode":
                key = (layer.out_features, layer.in_features, layer.bias)
                found[key] = max(found.get(key, 0), layer.tokens)
            return
        for child in kids:
            walk(child.layer)

    for mode in MODES:
        for batch in (1, 8):
            workload = Workload(profile_id=f"{mode}-b{batch}", mode=mode, batch_size=batch)
            for stage in build_layer_tree(spec, workload).values():
                walk(stage)
    return found


def row_grid(max_rows: int) -> list[int]:
    """1, 2, 3, 4, 6, 8, 12, … (ratio ≈ 1.5) up to ≥ 1.5 × max_rows, plus g + 1 for each point g ≥ 64."""
    points: set[int] = set()
    g = 1
    while True:
        for v in (g, g * 3 // 2) if g >= 2 else (g,):
            points.add(v)
        if g * 3 // 2 >= 1.5 * max_rows:
            break
        g *= 2
    points |= {v + 1 for v in points if v >= 64}
    return sorted(points)


def graph_us(calls: list[Callable[[], object]]) -> float:
    """µs per call of ``calls`` run back to back: the median over 5 replays of one CUDA graph of them all."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):  # warm-up: library handles and heuristics outside the capture
        for call in calls:
            call()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for call in calls:
            call()
    graph.replay()
    samples = []
    for _ in range(5):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        graph.replay()
        end.record()
        end.synchronize()
        samples.append(start.elapsed_time(end) * 1e3 / len(calls))
    del graph
    return statistics.median(samples)


def weight_copies(weight_bytes: int, l2_bytes: int) -> int:
    """Weight copies to rotate through so each call reads its weights from HBM (≥ L2_MULTIPLE × L2 in all)."""
    return max(8, min(MAX_COPIES, math.ceil(L2_MULTIPLE * l2_bytes / weight_bytes)))


def time_linear(m: int, n: int, k: int, bias: bool, dtype: torch.dtype, l2_bytes: int) -> float:
    """µs per call: the median over 5 graph replays of back-to-back calls on rotating weight copies."""
    copies = weight_copies(n * k * torch.tensor([], dtype=dtype).element_size(), l2_bytes)
    ws = [torch.randn(n, k, device="cuda", dtype=dtype) * 0.02 for _ in range(copies)]
    bs = [torch.randn(n, device="cuda", dtype=dtype) if bias else None for _ in range(copies)]
    x = torch.randn(m, k, device="cuda", dtype=dtype)
    return graph_us([functools.partial(F.linear, x, w, b) for w, b in zip(ws, bs, strict=True)])


def read_table(path: Path, script: str) -> dict[str, Any] | None:
    """The GEMM table at ``path`` that a benchmark adds its section to, or None after one line saying why not."""
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
        parse_table(table, str(path))
    except (OSError, ValueError, UserError) as exc:
        print(f"{script}: {path}: no usable GEMM table ({exc})")
        return None
    return dict(table)


def write_table(table: dict[str, Any], out: Path, what: str, started: float) -> None:
    """Write ``table`` to ``out`` whole (a temporary file renamed over it) and say what it holds."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
    tmp.replace(out)
    print(f"wrote {out}: {what} in {time.perf_counter() - started:.0f} s")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="JSON file to write (a gemm table)")
    ap.add_argument("--hardware", default="h200", help="hardware id the table belongs to")
    ap.add_argument("--dtype", default="bf16", choices=("bf16", "fp16"))
    ap.add_argument("--budget-s", type=float, default=300.0, help="stop measuring new shapes after this long")
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("bench_gemm_table: needs a CUDA GPU")
        return 2
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[args.dtype]
    props = torch.cuda.get_device_properties(0)
    l2_bytes = int(getattr(props, "L2_cache_size", 50 * 2**20))
    started = time.perf_counter()
    shapes: list[dict[str, Any]] = []
    for (n, k, bias), max_rows in sorted(model_shapes().items()):
        if time.perf_counter() - started > args.budget_s:
            print(f"budget reached: {n}x{k} and later shapes not measured")
            break
        rows = row_grid(max_rows)
        us = [round(time_linear(m, n, k, bias, dtype, l2_bytes), 3) for m in rows]
        shape = GemmShape(n=n, k=k, bias=bias, rows=tuple(rows), us=tuple(us))
        shapes.append(shape.to_json())
        print(json.dumps({"n": n, "k": k, "bias": bias, "points": len(rows), "max_rows": rows[-1],
                          "us_first": us[0], "us_last": us[-1]}), flush=True)  # fmt: skip
    table = {
        "schema": SCHEMA,
        "hardware": args.hardware,
        "dtype": args.dtype,
        "device_name": torch.cuda.get_device_name(0),
        "sms": props.multi_processor_count,
        "l2_bytes": l2_bytes,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "method": "F.linear, CUDA graph of back-to-back calls on rotating weight copies (≥ 2× L2), median of 5 replays",
        "command": "python benchmarks/bench_gemm_table.py --out " + str(args.out),
        "shapes": shapes,
    }
    write_table(table, args.out, f"{len(shapes)} shapes", started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
