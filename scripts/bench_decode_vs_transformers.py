#!/usr/bin/env python3
"""Decode-step latency: our DeepSeek-OCR decoder next to transformers' native DeepseekOcr2TextModel.

DeepSeek-OCR-2 ships the same language model as DeepSeek-OCR v1 (hidden 1280, 12 layers, 10-head
MHA, dense layer 0, 64 routed experts top-6 greedy softmax without renormalisation, 2 shared
experts, vocab 129280), and transformers has it natively as ``DeepseekOcr2TextModel``. This script

1. builds our decoder (random weights, seeded) and the transformers model with the same config,
   and copies our weights into it (attention / norms / embedding by name, per-expert weights into
   its packed ``experts.gate_up_proj [E, 2I, H]`` and ``experts.down_proj [E, H, I]``);
2. checks that both give the same logits on a short sequence, full forward and token by token
   with a KV cache, first in ``--check-dtype`` (fp32 by default: a tight check of the weight
   mapping) and then in ``--dtype`` after casting both; prints the max abs differences;
3. times one decode step (batch 1, greedy, pre-drawn tokens fed to both) after prefilling C
   random tokens, for each context C and attention implementation, N steps, per-step CUDA
   events, median after warm-up. Both sides include the lm_head: transformers' TextModel has
   none, so the same [V, H] matmul on the last position is added after its final norm.

If the transformers model cannot be built, the reason is printed and stored, and ours is still timed.

Usage (repository root, no install needed: ``_gpu_common`` puts ``src`` on ``sys.path``)::

    python3 scripts/bench_decode_vs_transformers.py --out $OUT/bench_decode.json
    python3 scripts/bench_decode_vs_transformers.py --smoke --out /tmp/bench.json   # tiny, CPU, seconds
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
import traceback
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from _gpu_common import DTYPES, default_device, dtype_name, environment, log, run_guarded, sync
from torch import nn

from llm_perf_opt.models.deepseek_ocr import DeepseekOCRForCausalLM, KVCache, build_model, decode_step, new_cache
from llm_perf_opt.specs.model_spec import MODEL_REGISTRY, DecoderSpec, ModelSpec

# ---------------------------------------------------------------- the transformers model


def hf_text_config(dec: DecoderSpec, attn_impl: str) -> Any:
    """A DeepseekOcr2TextConfig with exactly our decoder's shape and routing."""
    from transformers.models.deepseek_ocr2.configuration_deepseek_ocr2 import DeepseekOcr2TextConfig

    if dec.norm_topk_prob:
        raise ValueError("DeepseekOcr2TextModel never renormalises top-k weights; our spec has norm_topk_prob=True")
    k = dec.first_k_dense_replace
    return DeepseekOcr2TextConfig(
        vocab_size=dec.vocab_size,
        hidden_size=dec.hidden_size,
        intermediate_size=dec.intermediate_size,
        num_hidden_layers=dec.num_layers,
        num_attention_heads=dec.num_heads,
        num_key_value_heads=dec.num_kv_heads,
        hidden_act="silu",
        max_position_embeddings=dec.max_position_embeddings,
        rms_norm_eps=float(dec.rms_norm_eps),
        rope_parameters={"rope_type": "default", "rope_theta": float(dec.rope_theta)},
        attention_bias=False,
        mlp_bias=False,
        tie_word_embeddings=False,
        n_routed_experts=dec.n_routed_experts,
        num_experts_per_tok=dec.num_experts_per_tok,
        n_shared_experts=dec.n_shared_experts,
        moe_intermediate_size=dec.moe_intermediate_size,
        routed_scaling_factor=float(dec.routed_scaling_factor),
        topk_method="greedy",
        mlp_layer_types=["dense"] * k + ["sparse"] * (dec.num_layers - k),
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=None,
        attn_implementation=attn_impl,
    )


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def copy_weights_into_hf(ours: DeepseekOCRForCausalLM, hf: nn.Module) -> dict[str, Any]:
    """Copy every tensor of HF's state dict from ours; routed experts are stacked into HF's packs.

    ours ``model.layers.N.mlp.experts.E.{gate,up,down}_proj.weight`` →
    HF ``layers.N.mlp.experts.gate_up_proj[E] = cat(gate, up)`` and ``down_proj[E] = down``;
    every other HF name ``x`` comes from our ``model.x``. Strict: a missing source or a shape
    mismatch raises.
    """
    src = dict(ours.state_dict())
    n_experts = ours.spec.decoder.n_routed_experts
    copied = 0
    with torch.no_grad():
        for name, dst in hf.state_dict(keep_vars=True).items():
            if name.endswith("mlp.experts.gate_up_proj"):
                prefix = "model." + name.removesuffix("gate_up_proj")
                value = torch.stack(
                    [
                        torch.cat([src[f"{prefix}{e}.gate_proj.weight"], src[f"{prefix}{e}.up_proj.weight"]])
                        for e in range(n_experts)
                    ]
                )
            elif name.endswith("mlp.experts.down_proj"):
                prefix = "model." + name.removesuffix("down_proj")
                value = torch.stack([src[f"{prefix}{e}.down_proj.weight"] for e in range(n_experts)])
            else:
                key = "model." + name
                if key not in src:
                    raise KeyError(f"no source for transformers tensor {name!r} (looked for {key!r})")
                value = src[key]
            if tuple(value.shape) != tuple(dst.shape):
                raise ValueError(f"{name}: ours {tuple(value.shape)} vs transformers {tuple(dst.shape)}")
            dst.copy_(value)
            copied += 1
    ours_decoder = [k for k in src if k.startswith(("model.embed_tokens", "model.layers.", "model.norm."))]
    return {"hf_tensors_copied": copied, "ours_decoder_tensors": len(ours_decoder)}


