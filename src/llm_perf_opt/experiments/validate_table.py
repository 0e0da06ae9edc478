"""The validation table from saved profile run directories: calibrate on ONE run, predict the others.

Input: ``<root>/runs/<execution>/<entry id>/`` (what :mod:`.validate` writes; any complete
``llm-perf-opt profile`` run directory works; ``<root>/runs/hf-official/`` holds runs of the official
checkpoint code, predicted with that implementation). Per execution mode (graph, eager):

1. every complete run directory is read exactly as ``analyze --calibrate-from`` reads it
   (:func:`~llm_perf_opt.calibration.read_run_dir`); incomplete ones are listed, not used;
2. the roofline parameters are fitted to the calibration run alone
   (:func:`~llm_perf_opt.calibration.fit_params`, default base-b1-n256);
3. every stage of every run is predicted with the package defaults (uncalibrated) and with the fit
   (calibrated) by :func:`~llm_perf_opt.calibration.validation.validate`;
4. per stage, over the HELD-OUT runs (every run but the calibration run): how many cells are within
   ±10 % and ±30 % of the measurement, calibrated and uncalibrated.

Writes ``validation.json`` and ``validation.md`` under ``out``. No torch is imported.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llm_perf_opt.errors import UserError
from llm_perf_opt.experiments.common import Log, describe_error, quiet, write_json
from llm_perf_opt.experiments.validate import CALIBRATION_ID, is_complete

TOLERANCES: tuple[float, ...] = (0.10, 0.30)
"""Accuracy bands of the table: |predicted / measured − 1| ≤ 10 % (the graph-mode target after
calibration) and ≤ 30 % (the target without calibration)."""
JSON_FILE = "validation.json"
MD_FILE = "validation.md"


def _start_params(folder: str, calibration_run: Any) -> Any:
    """Package-default roofline parameters for a runs/ sub-folder: an execution mode of our model
    (graph | eager; graph runs say whether their vision and prefill were graphed too), or an
    implementation's name (hf-official: the checkpoint's own code, eager)."""
    from llm_perf_opt.analytic.roofline import RooflineParams
    from llm_perf_opt.specs.execution import IMPLEMENTATIONS

    if folder in IMPLEMENTATIONS:
        return RooflineParams(implementation=folder, expert_load_ratio=calibration_run.expert_load_ratio)
    return RooflineParams(
        execution=folder,
        prefill_execution=calibration_run.prefill_execution,
        expert_load_ratio=calibration_run.expert_load_ratio,
        graph_stage_timing=calibration_run.graph_stage_timing,
    )


def within(error: float, tol: float) -> bool:
    return abs(error) <= tol + 1e-12


def stage_counts(rows: Sequence[dict[str, Any]], tolerances: Sequence[float] = TOLERANCES) -> list[dict[str, Any]]:
    """Per stage over held-out rows: cells, and cells within each tolerance, uncalibrated and calibrated."""
    stages = list(dict.fromkeys(r["stage"] for r in rows))
    out = []
    for stage in [*stages, "all"]:
        cells = [r for r in rows if r["held_out"] and (stage == "all" or r["stage"] == stage)]
        if not cells:
            continue
        entry: dict[str, Any] = {"stage": stage, "cells": len(cells)}
        for tol in tolerances:
            pct = round(100 * tol)
            entry[f"uncalibrated_within_{pct}"] = sum(within(r["error_uncalibrated"], tol) for r in cells)
            entry[f"calibrated_within_{pct}"] = sum(within(r["error_calibrated"], tol) for r in cells)
        out.append(entry)
    return out


def _runs(folder: Path) -> tuple[dict[str, Path], list[str]]:
    done, skipped = {}, []
    for path in sorted(p for p in folder.iterdir() if p.is_dir()):
        if is_complete(path):
            done[path.name] = path
        else:
            skipped.append(f"{folder.name}/{path.name}: incomplete or unfinished (not used)")
    return done, skipped


def table_for(folder: Path, *, calibrate_on: str, hardware: Any = None, fallback_model: Any = None) -> dict[str, Any]:
    """Calibration, rows and counts of one execution mode's run directories; ``fallback_model`` (a ModelSpec)
    stands in for runs whose own model spec cannot be rebuilt here (e.g. official-code runs that name a
    checkpoint directory of the machine they ran on)."""
    from llm_perf_opt.calibration import fit_params, read_run_dir
    from llm_perf_opt.calibration.validation import validate
    from llm_perf_opt.io.convert import unstructure

    execution = folder.name
    dirs, skipped = _runs(folder)
    if calibrate_on not in dirs:
        raise UserError(f"{folder}: no complete calibration run {calibrate_on!r} (have: {', '.join(dirs) or 'none'})")
    runs = {}
    for name, path in dirs.items():
        try:
            runs[name] = read_run_dir(path, hardware=hardware)
        except UserError as exc:
            if fallback_model is None:
                skipped.append(f"{execution}/{name}: {exc}")
                continue
            try:
                runs[name] = read_run_dir(path, hardware=hardware, model=fallback_model)
            except UserError as again:
                skipped.append(f"{execution}/{name}: {again}")
    if calibrate_on not in runs:
        reason = next((s for s in skipped if s.startswith(f"{execution}/{calibrate_on}:")), "unreadable")
        raise UserError(f"{folder}: the calibration run cannot be read: {reason}")
    cal = runs[calibrate_on]
    start = _start_params(execution, cal)
    fit = fit_params(cal.workloads, spec=cal.spec, hardware=cal.hardware, precision=cal.precision, start=start)
    owner = {m.key: name for name, run in runs.items() for m in run.workloads}
    measured = [m for run in runs.values() for m in run.workloads]
    result = validate(measured, spec=cal.spec, hardware=cal.hardware, precision=cal.precision, fit=fit,
                      calibration=f"profile run {cal.run_id}", calibration_workload=None, start=start)
    rows = [
        {"run": owner[r.key], "stage": r.stage, "measured_ms": r.measured_ms, "measured_std_ms": r.measured_std_ms,
         "n": r.n, "uncalibrated_ms": r.uncalibrated_ms, "calibrated_ms": r.calibrated_ms,
         "error_uncalibrated": r.error_uncalibrated, "error_calibrated": r.error_calibrated,
         "bound_calibrated": r.bound_calibrated, "held_out": owner[r.key] != calibrate_on}
        for r in result.rows
    ]
    return {
        "execution": execution,
        "calibration_run": calibrate_on,
        "hardware": cal.hardware.id,
        "precision": cal.precision,
        "fit": unstructure(fit.params),
        "workloads": {owner[k]: text for k, text in result.workloads.items()},
        "rows": rows,
        "counts": stage_counts(rows),
        "not_used": skipped,
    }


def build_table(root: Path, *, out: Path | None = None, calibrate_on: str = CALIBRATION_ID,
                hardware: str | None = None, model: str | None = None, log: Log = quiet) -> dict[str, Any]:
    """Rebuild the table from ``root/runs/*/``; write validation.json and validation.md under ``out``.
    ``model``: the spec for runs whose own cannot be rebuilt here (see :func:`table_for`)."""
    from llm_perf_opt.hardware.table import load_hardware
    from llm_perf_opt.io import atomic_write_text
    from llm_perf_opt.specs.loader import load_model_spec

    runs_root = root / "runs"
    if not runs_root.is_dir():
        raise UserError(f"{root} has no runs/ directory (the output of 'llm-perf-opt experiment validate')")
    hw = load_hardware(hardware) if hardware else None
    fallback = load_model_spec(model) if model else None
    data: dict[str, Any] = {"schema": "llm-perf-opt.validation-table/1", "root": str(root), "executions": {},
                            "errors": []}
    for folder in sorted(p for p in runs_root.iterdir() if p.is_dir()):
        try:
            data["executions"][folder.name] = table_for(folder, calibrate_on=calibrate_on, hardware=hw,
                                                        fallback_model=fallback)
        except UserError as exc:
            data["errors"].append(f"{folder.name}: {exc}")
            log(f"{folder.name}: {exc}")
        except Exception as exc:
            data["errors"].append(f"{folder.name}: {describe_error(exc)}")
    if not data["executions"]:
        raise UserError(f"no table could be built from {runs_root}: {'; '.join(data['errors']) or 'no runs'}")
    data["env"] = _env(runs_root, calibrate_on)
    target = out or root
    write_json(target / JSON_FILE, data)
    atomic_write_text(target / MD_FILE, render_markdown(data))
    return data


def _env(runs_root: Path, calibrate_on: str) -> dict[str, Any]:
    for path in sorted(runs_root.glob(f"*/{calibrate_on}/env.json")):
        try:
            env = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        keys = ("device_name", "driver_version", "cuda_version", "torch_version", "transformers_version",
                "python_version", "git")
        return {k: env.get(k) for k in keys}
    return {}


