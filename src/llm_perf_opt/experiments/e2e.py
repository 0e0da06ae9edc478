"""``experiment e2e``: one profile run of the runnable model next to the analytic prediction, with checks.

The full-size ``deepseek-ocr`` (random weights, built on the device in bf16) runs one built-in
synthetic A4 page (the mixed-layout one: paragraphs, a table, a chart, a picture) in Gundam mode
(2×3 tiles + the global view → 903 image-token slots) for exactly ``new_tokens`` tokens: one
``llm-perf-opt profile`` run (timing only) through :func:`~llm_perf_opt.profiling.runner.run_profile`
into ``<out>/run``. The run directory is then read as ``analyze --compare-with`` reads it and every
measured stage is set beside its prediction with the package-default roofline parameters on the
run's GPU (or ``hardware``). Checks, each a boolean in ``e2e.json``:

* ``image_tokens_equal`` — preprocessing's image-token count equals the analytic layout's (and 903
  for an A4 page in Gundam mode with ≥ 6 crops, the reference count);
* ``exact_new_tokens`` — every timed call generated exactly ``new_tokens`` tokens;
* ``kv_cache_matches_analytic`` — measured KV-cache bytes equal the analytic decode stage's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
from attrs import define

from llm_perf_opt.errors import UserError
from llm_perf_opt.experiments.common import Log, profile_config, quiet, write_json

RESULT_FILE = "e2e.json"
EXPECTED_A4_GUNDAM_SLOTS = 903
"""An A4 page at 200 dpi in Gundam mode: 2×3 tiles of 640 px and the 1024 px global view give
273 + 630 = 903 image-token slots (the reference count for that page, independent of our layout code)."""


@define(kw_only=True)
class E2EConfig:
    """What ``experiment e2e`` runs (CLI flags map one to one)."""

    out: Path
    """Output directory: run/ (the profile run) and e2e.json."""
    model: str = "deepseek-ocr"
    """Model spec id (random weights)."""
    device: str | None = None
    """``cuda:N`` or ``cpu``; None = CUDA when available."""
    dtype: str | None = None
    """bf16, fp16 or fp32; None = bf16 on CUDA, fp32 on CPU."""
    mode: str = "gundam"
    """Resolution mode."""
    max_crops: int = 9
    """Most Gundam tiles per page."""
    new_tokens: int = 256
    """Tokens generated per call (EOS masked)."""
    repeats: int = 3
    """Timed calls."""
    warmup: int = 1
    """Untimed calls first."""
    decode_mode: str | None = None
    """graph or eager; None = graph on CUDA, eager on CPU."""
    hardware: str | None = None
    """Hardware id or YAML file for the prediction; None = the GPU the run names."""
    seed: int = 0
    """Seed of the random weights and the page."""


def run_e2e(cfg: E2EConfig, log: Log = quiet) -> dict[str, Any]:
    """Profile, compare, check; the result is written to ``<out>/e2e.json`` and returned."""
    from llm_perf_opt.profiling.env import resolve_device
    from llm_perf_opt.profiling.runner import run_profile
    from llm_perf_opt.profiling.synthetic import write_synthetic_pages

    page = write_synthetic_pages(cfg.out / "page", seed=cfg.seed, kinds=("mixed_layout",))[0][0]
    config = profile_config(
        resolve_device(cfg.device).type, model=cfg.model, weights="random", images=(str(page),), mode=cfg.mode,
        max_crops=cfg.max_crops, repeats=cfg.repeats, warmup=cfg.warmup, max_new_tokens=cfg.new_tokens,
        device=cfg.device, dtype=cfg.dtype, torch_profiler=False, output_dir=cfg.out / "run", run_id="e2e",
        seed=cfg.seed, decode_mode=cfg.decode_mode,
    )
    log(f"profile run: {cfg.model} {cfg.mode}, {cfg.new_tokens} tokens, {cfg.repeats} timed calls")
    run_profile(config)
    result = compare_run_dir(cfg.out / "run", new_tokens=cfg.new_tokens, hardware=cfg.hardware)
    result["config"] = attrs.asdict(cfg, value_serializer=lambda _i, _a, v: str(v) if isinstance(v, Path) else v)
    write_json(cfg.out / RESULT_FILE, result)
    return result


def compare_run_dir(run: Path, *, new_tokens: int, hardware: str | None = None) -> dict[str, Any]:
    """Measured vs predicted per stage of a profile run directory, and the three checks."""
    from llm_perf_opt.analytic.api import stage_totals
    from llm_perf_opt.analytic.roofline import RooflineParams
    from llm_perf_opt.calibration import compare_workload, read_run_dir
    from llm_perf_opt.hardware.table import load_hardware

    prun = read_run_dir(run, hardware=load_hardware(hardware) if hardware else None)
    measured = prun.primary
    params = RooflineParams()
    comparison = compare_workload(measured, spec=prun.spec, hardware=prun.hardware, params=params,
                                  precision=prun.precision)
    records = [json.loads(line) for line in (run / "runs.jsonl").read_text(encoding="utf-8").splitlines() if line]
    if not records:
        raise UserError(f"{run}/runs.jsonl holds no timed calls")
    w = measured.workload
    slots = w.layout.total_slots
    expected = (EXPECTED_A4_GUNDAM_SLOTS if (w.mode, tuple(w.page_size or ())) == ("gundam", (1654, 2339))
                and w.max_crops >= 6 else None)
    decode = stage_totals(prun.spec, w, precision=prun.precision, hardware=prun.hardware, params=params)["decode"]
    kv_measured = records[-1].get("kv_cache_bytes")
    kv_analytic = decode.kv_cache_gb * 1e9
    checks = {
        "image_tokens_equal": all(r["image_tokens"] == slots for r in records) and expected in (None, slots),
        "exact_new_tokens": all(r["new_tokens"] == new_tokens for r in records),
        "kv_cache_matches_analytic": kv_measured is not None and abs(kv_measured - kv_analytic) < 1.0,
    }
    return {
        "schema": "llm-perf-opt.e2e/1",
        "run_dir": str(run),
        "gpu_name": prun.gpu_name,
        "hardware": prun.hardware.id,
        "workload": measured.describe(),
        "decode_mode": records[-1].get("decode_mode", "eager"),
        "image_tokens": {"preprocess": records[-1]["image_tokens"], "analytic": slots, "expected": expected},
        "kv_cache_bytes": {"measured": kv_measured, "analytic": kv_analytic},
        "stages": [
            {"stage": r.stage, "label": r.label, "measured_ms": r.measured_ms, "measured_std_ms": r.measured_std_ms,
             "n": r.n, "predicted_ms": r.predicted_ms, "predicted_over_measured": r.ratio, "bound": r.bound}
            for r in comparison.rows
        ],
        "checks": checks,
        "status": "ok" if all(checks.values()) else "check_failed",
    }


def render_table(result: dict[str, Any]) -> str:
    """Markdown: measured vs predicted per stage, then the checks."""
    from llm_perf_opt.reporting.text import table

    rows = [[s["label"], f"{s['measured_ms']:.3f}", f"{s['measured_std_ms']:.3f}", f"{s['predicted_ms']:.3f}",
             f"{s['predicted_over_measured']:.2f}", s["bound"]] for s in result["stages"]]
    head = (f"{result['workload']}; {result['decode_mode']} decode on {result['gpu_name']}; predicted on "
            f"{result['hardware']} with the default roofline parameters.")
    checks = ", ".join(f"{k} {'OK' if v else 'FAILED'}" for k, v in result["checks"].items())
    return "\n".join([head, "", table(["stage", "measured ms", "std", "predicted ms", "pred/meas", "bound"], rows),
                      "", f"checks: {checks}"])
