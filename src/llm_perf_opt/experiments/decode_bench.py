"""``experiment decode-bench``: decode ms/token in CUDA-graph vs eager mode at batch 1, 8 and 32.

One model (``deepseek-ocr`` full size with random weights on CUDA; ``tiny`` on CPU for tests) is
loaded once through :class:`~llm_perf_opt.profiling.session.ProfileSession`. For each batch size B,
B built-in synthetic pages (``--page-mode``, base by default: 256 image tokens per page) form one
prompt batch; for each decode mode, ``warmup`` untimed calls of
:func:`~llm_perf_opt.models.deepseek_ocr.generate` (the first one also captures the CUDA graphs:
its extra time is reported as the first-call overhead, never timed), then ``repeats`` timed calls
of exactly ``new_tokens`` tokens through the profiler's own :func:`measure_call` (a synchronizing
:class:`StageClock`; decode = end of the first forward → end of the call, as ``profile`` reports it).

Per (B, mode): ms/token of each call = decode ms / decode steps (N − 1), their mean, sample std
and spread (std / mean), % of the HBM roofline (bytes of one step ÷ (peak bandwidth × time), see
:mod:`.roofline_bytes`; GB = 10^9 B, TB/s = 10^12 B/s) and, per B, the eager / graph factor.
``processes=2`` runs the whole benchmark in two fresh processes, one after the other, and
reports how far their means differ.
"""

from __future__ import annotations

import gc
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import attrs
from attrs import define, field

from llm_perf_opt.errors import UserError
from llm_perf_opt.experiments.common import (
    DECODE_MODES,
    Log,
    Spread,
    agreement_pct,
    decode_options,
    describe_error,
    graph_unavailable,
    quiet,
    write_json,
)
from llm_perf_opt.experiments.roofline_bytes import GB, DecoderBytes, decoder_bytes, roofline_pct

SCHEMA = "llm-perf-opt.decode-bench/1"
RESULT_FILE = "decode_bench.json"
TABLE_FILE = "decode_bench.md"


@define(kw_only=True)
class DecodeBenchConfig:
    """What ``experiment decode-bench`` measures (CLI flags map one to one)."""

    model: str = "deepseek-ocr"
    """Model spec id (random weights): ``deepseek-ocr`` on a GPU, ``tiny`` for CPU tests."""
    device: str | None = None
    """``cuda:N`` or ``cpu``; None = CUDA when available."""
    dtype: str | None = None
    """bf16, fp16 or fp32; None = bf16 on CUDA, fp32 on CPU."""
    batches: tuple[int, ...] = (1, 8, 32)
    """Batch sizes (pages per generate call)."""
    modes: tuple[str, ...] = DECODE_MODES
    """Decode modes to time, in this order."""
    new_tokens: int = 256
    """Tokens generated per call (EOS masked): N − 1 decode steps per call."""
    repeats: int = 5
    """Timed calls per (batch, mode)."""
    warmup: int = 1
    """Untimed calls per (batch, mode) before the timed ones (≥ 1 in graph mode: it captures)."""
    page_mode: str = "base"
    """Resolution mode of the prompt pages (sets the prompt length P)."""
    hardware: str | None = None
    """Hardware-table id or YAML file for the roofline; None = the detected GPU."""
    attn_impl: str = "sdpa"
    """Attention implementation of the model (sdpa or eager)."""
    seed: int = 0
    """Seed of the random weights and the synthetic pages."""
    processes: int = 1
    """1: run here; 2: run twice in fresh processes and report their agreement."""
    out: Path | None = field(default=None)
    """Directory for decode_bench.json / decode_bench.md (None: nothing written)."""

    def validate(self) -> None:
        from llm_perf_opt.specs.image_tokens import resolution_mode

        resolution_mode(self.page_mode)
        if not self.batches or any(b < 1 for b in self.batches):
            raise UserError(f"--batches must be positive integers, got {list(self.batches)}")
        if not self.modes or any(m not in DECODE_MODES for m in self.modes):
            raise UserError(f"--modes must be among {', '.join(DECODE_MODES)}, got {list(self.modes)}")
        if self.new_tokens < 2:
            raise UserError(f"--new-tokens must be at least 2 (one decode step), got {self.new_tokens}")
        if self.repeats < 1 or self.warmup < 0:
            raise UserError("--repeats must be ≥ 1 and --warmup ≥ 0")
        if self.processes not in (1, 2):
            raise UserError(f"--processes must be 1 or 2, got {self.processes}")
        if self.processes == 2 and self.out is None:
            raise UserError("--processes 2 needs --out (each process writes its own result there)")


