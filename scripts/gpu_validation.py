#!/usr/bin/env python3
"""GPU validation matrix: measured stage times of the runnable DeepSeek-OCR for many exact workloads.

Full-size ``deepseek-ocr``, random weights, bf16, SDPA, one GPU. Workloads: the five resolution
modes (tiny, small, base, large on an A4 page at 200 dpi; gundam on A4 → 2×3 tiles and on a
2000×1000 page → 4×2 tiles) × batch 1 and 4 (B synthetic pages of one size). Each config: one
short warm-up generation, then ``--repeats`` timed generations of ``--new-tokens`` (1024) tokens.

Timing follows ``llm-perf-opt profile`` exactly: a :class:`~llm_perf_opt.profiling.timers.StageClock`
(synchronize + CUDA event at the first opening of each range) around prefill ⊃ vision ⊃ (sam, clip,
projector), then decode; stage values come from ``profiling.records.stage_bounds``. Inside the one
1024-token generation, CUDA events (no synchronize) are recorded after steps 64, 256 and 1024
(``--checkpoints``), so the three token budgets come from ONE generation: decode(N) = end of the
first forward → token N, total(N) = time to first token + decode(N); vision and prefill are shared.
EOS is masked (every row generates exactly N tokens) and no host sync happens per step, as in
``generate`` with min_new_tokens = max_new_tokens.

Part 1 also makes ONE real profile run directory for the calibration workload (base, batch 1,
256 tokens) with ``llm-perf-opt profile`` in a subprocess, so that ``analyze --calibrate-from`` is
exercised on a real run; its one torch.profiler pass (``--calibration-profiler no`` skips it) gives
the GPU-busy time per stage, which tells GPU-bound from CPU-issue-bound stages. Everything lands under ``--out``:
``validation-part<i>of<M>.json`` (rewritten after every config) and ``calibration-run/``.

Usage (repository root; one call per part, each well under 9 minutes on an H100)::

    python3 -u scripts/gpu_validation.py --out $OUT/validation --part 1/2
    python3 -u scripts/gpu_validation.py --out $OUT/validation --part 2/2
    python3 scripts/gpu_validation.py --list --part 1/2          # the configs of a part, then exit
    python3 scripts/gpu_validation.py --smoke --out /tmp/gv      # tiny model on CPU, seconds

Then on any machine: ``python3 scripts/make_validation_table.py --in <dir with the JSON files>``.
"""
# ruff: noqa: E402

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
if (_ROOT / "src").is_dir() and str(_ROOT / "src") not in sys.path:
    sys.path.insert(0, str(_ROOT / "src"))

import argparse
import gc
import json
import math
import os
import subprocess
import time
import traceback
from datetime import UTC, datetime
from typing import Any

SCHEMA = "llm-perf-opt.gpu-validation/1"
A4 = (1654, 2339)
WIDE = (2000, 1000)
WORKLOADS: dict[str, tuple[str, tuple[int, int]]] = {
    "tiny": ("tiny", A4),
    "small": ("small", A4),
    "base": ("base", A4),
    "large": ("large", A4),
    "gundam-a4": ("gundam", A4),
    "gundam-wide": ("gundam", WIDE),
}
SMOKE = {"model": "tiny", "device": "cpu", "dtype": "fp32", "new_tokens": 8, "checkpoints": "2,4,8",
         "warmup_tokens": 2, "batches": "1,2", "workloads": "tiny,gundam-wide-b1", "calibration_tokens": 4,
         "calibration_workload": "tiny"}
