"""Read a ``llm-perf-opt profile`` run directory: the GPU, the model, and each exact workload measured.

Files used (written by :mod:`llm_perf_opt.profiling.artifacts`):

* ``metrics.json`` — the :class:`~llm_perf_opt.data.profile.LLMProfileReport`: model id and dtype,
  the input images with their sizes, ``incomplete`` and warnings;
* ``env.json`` — ``device_name`` (``torch.cuda.get_device_name``, mapped to the hardware table by
  exact name) and ``argv`` (``--mode`` / ``--max-crops`` of the CLI run);
* ``runs.jsonl`` — one record per timed call: batch size, image tokens, tile grid, prompt length,
  new tokens and every stage time. Calls with the same exact input form one
  :class:`~llm_perf_opt.calibration.measured.MeasuredWorkload` (mean over its calls).

The resolution mode comes from ``argv`` when the run was made with the CLI; otherwise it is
inferred from the recorded tile grid and image-token count. Either way the analytic layout of the
workload must reproduce the recorded grid and token count exactly, or the run is refused.
Every problem is a one-line :class:`~llm_perf_opt.errors.UserError`. No torch is imported.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from attrs import define, field

from llm_perf_opt.analytic.roofline import RooflineParams
from llm_perf_opt.calibration.measured import MeasuredWorkload, StageSample
from llm_perf_opt.data.profile import LLMProfileReport
from llm_perf_opt.data.stages import MEASURED_STAGE_KEYS
from llm_perf_opt.errors import UserError
from llm_perf_opt.hardware.table import HARDWARE_TABLE, HardwareSpec, hardware_for_cuda_name
from llm_perf_opt.io.documents import parse_json
from llm_perf_opt.io.files import MAX_REPORT_BYTES, read_text
from llm_perf_opt.specs.image_tokens import RESOLUTION_MODES, image_token_layout
from llm_perf_opt.specs.model_spec import ModelSpec
from llm_perf_opt.specs.workload import Workload

_RECORD_INT_KEYS = ("batch_size", "image_tokens", "prompt_len", "new_tokens")
_GPU_STAGE_OF = {"sam": "sam_gpu", "clip": "clip_gpu", "projector": "projector_gpu", "prefill": "prefill_decoder_gpu",
                 "decode": "decode_gpu"}
"""operators_per_stage key (innermost range; ``prefill`` is the decoder part) → GPU-busy stage."""
_MODE_ORDER = ("gundam", "base", "large", "small", "tiny")
_CROP_CHOICES = (9, 6, *range(2, 6), *range(7, 9), *range(10, 17))


@define(kw_only=True)
class ProfileRun:
    """What a calibration or a comparison needs from one profile run."""

    path: Path
    run_id: str
    gpu_name: str
    hardware: HardwareSpec
    hardware_source: str
    spec: ModelSpec
    precision: str
    mode: str
    max_crops: int
    mode_source: str
    workloads: list[MeasuredWorkload]
    n_runs: int
    incomplete: bool = False
    warnings: list[str] = field(factory=list)
    execution: str = "eager"
    """How the timed calls' decode ran: ``graph`` when every call replayed graphs, else ``eager``."""
    prefill_execution: str = "eager"
    """How their vision and prefill ran: ``graph`` when every call replayed graphs (older runs: eager)."""
    expert_load_ratio: float = 1.0
    """The MoE routing skew its routing census measured (mean over the MoE layers; 1.0 when the run has none)."""
    graph_stage_timing: str = "range"
    """``span`` when every timed call timed its replayed vision stages in-graph (``gpu_span_stages``), else
    ``range`` (eager runs, and graph runs made before in-graph spans existed)."""

    def start_params(self) -> RooflineParams:
        """Package-default roofline parameters for the way this run executed, routed and was timed (the start
        of a fit)."""
        return RooflineParams(
            execution=self.execution,
            prefill_execution=self.prefill_execution,
            expert_load_ratio=self.expert_load_ratio,
            graph_stage_timing=self.graph_stage_timing,
        )

    @property
    def primary(self) -> MeasuredWorkload:
        """The workload with the most timed calls (the only one in a single-input run)."""
        return max(self.workloads, key=lambda m: max((s.n for s in m.stages.values()), default=0))