def run_decode_bench(cfg: DecodeBenchConfig, log: Log = quiet) -> dict[str, Any]:
    """Run the benchmark (or two processes of it); the result dict is also written under ``cfg.out``."""
    cfg.validate()
    if cfg.processes == 2:
        return _two_processes(cfg, log)
    result: dict[str, Any] = {"schema": SCHEMA, "experiment": "decode-bench", "status": "running",
                              "config": _config_dict(cfg), "batches": []}
    try:
        _measure(cfg, result, log)
        result["status"] = "ok"
    except UserError:
        raise
    except Exception as exc:  # a crash keeps what finished, marked, and still raises
        result["status"] = f"error: {describe_error(exc)}"
        raise
    finally:
        _save(cfg, result)
    return result


def _config_dict(cfg: DecodeBenchConfig) -> dict[str, Any]:
    return attrs.asdict(cfg, value_serializer=lambda _i, _a, v: str(v) if isinstance(v, Path) else v)


def _save(cfg: DecodeBenchConfig, result: dict[str, Any]) -> None:
    if cfg.out is not None:
        from llm_perf_opt.io import atomic_write_text

        write_json(cfg.out / RESULT_FILE, result)
        atomic_write_text(cfg.out / TABLE_FILE, render_table(result) + "\n")


def _measure(cfg: DecodeBenchConfig, result: dict[str, Any], log: Log) -> None:
    import torch

    from llm_perf_opt.profiling.env import capture_environment, detect_hardware, resolve_device, resolve_dtype
    from llm_perf_opt.profiling.session import ProfileSession

    device = resolve_device(cfg.device)
    dtype = resolve_dtype(cfg.dtype, device)
    hw = _hardware(cfg.hardware) if cfg.hardware else detect_hardware(device)
    result["env"] = capture_environment(device, seed=cfg.seed, extra={"dtype": dtype})
    result["hardware"] = None if hw is None else {"id": hw.id, "bandwidth_tbs": hw.bandwidth_tbs, "source": hw.source}
    result["units"] = {"bytes": f"GB = {GB:.0e} B", "bandwidth": "TB/s = 1e12 B/s", "time": "ms"}
    log(f"loading {cfg.model} ({dtype}, random weights) on {device}")
    session = ProfileSession.load(model=cfg.model, weights="random", device=device, dtype=dtype,
                                  attn_impl=cfg.attn_impl, seed=cfg.seed)
    sizes = decoder_bytes(session.model)
    result["model"] = {"spec": session.spec.name, "parameters": session.parameter_count,
                       "load_s": session.load_seconds, "decoder_bytes": attrs.asdict(sizes)}
    log(f"loaded in {session.load_seconds:.1f} s; roofline bandwidth: "
        + (f"{hw.bandwidth_tbs} TB/s ({hw.id})" if hw else "none (no hardware row: pass --hardware)"))
    for batch in cfg.batches:
        entry = _bench_batch(cfg, session, batch, sizes, hw.bandwidth_tbs if hw else None, log)
        result["batches"].append(entry)
        _save(cfg, result)  # each batch lands on disk as soon as it is measured
        if device.type == "cuda":
            torch.cuda.empty_cache()


def _hardware(ref: str) -> Any:
    from llm_perf_opt.hardware.table import load_hardware

    return load_hardware(ref)