def build_hf(ours: DeepseekOCRForCausalLM, device: torch.device, dtype: torch.dtype, attn_impl: str) -> nn.Module:
    """DeepseekOcr2TextModel on ``device`` in ``dtype`` holding our weights (init work is overwritten)."""
    from transformers.models.deepseek_ocr2.modeling_deepseek_ocr2 import DeepseekOcr2TextModel

    config = hf_text_config(ours.spec.decoder, attn_impl)
    # Like from_pretrained: parameters in ``dtype``, RoPE inv_freq stays fp32 (built with explicit dtype).
    try:
        with default_dtype(dtype), torch.device(device):
            hf = DeepseekOcr2TextModel(config)
    except Exception as exc:  # a version that dislikes the device context: build on the CPU, then move
        log(f"building under torch.device({device}) failed ({type(exc).__name__}: {exc}); building on CPU")
        with default_dtype(dtype):
            hf = DeepseekOcr2TextModel(config)
    if any(t.device.type != device.type for t in [*hf.parameters(), *hf.buffers()]):
        hf.to(device)
    hf.eval()
    hf.requires_grad_(False)
    return hf


def cast_params_(module: nn.Module, dtype: torch.dtype) -> None:
    """Cast parameters only (buffers such as HF's fp32 RoPE inv_freq keep their dtype)."""
    with torch.no_grad():
        for p in module.parameters():
            p.data = p.data.to(dtype)


def set_hf_attn(hf: nn.Module, impl: str) -> None:
    setter = getattr(hf, "set_attn_implementation", None)
    if callable(setter):
        try:
            setter(impl)
            return
        except Exception:  # older/newer signatures: fall back to the config attribute
            pass
    hf.config._attn_implementation = impl  # type: ignore[union-attr]


def hf_experts_impl(hf: nn.Module) -> str | None:
    return getattr(hf.config, "_experts_implementation", None)  # type: ignore[union-attr]


def set_hf_experts(hf: nn.Module, impl: str) -> None:
    setter = getattr(hf, "set_experts_implementation", None)
    if callable(setter):
        try:
            setter(impl)
            return
        except Exception:
            pass
    hf.config._experts_implementation = impl  # type: ignore[union-attr]


# ---------------------------------------------------------------- one decode "engine" per model


