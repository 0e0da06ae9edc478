#!/usr/bin/env python3
"""Turn the JSON of ``scripts/gpu_validation.py`` into docs/validation/{README.md, table.md, predicted_vs_measured.png}.

CPU only, seconds. For every measured workload and stage: measured ms, predicted ms with the default
roofline parameters, predicted ms with parameters calibrated on ONE workload, and the errors.

Calibration (``--calibrate-on``): ``auto`` (default) uses the profile run directory the GPU script
made (``calibration-run/``, read exactly as ``analyze --calibrate-from`` reads it); ``profile`` insists
on it; ``CONFIG@N`` (e.g. ``base-b1@256``) fits to that matrix entry instead.

Usage (repository root)::

    python3 scripts/make_validation_table.py --in tmp/gpu-validation            # → docs/validation/
    python3 scripts/make_validation_table.py --in a/ --in b/ --out /tmp/val --calibrate-on base-b1@256

Rerun it after any change to the analytic model: every number, finding and the plot are regenerated.
"""
# ruff: noqa: E402

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
if (_ROOT / "src").is_dir() and str(_ROOT / "src") not in sys.path:
    sys.path.insert(0, str(_ROOT / "src"))

import argparse
import json
from typing import Any

from llm_perf_opt.calibration import compare_workload, fit_params, read_run_dir
from llm_perf_opt.calibration.gpu_matrix import MatrixData, read_matrix
from llm_perf_opt.calibration.validation import TARGET, ValidationResult, validate
from llm_perf_opt.contracts.convert import to_yaml, unstructure
from llm_perf_opt.errors import UserError
from llm_perf_opt.hardware.table import HardwareSpec, hardware_for_cuda_name, load_hardware
from llm_perf_opt.io_utils import atomic_write_bytes, atomic_write_text
from llm_perf_opt.reporting.validation_compare import pct, render_calibration_yaml
from llm_perf_opt.reporting.validation_plot import render_scatter
from llm_perf_opt.reporting.validation_table import render_readme, render_table_md
from llm_perf_opt.specs.loader import load_model_spec


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--in",
        dest="inputs",
        action="append",
        required=True,
        help="directory with validation-*.json (and calibration-run/), or a JSON file; repeatable",
    )
    p.add_argument("--out", type=Path, default=_ROOT / "docs" / "validation")
    p.add_argument("--calibrate-on", default="auto", help="auto | profile | CONFIG@N (e.g. base-b1@256)")
    p.add_argument("--hardware", default=None, help="hardware id/file (default: the GPU named in the JSON)")
    p.add_argument("--model", default=None, help="model spec (default: the one the JSON names)")
    p.add_argument(
        "--fit-scheme",
        choices=["staged", "joint"],
        default="staged",
        help="staged: each parameter from the stage it governs (default); joint: all at once",
    )
    return p.parse_args(argv)


def _hardware(ref: str | None, env: dict[str, Any]) -> HardwareSpec:
    if ref:
        return load_hardware(ref)
    hw = hardware_for_cuda_name(str(env.get("gpu_name", "")))
    if hw is None:
        raise UserError(f"GPU {env.get('gpu_name')!r} is not in the hardware table; pass --hardware")
    return hw


def _calibrate(args: argparse.Namespace, matrix: MatrixData, spec: Any, hw: HardwareSpec, dtype: str) -> tuple:
    """(fit, description, calibration workload, yaml text, the calibration run vs its fit or None)."""
    how = args.calibrate_on
    if how in ("auto", "profile") and matrix.calibration_dirs:
        override = load_hardware(args.hardware) if args.hardware else None
        run = read_run_dir(matrix.calibration_dirs[-1], hardware=override, model=spec)
        fit = fit_params(
            run.workloads, spec=run.spec, hardware=run.hardware, precision=run.precision, scheme=args.fit_scheme
        )
        desc = f"profile run `{run.run_id}` ({run.primary.describe()}; read as `analyze --calibrate-from` reads it)"
        own = compare_workload(run.primary, spec=run.spec, hardware=run.hardware, params=fit.params,
                               precision=run.precision)
        return fit, desc, run.primary.workload, render_calibration_yaml(fit, run), own
    if how == "profile":
        raise UserError("no calibration-run/ directory next to the JSON (the GPU script makes it in part 1)")
    key = "base-b1@256" if how == "auto" else how
    cfg, _, n = key.partition("@")
    wanted = f"{cfg}-n{n}"
    mw = next((m for m in matrix.measured if m.key == wanted), None)
    if mw is None:
        raise UserError(f"--calibrate-on {key}: no measured workload {wanted}")
    fit = fit_params([mw], spec=spec, hardware=hw, precision=dtype, scheme=args.fit_scheme)
    desc = f"matrix entry `{wanted}` ({mw.describe()})"
    head = f"# Roofline parameters fitted to {wanted} ({mw.describe()}) by make_validation_table.py\n"
    return fit, desc, mw.workload, head + to_yaml(fit.params), None


