"""Read the JSON files of ``scripts/gpu_validation.py`` into measured workloads.

Each measured config (mode, page size, batch) and token budget N becomes one
:class:`~llm_perf_opt.calibration.measured.MeasuredWorkload` keyed ``<config>-n<N>``: its vision
and prefill stages are those of the config's generations (shared by every N, hence one ``group``),
its decode and total are read at token N of the same generations. The exact analytic input is
rebuilt from the recorded mode, page size, max crops, prompt length and batch, and must reproduce
the recorded tile grid and image-token count. No torch is imported.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from attrs import define, field

from llm_perf_opt.calibration.measured import MeasuredWorkload, StageSample
from llm_perf_opt.data.stages import MEASURED_STAGE_KEYS
from llm_perf_opt.errors import UserError
from llm_perf_opt.specs.workload import Workload

SCHEMA = "llm-perf-opt.gpu-validation/1"
_PER_BUDGET = ("decode", "total")
"""Stages a GPU matrix records per token budget (the others once per configuration)."""


@define(kw_only=True)
class MatrixData:
    """Every measured config of one or more parts, plus the environment and the calibration run(s)."""

    files: list[Path]
    env: dict[str, Any]
    configs: list[dict[str, Any]]
    """Raw configs (the last file wins for a config measured twice, an ``ok`` one over any other)."""
    measured: list[MeasuredWorkload] = field(factory=list)
    calibration_dirs: list[Path] = field(factory=list)
    not_measured: list[str] = field(factory=list)
    """``<config>: <status> (<why>)`` for every config without numbers."""


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read: {str(exc).splitlines()[0]}") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise UserError(f"{path}: not a gpu_validation.py result (schema {SCHEMA!r})")
    return data


def _workload(cfg: dict[str, Any], n: int, source: Path) -> Workload:
    try:
        return _checked_workload(cfg, n, source)
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{source}: config {cfg.get('id')}: malformed ({type(exc).__name__}: {exc})") from None
    except UserError as exc:
        if str(exc).startswith(str(source)):
            raise
        raise UserError(f"{source}: config {cfg.get('id')}: {exc}") from None


def _checked_workload(cfg: dict[str, Any], n: int, source: Path) -> Workload:
    w = Workload(
        profile_id=f"{cfg['id']}-n{n}",
        mode=cfg["mode"],
        page_size=tuple(cfg["page_size"]),
        max_crops=int(cfg.get("max_crops", 9)),
        prompt_tokens=int(cfg["prompt_len"]) - int(cfg["image_tokens"]),
        max_new_tokens=n,
        batch_size=int(cfg["batch_size"]),
        num_pages=int(cfg["batch_size"]),
        description=f"gpu_validation config {cfg['id']}, {n} new tokens",
    )
    lay = w.layout
    if list(lay.tile_grid) != list(cfg["tile_grid"]) or lay.total_slots != int(cfg["image_tokens"]):
        raise UserError(
            f"{source}: config {cfg['id']}: the analytic layout ({list(lay.tile_grid)}, {lay.total_slots} slots) "
            f"differs from the measured one ({cfg['tile_grid']}, {cfg['image_tokens']} slots)"
        )
    return w


def measured_of(cfg: dict[str, Any], source: Path) -> list[MeasuredWorkload]:
    """One measured workload per token budget of an ``ok`` config."""
    runs = cfg.get("runs") or []
    out = []
    budgets = sorted({int(n) for r in runs for n in r.get("decode_ms", {})})
    shared = {}
    for stage, col in MEASURED_STAGE_KEYS.items():
        if stage in _PER_BUDGET:
            continue
        sample = StageSample.of(r["stages_ms"][col] for r in runs if r["stages_ms"].get(col, 0) > 0)
        if sample is not None:
            shared[stage] = sample
    for n in budgets:
        stages = dict(shared)
        for stage in _PER_BUDGET:
            key = MEASURED_STAGE_KEYS[stage]
            sample = StageSample.of(r[key][str(n)] for r in runs if str(n) in r.get(key, {}))
            if sample is not None:
                stages[stage] = sample
        out.append(
            MeasuredWorkload(
                key=f"{cfg['id']}-n{n}",
                workload=_workload(cfg, n, source),
                stages=stages,
                source=f"{source.name} config {cfg['id']} ({len(runs)} generation(s), token {n})",
                group=cfg["id"],
            )
        )
    return out


def read_matrix(paths: Sequence[str | Path]) -> MatrixData:
    """``validation-*.json`` files (or directories holding them) → every measured workload."""
    files: list[Path] = []
    for p in (Path(x) for x in paths):
        if p.is_dir():
            files.extend(sorted(p.glob("validation-*.json")))
        elif p.is_file():
            files.append(p)
        else:
            raise UserError(f"{p} does not exist")
    if not files:
        raise UserError(f"no validation-*.json in {', '.join(str(p) for p in paths)}")
    env: dict[str, Any] = {}
    chosen: dict[str, tuple[dict[str, Any], Path]] = {}
    cal_dirs: list[Path] = []
    for f in files:
        data = _load(f)
        env = env or dict(data.get("env") or {})
        cal = data.get("calibration_run")
        if isinstance(cal, dict) and cal.get("status") == "ok" and (f.parent / cal["dir"]).is_dir():
            cal_dirs.append(f.parent / cal["dir"])
        for cfg in data.get("configs", []):
            prev = chosen.get(cfg["id"])
            if prev is None or cfg.get("status") == "ok" or prev[0].get("status") != "ok":
                chosen[cfg["id"]] = (cfg, f)
    out = MatrixData(files=files, env=env, configs=[c for c, _ in chosen.values()], calibration_dirs=cal_dirs)
    for cfg, f in chosen.values():
        if cfg.get("status") == "ok":
            out.measured.extend(measured_of(cfg, f))
        else:
            out.not_measured.append(f"{cfg['id']}: {cfg.get('status')} ({cfg.get('error', '')})")
    return out