class OursRunner:
    """Our decoder: prefill into a preallocated KVCache, then ``decode_step`` (lm_head included)."""

    label = "ours"

    def __init__(self, model: DeepseekOCRForCausalLM) -> None:
        self.model = model
        self.cache: KVCache | None = None

    @torch.inference_mode()
    def prefill(self, ids: torch.Tensor, extra_steps: int) -> torch.Tensor:
        self.cache = new_cache(self.model, ids.shape[0], ids.shape[1] + extra_steps)
        return self.model(ids, cache=self.cache, last_only=True)[:, -1]

    @torch.inference_mode()
    def step(self, token: torch.Tensor) -> torch.Tensor:
        assert self.cache is not None
        return decode_step(self.model, token, self.cache)

    @torch.inference_mode()
    def full_logits(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model(ids)

    def release(self) -> None:
        self.cache = None


class HFRunner:
    """transformers' DeepseekOcr2TextModel with its DynamicCache, plus our lm_head weight after its norm."""

    def __init__(self, model: nn.Module, lm_head_weight: torch.Tensor, label: str = "transformers") -> None:
        self.model = model
        self.lm_head_weight = lm_head_weight
        self.cache: Any = None
        self.label = label

    def _logits_last(self, hidden: torch.Tensor) -> torch.Tensor:
        return F.linear(hidden[:, -1], self.lm_head_weight)

    @torch.inference_mode()
    def prefill(self, ids: torch.Tensor, extra_steps: int) -> torch.Tensor:
        out = self.model(input_ids=ids, use_cache=True)
        self.cache = out.past_key_values
        return self._logits_last(out.last_hidden_state)

    @torch.inference_mode()
    def step(self, token: torch.Tensor) -> torch.Tensor:
        out = self.model(input_ids=token.reshape(1, 1), past_key_values=self.cache, use_cache=True)
        self.cache = out.past_key_values
        return self._logits_last(out.last_hidden_state)

    @torch.inference_mode()
    def full_logits(self, ids: torch.Tensor) -> torch.Tensor:
        hidden = self.model(input_ids=ids, use_cache=False).last_hidden_state
        return F.linear(hidden, self.lm_head_weight)

    def release(self) -> None:
        self.cache = None


Runner = OursRunner | HFRunner


# ---------------------------------------------------------------- equivalence check


def compare(a: torch.Tensor, b: torch.Tensor) -> dict[str, float]:
    a32, b32 = a.float(), b.float()
    diff = (a32 - b32).abs()
    scale = max(float(a32.abs().max()), 1e-30)
    return {
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "max_abs_logit": scale,
        "rel_max_diff": float(diff.max()) / scale,
        "argmax_agree": float((a32.argmax(-1) == b32.argmax(-1)).float().mean()),
    }


def equivalence(ours: OursRunner, hf: HFRunner, ids: torch.Tensor, cached_steps: int) -> dict[str, Any]:
    """Full-sequence logits, then prefill of T − k tokens and k cached single-token steps."""
    full = compare(ours.full_logits(ids), hf.full_logits(ids))
    t = ids.shape[1]
    k = min(cached_steps, t - 1)
    ours_steps = [ours.prefill(ids[:, : t - k], k)]
    hf_steps = [hf.prefill(ids[:, : t - k], k)]
    for j in range(t - k, t):
        ours_steps.append(ours.step(ids[:, j : j + 1]))
        hf_steps.append(hf.step(ids[:, j : j + 1]))
    ours.release()
    hf.release()
    cached = compare(torch.stack(ours_steps), torch.stack(hf_steps))
    return {"tokens": t, "cached_steps": k, "full_sequence": full, "kv_cached": cached}


# ---------------------------------------------------------------- timing


def time_steps(runner: Runner, tokens: torch.Tensor, device: torch.device) -> tuple[list[float], float]:
    """(per-step ms from CUDA events or perf_counter, wall ms per step over the whole loop)."""
    n = tokens.shape[0]
    if device.type == "cuda":
        starts = [torch.cuda.Event(enable_timing=True) for _ in range(n)]
        ends = [torch.cuda.Event(enable_timing=True) for _ in range(n)]
        sync(device)
        t0 = time.perf_counter()
        for i in range(n):
            starts[i].record()
            runner.step(tokens[i])
            ends[i].record()
        sync(device)
        wall = (time.perf_counter() - t0) * 1000.0
        return [s.elapsed_time(e) for s, e in zip(starts, ends, strict=True)], wall / n
    per: list[float] = []
    t0 = time.perf_counter()
    for i in range(n):
        a = time.perf_counter()
        runner.step(tokens[i])
        per.append((time.perf_counter() - a) * 1000.0)
    return per, (time.perf_counter() - t0) * 1000.0 / n


def bench_one(
    runner: Runner,
    context: int,
    steps: int,
    warmup_steps: int,
    vocab: int,
    device: torch.device,
    seed: int,
) -> dict[str, Any]:
    """Warm-up (prefill + a few steps, discarded), then prefill C tokens and time ``steps`` steps."""
    gen = torch.Generator().manual_seed(seed + context)
    prompt = torch.randint(3, vocab, (1, context), generator=gen).to(device)
    tokens = torch.randint(3, vocab, (max(steps, warmup_steps), 1, 1), generator=gen).to(device)
    runner.prefill(prompt, warmup_steps)
    for i in range(warmup_steps):
        runner.step(tokens[i])
    sync(device)
    runner.release()
    runner.prefill(prompt, steps)
    sync(device)
    per, wall = time_steps(runner, tokens[:steps], device)
    runner.release()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    q = statistics.quantiles(per, n=10) if len(per) >= 2 else [per[0]] * 9
    return {
        "context": context,
        "steps": steps,
        "median_ms": statistics.median(per),
        "mean_ms": statistics.fmean(per),
        "p10_ms": q[0],
        "p90_ms": q[-1],
        "min_ms": min(per),
        "wall_ms_per_step": wall,
    }


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", default="deepseek-ocr", choices=sorted(MODEL_REGISTRY), help="model spec")
    p.add_argument("--device", default=None, help="cuda (default when available) or cpu")
    p.add_argument("--dtype", default="bf16", choices=sorted(DTYPES), help="timing dtype (default bf16)")
    p.add_argument(
        "--check-dtype", default="fp32", choices=sorted(DTYPES), help="dtype of the first, tight logits check"
    )
    p.add_argument("--contexts", default="1024,4096", help="prefilled tokens before the timed steps, comma-separated")
    p.add_argument("--steps", type=int, default=128, help="timed decode steps per context")
    p.add_argument("--warmup-steps", type=int, default=16, help="untimed decode steps before each timed run")
    p.add_argument(
        "--attn",
        default="eager,sdpa",
        help="attention implementations to time, comma-separated; the first is the headline (default eager,sdpa)",
    )
    p.add_argument(
        "--hf-experts",
        default="auto,eager",
        help="transformers experts implementations to time: auto = what transformers picks (grouped_mm), eager, ...",
    )
    p.add_argument("--check-tokens", type=int, default=32, help="sequence length of the logits check")
    p.add_argument("--no-hf", action="store_true", help="time ours only")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="JSON with every number (e.g. $OUT/bench_decode.json)")
    p.add_argument("--smoke", action="store_true", help="tiny model on CPU, fp32, a few steps (seconds)")
    if p.parse_known_args(argv)[0].smoke:  # smoke defaults; explicit options still win
        p.set_defaults(
            model="tiny",
            device="cpu",
            dtype="fp32",
            check_dtype="fp32",
            contexts="16,48",
            steps=4,
            warmup_steps=2,
            check_tokens=12,
        )
    args = p.parse_args(argv)
    args.device = default_device(args.device)
    return args