"""--smoke: the tiny model on CPU, a few tokens (tests the script end to end in seconds)."""
STAGE_KEYS = ("sam_ms", "clip_ms", "vision_ms", "projector_ms", "prefill_decoder_ms", "prefill_ms", "prefill_end_ms")
_T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - _T0:7.1f}s] {msg}", flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", type=Path, help="output directory (JSON + calibration-run/)")
    p.add_argument("--part", default="1/1", help="N/M: run every M-th config starting at N (default 1/1)")
    p.add_argument("--workloads", default="all", help=f"comma list of {', '.join(WORKLOADS)} or config ids (base-b1)")
    p.add_argument("--batches", default="1,4")
    p.add_argument("--new-tokens", type=int, default=1024)
    p.add_argument("--checkpoints", default="64,256,1024", help="token budgets read from the one generation")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--warmup-tokens", type=int, default=8)
    p.add_argument("--max-crops", type=int, default=9)
    p.add_argument("--budget-s", type=float, default=510.0,
                   help="wall-clock budget of this call: a config that would overrun it is skipped (listed)")
    p.add_argument("--calibration-run", choices=["auto", "yes", "no"], default="auto",
                   help="make the profile run dir of the calibration workload (auto: in part 1 only)")
    p.add_argument("--calibration-profiler", choices=["yes", "no"], default="yes",
                   help="one torch.profiler pass in the calibration run: GPU-busy time per stage (≈ +15 s)")
    p.add_argument("--calibration-workload", default="base")
    p.add_argument("--calibration-batch", type=int, default=1)
    p.add_argument("--calibration-tokens", type=int, default=256)
    p.add_argument("--model", default="deepseek-ocr")
    p.add_argument("--dtype", default="bf16", choices=["bf16", "fp16", "fp32"])
    p.add_argument("--device", default=None, help="default: cuda when available")
    p.add_argument("--smoke", action="store_true", help="tiny model on CPU, few tokens (tests the script)")
    p.add_argument("--list", action="store_true", help="print the configs of this part and exit")
    args = p.parse_args(argv)
    if args.smoke:
        for key, value in SMOKE.items():
            setattr(args, key, value)
    try:
        i, m = (int(v) for v in args.part.split("/"))
        assert 1 <= i <= m
    except (ValueError, AssertionError):
        p.error(f"--part must be N/M with 1 <= N <= M, got {args.part!r}")
    args.part_index, args.part_count = i, m
    wanted = {int(v) for v in str(args.checkpoints).split(",")}
    args.checkpoint_list = sorted({n for n in wanted if n <= args.new_tokens} | {args.new_tokens})
    if not args.list and args.out is None:
        p.error("--out is required")
    return args


def configs_of(args: argparse.Namespace) -> list[dict[str, Any]]:
    wanted = [w.strip() for w in str(args.workloads).split(",") if w.strip()]
    out = []
    for wid, (mode, page) in WORKLOADS.items():
        for b in (int(v) for v in str(args.batches).split(",")):
            cid = f"{wid}-b{b}"
            if wanted == ["all"] or wid in wanted or cid in wanted:
                out.append({"id": cid, "workload": wid, "mode": mode, "page_size": list(page), "batch_size": b})
    return out[args.part_index - 1 :: args.part_count]


def environment(device: Any) -> dict[str, Any]:
    """The profiler's env.json fields (versions, driver, git, GPU), plus the date and the GPU name."""
    import llm_perf_opt
    from llm_perf_opt.profiling.env import capture_environment

    env = capture_environment(device, seed=0)
    env.update(date=datetime.now(UTC).isoformat(timespec="seconds"), llm_perf_opt=llm_perf_opt.__version__,
               gpu_name=env["device_name"] if device.type == "cuda" else "cpu")
    return env