def _read_json(path: Path, what: str) -> Any:
    if not path.exists():
        raise UserError(f"{path}: file does not exist ({what})")
    return parse_json(read_text(path, "", max_bytes=MAX_REPORT_BYTES), str(path))


def _load_metrics(run: Path) -> LLMProfileReport:
    from llm_perf_opt.io.convert import load

    metrics = run / "metrics.json"
    if not metrics.is_file():
        raise UserError(
            f"{run} has no metrics.json: not the output directory of a finished 'llm-perf-opt profile' run "
            "(an interrupted run still writes one, marked incomplete)"
        )
    return load(metrics, LLMProfileReport)


def _records(run: Path) -> list[dict[str, Any]]:
    path = run / "runs.jsonl"
    if not path.is_file():
        raise UserError(f"{run} has no runs.jsonl (the raw timed calls 'llm-perf-opt profile' writes)")
    out = []
    for lineno, line in enumerate(read_text(path, "", max_bytes=MAX_REPORT_BYTES).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}: line {lineno} is not valid JSON: {exc.msg}") from None
        if not isinstance(rec, dict):
            raise UserError(f"{path}: line {lineno} is not a JSON object")
        missing = [k for k in (*_RECORD_INT_KEYS, "tile_grid", "pages", "total_ms") if k not in rec]
        if missing:
            raise UserError(f"{path}: line {lineno} lacks {', '.join(missing)}")
        for key in _RECORD_INT_KEYS:
            if isinstance(rec[key], bool) or not isinstance(rec[key], int) or rec[key] < 0:
                raise UserError(f"{path}: line {lineno}: {key} must be a non-negative integer, got {rec[key]!r}")
        out.append(rec)
    if not out:
        raise UserError(f"{path} holds no timed calls: the run measured nothing")
    return out


def _hardware(run: Path, env: dict[str, Any], report: LLMProfileReport, override: HardwareSpec | None) -> tuple:
    name = str(env.get("device_name") or report.meta.gpu_name or "").strip()
    device = str(env.get("device") or report.model.device)
    known = hardware_for_cuda_name(name) if name else None
    if override is not None:
        note = None
        if known is not None and known.id != override.id:
            note = f"{run.name} was measured on {name!r} ({known.id}) but --hardware {override.id} was given"
        return override, f"--hardware {override.id}", name, note
    if device.startswith("cpu") or name.lower() == "cpu":
        raise UserError(
            f"{run}: the run was measured on the CPU ({name or 'cpu'}), which has no row in the hardware table; "
            "pass --hardware ID|FILE to fit against a given set of peaks"
        )
    if known is None:
        names = sorted(n for hw in HARDWARE_TABLE.values() for n in hw.cuda_names)
        raise UserError(
            f"{run}: env.json names GPU {name or '(none)'!r}, which is not in the hardware table (exact CUDA "
            f"names: {', '.join(names)}); pass --hardware with a table id or a YAML file of its peaks"
        )
    return known, f"env.json device_name {name!r} → {known.id}", name, None


def _model(run: Path, report: LLMProfileReport, override: ModelSpec | None) -> ModelSpec:
    from llm_perf_opt.specs.loader import load_model_spec

    if override is not None:
        return override
    for ref in (report.model.id, report.model.model_path):
        try:
            return load_model_spec(ref)
        except UserError:
            continue
    raise UserError(
        f"{run}: cannot rebuild the model spec of {report.model.id!r} ({report.model.model_path}); "
        "pass --model with its spec name or checkpoint directory"
    )