def print_table(rows: list[dict[str, Any]], headline: str) -> None:
    print("\n=== decode step, batch 1, median ms/step (lm_head included on both sides) ===", flush=True)
    hdr = (
        f"{'attn':<6} {'ctx':>6} {'ours':>9} {'transformers':>13} {'tf/ours':>8} {'tf[eager-exp]':>14} {'verdict':<10}"
    )
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        hf = r.get("hf_ms")
        hfe = r.get("hf_eager_experts_ms")
        ratio = r.get("hf_over_ours")
        print(
            f"{r['attn']:<6} {r['context']:>6} {r['ours_ms']:>9.3f} "
            f"{(f'{hf:.3f}' if hf is not None else 'n/a'):>13} {(f'{ratio:.2f}x' if ratio else 'n/a'):>8} "
            f"{(f'{hfe:.3f}' if hfe is not None else 'n/a'):>14} {r['verdict']:<10}"
        )
    print(f"(headline attention: {headline}; tf/ours > 1 means ours is faster)", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    dtype, check_dtype = DTYPES[args.dtype], DTYPES[args.check_dtype]
    contexts = [int(c) for c in args.contexts.split(",") if c.strip()]
    attns = [a.strip() for a in args.attn.split(",") if a.strip()]
    hf_experts = [e.strip() for e in args.hf_experts.split(",") if e.strip()]
    spec: ModelSpec = MODEL_REGISTRY[args.model]
    result: dict[str, Any] = {
        "script": "bench_decode_vs_transformers",
        "status": "running",
        "args": vars(args),
        "env": environment(device),
        "lm_head": "included on both sides: ours via decode_step (last position); transformers' TextModel "
        "output is followed by the same F.linear with our lm_head weight",
        "kv_cache": "ours: preallocated KVCache written in place; transformers: its default DynamicCache",
        "tokens": "pre-drawn random ids fed to both (teacher forcing), so both run identical steps",
    }
    log(f"model {spec.name}, dtype {args.dtype}")
    return run_guarded(
        args, result, lambda: run(args, spec, device, dtype, check_dtype, contexts, attns, hf_experts, result)
    )


def run(
    args: argparse.Namespace,
    spec: ModelSpec,
    device: torch.device,
    dtype: torch.dtype,
    check_dtype: torch.dtype,
    contexts: list[int],
    attns: list[str],
    hf_experts: list[str],
    result: dict[str, Any],
) -> int:
    vocab = spec.decoder.vocab_size
    log(f"building ours ({spec.name}) on {device} in {dtype_name(check_dtype)}, random weights seed {args.seed}")
    ours_model = build_model(
        spec, device=device, dtype=check_dtype, weights="random", attn_impl=attns[0], seed=args.seed
    )
    ours = OursRunner(ours_model)
    hf: HFRunner | None = None
    result["hf_available"] = False
    if not args.no_hf:
        try:
            log("building transformers DeepseekOcr2TextModel with the same config")
            hf_model = build_hf(ours_model, device, check_dtype, attns[0])
            result["hf_copy"] = copy_weights_into_hf(ours_model, hf_model)
            result["hf_experts_default"] = hf_experts_impl(hf_model)
            result["hf_class"] = f"{type(hf_model).__module__}.{type(hf_model).__name__}"
            hf = HFRunner(hf_model, ours_model.lm_head.weight)
            result["hf_available"] = True
            log(
                f"copied {result['hf_copy']['hf_tensors_copied']} tensors; transformers experts implementation: "
                f"{result['hf_experts_default']}"
            )
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            result["hf_error"] = reason
            result["hf_traceback"] = traceback.format_exc()
            print(f"!! transformers DeepseekOcr2TextModel unavailable: {reason}", flush=True)
            print("!! timing ours only", flush=True)
            hf = None
        if device.type == "cuda":
            torch.cuda.empty_cache()

    checks: dict[str, Any] = {}
    ok = True
    gen = torch.Generator().manual_seed(args.seed)
    check_ids = torch.randint(3, vocab, (1, args.check_tokens), generator=gen).to(device)
    cached_steps = max(1, args.check_tokens // 4)
    # Tolerances of the "same model" verdict: relative to the largest |logit|.
    tol = {torch.float32: 1e-3, torch.float16: 5e-2, torch.bfloat16: 1e-1}
    default_experts = result.get("hf_experts_default") or "eager"

    def check(label_dtype: torch.dtype) -> None:
        """One logits check; transformers' grouped_mm experts kernel is bf16-only on CUDA, so other
        dtypes check against its eager experts loop (same math)."""
        assert hf is not None
        experts = default_experts if label_dtype == torch.bfloat16 or device.type != "cuda" else "eager"
        name = dtype_name(label_dtype)
        log(f"logits check in {name} ({args.check_tokens} tokens, {cached_steps} cached steps; tf experts {experts})")
        try:
            set_hf_experts(hf.model, experts)
            checks[name] = equivalence(ours, hf, check_ids, cached_steps)
            checks[name]["hf_experts"] = experts
        except Exception as exc:
            checks[name] = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
            print(f"!! logits check in {name} failed: {checks[name]['error']}", flush=True)
        finally:
            set_hf_experts(hf.model, default_experts)
            ours.release()
            hf.release()

    if hf is not None:
        check(check_dtype)
    if check_dtype != dtype:
        log(f"casting both models to {dtype_name(dtype)}")
        ours_model.to(dtype=dtype)
        if hf is not None:
            cast_params_(hf.model, dtype)
            hf.lm_head_weight = ours_model.lm_head.weight
        if device.type == "cuda":
            torch.cuda.empty_cache()
        if hf is not None:
            check(dtype)
    for name, c in checks.items():
        if "error" in c:
            c["pass"] = False
            ok = False
            continue
        limit = tol[DTYPES[name]]
        c["tolerance_rel"] = limit
        c["pass"] = c["full_sequence"]["rel_max_diff"] <= limit and c["kv_cached"]["rel_max_diff"] <= limit
        ok = ok and c["pass"]
        f, k = c["full_sequence"], c["kv_cached"]
        print(
            f"   {name:<9} full: max|Δ| {f['max_abs_diff']:.3e} (max|logit| {f['max_abs_logit']:.3e}, "
            f"rel {f['rel_max_diff']:.2e}, argmax agree {f['argmax_agree']:.0%}); "
            f"kv-cached: max|Δ| {k['max_abs_diff']:.3e} (rel {k['rel_max_diff']:.2e}) -> "
            f"{'PASS' if c['pass'] else 'FAIL'} (tol rel {limit:g})",
            flush=True,
        )
    result["equivalence"] = checks
    try:  # which routed-expert dispatch ours uses in the timed dtype ("grouped" = grouped_mm on CUDA bf16)
        moe = next(m for m in ours_model.modules() if hasattr(m, "resolve_impl"))
        probe = torch.empty(1, spec.decoder.hidden_size, device=device, dtype=dtype)
        result["ours_moe_impl"] = moe.resolve_impl(probe)
    except Exception as exc:
        result["ours_moe_impl"] = f"unknown ({type(exc).__name__}: {exc})"
    log(f"ours MoE dispatch: {result['ours_moe_impl']}; transformers experts default: {default_experts}")

    timings: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    result["timings"], result["summary"] = timings, rows  # filled as we go: a crash keeps what finished
    for attn in attns:
        ours_model.set_attn_impl(attn)
        if hf is not None:
            set_hf_attn(hf.model, attn)
        for ctx in contexts:
            row: dict[str, Any] = {"attn": attn, "context": ctx}
            r = bench_one(ours, ctx, args.steps, args.warmup_steps, vocab, device, args.seed)
            timings.append({"impl": "ours", "attn": attn, **r})
            row["ours_ms"] = r["median_ms"]
            log(f"{attn:<5} ctx {ctx:>5}  {'ours':<34} {r['median_ms']:.3f} ms/step (wall {r['wall_ms_per_step']:.3f})")
            if hf is not None:
                for experts in hf_experts:
                    impl = default_experts if experts == "auto" else experts
                    label = f"transformers[experts={impl}]"
                    try:
                        set_hf_experts(hf.model, impl)
                        r = bench_one(hf, ctx, args.steps, args.warmup_steps, vocab, device, args.seed)
                    except Exception as exc:
                        log(f"{attn:<5} ctx {ctx:>5}  {label}: FAILED {type(exc).__name__}: {exc}")
                        timings.append({"impl": label, "attn": attn, "context": ctx, "error": f"{exc}"})
                        hf.release()
                        continue
                    finally:
                        set_hf_experts(hf.model, default_experts)
                    timings.append({"impl": label, "attn": attn, **r})
                    log(
                        f"{attn:<5} ctx {ctx:>5}  {label:<34} {r['median_ms']:.3f} ms/step "
                        f"(wall {r['wall_ms_per_step']:.3f})"
                    )
                    if experts == "auto":
                        row["hf_ms"] = r["median_ms"]
                    elif impl == "eager":
                        row["hf_eager_experts_ms"] = r["median_ms"]
            if row.get("hf_ms"):
                row["hf_over_ours"] = row["hf_ms"] / row["ours_ms"]
                row["verdict"] = "ours>=tf" if row["ours_ms"] <= row["hf_ms"] else "OURS SLOWER"
            else:
                row["verdict"] = "no tf"
            rows.append(row)
    print_table(rows, attns[0])
    slower = [r for r in rows if r["verdict"] == "OURS SLOWER"]
    if slower:
        print(f"!! ours slower than transformers in {len(slower)} of {len(rows)} cases", flush=True)
    if hf is None and not args.no_hf:
        print(f"!! transformers not timed: {result.get('hf_error')}", flush=True)
    return 0 if ok else 2


if __name__ == "__main__":
    sys.exit(main())