def clean(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(clean(data), indent=1, allow_nan=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def page_images(page: tuple[int, int], count: int) -> list[Any]:
    from llm_perf_opt.profiling.synthetic import SYNTHETIC_KINDS, synthetic_page

    return [synthetic_page(SYNTHETIC_KINDS[i % len(SYNTHETIC_KINDS)], size=page, seed=i) for i in range(count)]


# ---------------------------------------------------------------- one timed generation


class Marks:
    """CUDA events (no synchronize) or perf_counter on CPU."""

    def __init__(self, device: Any) -> None:
        import torch

        self.torch, self.cuda = torch, device.type == "cuda"

    def mark(self) -> Any:
        if self.cuda:
            ev = self.torch.cuda.Event(enable_timing=True)
            ev.record()
            return ev
        return time.perf_counter()

    def ms(self, a: Any, b: Any) -> float:
        return float(a.elapsed_time(b)) if self.cuda else (b - a) * 1000.0


def timed_generation(model: Any, inputs: Any, new_tokens: int, checkpoints: list[int], device: Any,
                     cache_tokens: int | None = None) -> dict[str, Any]:
    """``generate`` (greedy, EOS masked, no per-step sync) with the profiler's clock plus step marks.

    ``cache_tokens``: generated tokens the KV cache is sized for (a short warm-up allocates the timed
    runs' cache size, so the allocator already holds the block when the clock runs)."""
    import torch

    from llm_perf_opt.models.deepseek_ocr import decode_step, new_cache, prefill
    from llm_perf_opt.profiling.records import stage_bounds
    from llm_perf_opt.profiling.timers import StageClock, peak_memory_bytes, reset_peak_memory

    marks, clock = Marks(device), StageClock(device)
    eos, b, p = model.spec.eos_token_id, inputs.batch_size, inputs.prompt_len
    at: dict[int, Any] = {}
    reset_peak_memory(device)
    clock.start()
    with torch.inference_mode():
        cache = new_cache(model, b, p + max((cache_tokens or new_tokens) - 1, 0))
        out = torch.full((b, new_tokens), eos, dtype=torch.long, device=model.device)

        def pick(logits: torch.Tensor, i: int) -> torch.Tensor:
            logits[:, eos] = float("-inf")
            ids = logits.argmax(dim=-1)
            out[:, i] = ids
            return ids

        with clock.ranges("prefill"):
            ids = pick(prefill(model, inputs, cache, clock.ranges), 0)
        first = marks.mark()
        produced = 1
        with clock.ranges("decode"):
            while produced < new_tokens:
                ids = pick(decode_step(model, ids, cache), produced)
                produced += 1
                if produced in checkpoints:
                    at[produced] = marks.mark()
        tokens = out.cpu()
    clock.stop()
    ranges, total = clock.timings(), clock.total_ms()
    stages = stage_bounds(ranges, total)
    decode = {str(n): marks.ms(first, ev) for n, ev in at.items()}
    ttft = stages["prefill_end_ms"]
    return {
        "stages_ms": {k: stages[k] for k in STAGE_KEYS},
        "decode_ms": decode,
        "total_ms": {n: ttft + v for n, v in decode.items()},
        "clock_total_ms": total,
        "new_tokens": int(tokens.shape[1]),
        "peak_memory_bytes": peak_memory_bytes(device),
        "kv_cache_bytes": cache.used_bytes,
    }


def run_config(model: Any, spec: Any, cfg: dict[str, Any], args: argparse.Namespace, device: Any,
               dtype: Any) -> dict[str, Any]:
    from llm_perf_opt.models.deepseek_ocr import build_inputs, prepare_page
    from llm_perf_opt.specs.image_tokens import resolution_mode

    images = page_images(tuple(cfg["page_size"]), cfg["batch_size"])
    pages = [prepare_page(img, resolution_mode(cfg["mode"]), max_crops=args.max_crops) for img in images]
    inputs = build_inputs(spec, pages).to(device, dtype)
    cfg.update(image_tokens=pages[0].num_image_tokens, tile_grid=list(pages[0].tile_grid),
               prompt_len=inputs.prompt_len, max_crops=args.max_crops)
    t0 = time.perf_counter()
    timed_generation(model, inputs, args.warmup_tokens, [], device, cache_tokens=args.new_tokens)
    cfg["warmup_s"] = time.perf_counter() - t0
    cfg["runs"] = []
    for r in range(args.repeats):
        gc.collect()
        gc.disable()  # as the profiler's timed runs: no collector pause inside the decode loop
        try:
            t0 = time.perf_counter()
            rec = timed_generation(model, inputs, args.new_tokens, args.checkpoint_list, device)
            rec.update(repeat=r, wall_s=time.perf_counter() - t0)
        finally:
            gc.enable()
        cfg["runs"].append(rec)
    return cfg


def fits_memory(spec: Any, cfg: dict[str, Any], args: argparse.Namespace, device: Any) -> str | None:
    """None when the analytic memory of the config fits the device, else why not."""
    import torch

    if device.type != "cuda":
        return None
    from llm_perf_opt.analytic.api import build_report
    from llm_perf_opt.hardware.table import load_hardware
    from llm_perf_opt.specs.workload import Workload

    w = Workload(profile_id=cfg["id"], mode=cfg["mode"], page_size=tuple(cfg["page_size"]), max_crops=args.max_crops,
                 max_new_tokens=args.new_tokens, batch_size=cfg["batch_size"])
    mem = build_report(spec, w, load_hardware("h100-sxm"), precision=args.dtype).memory
    have = torch.cuda.get_device_properties(device).total_memory / 1e9
    return None if mem.total_gb < 0.9 * have else f"needs ~{mem.total_gb:.1f} GB of {have:.1f} GB"


# ---------------------------------------------------------------- the calibration profile run


def calibration_run(args: argparse.Namespace, budget_left: float) -> dict[str, Any]:
    mode, page = WORKLOADS[args.calibration_workload]
    pages_dir = Path(os.environ.get("TMPDIR", "/tmp")) / f"gpu-validation-pages-{os.getpid()}"
    pages_dir.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(page_images(page, args.calibration_batch)):
        img.save(pages_dir / f"page{i}.png")
    out = args.out / "calibration-run"
    run_id = f"calibration-{args.calibration_workload}-b{args.calibration_batch}-n{args.calibration_tokens}"
    cmd = [sys.executable, "-m", "llm_perf_opt", "profile", "--model", args.model, "--weights", "random",
           "--dtype", args.dtype, "--mode", mode, "--max-crops", str(args.max_crops), "--images", str(pages_dir),
           "--repeats", str(args.repeats), "--warmup", "1", "--max-new-tokens", str(args.calibration_tokens),
           "--batch-size", str(args.calibration_batch), "--output-dir", str(out), "--run-id", run_id, "--quiet",
           "--top-k", "50", "--torch-profiler" if args.calibration_profiler == "yes" else "--no-torch-profiler"]
    if args.device:
        cmd += ["--device", args.device]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_ROOT / "src"), env.get("PYTHONPATH", "")) if p)
    log("calibration profile run: " + " ".join(cmd[1:]))
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=max(budget_left, 30), env=env, check=False)
        rc, tail = proc.returncode, (proc.stdout + proc.stderr)[-3000:]
    except subprocess.TimeoutExpired as exc:
        rc, tail = -9, f"timed out after {exc.timeout:.0f} s"
    seconds = time.perf_counter() - t0
    log(f"calibration profile run: exit {rc} in {seconds:.1f} s")
    print(tail, flush=True)
    return {"dir": "calibration-run", "workload": args.calibration_workload, "batch_size": args.calibration_batch,
            "new_tokens": args.calibration_tokens, "status": "ok" if rc == 0 else "failed", "returncode": rc,
            "seconds": seconds, "command": cmd[1:], "output_tail": tail}