def _argv_mode(env: dict[str, Any]) -> tuple[str | None, int | None]:
    argv = env.get("argv")
    if not isinstance(argv, list) or "profile" not in argv:
        return None, None
    values: dict[str, str] = {}
    for i, arg in enumerate(argv):
        for flag in ("--mode", "--max-crops"):
            if arg == flag and i + 1 < len(argv):
                values[flag] = str(argv[i + 1])
            elif isinstance(arg, str) and arg.startswith(flag + "="):
                values[flag] = arg.split("=", 1)[1]
    mode = values.get("--mode", "gundam")  # the CLI defaults
    try:
        crops = int(values.get("--max-crops", "9"))
    except ValueError:
        crops = None
    return (mode if mode in RESOLUTION_MODES else None), crops


def _matches(mode: str, crops: int, page: tuple[int, int], grid: list[int], tokens: int) -> bool:
    try:
        lay = image_token_layout(RESOLUTION_MODES[mode], page, max_crops=crops)
    except UserError:
        return False
    return list(lay.tile_grid) == list(grid) and lay.total_slots == tokens


def _resolve_mode(run: Path, env: dict[str, Any], groups: list[tuple[tuple[int, int], dict[str, Any]]]) -> tuple:
    """(mode, max_crops, source): from argv when it reproduces every record, else inferred."""
    mode, crops = _argv_mode(env)

    def fits(m: str, c: int) -> bool:
        return all(_matches(m, c, page, rec["tile_grid"], rec["image_tokens"]) for page, rec in groups)

    if mode is not None and crops is not None:
        if fits(mode, crops):
            return mode, crops, f"env.json argv (--mode {mode} --max-crops {crops})"
        raise UserError(
            f"{run}: argv says --mode {mode} --max-crops {crops}, but that layout does not reproduce the recorded "
            "tile grid / image-token count; the run directory is inconsistent"
        )
    for m in _MODE_ORDER:
        for c in _CROP_CHOICES if RESOLUTION_MODES[m].crop_mode else (9,):
            if fits(m, c):
                return m, c, f"inferred from the recorded tile grid and image-token count ({m}, max crops {c})"
    page, rec = groups[0]
    raise UserError(
        f"{run}: no resolution mode reproduces page {page[0]}x{page[1]} with tile grid {rec['tile_grid']} and "
        f"{rec['image_tokens']} image tokens"
    )


def _page_sizes(report: LLMProfileReport) -> dict[str, set[tuple[int, int]]]:
    sizes: dict[str, set[tuple[int, int]]] = {}
    for img in report.input_set.images:
        sizes.setdefault(Path(img.path).name, set()).add((img.width, img.height))
    return sizes


def _page_of(run: Path, rec: dict[str, Any], sizes: dict[str, set[tuple[int, int]]]) -> tuple[int, int]:
    pages = rec["pages"]
    if not isinstance(pages, list) or not pages:
        raise UserError(f"{run}/runs.jsonl: record {rec.get('index')} names no pages")
    found = sizes.get(str(pages[0]))
    if not found:
        raise UserError(f"{run}: page {pages[0]!r} of record {rec.get('index')} is not in metrics.json input_set")
    return sorted(found)[0]  # pages of one name but different sizes: any gives the recorded layout (checked)


