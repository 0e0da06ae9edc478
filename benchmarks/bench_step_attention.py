"""Attention forms of the graph decode step on one GPU: error against fp32 math and µs per layer; prints JSON.

For each form (:data:`~llm_perf_opt.models.deepseek_ocr.step_attention.STEP_ATTENTIONS`), batch and
filled length: a random bf16 cache of DeepSeek-OCR's decoder shape (10 heads × 128), one query per
row sliced from a packed qkv tensor as in the model, the output compared with fp32 softmax attention
over the filled positions, then ``--layers`` calls, each over its own cache (as the decoder's layers:
one cache re-read would sit in L2), captured in one CUDA graph and replayed (CUDA events), as the
decode step runs them.

    python benchmarks/bench_step_attention.py --batch 1 8 32 --filled 300 700
"""

from __future__ import annotations

import argparse
import json
import math

import torch

from llm_perf_opt.models.deepseek_ocr.step_attention import STEP_ATTENTIONS, StepAttention
from llm_perf_opt.specs.execution import bucket_capacity


def _reference(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, filled: int) -> torch.Tensor:
    k, v = keys[:, :, :filled].float(), values[:, :, :filled].float()
    scores = q.float() @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    return torch.softmax(scores, dim=-1) @ v


@torch.inference_mode()
def run(form: str, batch: int, filled: int, layers: int, heads: int, head_dim: int, capacity: int) -> dict[str, object]:
    dev = torch.device("cuda")
    gen = torch.Generator(device=dev).manual_seed(0)
    buf = torch.randn(layers, 2, batch, capacity, heads, head_dim, device=dev, dtype=torch.bfloat16, generator=gen)
    caches = [(buf[i, 0].transpose(1, 2), buf[i, 1].transpose(1, 2)) for i in range(layers)]  # KVCache.layer views
    keys, values = caches[0]
    # q as the model makes it: a head slice of the packed qkv projection, transposed (not contiguous)
    qkv = torch.randn(batch, 1, 3 * heads, head_dim, device=dev, dtype=torch.bfloat16, generator=gen)
    q = qkv[:, :, :heads].transpose(1, 2)
    pos = torch.tensor([filled - 1], device=dev)
    used = torch.full((batch,), filled, dtype=torch.int32, device=dev)
    length = bucket_capacity(filled)
    attention = StepAttention.build(
        form, length=length, pos=pos, positions=torch.arange(capacity, device=dev), dtype=torch.bfloat16,
        offsets=StepAttention.offsets(batch, capacity, dev), used_k=used,
    )  # fmt: skip
    out = attention(q, keys, values)
    err = float((out.float() - _reference(q, keys, values, filled)).abs().max())
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(2):
            attention(q, keys, values)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for k, v in caches:
            attention(q, k, v)
    graph.replay()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    reps = 50
    start.record()
    for _ in range(reps):
        graph.replay()
    end.record()
    torch.cuda.synchronize()
    us = start.elapsed_time(end) * 1e3 / (reps * layers)
    return {"form": form, "batch": batch, "filled": filled, "bucket": length, "us_per_layer": us, "max_abs_err": err}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--forms", nargs="+", choices=STEP_ATTENTIONS, default=[f for f in STEP_ATTENTIONS if f != "auto"])
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--filled", type=int, nargs="+", default=[300, 700])
    ap.add_argument("--layers", type=int, default=12, help="calls per captured graph (decoder layers)")
    ap.add_argument("--capacity", type=int, default=1024, help="cache positions per row")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("bench_step_attention: needs a CUDA GPU")
        return 1
    for form in args.forms:
        for batch in args.batch:
            for filled in args.filled:
                try:
                    row = run(form, batch, filled, args.layers, 10, 128, args.capacity)
                except Exception as exc:  # a form this GPU/torch cannot run: report it, go on with the rest
                    row = {"form": form, "batch": batch, "filled": filled, "error": f"{type(exc).__name__}: {exc}"}
                print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
