"""MoE dispatch of the batch-1 graph decode step on one GPU: µs per layer and error per dispatch; prints JSON.

The decoder's MoE layers with random bf16 weights, ``--tokens`` tokens each (1 = the batch-1 decode
step: k = 6 routed experts + the shared experts). Every dispatch runs all MoE layers in one captured
CUDA graph (each layer reads its own weights, so nothing is re-read from L2 as in a one-layer loop),
replayed under CUDA events. Rows:

- ``gather``, ``grouped`` and ``fused`` (autotuned; the chosen tiles are printed) per token count:
  where the graph step should switch from ``fused`` to ``grouped``;
- at one token, ``fused`` with fixed tiles: each ``gate_up`` candidate with the ``down`` tiles autotuned, then each
  ``down`` candidate with the ``gate_up`` tiles autotuned — what the autotuner chose among.

Error: max |y − y_fp32| of layer 0 against the same layer run in fp32 by the ``loop`` dispatch.

    python benchmarks/bench_moe_kernels.py --tokens 1 2 4 8 --sweep
"""

from __future__ import annotations

import argparse
import copy
import json
from collections.abc import Callable
from typing import Any

import torch

from llm_perf_opt.models.deepseek_ocr import build_model
from llm_perf_opt.models.deepseek_ocr.mlp import MoE
from llm_perf_opt.models.deepseek_ocr.moe_triton import DOWN_TILES, GATE_UP_TILES, _kernels, fused_moe
from llm_perf_opt.specs.model_spec import MODEL_REGISTRY


def graph_us_per_layer(layers: list[Callable[[], Any]], reps: int = 50) -> float:
    """Capture every layer's call in one graph, replay ``reps`` times; µs per layer call."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(2):  # warm-up (and autotuning) outside the capture
            for call in layers:
                call()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for call in layers:
            call()
    graph.replay()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        graph.replay()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) * 1e3 / (reps * len(layers))


def _tile(spec: tuple[int, int, int]) -> dict[str, Any]:
    n, k, w = spec
    return {"BLOCK_N": n, "BLOCK_K": k, "num_warps": w}


def _best(kernel: Any) -> dict[str, Any] | None:
    cfg = getattr(kernel, "best_config", None)
    return None if cfg is None else {**cfg.kwargs, "num_warps": cfg.num_warps}


@torch.inference_mode()
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="deepseek-ocr", choices=sorted(MODEL_REGISTRY))
    ap.add_argument("--tokens", type=int, nargs="+", default=[1, 2, 4, 8], help="tokens per MoE call (decode batch)")
    ap.add_argument("--sweep", action="store_true", help="also time every candidate tile of both kernels at 1 token")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("bench_moe_kernels: needs a CUDA GPU")
        return 1
    spec = MODEL_REGISTRY[args.model]
    model = build_model(spec, device="cuda", dtype=torch.bfloat16, weights="random", seed=0)
    moes = [m for m in model.modules() if isinstance(m, MoE)]
    gen = torch.Generator(device="cuda").manual_seed(0)
    reference = copy.deepcopy(moes[0]).float()
    reference.impl = "loop"
    gate_up, down, _ = _kernels()

    def row(name: str, x: torch.Tensor, call: Callable[[MoE], Any], **extra: Any) -> None:
        extra = {"tokens": x.shape[0], **extra}
        try:
            err = float((call(moes[0]).float() - reference(x.float())).abs().max())
            us = graph_us_per_layer([lambda m=m: call(m) for m in moes])
            out: dict[str, Any] = {"dispatch": name, **extra, "us_per_layer": round(us, 2), "max_abs_err": err}
        except Exception as exc:  # a dispatch or tile this GPU cannot run: report it, go on with the rest
            out = {"dispatch": name, **extra, "error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(out), flush=True)

    for tokens in args.tokens:
        x = torch.randn(tokens, spec.decoder.hidden_size, device="cuda", dtype=torch.bfloat16, generator=gen)
        for impl in ("gather", "grouped", "fused"):
            row(impl, x, lambda m, i=impl, x=x: m(x, impl=i))
        print(json.dumps({"tokens": tokens, "autotuned": {"gate_up": _best(gate_up), "down": _best(down)}}), flush=True)
    x = torch.randn(1, spec.decoder.hidden_size, device="cuda", dtype=torch.bfloat16, generator=gen)
    row("fused", x, lambda m: m(x, impl="fused"))  # re-tunes nothing: sets best_config back to one token's
    if args.sweep:
        best_up, best_down = _best(gate_up), _best(down)

        def fixed(m: MoE, tiles: tuple[dict[str, Any], dict[str, Any]]) -> torch.Tensor:
            weights, ids = m.gate(x)
            shared = m.shared_experts
            assert shared is not None and shared.gate_up_weight is not None
            packed = (shared.gate_up_weight, shared.down_proj.weight)
            return fused_moe(x, ids, weights, m.gate_up_weight, m.down_weight, packed, tiles=tiles)

        for spec_up in GATE_UP_TILES:
            tiles = (_tile(spec_up), best_down or _tile(DOWN_TILES[0]))
            row("fused", x, lambda m, t=tiles: fixed(m, t), gate_up=tiles[0], down=tiles[1])
        for spec_down in DOWN_TILES:
            tiles = (best_up or _tile(GATE_UP_TILES[0]), _tile(spec_down))
            row("fused", x, lambda m, t=tiles: fixed(m, t), gate_up=tiles[0], down=tiles[1])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