def render_markdown(data: dict[str, Any]) -> str:
    """Counts per stage and mode, then every held-out cell: measured, predicted, error."""
    from llm_perf_opt.reporting.text import table

    env = data.get("env") or {}
    lines = [
        "# Validation: predicted vs measured per stage",
        "",
        f"Device {env.get('device_name', '?')}, driver {env.get('driver_version')}, CUDA {env.get('cuda_version')}, "
        f"torch {env.get('torch_version')}, transformers {env.get('transformers_version')}, Python "
        f"{env.get('python_version')}, commit {(env.get('git') or {}).get('commit')}. Calibrated on ONE run per "
        "execution mode; held-out = every other run. Error = predicted / measured − 1.",
    ]
    for execution, part in data["executions"].items():
        lines += ["", f"## {execution} mode (calibrated on `{part['calibration_run']}`, {part['hardware']}, "
                  f"{part['precision']})", ""]
        head = ["stage", "cells"] + [f"{kind} ±{round(100 * t)}%" for t in TOLERANCES
                                     for kind in ("uncalibrated", "calibrated")]
        rows = [[c["stage"], str(c["cells"])] + [f"{c[f'{kind}_within_{round(100 * t)}']}/{c['cells']}"
                                                 for t in TOLERANCES for kind in ("uncalibrated", "calibrated")]
                for c in part["counts"]]
        lines += [table(head, rows), "", "Every cell (★ = the calibration run itself, not counted):", ""]
        cells = [[("" if r["held_out"] else "★ ") + r["run"], r["stage"], f"{r['measured_ms']:.3f}",
                  f"{r['uncalibrated_ms']:.3f}", f"{100 * r['error_uncalibrated']:+.1f}%",
                  f"{r['calibrated_ms']:.3f}", f"{100 * r['error_calibrated']:+.1f}%"] for r in part["rows"]]
        lines.append(table(["run", "stage", "measured ms", "uncalibrated ms", "error", "calibrated ms", "error"],
                           cells))
        if part["not_used"]:
            lines += ["", "Not used: " + "; ".join(part["not_used"])]
    if data.get("errors"):
        lines += ["", "Errors: " + "; ".join(data["errors"])]
    return "\n".join(lines) + "\n"