def print_summary(result: ValidationResult) -> None:
    print(f"calibration: {result.calibration}")
    for p in result.fit.fitted:
        print(f"  {p.name:<38} {p.start:8.4g} -> {p.value:8.4g}   {p.main_sources()}")
    print(f"{'stage':<24} {'cells':>5} {'uncal ±15%':>10} {'cal ±15%':>9} {'med|err| uncal':>14} {'med|err| cal':>12}")
    for s in result.stage_stats():
        print(
            f"{s.stage:<24} {s.count:>5} {s.within_uncalibrated:>10} {s.within_calibrated:>9} "
            f"{s.median_abs_uncalibrated:>14.1%} {s.median_abs_calibrated:>12.1%}"
        )
    misses = result.misses()
    others = result.others()
    print(f"within ±{TARGET:.0%} after calibration: {len(others) - len(misses)}/{len(others)} (other workloads)")
    for r in misses[:15]:
        print(
            f"  miss: {r.key:<20} {r.stage:<16} measured {r.measured_ms:10.3f} ms, calibrated {r.calibrated_ms:10.3f}"
            f" ms ({pct(r.error_calibrated)}, {r.bound_calibrated})"
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        matrix = read_matrix(args.inputs)
        if not matrix.measured:
            skipped = "; ".join(matrix.not_measured)
            raise UserError(f"no config was measured (every one failed or was skipped): {skipped}")
        first_args = json.loads(matrix.files[0].read_text(encoding="utf-8")).get("args", {})
        spec = load_model_spec(args.model or first_args.get("model", "deepseek-ocr"))
        dtype = first_args.get("dtype", "bf16")
        hw = _hardware(args.hardware, matrix.env)
        fit, desc, cal_workload, cal_yaml, own = _calibrate(args, matrix, spec, hw, dtype)
        result = validate(
            matrix.measured,
            spec=spec,
            hardware=hw,
            precision=dtype,
            fit=fit,
            calibration=desc,
            calibration_workload=cal_workload,
        )
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out: Path = args.out
    sources = [str(f.name) for f in matrix.files]
    atomic_write_text(out / "table.md", render_table_md(result, matrix.env))
    atomic_write_text(
        out / "README.md",
        render_readme(
            result,
            matrix.env,
            configs=matrix.configs,
            not_measured=matrix.not_measured,
            sources=sources,
            args=first_args,
            calibration_fit=own,
        ),
    )
    title = f"DeepSeek-OCR stages on {matrix.env.get('gpu_name', '?')}: predicted vs measured"
    atomic_write_bytes(out / "predicted_vs_measured.png", render_scatter(result, title))
    atomic_write_text(out / "calibration.yaml", cal_yaml)
    rows = [
        dict(unstructure(r), error_uncalibrated=r.error_uncalibrated, error_calibrated=r.error_calibrated)
        for r in result.rows
    ]
    data = {
        "env": matrix.env,
        "calibration": desc,
        "fit": unstructure(fit),
        "rows": rows,
        "workloads": result.workloads,
        "not_measured": matrix.not_measured,
        "sources": sources,
    }
    atomic_write_text(out / "results.json", json.dumps(data, indent=1, allow_nan=False, ensure_ascii=False) + "\n")
    print_summary(result)
    print(f"wrote {out}/README.md, table.md, predicted_vs_measured.png, calibration.yaml, results.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
