"""``experiment decode-vs-hf``: our eager decode step next to transformers' DeepseekOcr2TextModel.

1. Build our decoder (random weights, seeded) and transformers' model with the same config and our
   weights (:mod:`.hf_decoder`).
2. Check both give the same logits on a short sequence, full forward and token by token with a KV
   cache: first in ``check_dtype`` (fp32: a tight check of the weight mapping), then in ``dtype``.
3. Time one decode step at batch 1 after prefilling C random tokens, for each context C and
   attention implementation: ``steps`` steps of pre-drawn tokens fed to both (teacher forcing), each
   step one opening of a :class:`~llm_perf_opt.profiling.timers.StageClock` range (CUDA events, one
   synchronize at the first opening), after ``warmup_steps`` untimed steps. lm_head included on
   both sides. transformers' experts run in its default implementation and in ``eager``.

If transformers' model cannot be built, the reason is stored and ours is still timed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
from attrs import define

from llm_perf_opt.errors import UserError
from llm_perf_opt.experiments.common import Log, describe_error, quiet, write_json

RESULT_FILE = "decode_vs_hf.json"
TOLERANCE = {"fp32": 1e-3, "fp16": 5e-2, "bf16": 1e-1}
"""Largest |Δ logit| relative to the largest |logit| for "the same model", per dtype."""


@define(kw_only=True)
class DecodeVsHFConfig:
    """What ``experiment decode-vs-hf`` runs (CLI flags map one to one)."""

    model: str = "deepseek-ocr"
    """Model spec id (random weights)."""
    device: str | None = None
    """``cuda:N`` or ``cpu``; None = CUDA when available."""
    dtype: str | None = None
    """Timing dtype; None = bf16 on CUDA, fp32 on CPU."""
    check_dtype: str = "fp32"
    """dtype of the first, tight logits check."""
    contexts: tuple[int, ...] = (1024, 4096)
    """Prefilled tokens before the timed steps."""
    steps: int = 128
    """Timed decode steps per context."""
    warmup_steps: int = 16
    """Untimed steps before each timed run."""
    attn: tuple[str, ...] = ("eager", "sdpa")
    """Attention implementations to time (the first is the headline)."""
    hf_experts: tuple[str, ...] = ("auto", "eager")
    """transformers experts implementations: auto = its default (grouped_mm), eager, …"""
    check_tokens: int = 32
    """Sequence length of the logits check."""
    no_hf: bool = False
    """Time ours only."""
    seed: int = 0
    """Seed of the weights and the token ids."""
    out: Path | None = None
    """Directory for decode_vs_hf.json (None: nothing written)."""


def run_decode_vs_hf(cfg: DecodeVsHFConfig, log: Log = quiet) -> dict[str, Any]:
    """Check, then time; the result is written under ``cfg.out`` (also after a crash) and returned."""
    from llm_perf_opt.profiling.env import DTYPE_NAMES, capture_environment, resolve_device, resolve_dtype

    if cfg.steps < 1 or cfg.warmup_steps < 0 or cfg.check_tokens < 2 or not cfg.contexts or min(cfg.contexts) < 1:
        raise UserError("--steps ≥ 1, --warmup-steps ≥ 0, --check-tokens ≥ 2 and positive --contexts are required")
    if cfg.check_dtype not in DTYPE_NAMES:
        raise UserError(f"--check-dtype {cfg.check_dtype!r}: valid: {', '.join(DTYPE_NAMES)}")
    device = resolve_device(cfg.device)
    dtype = resolve_dtype(cfg.dtype, device)
    result: dict[str, Any] = {
        "schema": "llm-perf-opt.decode-vs-hf/1", "status": "running",
        "config": attrs.asdict(cfg, value_serializer=lambda _i, _a, v: str(v) if isinstance(v, Path) else v),
        "env": capture_environment(device, seed=cfg.seed, extra={"dtype": dtype}),
        "ours": "eager decode_step over our preallocated KVCache; transformers: its DynamicCache",
        "lm_head": "included on both sides (transformers' TextModel output → our lm_head weight)",
    }
    try:
        _run(cfg, device, dtype, result, log)
        checks = result.get("equivalence", {}).values()
        result["status"] = "ok" if all(c.get("pass") for c in checks) else "check_failed"
    except Exception as exc:
        result["status"] = f"error: {describe_error(exc)}"
        raise
    finally:
        if cfg.out is not None:
            write_json(cfg.out / RESULT_FILE, result)
    return result


def _run(cfg: DecodeVsHFConfig, device: Any, dtype: str, result: dict[str, Any], log: Log) -> None:
    import torch

    from llm_perf_opt.experiments import hf_decoder as hd
    from llm_perf_opt.models.deepseek_ocr import build_model
    from llm_perf_opt.profiling.env import DTYPE_NAMES
    from llm_perf_opt.specs.loader import load_model_spec

    spec = load_model_spec(cfg.model)
    ours_model = build_model(spec, device=device, dtype=DTYPE_NAMES[cfg.check_dtype], weights="random",
                             attn_impl=cfg.attn[0], seed=cfg.seed)
    ours, hf = hd.OursRunner(ours_model), None
    if not cfg.no_hf:
        try:
            hf = hd.HFRunner(hd.build_hf(ours_model, device, DTYPE_NAMES[cfg.check_dtype], cfg.attn[0]),
                             ours_model.lm_head.weight)
            result["hf_experts_default"] = hd.hf_experts_impl(hf.model)
        except Exception as exc:
            result["hf_error"] = describe_error(exc)
            log(f"transformers DeepseekOcr2TextModel unavailable: {result['hf_error']}; timing ours only")
    default_experts = result.get("hf_experts_default") or "eager"
    gen = torch.Generator().manual_seed(cfg.seed)
    ids = torch.randint(3, spec.decoder.vocab_size, (1, cfg.check_tokens), generator=gen).to(device)
    result["equivalence"] = checks = {}
    for name in dict.fromkeys((cfg.check_dtype, dtype)):
        if name != cfg.check_dtype:
            ours_model.to(dtype=DTYPE_NAMES[name])
            if hf is not None:
                hd.cast_params_(hf.model, DTYPE_NAMES[name])
                hf.lm_head_weight = ours_model.lm_head.weight
        if hf is None:
            continue
        # transformers' grouped_mm experts kernel is bf16-only on CUDA: other dtypes check its eager loop.
        experts = default_experts if name == "bf16" or device.type != "cuda" else "eager"
        hd.set_hf_experts(hf.model, experts)
        try:
            c = hd.equivalence(ours, hf, ids, max(1, cfg.check_tokens // 4))
            c["pass"] = max(c["full_sequence"]["rel_max_diff"], c["kv_cached"]["rel_max_diff"]) <= TOLERANCE[name]
            c.update(hf_experts=experts, tolerance_rel=TOLERANCE[name])
        except Exception as exc:
            c = {"error": describe_error(exc), "pass": False}
        finally:
            hd.set_hf_experts(hf.model, default_experts)
        checks[name] = c
        detail = f"rel max |Δ| {c['full_sequence']['rel_max_diff']:.2e}" if "full_sequence" in c else c.get("error")
        log(f"logits check {name}: {'PASS' if c['pass'] else 'FAIL'} ({detail})")
    result["timings"] = timings = []
    for attn in cfg.attn:
        ours_model.set_attn_impl(attn)
        if hf is not None:
            hd.set_hf_attn(hf.model, attn)
        for ctx in cfg.contexts:
            row: dict[str, Any] = {"attn": attn, "context": ctx, "ours_ms": _time(cfg, ours, ctx, spec, device)}
            for experts in cfg.hf_experts if hf is not None else ():
                impl = default_experts if experts == "auto" else experts
                assert hf is not None
                try:
                    hd.set_hf_experts(hf.model, impl)
                    row[f"hf[{experts}]_ms"] = _time(cfg, hf, ctx, spec, device)
                except Exception as exc:
                    row[f"hf[{experts}]_error"] = describe_error(exc)
                    hf.release()
                finally:
                    hd.set_hf_experts(hf.model, default_experts)
            if row.get("hf[auto]_ms"):
                row["hf_over_ours"] = row["hf[auto]_ms"] / row["ours_ms"]
            timings.append(row)
            log(f"{attn} ctx {ctx}: ours {row['ours_ms']:.3f} ms/step"
                + (f", transformers {row['hf[auto]_ms']:.3f}" if "hf[auto]_ms" in row else ""))


def _time(cfg: DecodeVsHFConfig, runner: Any, context: int, spec: Any, device: Any) -> float:
    """Mean ms of one decode step after prefilling ``context`` tokens (warm-up run discarded)."""
    import torch

    from llm_perf_opt.profiling.timers import StageClock

    gen = torch.Generator().manual_seed(cfg.seed + context)
    prompt = torch.randint(3, spec.decoder.vocab_size, (1, context), generator=gen).to(device)
    tokens = torch.randint(3, spec.decoder.vocab_size, (max(cfg.steps, cfg.warmup_steps), 1, 1), generator=gen)
    tokens = tokens.to(device)
    runner.prefill(prompt, cfg.warmup_steps)
    for i in range(cfg.warmup_steps):
        runner.step(tokens[i])
    runner.release()
    runner.prefill(prompt, cfg.steps)
    clock = StageClock(device)
    clock.start()
    for i in range(cfg.steps):
        with clock.ranges("step"):
            runner.step(tokens[i])
    clock.stop()
    runner.release()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    step = clock.timings()["step"]
    return step.sum_ms / step.count


def render_table(result: dict[str, Any]) -> str:
    """Markdown: ms per decode step, ours vs transformers, per attention and context."""
    from llm_perf_opt.reporting.text import table

    rows = []
    for r in result.get("timings", []):
        hf, hfe = r.get("hf[auto]_ms"), r.get("hf[eager]_ms")
        rows.append([r["attn"], str(r["context"]), f"{r['ours_ms']:.3f}", f"{hf:.3f}" if hf else "n/a",
                     f"{r['hf_over_ours']:.2f}x" if r.get("hf_over_ours") else "n/a", f"{hfe:.3f}" if hfe else "n/a"])
    checks = ", ".join(f"{k} {'PASS' if c.get('pass') else 'FAIL'}" for k, c in result.get("equivalence", {}).items())
    head = (f"Decode step, batch 1, mean ms/step (lm_head on both sides; ours: eager decode_step) on "
            f"{result['env'].get('device_name')}; logits checks: {checks or 'none'}"
            + (f"; transformers unavailable: {result['hf_error']}" if result.get("hf_error") else ""))
    return "\n".join([head, "", table(["attn", "context", "ours", "transformers", "tf/ours", "tf (eager experts)"],
                                      rows)])
