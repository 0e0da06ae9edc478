"""Decode ms/token, graph vs eager, on one GPU (or the tiny model on CPU, eager only); prints JSON.

For each batch size: warm-up generations (graph capture happens there, reported, not timed), then
``--repeats`` timed generations of ``--tokens`` tokens; decode time is the "decode" range of the
package's :class:`~llm_perf_opt.profiling.timers.StageClock` (CUDA events, synchronised at stage
boundaries) divided by the number of decode steps. Also: graph tokens equal eager tokens (greedy,
same weights), kernels per decode step counted by torch.profiler over a window of steps, and
decode time against the HBM roofline (weights read per step + KV bytes at the mean length).

    python benchmarks/bench_decode_modes.py --model deepseek-ocr --batch 1 8 32 --tokens 257
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from typing import Any

import torch
from bench_decode_kernels import (  # the one kernel census: a sibling script, on sys.path as the script dir
    busy_us_per_step,
    census,
    kernels_per_step,
)

from llm_perf_opt.models.deepseek_ocr import (
    MOE_IMPLS,
    build_inputs,
    build_model,
    decode_step,
    generate,
    new_cache,
    prefill,
    prepare_page,
)
from llm_perf_opt.models.deepseek_ocr.static_decode import StaticDecoder
from llm_perf_opt.models.deepseek_ocr.step_attention import STEP_ATTENTIONS
from llm_perf_opt.profiling.synthetic import synthetic_page
from llm_perf_opt.profiling.timers import StageClock
from llm_perf_opt.specs.image_tokens import resolution_mode
from llm_perf_opt.specs.model_spec import MODEL_REGISTRY

VARIANTS = ("graph", "eager")


def _decode_ms_per_token(model: Any, inputs: Any, tokens: int, variant: str) -> tuple[float, Any]:
    mode = variant
    clock = StageClock(model.device)
    clock.start()
    result = generate(
        model, inputs, max_new_tokens=tokens, min_new_tokens=tokens, decode_mode=mode, ranges=clock.ranges
    )
    clock.stop()
    return clock.timings()["decode"].sum_ms / max(tokens - 1, 1), result


@torch.inference_mode()
def _agreement(model: Any, inputs: Any, tokens: int) -> dict[str, Any]:
    """Graph replay vs the same static step uncaptured (must be identical), and vs dynamic eager.

    Teacher-forced: every path is fed the dynamic eager path's tokens, so one early argmax flip
    (bf16 rounding differs between masked-bucket and exact-length attention) does not derail the rest.
    """
    batch, eos = inputs.batch_size, model.spec.eos_token_id
    max_len = inputs.prompt_len + tokens
    dyn = new_cache(model, batch, max_len)
    replay = StaticDecoder(model, batch=batch, capacity=max_len, attention=model.step_attention)
    plain = StaticDecoder(model, batch=batch, capacity=max_len, use_graphs=False, attention=model.step_attention)
    replay.capture()
    staged = inputs.to(model.device, model.dtype)
    ids = prefill(model, staged, dyn).argmax(-1)
    prefill(model, staged, replay.cache), prefill(model, staged, plain.cache)
    same_argmax = identical = 0
    worst = 0.0
    for _ in range(tokens - 1):
        want = decode_step(model, ids, dyn).float()
        got = replay.step(ids).float()
        ref = plain.step(ids).float()
        identical += int(torch.equal(got, ref))
        same_argmax += int(torch.equal(got.argmax(-1), want.argmax(-1)))
        worst = max(worst, float((got - want).abs().max() / want.abs().max()))
        want[:, eos] = float("-inf")
        ids = want.argmax(-1)
    return {
        "batch": batch,
        "steps": tokens - 1,
        "replay_identical_to_uncaptured_steps": identical,
        "argmax_agrees_with_dynamic_eager_steps": same_argmax,
        "max_rel_logit_diff_vs_eager": worst,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="deepseek-ocr", choices=sorted(MODEL_REGISTRY))
    ap.add_argument("--mode", default="base", help="resolution mode of the synthetic page")
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--tokens", type=int, default=257, help="new tokens per row (decode steps = tokens − 1)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--bandwidth-tbs", type=float, default=4.8, help="peak HBM TB/s (1e12 B/s) for the roofline")
    ap.add_argument(
        "--variants",
        nargs="+",
        default=None,
        choices=sorted(VARIANTS),
        help="decode modes [default: graph eager on CUDA, eager on CPU]",
    )
    ap.add_argument("--moe-impl", default="auto", choices=MOE_IMPLS, help="routed-expert dispatch (see MoE)")
    ap.add_argument("--step-attention", default="auto", choices=STEP_ATTENTIONS, help="graph step attention form")
    ap.add_argument("--check-batch", type=int, nargs="*", default=[1], help="batch sizes for the agreement check")
    args = ap.parse_args(argv)
    cuda = torch.cuda.is_available()
    device, dtype = ("cuda", torch.bfloat16) if cuda else ("cpu", torch.float32)
    modes = args.variants or (["graph", "eager"] if cuda else ["eager"])
    spec = MODEL_REGISTRY[args.model]
    model = build_model(spec, device=device, dtype=dtype, weights="random", seed=0)
    model.set_moe_impl(args.moe_impl)
    model.set_step_attention(args.step_attention)
    page = prepare_page(synthetic_page("mixed_layout"), resolution_mode(args.mode))
    dec = spec.decoder
    kv_per_token = 2 * dec.num_layers * dec.num_kv_heads * dec.head_dim * (2 if cuda else 4)
    out: dict[str, Any] = {
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "torch": torch.__version__,
        "model": args.model,
        "mode": args.mode,
        "tokens": args.tokens,
        "moe_impl": args.moe_impl,
        "step_attention": args.step_attention,
        "rows": [],
    }
    for batch in args.batch:
        inputs = build_inputs(spec, [page] * batch)
        for mode in modes:
            ms, first = _decode_ms_per_token(model, inputs, args.tokens, mode)  # warm-up (+ capture)
            capture_s = first.capture_seconds
            runs = []
            for _ in range(args.repeats):
                ms, _ = _decode_ms_per_token(model, inputs, args.tokens, mode)
                runs.append(ms)
            mean = statistics.fmean(runs)
            std = statistics.stdev(runs) if len(runs) > 1 else 0.0
            # Bytes per step: weights the step reads (measured decode roofline uses the analytic model
            # elsewhere; here: every parameter the step touches ≈ dense + shared + routed experts hit).
            mean_len = inputs.prompt_len + args.tokens / 2
            kv_bytes = kv_per_token * batch * mean_len
            row = {
                "batch": batch,
                "variant": mode,
                "ms_per_step": mean,
                "std_ms": std,
                "spread_pct": 100 * std / mean,
                "runs_ms": runs,
                "capture_s": capture_s,
                "prompt_len": inputs.prompt_len,
                "kv_bytes_per_step_mean": kv_bytes,
            }
            if cuda:
                by_name = census(model, inputs, mode, 16)
                row["kernels_per_step"] = kernels_per_step(by_name)
                row["kernel_us_per_step"] = busy_us_per_step(by_name)
            out["rows"].append(row)
            print(json.dumps(row), flush=True)
        if cuda and batch in args.check_batch:
            out["rows"].append(_agreement(model, inputs, args.tokens))
            print(json.dumps(out["rows"][-1]), flush=True)
    json.dump(out, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