# ---------------------------------------------------------------- main


def summary_table(configs: list[dict[str, Any]], checkpoints: list[int]) -> str:
    head = f"{'config':<15} {'grid':>5} {'prompt':>6} {'sam':>7} {'clip':>7} {'proj':>6} {'pf-dec':>7} "
    head += " ".join(f"{'ms/tok@' + str(n):>10}" for n in checkpoints)
    head += f" {'total@' + str(checkpoints[-1]):>10} {'GB':>5}"
    lines = [head]
    for c in configs:
        runs = c.get("runs") or []
        if c.get("status") != "ok" or not runs:
            lines.append(f"{c['id']:<15} {c.get('status')}: {c.get('error', '')}"[:160])
            continue

        def mean(get: Any, runs: list[dict[str, Any]] = runs) -> float:
            vals = [get(r) for r in runs]
            return sum(vals) / len(vals)

        st = {k: mean(lambda r, k=k: r["stages_ms"][k]) for k in runs[0]["stages_ms"]}
        per_tok = [mean(lambda r, n=n: r["decode_ms"][str(n)]) / max(n - 1, 1) for n in checkpoints]
        total = mean(lambda r: r["total_ms"][str(checkpoints[-1])])
        peak = max((r.get("peak_memory_bytes") or 0) for r in runs) / 1e9
        grid = "x".join(str(v) for v in c["tile_grid"])
        lines.append(f"{c['id']:<15} {grid:>5} {c['prompt_len']:>6} {st['sam_ms']:7.2f} {st['clip_ms']:7.2f} "
                     f"{st['projector_ms']:6.2f} {st['prefill_decoder_ms']:7.2f} "
                     + " ".join(f"{v:10.3f}" for v in per_tok) + f" {total:10.1f} {peak:5.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configs = configs_of(args)
    if args.list:
        print("\n".join(c["id"] for c in configs))
        return 0
    import torch

    from llm_perf_opt.models.deepseek_ocr import build_model
    from llm_perf_opt.specs.loader import load_model_spec

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[args.dtype]
    tag = "" if str(args.workloads) == "all" else "-" + str(args.workloads).replace(",", "_")[:60]
    out_file = args.out / f"validation-part{args.part_index}of{args.part_count}{tag}.json"
    data: dict[str, Any] = {"schema": SCHEMA, "part": args.part, "env": environment(device),
                            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                            "configs": configs, "calibration_run": None}
    names = ", ".join(c["id"] for c in configs)
    log(f"part {args.part}: {len(configs)} config(s) on {data['env']['gpu_name']}: {names}")
    for c in configs:
        c["status"] = "pending"
    write_json(out_file, data)
    do_cal = args.calibration_run == "yes" or (args.calibration_run == "auto" and args.part_index == 1)
    if do_cal:
        data["calibration_run"] = calibration_run(args, args.budget_s - (time.perf_counter() - _T0))
        write_json(out_file, data)
    t0 = time.perf_counter()
    spec = load_model_spec(args.model)
    model = build_model(spec, device=device, dtype=dtype, weights="random", attn_impl="sdpa", seed=0)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    data["load_s"] = time.perf_counter() - t0
    log(f"model {spec.name} built in {data['load_s']:.1f} s ({args.dtype}, {device})")
    last = 0.0
    for cfg in configs:
        elapsed = time.perf_counter() - _T0
        if last and elapsed + 1.15 * last > args.budget_s:
            cfg.update(status="skipped", error=f"budget: {elapsed:.0f} s used, last config took {last:.0f} s")
            log(f"{cfg['id']}: skipped ({cfg['error']}); rerun with --workloads {cfg['id']}")
            continue
        why = fits_memory(spec, cfg, args, device)
        if why:
            cfg.update(status="skipped", error=f"memory: {why}")
            log(f"{cfg['id']}: skipped ({why})")
            continue
        t_cfg = time.perf_counter()
        try:
            run_config(model, spec, cfg, args, device, dtype)
            cfg["status"] = "ok"
        except torch.cuda.OutOfMemoryError as exc:
            cfg.update(status="oom", error=str(exc).splitlines()[0])
        except Exception as exc:
            cfg.update(status="error", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc()[-2000:])
        finally:
            if device.type == "cuda":
                torch.cuda.empty_cache()
        last = time.perf_counter() - t_cfg
        cfg["seconds"] = last
        msg = f"{cfg['id']}: {cfg['status']} in {last:.1f} s"
        if cfg["status"] == "ok":
            r = cfg["runs"][-1]
            n = args.checkpoint_list[-1]
            per_token = r["decode_ms"][str(n)] / max(n - 1, 1)
            msg += (f" (grid {cfg['tile_grid']}, prompt {cfg['prompt_len']}, sam {r['stages_ms']['sam_ms']:.2f} ms, "
                    f"prefill {r['stages_ms']['prefill_ms']:.2f} ms, decode {per_token:.3f} ms/token)")
        else:
            msg += f": {cfg.get('error')}"
        log(msg)
        write_json(out_file, data)
    data["seconds"] = time.perf_counter() - _T0
    write_json(out_file, data)
    print(summary_table(configs, args.checkpoint_list), flush=True)
    log(f"wrote {out_file}")
    bad = [c["id"] for c in configs if c["status"] != "ok"]
    if bad:
        again = f"--workloads {','.join(bad)} --part 1/1 --calibration-run no"
        print(f"not measured: {', '.join(bad)} (rerun them with {again})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