def _pages(session: Any, cfg: DecodeBenchConfig, batch: int) -> Any:
    """The model inputs of ``batch`` synthetic pages (kinds in turn), built once on the device."""
    from llm_perf_opt.models import deepseek_ocr as dso
    from llm_perf_opt.profiling.synthetic import SYNTHETIC_KINDS, synthetic_page
    from llm_perf_opt.specs.image_tokens import resolution_mode

    mode = resolution_mode(cfg.page_mode)
    kinds = len(SYNTHETIC_KINDS)
    prepared = [
        dso.prepare_page(synthetic_page(SYNTHETIC_KINDS[i % kinds], seed=cfg.seed + i // kinds), mode)
        for i in range(batch)
    ]
    # Staged on the device once: generate's own staging is then a no-op in every timed call.
    return dso.build_inputs(session.spec, prepared, tokenizer=session.tokenizer).to(session.device,
                                                                                   session.torch_dtype)


def _bench_batch(cfg: DecodeBenchConfig, session: Any, batch: int, sizes: DecoderBytes, bandwidth: float | None,
                 log: Log) -> dict[str, Any]:
    inputs = _pages(session, cfg, batch)
    steps = cfg.new_tokens - 1
    step_bytes = sizes.step_bytes(batch, inputs.prompt_len, steps)
    entry: dict[str, Any] = {
        "batch": batch,
        "prompt_len": inputs.prompt_len,
        "decode_steps_per_call": steps,
        "weights_read_bytes": sizes.weights_read(batch),
        "kv_read_bytes": sizes.kv_read(batch, inputs.prompt_len, steps),
        "bytes_per_step": step_bytes,
        "roofline_ms_per_token": None if bandwidth is None else step_bytes / (bandwidth * 1e12) * 1e3,
        "modes": {},
    }
    for mode in cfg.modes:
        why = graph_unavailable(session.device.type) if mode == "graph" else None
        if why:
            entry["modes"][mode] = {"status": "unavailable", "reason": why}
            log(f"batch {batch} {mode}: not run ({why})")
            continue
        m = _bench_mode(cfg, session, inputs, mode)
        if bandwidth is not None:
            m["roofline_pct"] = roofline_pct(step_bytes, bandwidth, m["ms_per_token"]["mean"])
        entry["modes"][mode] = m
        s = m["ms_per_token"]
        log(f"batch {batch} {mode}: {s['mean']:.3f} ms/token ± {s['spread_pct']:.2f}% over {s['n']} calls"
            + (f", {m['roofline_pct']:.1f}% of the HBM roofline" if "roofline_pct" in m else "")
            + f"; graph capture {m['graph_capture_ms']:.0f} ms (not timed)")
    graph, eager = entry["modes"].get("graph", {}), entry["modes"].get("eager", {})
    if graph.get("status") == "ok" and eager.get("status") == "ok":
        entry["eager_over_graph"] = eager["ms_per_token"]["mean"] / graph["ms_per_token"]["mean"]
    return entry


def _bench_mode(cfg: DecodeBenchConfig, session: Any, inputs: Any, mode: str) -> dict[str, Any]:
    """Warm-up (first call timed on the wall clock: capture included), then the timed calls."""
    import torch

    from llm_perf_opt.models import deepseek_ocr as dso
    from llm_perf_opt.profiling.records import stage_bounds
    from llm_perf_opt.profiling.timers import measure_call

    device, n = session.device, cfg.new_tokens
    seen = [0]

    def on_token(_step: int, _ids: Any) -> None:  # host-side count only: no sync, no device work
        seen[0] += 1

    def call(ranges: Any) -> Any:
        return dso.generate(session.model, inputs, max_new_tokens=n, min_new_tokens=n, ranges=ranges,
                            **decode_options(mode, on_token))

    first_ms: float | None = None
    capture_s = 0.0
    for i in range(cfg.warmup):
        t0 = time.perf_counter()
        capture_s += float(getattr(call(dso.null_ranges), "capture_seconds", 0.0))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i == 0:
            first_ms = (time.perf_counter() - t0) * 1000.0
    calls: list[dict[str, Any]] = []
    gc.collect()
    gc.disable()  # as profile's timed runs: no collector pause inside a timed call
    try:
        for _ in range(cfg.repeats):
            seen[0] = 0
            res, clock, peak = measure_call(call, device, label=f"decode-bench {mode}")
            total = clock.total_ms()
            bounds = stage_bounds(clock.timings(), total)
            done = int(res.tokens.shape[1]) - 1
            calls.append({"total_ms": total, "decode_ms": bounds["decode_ms"], "decode_steps": done,
                          "ms_per_token": bounds["decode_ms"] / done,
                          "on_token_calls": seen[0] if "on_token" in decode_options(mode, on_token) else None,
                          "peak_memory_bytes": peak,
                          "capture_ms_inside": 1000.0 * float(getattr(res, "capture_seconds", 0.0))})
    finally:
        gc.enable()
    steady = Spread.of([c["total_ms"] for c in calls]).mean
    return {
        "status": "ok",
        "first_call_ms": first_ms,
        "steady_call_ms": steady,
        "first_call_overhead_ms": (first_ms - steady) if first_ms is not None else None,
        "graph_capture_ms": 1000.0 * capture_s,
        "ms_per_token": Spread.of([c["ms_per_token"] for c in calls]).to_dict(),
        "decode_steps_total": sum(c["decode_steps"] for c in calls),
        "calls": calls,
    }


# ---------------------------------------------------------------- two processes


def _argv(cfg: DecodeBenchConfig, out: Path) -> list[str]:
    args = ["--model", cfg.model, "--batches", ",".join(map(str, cfg.batches)), "--modes", ",".join(cfg.modes),
            "--new-tokens", str(cfg.new_tokens), "--repeats", str(cfg.repeats), "--warmup", str(cfg.warmup),
            "--page-mode", cfg.page_mode, "--attn-impl", cfg.attn_impl, "--seed", str(cfg.seed), "--out", str(out)]
    for flag, value in (("--device", cfg.device), ("--dtype", cfg.dtype), ("--hardware", cfg.hardware)):
        if value:
            args += [flag, value]
    return [sys.executable, "-m", "llm_perf_opt", "experiment", "decode-bench", *args]


def _two_processes(cfg: DecodeBenchConfig, log: Log) -> dict[str, Any]:
    import json

    assert cfg.out is not None
    runs: list[dict[str, Any]] = []
    for i in (1, 2):
        out = cfg.out / f"process-{i}"
        log(f"process {i} of 2: {out}")
        # stderr passes through (the child's progress lines and any error line); its table is not needed.
        proc = subprocess.run(_argv(cfg, out), stdout=subprocess.DEVNULL, check=False)
        if proc.returncode != 0:
            raise UserError(f"decode-bench process {i} failed (exit {proc.returncode}); its error is printed above")
        runs.append(json.loads((out / RESULT_FILE).read_text(encoding="utf-8")))
    combined = {**runs[0], "processes": [f"process-{i}" for i in (1, 2)], "process_agreement": agreement(*runs)}
    combined["config"] = _config_dict(cfg)
    _save(cfg, combined)
    return combined


def agreement(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """Per (batch, mode) measured in both results: the two means and 100 · |a − b| / mean."""
    rows = []
    other = {e["batch"]: e for e in b["batches"]}
    for ea in a["batches"]:
        eb = other.get(ea["batch"])
        for mode, ma in ea["modes"].items():
            mb = (eb or {}).get("modes", {}).get(mode, {})
            if ma.get("status") == "ok" and mb.get("status") == "ok":
                x, y = ma["ms_per_token"]["mean"], mb["ms_per_token"]["mean"]
                rows.append({"batch": ea["batch"], "mode": mode, "process_1_ms": x, "process_2_ms": y,
                             "disagreement_pct": agreement_pct(x, y)})
    return rows


# ---------------------------------------------------------------- rendering


def render_table(result: dict[str, Any]) -> str:
    """Markdown: one row per (batch, mode), then the process agreement when there is one."""
    from llm_perf_opt.reporting.text import table

    env, hw = result.get("env") or {}, result.get("hardware")
    roof = f"{hw['bandwidth_tbs']} TB/s peak ({hw['id']})" if hw else "n/a"
    head = (f"Decode ms/token, {result['config']['model']} ({env.get('dtype', '?')}, random weights) on "
            f"{env.get('device_name', '?')}; HBM roofline at {roof}; GB = 1e9 B. Status: {result.get('status')}.")
    rows = []
    for e in result.get("batches", []):
        for mode, m in e["modes"].items():
            if m.get("status") != "ok":
                rows.append([str(e["batch"]), mode, "—", "—", "—", "—", "—", m.get("reason", m.get("status", ""))])
                continue
            s = m["ms_per_token"]
            factor = e.get("eager_over_graph") if mode == "graph" else None
            rows.append([str(e["batch"]), mode, f"{s['mean']:.3f}", f"{s['spread_pct']:.2f}%",
                         f"{e['bytes_per_step'] / GB:.3f}", f"{m['roofline_pct']:.1f}%" if "roofline_pct" in m else "—",
                         f"{factor:.2f}x" if factor else "—",
                         f"{m['graph_capture_ms']:.0f} ms"])
    out = [head, "", table(["batch", "mode", "ms/token", "std/mean", "GB/step", "% HBM roofline",
                            "eager/graph", "graph capture (not timed)"], rows)]
    if result.get("process_agreement"):
        prow = [[str(r["batch"]), r["mode"], f"{r['process_1_ms']:.3f}", f"{r['process_2_ms']:.3f}",
                 f"{r['disagreement_pct']:.2f}%"] for r in result["process_agreement"]]
        out += ["", "Two separate processes:", "",
                table(["batch", "mode", "process 1 ms/token", "process 2 ms/token", "difference / mean"], prow)]
    return "\n".join(out)
