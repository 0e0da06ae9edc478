"""The Stage-1 profiling run: load once, warm up, timed runs, profiler passes, MFU, artifacts.

Order of work (each phase reports progress through the optional callback; nothing here prints):

1. resolve device and dtype, collect and validate the images (synthetic pages without ``images``);
2. load the model once (:class:`~llm_perf_opt.profiling.session.ProfileSession`);
3. preprocess every page, group pages into batches, build the model inputs once per batch;
4. warm-up generations (not counted), one per distinct batch shape per warm-up pass;
5. timed runs: every batch × repeat, stage boundaries timed by a synchronizing
   :class:`~llm_perf_opt.profiling.timers.StageClock`, peak memory reset per run;
6. a bounded torch.profiler window per distinct batch shape (prefill + K decode steps) for the
   operator tables and the per-stage busy/idle timeline (:mod:`~llm_perf_opt.profiling.profile_window`);
7. MFU from the analytic model of each batch's exact input; statistics; artifacts.

An interruption (Ctrl-C, out of memory, any error) after the inputs are known still writes every
artifact, marked incomplete, with what finished.
"""

from __future__ import annotations

import functools
import gc
import importlib
import time
from datetime import UTC, datetime
from typing import Any

import torch

from llm_perf_opt.errors import UserError
from llm_perf_opt.io.signals import interruption_name
from llm_perf_opt.models.deepseek_ocr.generate import resolve_decode_mode
from llm_perf_opt.profiling import mfu as mfu_mod
from llm_perf_opt.profiling.env import capture_environment, detect_hardware, device_name, resolve_device, resolve_dtype
from llm_perf_opt.profiling.nvtx_ranges import RangeFactory, annotated_range, nvtx_range
from llm_perf_opt.profiling.preflight import check_config, open_run_dir
from llm_perf_opt.profiling.profile_window import batch_workload, profile_windows
from llm_perf_opt.profiling.records import RunRecord, stage_bounds
from llm_perf_opt.profiling.session import Batch, ProfileSession, group_batches
from llm_perf_opt.profiling.state import (
    DEFAULT_OUTPUT_ROOT,
    ProfileConfig,
    ProfileIncomplete,
    ProfileResult,
    ProfileState,
    ProgressCallback,
    ProgressEvent,
    new_run_id,
)
from llm_perf_opt.profiling.timers import measure_call