def read_run_dir(
    path: str | Path,
    *,
    hardware: HardwareSpec | None = None,
    model: ModelSpec | None = None,
    allow_incomplete: bool = False,
) -> ProfileRun:
    """Read a profile run; ``hardware`` / ``model`` override what the run names (needed for a GPU
    that is not in the table, or a spec that cannot be rebuilt from its id)."""
    run = Path(path)
    if not run.exists():
        raise UserError(f"profile run directory {run} does not exist")
    if not run.is_dir():
        raise UserError(f"{run} is not a directory (pass the output directory of 'llm-perf-opt profile')")
    report = _load_metrics(run)
    warnings: list[str] = []
    if report.incomplete:
        reason = next((w for w in report.warnings if w.startswith("INCOMPLETE")), "INCOMPLETE")
        if not allow_incomplete:
            raise UserError(
                f"{run} is marked incomplete ({reason}); its stage times may cover only part of the planned "
                "calls, so it is not used — re-run 'llm-perf-opt profile' to completion"
            )
        warnings.append(f"{run.name} is marked incomplete ({reason}); using the calls that finished")
    env_path = run / "env.json"
    env: dict[str, Any] = {}
    if env_path.is_file():
        data = _read_json(env_path, "environment")
        if not isinstance(data, dict):
            raise UserError(f"{env_path}: expected a JSON object")
        env = data
    hw, hw_source, gpu_name, note = _hardware(run, env, report, hardware)
    if note:
        warnings.append(note)
    spec = _model(run, report, model)
    records = _records(run)
    sizes = _page_sizes(report)
    keyed: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    first_page: dict[tuple[Any, ...], tuple[int, int]] = {}
    for rec in records:
        key = (tuple(rec["tile_grid"]), rec["image_tokens"], rec["prompt_len"], rec["new_tokens"], rec["batch_size"])
        keyed.setdefault(key, []).append(rec)
        first_page.setdefault(key, _page_of(run, rec, sizes))
    mode, crops, mode_source = _resolve_mode(run, env, [(first_page[k], recs[0]) for k, recs in keyed.items()])
    workloads = []
    for i, (key, recs) in enumerate(keyed.items()):
        _grid, image_tokens, prompt_len, new_tokens, batch = key
        workload = Workload(
            profile_id=f"{report.run_id}#{i}" if len(keyed) > 1 else report.run_id,
            mode=mode,
            page_size=first_page[key],
            max_crops=crops,
            prompt_tokens=max(prompt_len - image_tokens, 1),
            max_new_tokens=new_tokens,
            batch_size=batch,
            num_pages=batch,
            description=f"exact input of profile run {report.run_id}",
        )
        stages = {}
        for stage, col in MEASURED_STAGE_KEYS.items():
            if stage == "decode" and new_tokens <= 1:
                continue
            sample = StageSample.of(float(r[col]) for r in recs if isinstance(r.get(col), int | float) and r[col] > 0)
            if sample is not None:
                stages[stage] = sample
        workloads.append(
            MeasuredWorkload(
                key=workload.profile_id,
                workload=workload,
                stages=stages,
                source=f"{run} ({len(recs)} timed call(s))",
                group=workload.profile_id,
            )
        )
    if len(workloads) == 1 and report.operators_per_stage:  # one input: the profiler pass is of that input
        batches = len({r.get("batch_index", 0) for r in records})
        for range_name, stage in _GPU_STAGE_OF.items():
            ops = report.operators_per_stage.get(range_name, [])
            busy = sum(op.self_cuda_time_ms or 0.0 for op in ops)
            if busy > 0:
                workloads[0].stages[stage] = StageSample(mean_ms=busy / batches, n=batches)
    return ProfileRun(
        path=run,
        run_id=report.run_id,
        gpu_name=gpu_name,
        hardware=hw,
        hardware_source=hw_source,
        spec=spec,
        precision=report.model.dtype,
        mode=mode,
        max_crops=crops,
        mode_source=mode_source,
        workloads=workloads,
        n_runs=len(records),
        incomplete=report.incomplete,
        warnings=warnings,
        execution=_all_graph(records, "decode_mode"),
        prefill_execution=_all_graph(records, "prefill_mode"),
        expert_load_ratio=_load_ratio(report),
        graph_stage_timing="span" if records and all(r.get("gpu_span_stages") for r in records) else "range",
    )


def _load_ratio(report: LLMProfileReport) -> float:
    """The routing census' mean ratio (profiling/routing.py), when the run has a usable one; else uniform."""
    stats = report.aggregates.get("moe_expert_load_ratio")
    return stats.mean if stats is not None and 0.0 < stats.mean <= 1.0 else 1.0


def _all_graph(records: list[dict[str, Any]], key: str) -> str:
    """``graph`` when every record says so under ``key``, else ``eager`` (the field absent: eager)."""
    return "graph" if all(rec.get(key) == "graph" for rec in records) else "eager"
