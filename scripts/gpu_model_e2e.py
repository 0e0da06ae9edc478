#!/usr/bin/env python3
"""End-to-end timing of the runnable DeepSeek-OCR on one GPU, next to the analytic prediction.

The full-size ``deepseek-ocr`` model is built with random weights directly on the device in
``--dtype`` (bf16; no fp32 or CPU copy), SDPA attention. A synthetic A4 page (1654×2339 px, drawn
with Pillow: text lines, a table, a figure) goes through the official Gundam preprocessing
(global 1024 view + 2×3 tiles of 640 → 903 image-token slots) and greedy generation of exactly
``--new-tokens`` tokens (min_new_tokens = max_new_tokens, so random weights cannot stop early).

One warm-up call (not counted), then ``--runs`` timed calls. Stage times come from the model's
``ranges`` hook: a device synchronize plus a CUDA event at every boundary of
prefill ⊃ vision ⊃ (sam, clip, projector), then decode. Per run: stage ms, decode ms per step,
peak allocated memory (reset per run) and the KV-cache bytes. The analytic model
(``llm_perf_opt.analytic.api.stage_totals``) predicts the same workload on ``--hardware``
(``h100-sxm``) and the table shows measured vs predicted per stage with the ratio.

Usage (repository root, no install needed: ``_gpu_common`` puts ``src`` on ``sys.path``)::

    python3 scripts/gpu_model_e2e.py --out $OUT/e2e.json
    python3 scripts/gpu_model_e2e.py --smoke --out /tmp/e2e.json    # tiny model on CPU, seconds
"""

from __future__ import annotations

import argparse
import contextlib
import math
import random
import statistics
import sys
import time
import traceback
from collections.abc import Iterator
from typing import Any

import torch
from _gpu_common import DTYPES, GIB, default_device, environment, log, run_guarded, sync
from PIL import Image, ImageDraw, ImageFont

from llm_perf_opt.hardware.table import hardware_for_cuda_name, load_hardware
from llm_perf_opt.models.deepseek_ocr import build_inputs, build_model, generate, prepare_page
from llm_perf_opt.specs.image_tokens import resolution_mode
from llm_perf_opt.specs.model_spec import MODEL_REGISTRY, ModelSpec
from llm_perf_opt.specs.workload import Workload, parse_page_size

ANALYTIC_DTYPE = {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "fp32"}
STAGE_NAMES = ("prefill", "vision", "sam", "clip", "projector", "decode")
GB = 1e9
EXPECTED_A4_GUNDAM_SLOTS = 903
"""Reference §5.4/§5.5: an A4 page at 200 dpi in Gundam mode → 2×3 tiles → 273 + 21·30 = 903."""


# ---------------------------------------------------------------- synthetic page


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font
        return ImageFont.load_default()


