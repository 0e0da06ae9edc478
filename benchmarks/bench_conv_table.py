"""Measured convolutions of one GPU: µs per ``F.conv2d`` call over a grid of batch sizes, added to its GEMM table.

Why: SAM's five convolutions (patch embedding, the neck's 1×1 and 3×3, the two stride-2 compressors)
run far below a matmul of the same FLOPs. The H200 operator tables (docs/validation/h200/prefill-ops)
show them at 28 TFLOP/s for a tiny page (0.145 ms), 50 for a base page (0.341 ms) and 72 for three
base pages (0.888 ms), where the roofline with SM fill gave 0.05 / 0.07 ms: cuDNN's kernel choice,
the per-call conversion of the weights to the input's channels-last layout and the input's layout
set their time. The analytic model then reads them from the table, as it does the matmuls.

Shapes: every Conv2d of DeepSeek-OCR's analytic trees over the resolution modes at batch 1 and 8 (so
table and model name the same convolutions). The patch embedding reads the image, a contiguous NCHW
tensor; the others read SAM's [B, H, W, C] map permuted to NCHW (channels-last strides), as the
runnable model feeds them. Batches: 1, 2, 3, 4, 6, 8, 12, … (ratio ≈ 1.5) up to ≥ 1.5 × the largest.

Method: as ``bench_gemm_table.py``: one CUDA graph of back-to-back calls on rotating weight copies
(≥ 2× L2), median of 5 replays. The result is the GEMM table given by ``--table`` with its
``convs`` replaced, written to ``--out``.

    python benchmarks/bench_conv_table.py --table src/llm_perf_opt/hardware/gemm_tables/h200-bf16.json \
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
from bench_gemm_table import graph_us, read_table, weight_copies, write_table

from llm_perf_opt.analytic.api import build_layer_tree
from llm_perf_opt.analytic.primitives import Conv2d
from llm_perf_opt.analytic.report_tree import walk
from llm_perf_opt.hardware.gemm_table import ConvKey, ConvShape
from llm_perf_opt.specs.model_spec import MODEL_REGISTRY
from llm_perf_opt.specs.workload import Workload

MODES = ("tiny", "small", "base", "large", "gundam")
IMAGE_INPUT = "patch_embed"
"""The convolution that reads the image itself (contiguous NCHW); every other one reads a permuted map."""


def model_convs(model: str = "deepseek-ocr") -> dict[ConvKey, tuple[int, bool]]:
    """Every Conv2d outside decode → (largest batch over the modes at batch 1 and 8, channels-last input)."""
    found: dict[ConvKey, tuple[int, bool]] = {}
    for mode in MODES:
        for batch in (1, 8):
            workload = Workload(profile_id=f"{mode}-b{batch}", mode=mode, batch_size=batch)
            for stage in build_layer_tree(MODEL_REGISTRY[model], workload).values():
                for visit in walk(stage):
                    conv = visit.layer
                    if not isinstance(conv, Conv2d):
                        continue
                    key: ConvKey = (conv.in_channels, conv.out_channels, conv.kernel, conv.stride, conv.padding,
                                    conv.in_side, conv.bias)  # fmt: skip
                    before = found.get(key, (0, True))[0]
                    found[key] = (max(before, conv.batch), IMAGE_INPUT not in visit.module_id)
    return found


def batch_grid(max_batch: int) -> list[int]:
    """1, 2, 3, 4, 6, 8, 12, … (ratio ≈ 1.5) up to ≥ 1.5 × max_batch (at least 12)."""
    points, g = {1}, 2
    while True:
        points |= {g, g * 3 // 2}
        if g * 3 // 2 >= max(12, 1.5 * max_batch):
            return sorted(points)
        g *= 2


def time_conv(batch: int, key: ConvKey, channels_last: bool, dtype: torch.dtype, l2_bytes: int) -> float:
    """µs per F.conv2d call on the input layout the model feeds, over rotating weight copies."""
    ci, co, k, stride, pad, side, bias = key
    weight_bytes = co * ci * k * k * torch.tensor([], dtype=dtype).element_size()
    copies = weight_copies(weight_bytes, l2_bytes)
    ws = [torch.randn(co, ci, k, k, device="cuda", dtype=dtype) * 0.02 for _ in range(copies)]
    bs = [torch.randn(co, device="cuda", dtype=dtype) if bias else None for _ in range(copies)]
    if channels_last:  # SAM's [B, H, W, C] tokens seen as NCHW, as `self.neck(x.permute(0, 3, 1, 2))` does
        x = torch.randn(batch, side, side, ci, device="cuda", dtype=dtype).permute(0, 3, 1, 2)
    else:
        x = torch.randn(batch, ci, side, side, device="cuda", dtype=dtype)
    calls = [functools.partial(F.conv2d, x, w, b, stride, pad) for w, b in zip(ws, bs, strict=True)]
    return graph_us(calls)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", type=Path, required=True, help="the GEMM table (JSON) the convolutions join")
    ap.add_argument("--out", type=Path, required=True, help="JSON file to write (the table with its convs)")
    ap.add_argument("--budget-s", type=float, default=120.0, help="stop measuring new shapes after this long")
    args = ap.parse_args(argv)
    table = read_table(args.table, "bench_conv_table")
    if table is None:
        return 2
    if not torch.cuda.is_available():
        print("bench_conv_table: needs a CUDA GPU")
        return 2
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[table["dtype"]]
    props = torch.cuda.get_device_properties(0)
    l2_bytes = int(getattr(props, "L2_cache_size", 50 * 2**20))
    started = time.perf_counter()
    convs = []
    for key, (max_batch, channels_last) in sorted(model_convs().items()):
        if time.perf_counter() - started > args.budget_s:
            print(f"budget reached: {key} and later convolutions not measured")
            break
        rows = batch_grid(max_batch)
        us = [round(time_conv(b, key, channels_last, dtype, l2_bytes), 3) for b in rows]
        convs.append(ConvShape(key=key, channels_last=channels_last, rows=tuple(rows), us=tuple(us)).to_json())
        print(json.dumps({"conv": key, "channels_last": channels_last, "batches": rows, "us": us}), flush=True)
    table["convs"] = convs
    table["conv_method"] = (
        "F.conv2d on the model's input layout, CUDA graph of back-to-back calls on rotating weight copies "
        f"(≥ 2× L2), median of 5 replays; {torch.cuda.get_device_name(0)}, torch {torch.__version__}, "
        f"CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}"
    )
    table["conv_command"] = f"python benchmarks/bench_conv_table.py --table {args.table} --out {args.out}"
    write_table(table, args.out, f"{len(convs)} convolutions", started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