class LLMProfileRunner:
    """Runs one profiling job end to end; see the module docstring for the phases."""

    def __init__(
        self, config: ProfileConfig, progress: ProgressCallback | None = None, session: ProfileSession | None = None
    ) -> None:
        config.validate()
        self.config = config
        self._progress = progress
        self._session = session
        """A model already loaded (same model, weights, device and dtype as ``config``): many runs, one load."""

    def set_progress(self, progress: ProgressCallback | None) -> None:
        """Replace the progress callback (the CLI installs its progress bar after the inputs are known)."""
        self._progress = progress

    def _emit(self, phase: str, done: int, total: int, message: str = "") -> None:
        if self._progress is not None:
            self._progress(ProgressEvent(phase=phase, done=done, total=total, message=message))

    def prepare_state(self) -> ProfileState:
        """Resolve device, dtype, output directory and inputs (all user errors surface here)."""
        cfg = self.config
        try:  # fail before any measurement when an artifact writer cannot be imported (e.g. no cattrs)
            importlib.import_module("llm_perf_opt.profiling.artifacts")
        except ImportError as exc:
            raise UserError(f"cannot write profile artifacts: {exc} (install the missing package)") from None
        device = resolve_device(cfg.device)
        dtype = resolve_dtype(cfg.dtype, device)
        if cfg.decode_mode in ("graph", "both"):  # graph needs CUDA: say so before anything is loaded
            resolve_decode_mode("graph", device)
        check_config(cfg)  # spec and options first: nothing is written for an impossible request
        run_id = cfg.run_id or new_run_id()
        out = (cfg.output_dir or DEFAULT_OUTPUT_ROOT / run_id).expanduser().resolve()
        self._emit("inputs", 0, 1, "collecting images")
        artifacts, inputs = open_run_dir(cfg, out, run_id, device)  # locked, staged, inputs checked
        self._emit("inputs", 1, 1, f"{len(inputs.pages)} images")
        state = ProfileState(
            config=cfg,
            run_id=run_id,
            created_at=datetime.now(UTC),
            output_dir=out,
            device=device,
            dtype=dtype,
            inputs=inputs,
            artifacts=artifacts,
        )
        state.warnings.extend(i.line() for i in inputs.issues)
        hw = detect_hardware(device)
        state.peaks = mfu_mod.resolve_peaks(
            hw,
            dtype,
            device_type=device.type,
            device_name=device_name(device),
            peak_tflops=cfg.peak_tflops,
            peak_bandwidth_tbs=cfg.peak_bandwidth_tbs,
        )
        if not state.peaks.available:
            state.warnings.append(state.peaks.source)
        state.env = capture_environment(
            device,
            seed=cfg.seed,
            extra={
                "hardware_id": state.peaks.hardware_id,
                "peak_tflops_used": state.peaks.tflops,
                "peak_bandwidth_tbs_used": state.peaks.bandwidth_tbs,
                "peaks_source": state.peaks.source,
                "dtype": dtype,
            },
        )
        return state

    def run(self, state: ProfileState | None = None) -> ProfileResult:
        """Measure and write every artifact; on any interruption write them marked incomplete."""
        state = state or self.prepare_state()
        try:
            return self._measure_and_write(state)
        finally:  # uncommitted staging (a second Ctrl-C while writing) is removed; the lock is released
            if state.artifacts is not None:
                state.artifacts.close()

    def _measure_and_write(self, state: ProfileState) -> ProfileResult:
        from llm_perf_opt.profiling.artifacts import write_artifacts

        try:
            self._measure(state)
        except KeyboardInterrupt as exc:
            state.incomplete_reason = f"interrupted ({interruption_name(exc)}) during {state.phase}"
            write_artifacts(state)
            raise
        except torch.cuda.OutOfMemoryError as exc:
            state.incomplete_reason = f"out of GPU memory during {state.phase}: {str(exc).splitlines()[0]}"
            write_artifacts(state)
            raise ProfileIncomplete(state.incomplete_reason, state.output_dir) from None
        except UserError:
            if state.phase == "load":  # a bad --model / --weights: nothing measured, no report
                raise
            state.incomplete_reason = f"stopped during {state.phase}"
            write_artifacts(state)
            raise
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            state.incomplete_reason = f"{type(exc).__name__} during {state.phase}: {first}"
            write_artifacts(state)
            raise
        self._emit("report", 0, 1, "writing artifacts")
        report = write_artifacts(state)
        self._emit("report", 1, 1, str(state.output_dir))
        return ProfileResult(state=state, report=report)

    # ------------------------------------------------------------------ phases

    def _phase(self, state: ProfileState, name: str) -> float:
        state.phase = name
        return time.perf_counter()

    def _measure(self, state: ProfileState) -> None:
        cfg = self.config
        t0 = self._phase(state, "load")
        self._emit("load", 0, 1, f"loading {cfg.model}")
        session = self._session or ProfileSession.load(
            model=cfg.model,
            weights=cfg.weights,
            device=state.device,
            dtype=state.dtype,
            attn_impl=cfg.attn_impl,
            seed=cfg.seed,
            trust_remote_code=cfg.trust_remote_code,
        )
        state.session = session
        state.notes.extend(session.notes)
        state.phase_seconds["load"] = time.perf_counter() - t0
        self._emit("load", 1, 1, f"loaded in {state.phase_seconds['load']:.1f} s")

        t0 = self._phase(state, "prepare")
        pages = state.inputs.pages
        items = []
        for i, page in enumerate(pages):
            self._emit("prepare", i, len(pages), page.name)
            items.append(session.prepare(page, cfg.mode, cfg.max_crops))
        self._emit("prepare", len(pages), len(pages))
        state.batches = group_batches(items, cfg.batch_size)
        for batch in state.batches:
            session.build_inputs(batch)
        self._note_batching(state)
        self._analytic_costs(state)
        try:  # torchinfo layer inventory of the model under test on the first batch (optional, like MFU)
            from llm_perf_opt.profiling.inventory import write_inventory

            write_inventory(session, state.batches[0], state.work_dir)
        except Exception as exc:
            state.warnings.append(f"torchinfo-unique-layers not written: {type(exc).__name__}: {exc}")
        state.phase_seconds["prepare"] = time.perf_counter() - t0

        t0 = self._phase(state, "warmup")
        self._warmup(state)
        state.phase_seconds["warmup"] = time.perf_counter() - t0

        t0 = self._phase(state, "timed")
        self._timed_runs(state)
        state.phase_seconds["timed"] = time.perf_counter() - t0
        self._routing_census(state)

        if cfg.torch_profiler:
            t0 = self._phase(state, "profile")
            self._profiler_passes(state)
            state.phase_seconds["profile"] = time.perf_counter() - t0
        state.phase = "report"

    def _generate(
        self, state: ProfileState, batch: Batch, ranges: RangeFactory | None = None, decode_mode: str | None = None
    ) -> Any:
        assert state.session is not None
        cfg = self.config
        min_new = cfg.max_new_tokens if cfg.min_new_tokens is None else cfg.min_new_tokens
        kwargs = {} if ranges is None else {"ranges": ranges}
        return state.session.generate(
            batch,
            max_new_tokens=cfg.max_new_tokens,
            min_new_tokens=min_new,
            no_repeat_ngram_size=cfg.no_repeat_ngram_size,
            decode_mode=decode_mode or state.decode_modes[0],
            **kwargs,  # type: ignore[arg-type]
        )

    def _routing_census(self, state: ProfileState) -> None:
        """MoE routing of the first batch's prefill, after the timed runs (profiling/routing.py)."""
        if state.session is None or not state.batches:
            return
        try:
            from llm_perf_opt.profiling.routing import session_census

            state.routing = session_census(state.session, state.batches[0])
        except Exception as exc:  # optional figure, like MFU: the run stays valid without it
            state.warnings.append(f"MoE routing census skipped: {type(exc).__name__}: {exc}")

    def _warmup(self, state: ProfileState) -> None:
        assert state.session is not None
        if self.config.decode_mode in ("graph", "both") and not state.session.graph_decode:
            state.warnings.append(
                f"--decode-mode {self.config.decode_mode}: the checkpoint's own generate runs as written (eager); "
                "only eager decode was timed"
            )
        if "graph" in state.decode_modes and hasattr(state.session, "prepare_decode"):
            seconds = state.session.prepare_decode(state.batches, self.config.max_new_tokens)
            forms = getattr(state.session, "decode_step_forms", {})
            kernels = "; ".join(
                f"batch {b}: attention {f['attention']}, MoE {f['moe']}, vision + prefill {f.get('prefill', 'eager')}"
                for b, f in sorted(forms.items())
            )
            state.notes.append(
                f"Decode mode graph: the decode step is captured once per batch size and KV bucket as CUDA graphs "
                f"and replayed, and so are SAM, CLIP, the projector and the decoder prefill once per input shape "
                f"(vision + prefill graph below; eager where the MoE dispatch would need a host sync); "
                f"capture took {seconds:.2f} s before timing (not included in any timing). "
                f"Step kernels ({kernels or 'n/a'}): split = Triton split-KV attention, fused = Triton MoE; "
                "flash, sdpa, grouped or gather are the fallbacks where those cannot run."
            )
        shapes: dict[tuple[object, ...], Batch] = {}
        for batch in state.batches:
            shapes.setdefault(batch.shape_key, batch)
        todo = [(b, m) for _ in range(self.config.warmup) for b in shapes.values() for m in state.decode_modes]
        for i, (batch, mode) in enumerate(todo):
            self._emit("warmup", i, len(todo), f"batch {batch.index} ({mode})")
            with nvtx_range("warmup"):
                self._generate(state, batch, annotated_range, mode)
        if state.device.type == "cuda":
            torch.cuda.synchronize(state.device)
        self._emit("warmup", len(todo), len(todo))

    def _timed_runs(self, state: ProfileState) -> None:
        from llm_perf_opt.profiling.artifacts import write_runs

        total = state.planned_runs
        # Decode is host-bound (hundreds of small kernels per step), so a garbage-collector pass
        # landing inside one run shows up as repeat-to-repeat jitter: collect once, then keep the
        # collector off while timing.
        gc.collect()
        gc.disable()
        try:
            plan = [(m, r, b) for m in state.decode_modes for r in range(self.config.repeats) for b in state.batches]
            for mode, repeat, batch in plan:
                done = len(state.records)
                self._emit("timed", done, total, f"{mode}, repeat {repeat + 1}, {batch.items[0].page.name}")
                record = self._timed_run(state, batch, repeat, done, mode)
                state.records.append(record)
                write_runs(state)
        finally:
            gc.enable()
        self._emit("timed", total, total)

    def _timed_run(self, state: ProfileState, batch: Batch, repeat: int, index: int, mode: str) -> RunRecord:
        result, clock, peak = measure_call(
            functools.partial(self._generate, state, batch, decode_mode=mode), state.device, label=f"run {index}"
        )
        ranges = clock.timings()
        total_ms = clock.total_ms()
        bounds = stage_bounds(ranges, total_ms)
        tokens = getattr(result, "tokens", None)
        new_tokens = int(tokens.shape[1]) if tokens is not None else self.config.max_new_tokens
        record = RunRecord(
            index=index,
            repeat=repeat,
            batch_index=batch.index,
            pages=[item.page.name for item in batch.items],
            categories=[item.page.category for item in batch.items],
            batch_size=batch.size,
            image_tokens=batch.items[0].image_tokens,
            tile_grid=list(batch.items[0].tile_grid),
            prompt_len=int(getattr(result, "prompt_len", 0) or batch.inputs.prompt_len),
            new_tokens=new_tokens,
            total_ms=total_ms,
            peak_memory_bytes=peak,
            kv_cache_bytes=getattr(result, "kv_cache_bytes", None),
            decode_mode=str(getattr(result, "decode_mode", mode)),
            prefill_mode=str(getattr(result, "prefill_mode", "eager")),
            capture_ms=1000.0 * float(getattr(result, "capture_seconds", 0.0)),
            gpu_span_stages=[name for name, r in ranges.items() if r.all_spans],
            ranges={name: r.as_record() for name, r in ranges.items()},
            **bounds,  # type: ignore[arg-type]
        )
        self._apply_mfu(state, batch, record)
        return record

    def _profiler_passes(self, state: ProfileState) -> None:
        """The bounded operator-profiling windows (see :mod:`~llm_perf_opt.profiling.profile_window`)."""
        profile_windows(state, self.config, self._emit)

    # ------------------------------------------------------------------ analytic and MFU

    def _note_batching(self, state: ProfileState) -> None:
        cfg = self.config
        if cfg.batch_size == 1:
            return
        sizes = [b.size for b in state.batches]
        msg = (
            f"--batch-size {cfg.batch_size}: pages grouped by tile grid and image-token count (no padding); "
            f"{len(sizes)} batch(es) of sizes {sizes}"
        )
        if any(s < cfg.batch_size for s in sizes):
            msg += "; batches smaller than requested ran with fewer pages"
            state.warnings.append(msg)
        state.notes.append(msg)

    def _batch_costs(self, state: ProfileState, batch: Batch, tokens: int) -> dict[str, mfu_mod.StageCost]:
        """Analytic costs of one call over ``batch`` generating ``tokens`` per page (the exact input)."""
        assert state.session is not None
        workload = batch_workload(self.config, batch, tokens)
        impl = getattr(state.session, "implementation", "ours")  # hf-official: the checkpoint's own code
        costs = mfu_mod.analytic_costs(state.session.spec, workload, precision=state.dtype, implementation=impl)
        return mfu_mod.measured_costs(costs)

    def _analytic_costs(self, state: ProfileState) -> None:
        for batch in state.batches:
            try:
                state.costs[batch.index] = self._batch_costs(state, batch, self.config.max_new_tokens)
            except Exception as exc:  # the analytic model is optional for a measurement
                state.warnings.append(f"analytic model unavailable, no MFU: {type(exc).__name__}: {exc}")
                state.costs.clear()
                return

    def _apply_mfu(self, state: ProfileState, batch: Batch, record: RunRecord) -> None:
        costs = dict(state.costs.get(batch.index, {}))
        if not costs or state.peaks is None:
            return
        if record.new_tokens != self.config.max_new_tokens:
            # Fewer tokens than planned (EOS): the analytic cost of the tokens actually generated.
            try:
                costs = self._batch_costs(state, batch, record.new_tokens)
            except Exception:
                return
        util = mfu_mod.utilisation(costs, record.stage_times(), state.peaks)
        record.analytic_tflop = {k: c.flops / 1e12 for k, c in costs.items()}
        record.analytic_gb = {k: c.bytes / 1e9 for k, c in costs.items()}
        record.mfu = util.mfu
        record.bandwidth_utilization = util.bandwidth


def run_profile(
    config: ProfileConfig, progress: ProgressCallback | None = None, session: ProfileSession | None = None
) -> ProfileResult:
    """Library entry point: ``run_profile(ProfileConfig(model="tiny", repeats=2))``; ``session``
    reuses a loaded model across runs (``experiment validate``)."""
    return LLMProfileRunner(config, progress, session).run()