def synthetic_page(width: int, height: int, seed: int = 0) -> Image.Image:
    """A deterministic document-like RGB page: title, paragraphs, a ruled table and a figure."""
    rng = random.Random(seed)
    page = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(page)
    margin = max(width // 12, 4)
    line_h = max(height // 60, 6)
    body, title = _font(max(line_h * 2 // 3, 6)), _font(max(line_h, 8))
    letters = "abcdefghijklmnopqrstuvwxyz"

    def words(n: int) -> str:
        return " ".join("".join(rng.choice(letters) for _ in range(rng.randint(2, 9))) for _ in range(n))

    y = margin
    draw.text((margin, y), "Synthetic page " + words(3).title(), fill=(0, 0, 0), font=title)
    y += 2 * line_h
    section = 0
    while y < height - margin - line_h:
        section += 1
        if section % 4 == 2 and y + 10 * line_h < height - margin:  # a ruled table
            rows, cols = 6, 4
            cw, top = (width - 2 * margin) // cols, y
            for r in range(rows + 1):
                draw.line([(margin, top + r * line_h), (margin + cols * cw, top + r * line_h)], fill=(0, 0, 0), width=2)
            for c in range(cols + 1):
                draw.line([(margin + c * cw, top), (margin + c * cw, top + rows * line_h)], fill=(0, 0, 0), width=2)
            for r in range(rows):
                for c in range(cols):
                    draw.text((margin + c * cw + 6, top + r * line_h + 4), words(1), fill=(20, 20, 20), font=body)
            y = top + (rows + 1) * line_h
        elif section % 4 == 0 and y + 12 * line_h < height - margin:  # a figure: box with a curve
            left, top, right, bottom = margin, y, width - margin, y + 10 * line_h
            draw.rectangle([left, top, right, bottom], outline=(0, 0, 0), width=3)
            pts = [
                (left + i * (right - left) / 50, (top + bottom) / 2 + (bottom - top) / 3 * math.sin(i / 5.0 + seed))
                for i in range(51)
            ]
            draw.line(pts, fill=(30, 60, 200), width=4)
            y = bottom + line_h
        else:  # a paragraph
            for _ in range(rng.randint(3, 8)):
                if y >= height - margin - line_h:
                    break
                draw.text((margin, y), words(rng.randint(6, 12)), fill=(0, 0, 0), font=body)
                y += line_h
            y += line_h // 2
    return page


# ---------------------------------------------------------------- stage timing


class StageTimer:
    """``ranges`` hook: synchronize + mark at each boundary; CUDA events on a GPU, perf_counter on CPU."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cuda = device.type == "cuda"
        self.spans: dict[str, list[tuple[Any, Any]]] = {}

    def _mark(self) -> Any:
        if self.cuda:
            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            return ev
        return time.perf_counter()

    def _ms(self, a: Any, b: Any) -> float:
        return float(a.elapsed_time(b)) if self.cuda else (b - a) * 1000.0

    @contextlib.contextmanager
    def ranges(self, name: str) -> Iterator[None]:
        sync(self.device)
        start = self._mark()
        try:
            yield
        finally:
            end = self._mark()
            sync(self.device)
            self.spans.setdefault(name, []).append((start, end))

    @contextlib.contextmanager
    def total(self) -> Iterator[None]:
        with self.ranges("total"):
            yield

    def ms(self) -> dict[str, float]:
        return {name: sum(self._ms(a, b) for a, b in spans) for name, spans in self.spans.items()}


def run_once(model: Any, inputs: Any, new_tokens: int, device: torch.device) -> tuple[dict[str, Any], Any]:
    """One generation call: stage ms, wall ms, peak memory, tokens, KV-cache bytes."""
    timer = StageTimer(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    with timer.total():
        result = generate(model, inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, ranges=timer.ranges)
    wall = (time.perf_counter() - t0) * 1000.0
    ms = timer.ms()
    steps = max(result.num_new_tokens - 1, 0)
    rec: dict[str, Any] = {
        "total_ms": ms.get("total"),
        "wall_ms": wall,
        "stages_ms": {k: ms.get(k) for k in STAGE_NAMES},
        "new_tokens": result.num_new_tokens,
        "decode_steps": steps,
        "prompt_len": result.prompt_len,
        "cache_len": result.cache_len,
        "kv_cache_bytes": result.kv_cache_bytes,
    }
    st = rec["stages_ms"]
    if st.get("prefill") is not None and st.get("vision") is not None:
        rec["decoder_prefill_ms"] = st["prefill"] - st["vision"]
    if all(st.get(k) is not None for k in ("vision", "sam", "clip", "projector")):
        rec["vision_other_ms"] = st["vision"] - st["sam"] - st["clip"] - st["projector"]
    if st.get("decode") is not None and steps:
        rec["decode_ms_per_step"] = st["decode"] / steps
        rec["decode_tokens_per_s"] = 1000.0 * steps / st["decode"]
    if device.type == "cuda":
        rec["peak_allocated_bytes"] = int(torch.cuda.max_memory_allocated(device))
        rec["peak_reserved_bytes"] = int(torch.cuda.max_memory_reserved(device))
    return rec, result


def values_of(runs: list[dict[str, Any]], path: tuple[str, ...]) -> list[float]:
    """The numbers at ``path`` (nested keys) in every run record that has one."""
    vals = []
    for r in runs:
        v: Any = r
        for key in path:
            v = v.get(key) if isinstance(v, dict) else None
        if isinstance(v, (int, float)):
            vals.append(float(v))
    return vals


def median_of(runs: list[dict[str, Any]], path: tuple[str, ...]) -> float | None:
    vals = values_of(runs, path)
    return statistics.median(vals) if vals else None


# ---------------------------------------------------------------- analytic side


def analytic_prediction(spec: ModelSpec, workload: Workload, hardware_id: str, precision: str) -> dict[str, Any]:
    """Stage totals (+ SAM / CLIP split and memory summary when available) for ``workload``."""
    from attrs import asdict

    from llm_perf_opt.analytic.api import build_layer_tree, stage_totals
    from llm_perf_opt.analytic.roofline import Roofline, RooflineParams

    hw = load_hardware(hardware_id)
    params = RooflineParams()
    out: dict[str, Any] = {"hardware": asdict(hw), "precision": precision, "roofline_params": asdict(params)}
    totals = stage_totals(spec, workload, precision=precision, hardware=hw, params=params)
    out["stages"] = {name: asdict(t) for name, t in totals.items()}
    try:  # SAM and CLIP inside the vision stage: walk the layer tree for their sub-trees
        tree = build_layer_tree(spec, workload, precision)
        roof = Roofline(hw, params, precision)
        parts = {"sam_model": [0.0, 0.0], "vision_model": [0.0, 0.0]}

        def walk(layer: Any, mult: float) -> None:
            for child in layer.children():
                n = mult * child.count
                if child.name in parts:
                    parts[child.name][0] += n * roof.time(child.layer).total_s * 1000.0
                    parts[child.name][1] += n * child.layer.cost().flops / 1e12
                else:
                    walk(child.layer, n)

        walk(tree["vision"], 1.0)
        out["sam"] = {"predicted_ms": parts["sam_model"][0], "flops_tflops": parts["sam_model"][1]}
        out["clip"] = {"predicted_ms": parts["vision_model"][0], "flops_tflops": parts["vision_model"][1]}
    except Exception as exc:
        out["sub_stage_error"] = f"{type(exc).__name__}: {exc}"
    try:
        from llm_perf_opt.analytic.api import build_report

        report = build_report(spec, workload, hw, params=params, precision=precision)
        out["memory"] = asdict(report.memory)
        out["predicted_total_time_ms"] = report.predicted_total_time_ms
    except Exception as exc:
        out["memory_error"] = f"{type(exc).__name__}: {exc}"
    return out


def comparison_rows(runs: list[dict[str, Any]], analytic: dict[str, Any], decode_steps: int) -> list[dict[str, Any]]:
    """Measured (median over runs, with min/max) next to the analytic prediction, one row per stage."""
    st = analytic.get("stages", {})

    def total(field: str, *names: str) -> float | None:
        vals = [st.get(n, {}).get(field) for n in names]
        return sum(vals) if vals and all(v is not None for v in vals) else None

    def sub(name: str, field: str) -> float | None:
        return analytic.get(name, {}).get(field)

    decode_pred = total("predicted_ms", "decode")
    everything = ("vision", "projector", "prefill", "decode")
    # label, measured path in a run record, predicted ms, analytic TFLOPs, analytic bound
    spec: list[tuple[str, tuple[str, ...], float | None, float | None, str | None]] = [
        ("sam", ("stages_ms", "sam"), sub("sam", "predicted_ms"), sub("sam", "flops_tflops"), None),
        ("clip", ("stages_ms", "clip"), sub("clip", "predicted_ms"), sub("clip", "flops_tflops"), None),
        (
            "projector",
            ("stages_ms", "projector"),
            total("predicted_ms", "projector"),
            total("flops_tflops", "projector"),
            st.get("projector", {}).get("bound"),
        ),
        (
            "vision (sam+clip+proj+assembly)",
            ("stages_ms", "vision"),
            total("predicted_ms", "vision", "projector"),
            total("flops_tflops", "vision", "projector"),
            st.get("vision", {}).get("bound"),
        ),
        (
            "prefill, decoder only",
            ("decoder_prefill_ms",),
            total("predicted_ms", "prefill"),
            total("flops_tflops", "prefill"),
            st.get("prefill", {}).get("bound"),
        ),
        (
            "prefill incl. vision",
            ("stages_ms", "prefill"),
            total("predicted_ms", "vision", "projector", "prefill"),
            total("flops_tflops", "vision", "projector", "prefill"),
            None,
        ),
        (
            f"decode total ({decode_steps} steps)",
            ("stages_ms", "decode"),
            decode_pred,
            total("flops_tflops", "decode"),
            st.get("decode", {}).get("bound"),
        ),
        (
            "decode per step",
            ("decode_ms_per_step",),
            decode_pred / decode_steps if decode_pred is not None and decode_steps else None,
            None,
            None,
        ),
        (
            "total (generate call)",
            ("total_ms",),
            total("predicted_ms", *everything),
            total("flops_tflops", *everything),
            None,
        ),
    ]
    out = []
    for label, path, predicted, tflops, bound in spec:
        values = values_of(runs, path)
        measured = statistics.median(values) if values else None
        row: dict[str, Any] = {
            "stage": label,
            "measured_ms": measured,
            "measured_min_ms": min(values) if values else None,
            "measured_max_ms": max(values) if values else None,
            "predicted_ms": predicted,
            "bound": bound,
        }
        if measured and predicted is not None:
            row["pred_over_meas"] = predicted / measured
        if measured and tflops is not None:
            row["flops_tflops"] = tflops
            row["achieved_tflops_per_s"] = tflops / (measured / 1000.0)
        out.append(row)
    return out


def _f(v: float | None, fmt: str) -> str:
    return format(v, fmt) if v is not None else "n/a"


def print_table(rows: list[dict[str, Any]], title: str) -> None:
    print(f"\n=== {title} ===", flush=True)
    hdr = (
        f"{'stage':<32} {'measured ms':>12} {'spread':>7} {'predicted ms':>13} {'pred/meas':>9} "
        f"{'TFLOP/s':>8} {'bound':<8}"
    )
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        lo, hi, med = r.get("measured_min_ms"), r.get("measured_max_ms"), r.get("measured_ms")
        spread = f"{(hi - lo) / med:.1%}" if med and lo is not None and hi is not None else "n/a"
        print(
            f"{r['stage']:<32} {_f(med, '.3f'):>12} {spread:>7} {_f(r['predicted_ms'], '.3f'):>13} "
            f"{_f(r.get('pred_over_meas'), '.2f'):>9} {_f(r.get('achieved_tflops_per_s'), '.1f'):>8} "
            f"{r.get('bound') or '':<8}",
            flush=True,
        )
    print("spread = (max − min) / median over the timed runs; TFLOP/s = analytic FLOPs / measured time", flush=True)


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="deepseek-ocr", choices=sorted(MODEL_REGISTRY), help="model spec")
    p.add_argument("--device", default=None, help="cuda (default when available) or cpu")
    p.add_argument("--dtype", default="bf16", choices=sorted(DTYPES))
    p.add_argument("--attn", default="sdpa", choices=("sdpa", "eager"))
    p.add_argument("--mode", default="gundam", help="resolution mode (tiny, small, base, large, gundam)")
    p.add_argument("--page", default="1654x2339", help="synthetic page size WxH in px (A4 at 200 dpi)")
    p.add_argument("--max-crops", type=int, default=9, help="most tiles per page (9: HF infer(); 6: vLLM)")
    p.add_argument("--new-tokens", type=int, default=256, help="generated tokens (min = max, exactly this many)")
    p.add_argument("--warmup", type=int, default=1, help="untimed generation calls first")
    p.add_argument("--runs", type=int, default=3, help="timed generation calls")
    p.add_argument("--hardware", default="h100-sxm", help="hardware-table id for the analytic prediction")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="JSON with every number (e.g. $OUT/e2e.json)")
    p.add_argument("--smoke", action="store_true", help="tiny model on CPU, fp32, 4 tokens (seconds)")
    if p.parse_known_args(argv)[0].smoke:  # smoke defaults; explicit options still win
        p.set_defaults(model="tiny", device="cpu", dtype="fp32", new_tokens=4, warmup=1, runs=1)
    args = p.parse_args(argv)
    args.device = default_device(args.device)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    result: dict[str, Any] = {"script": "gpu_model_e2e", "status": "running", "args": vars(args)}
    return run_guarded(args, result, lambda: run(args, device, result))


def run(args: argparse.Namespace, device: torch.device, result: dict[str, Any]) -> int:
    dtype = DTYPES[args.dtype]
    spec = MODEL_REGISTRY[args.model]
    env = result["env"] = environment(device)
    checks: dict[str, Any] = {}
    if device.type == "cuda":
        row = hardware_for_cuda_name(env["gpu_name"])
        checks["gpu_matches_hardware"] = row is not None and row.id == args.hardware
        if not checks["gpu_matches_hardware"]:
            print(
                f"!! GPU {env['gpu_name']!r} maps to hardware row {row.id if row else None!r}, "
                f"but the prediction uses {args.hardware!r}",
                flush=True,
            )

    # --- page and inputs
    width, height = parse_page_size(args.page)
    mode = resolution_mode(args.mode)
    t = time.perf_counter()
    image = synthetic_page(width, height, seed=args.seed)
    page = prepare_page(image, mode, max_crops=args.max_crops)
    inputs = build_inputs(spec, [page])
    n_image = page.num_image_tokens
    prompt_len = inputs.prompt_len
    text_tokens = prompt_len - n_image
    workload = Workload(
        profile_id="gpu-e2e",
        mode=args.mode,
        page_size=(width, height),
        max_crops=args.max_crops,
        max_new_tokens=args.new_tokens,
        prompt_tokens=text_tokens,
        batch_size=1,
        description=f"{args.mode} {width}x{height}, {args.new_tokens} new tokens (gpu_model_e2e)",
    )
    analytic_slots = workload.image_tokens
    expected = (
        EXPECTED_A4_GUNDAM_SLOTS
        if (args.mode, width, height) == ("gundam", 1654, 2339) and args.max_crops >= 6
        else None
    )
    checks["image_tokens_equal"] = n_image == analytic_slots and (expected is None or n_image == expected)
    result["page"] = {
        "size": [width, height],
        "mode": args.mode,
        "max_crops": args.max_crops,
        "tile_grid": list(page.tile_grid),
        "image_tokens_preprocess": n_image,
        "image_tokens_analytic": analytic_slots,
        "image_tokens_expected": expected,
        "text_tokens": text_tokens,
        "prompt_len": prompt_len,
        "prepare_s": time.perf_counter() - t,
        "tiles_shape": list(page.tiles.shape) if page.tiles is not None else None,
        "global_view_shape": list(page.global_view.shape),
    }
    log(
        f"page {width}x{height} {args.mode}: tiles {page.tile_grid}, image tokens preprocess {n_image} / "
        f"analytic {analytic_slots}"
        + (f" / expected {expected}" if expected else "")
        + f" -> {'OK' if checks['image_tokens_equal'] else 'MISMATCH'}; text tokens {text_tokens}, "
        f"prompt {prompt_len}"
    )

    # --- model
    log(f"building {spec.name} on {device} in {args.dtype} ({args.attn}), random weights seed {args.seed}")
    t = time.perf_counter()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    model = build_model(spec, device=device, dtype=dtype, weights="random", attn_impl=args.attn, seed=args.seed)
    sync(device)
    n_params = sum(p.numel() for p in model.parameters())
    model_info: dict[str, Any] = {
        "build_s": time.perf_counter() - t,
        "parameters": n_params,
        "parameter_bytes": sum(p.numel() * p.element_size() for p in model.parameters()),
    }
    if device.type == "cuda":
        model_info["allocated_after_build_bytes"] = int(torch.cuda.memory_allocated(device))
        model_info["peak_during_build_bytes"] = int(torch.cuda.max_memory_allocated(device))
    result["model"] = model_info
    log(
        f"built in {model_info['build_s']:.1f} s: {n_params:,} parameters"
        + (
            f", {model_info['allocated_after_build_bytes'] / GIB:.2f} GiB allocated "
            f"(build peak {model_info['peak_during_build_bytes'] / GIB:.2f} GiB)"
            if device.type == "cuda"
            else ""
        )
    )

    # --- warm-up and timed runs
    for i in range(args.warmup):
        rec, _ = run_once(model, inputs, args.new_tokens, device)
        log(f"warm-up {i + 1}/{args.warmup}: total {rec['total_ms']:.1f} ms (not counted)")
    runs: list[dict[str, Any]] = []
    result["runs"] = runs  # filled as we go, so a crash still leaves the finished runs in the JSON
    for i in range(args.runs):
        rec, _ = run_once(model, inputs, args.new_tokens, device)
        runs.append(rec)
        if rec["new_tokens"] != args.new_tokens:
            checks["exact_new_tokens"] = False
        st = rec["stages_ms"]
        peak = rec.get("peak_allocated_bytes")
        per_step = rec.get("decode_ms_per_step", float("nan"))
        parts = [
            f"run {i + 1}/{args.runs}: total {rec['total_ms']:.1f} ms",
            f"vision {st['vision']:.2f} (sam {st['sam']:.2f}, clip {st['clip']:.2f}, proj {st['projector']:.2f})",
            f"prefill {st['prefill']:.2f}",
            f"decode {st['decode']:.1f} = {per_step:.3f} ms/step",
            f"tokens {rec['new_tokens']}",
        ]
        if peak:
            parts.append(f"peak {peak / GIB:.2f} GiB")
        log(" | ".join(parts))
    checks.setdefault("exact_new_tokens", True)
    summary: dict[str, Any] = {
        "stages_ms": {k: median_of(runs, ("stages_ms", k)) for k in STAGE_NAMES},
        "total_ms": median_of(runs, ("total_ms",)),
        "wall_ms": median_of(runs, ("wall_ms",)),
        "decoder_prefill_ms": median_of(runs, ("decoder_prefill_ms",)),
        "vision_other_ms": median_of(runs, ("vision_other_ms",)),
        "decode_ms_per_step": median_of(runs, ("decode_ms_per_step",)),
        "decode_tokens_per_s": median_of(runs, ("decode_tokens_per_s",)),
        "peak_allocated_bytes": max((r.get("peak_allocated_bytes") or 0) for r in runs) or None,
        "peak_reserved_bytes": max((r.get("peak_reserved_bytes") or 0) for r in runs) or None,
        "kv_cache_bytes": runs[-1]["kv_cache_bytes"],
        "cache_len": runs[-1]["cache_len"],
        "decode_steps": runs[-1]["decode_steps"],
        "statistic": f"median of {len(runs)} runs (peak memory: max)",
    }
    result["summary"] = summary

    # --- analytic prediction
    precision = ANALYTIC_DTYPE[dtype]
    try:
        analytic = analytic_prediction(spec, workload, args.hardware, precision)
    except Exception as exc:
        analytic = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        print(f"!! analytic prediction failed: {analytic['error']}", flush=True)
    result["analytic"] = analytic
    result["workload"] = {
        "profile_id": workload.profile_id,
        "mode": workload.mode,
        "page_size": list(workload.page_size or ()),
        "max_crops": workload.max_crops,
        "prompt_tokens": workload.prompt_tokens,
        "max_new_tokens": workload.max_new_tokens,
        "image_tokens": workload.image_tokens,
        "prefill_tokens": workload.prefill_tokens,
        "final_context": workload.final_context,
    }
    rows = comparison_rows(runs, analytic, summary["decode_steps"])
    result["comparison"] = rows
    kv_pred = analytic.get("stages", {}).get("decode", {}).get("kv_cache_gb")
    checks["kv_cache_matches_analytic"] = kv_pred is not None and abs(kv_pred * GB - summary["kv_cache_bytes"]) < 1.0
    result["checks"] = checks

    # --- report
    title = (
        f"{spec.name} e2e on {env.get('gpu_name', device)}: {args.mode} {width}x{height} ({n_image} image + "
        f"{text_tokens} text tokens), {args.new_tokens} new tokens, {args.dtype}, {args.attn}; "
        f"{summary['statistic']}; predicted on {args.hardware}"
    )
    print_table(rows, title)
    peak = summary["peak_allocated_bytes"]
    mem = analytic.get("memory") or {}
    if peak:
        print(
            f"peak memory allocated: {peak / GIB:.3f} GiB = {peak / GB:.3f} GB (reserved "
            f"{summary['peak_reserved_bytes'] / GIB:.3f} GiB); weights {model_info['parameter_bytes'] / GIB:.3f} GiB"
            f" = {model_info['parameter_bytes'] / GB:.3f} GB",
            flush=True,
        )
    else:
        print(f"peak memory: not measured on {device.type}", flush=True)
    if mem:
        print(
            f"analytic memory: weights {mem.get('weights_gb', 0):.3f} GB + KV {mem.get('kv_cache_gb', 0):.4f} GB + "
            f"activations {mem.get('activations_gb', 0):.3f} GB = {mem.get('total_gb', 0):.3f} GB",
            flush=True,
        )
    print(
        f"KV cache: measured {summary['kv_cache_bytes']:,} B ({summary['cache_len']} positions) vs analytic "
        f"{_f(kv_pred * GB if kv_pred is not None else None, ',.0f')} B -> "
        f"{'OK' if checks['kv_cache_matches_analytic'] else 'DIFFERENT'}",
        flush=True,
    )
    print(
        f"image tokens: preprocessing {n_image}, analytic {analytic_slots}"
        + (f", expected {expected}" if expected else "")
        + f" -> {'OK' if checks['image_tokens_equal'] else 'MISMATCH'}",
        flush=True,
    )
    print(
        f"decode: {_f(summary['decode_ms_per_step'], '.3f')} ms/step = "
        f"{_f(summary['decode_tokens_per_s'], '.1f')} tok/s over {summary['decode_steps']} steps; generated "
        f"{runs[-1]['new_tokens']} tokens per run -> {'OK' if checks['exact_new_tokens'] else 'WRONG COUNT'}",
        flush=True,
    )
    failed = [k for k in ("image_tokens_equal", "exact_new_tokens") if not checks.get(k)]
    if failed:
        print(f"!! checks failed: {', '.join(failed)}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
