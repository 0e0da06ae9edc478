"""Checks of a profile run that need the inputs but not the model: all of them run before loading.

Root causes (issue 12, classes 3, 7 and 8): the model spec, the page/crop/token combination and the
cost of the run were only discovered while or after the model was built — an impossible config died
deep inside torch, ``--max-crops 1`` failed after loading, and ``profile`` with no arguments on a
machine without a GPU silently built the full model in fp32 on the CPU. Here, before any weight
exists: the spec is validated (:func:`~llm_perf_opt.specs.loader.load_model_spec` builds a checked
:class:`~llm_perf_opt.specs.model_spec.ModelSpec`), every page's workload is built and checked
against the model's context, and on a CPU the analytic model estimates the run's time; a long CPU
run starts only when ``--device cpu`` was given explicitly.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from llm_perf_opt.contracts.profile_config import ProfileConfig
from llm_perf_opt.errors import UserError
from llm_perf_opt.io.artifact_set import ArtifactSet
from llm_perf_opt.profiling.inputs import InputCollection, collect_inputs
from llm_perf_opt.specs.loader import load_model_spec
from llm_perf_opt.specs.model_spec import ModelSpec
from llm_perf_opt.specs.workload import A4_200DPI, DEFAULT_PROMPT_TOKENS, Workload, check_context

CPU_TFLOPS = 0.1
"""Rough fp32 matmul rate of a CPU for the estimate (TFLOP/s): a few cores with AVX2/AVX-512."""
CPU_BANDWIDTH_TBS = 0.02
"""Rough sustained DRAM bandwidth of a CPU for the estimate (TB/s)."""
CPU_AUTO_LIMIT_S = 120.0
"""Without an explicit ``--device cpu``, a CPU run estimated longer than this is refused."""


def page_workloads(cfg: ProfileConfig, page_sizes: Sequence[tuple[int, int]]) -> list[Workload]:
    """The analytic workload of each distinct page size (UserError for an impossible combination)."""
    return [
        Workload(
            profile_id=f"page-{w}x{h}",
            mode=cfg.mode,
            page_size=(w, h),
            max_crops=cfg.max_crops,
            prompt_tokens=DEFAULT_PROMPT_TOKENS,
            max_new_tokens=cfg.max_new_tokens,
            batch_size=1,
        )
        for w, h in sorted(set(page_sizes))
    ]


def estimate_seconds(spec: ModelSpec, workloads: Sequence[Workload], pages: int, cfg: ProfileConfig) -> float:
    """Rough time of the whole run on a CPU: Σ stages max(FLOPs / CPU rate, bytes / CPU bandwidth)
    per generate() call, times the calls (warm-up, timed repeats, one profiler pass)."""
    from llm_perf_opt.profiling.mfu import analytic_costs

    per_call = []
    for work in workloads:
        costs = analytic_costs(spec, work, precision="fp32")
        per_call.append(sum(max(c.flops / (CPU_TFLOPS * 1e12), c.bytes / (CPU_BANDWIDTH_TBS * 1e12))
                            for c in costs.values()))
    mean_call = sum(per_call) / max(len(per_call), 1)
    calls = pages * cfg.repeats + len(workloads) * cfg.warmup + (pages if cfg.torch_profiler else 0)
    return mean_call * calls


def check_config(cfg: ProfileConfig) -> ModelSpec:
    """Checks that need neither inputs nor model: the spec, and mode with max_crops (on an A4 page)."""
    spec = load_model_spec(cfg.model)
    page_workloads(cfg, [A4_200DPI])
    return spec


def check_before_load(
    cfg: ProfileConfig, device: torch.device, page_sizes: Sequence[tuple[int, int]]
) -> ModelSpec:
    """Every check that can fail without the model; returns the validated spec."""
    spec = check_config(cfg)
    workloads = page_workloads(cfg, page_sizes)
    for work in workloads:
        check_context(work, spec.decoder.max_position_embeddings, spec.name)
    if device.type == "cpu" and cfg.device is None:
        seconds = estimate_seconds(spec, workloads, len(page_sizes), cfg)
        if seconds > CPU_AUTO_LIMIT_S:
            raise UserError(
                f"no GPU found: profiling {spec.name} on the CPU in fp32 would take roughly {_duration(seconds)} "
                f"({len(page_sizes)} page(s) x {cfg.repeats} repeat(s), {cfg.max_new_tokens} new tokens; analytic "
                f"estimate at {CPU_TFLOPS * 1e3:.0f} GFLOP/s and {CPU_BANDWIDTH_TBS * 1e3:.0f} GB/s). For a quick run "
                "use --model tiny; to run it on the CPU anyway, pass --device cpu"
            )
    return spec


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def open_run_dir(
    cfg: ProfileConfig, out: Path, run_id: str, device: torch.device
) -> tuple[ArtifactSet, InputCollection]:
    """Lock ``out`` and open its staging directory, collect the inputs (synthetic pages are written into
    the staging directory) and run :func:`check_before_load`; on any failure the staging is removed.

    From here on the run's files go to the staging directory and appear in ``out`` whole at the end
    (:mod:`llm_perf_opt.io.artifact_set`)."""
    artifacts = ArtifactSet(out, kind="profile", run_id=run_id)
    stage = artifacts.open()
    try:
        inputs = collect_inputs(cfg.images, strict=cfg.strict, synthetic_dir=stage / "inputs", synthetic_seed=cfg.seed)
        if inputs.synthetic:  # held in memory; recorded where they will be after the commit
            inputs.root_dir = out / "inputs"
            for page in inputs.pages:
                page.path = artifacts.final_path(page.path)
        check_before_load(cfg, device, [(p.width, p.height) for p in inputs.pages])
    except BaseException:
        artifacts.close()
        raise
    return artifacts, inputs
