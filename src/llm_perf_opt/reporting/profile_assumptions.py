"""``assumptions.md``: definitions, measurement method and every assumption behind the numbers."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # types only: reporting renders finished data and imports no computing package
    from llm_perf_opt.profiling.state import ProfileState


def render_assumptions(state: ProfileState) -> str:
    cfg = state.config
    peaks = state.peaks
    min_new = cfg.max_new_tokens if cfg.min_new_tokens is None else cfg.min_new_tokens
    session = state.session
    lines = [
        "# Assumptions and definitions",
        "",
        "## Stages",
        "",
        "- The model opens named ranges `prefill` ⊃ `vision` ⊃ (`sam`, `clip`, `projector`), then `decode`. "
        "The same names are NVTX ranges (Nsight Systems) and torch.profiler `record_function` ranges.",
        "- **prefill** = the first forward pass, vision included, up to and including the first token. "
        "**TTFT** = start of the generate call to the end of prefill.",
        "- **vision** = the `vision` range minus the nested `projector` range (SAM + CLIP + the glue that "
        "batches views and assembles the image-token sequence, including the host-to-device copy of the "
        "pixel views). **projector** is reported on its own. **decoder part of prefill** = prefill minus "
        "the vision range: the language model over prompt + image tokens.",
        "- **decode** = everything after the first forward until generate returns (the rest); "
        "**time per output token** = decode ÷ (new tokens − 1).",
        "- **setup** = generate-call time before the prefill range opens. Stage rows are nested; only "
        "vision + projector + decoder part of prefill + decode + setup add up to the total.",
        "",
        "## Timing",
        "",
        "- Each boundary is timed with CUDA events (time.perf_counter on CPU). The device is synchronized "
        "before and after the first opening of each range in a call, so no work leaks across stages; a "
        "range that opens again in the same call (e.g. per-step decode ranges) is timed with events only.",
        "- Graph execution: SAM, CLIP and the projector each replay one captured CUDA graph, timed by CUDA "
        "events captured inside that graph as its first and last nodes: the GPU's span of the stage's "
        "kernels (runs.jsonl: `gpu_span_stages`). The host's launch of each graph stays in the enclosing "
        "vision and prefill ranges (runs.jsonl `ranges.<stage>.range_ms` holds the synchronised bracket), so "
        "the projector's launch, a few µs, is in none of the rows that add up to the total.",
        f"- {cfg.warmup} warm-up pass(es) per distinct batch shape run first and are not counted. Then every "
        f"batch runs {cfg.repeats} time(s) (repeat-major order). Timed runs are never profiled; operator "
        "tables come from one separate torch.profiler pass over every batch.",
        "- Model inputs (pixel views, ids) are built once per batch and staged on the device before timing "
        "(a serving system's preprocessing overlaps the GPU); the timed call starts from device tensors.",
        "- Peak memory = torch.cuda.max_memory_allocated, reset before each run (allocated, not reserved); "
        "not measured on CPU.",
        f"- Every page generates exactly {cfg.max_new_tokens} tokens unless --min-new-tokens is set "
        f"(min {min_new}): EOS is suppressed until then, so runs compare across images and with random "
        "weights. Greedy decoding"
        + (f", no_repeat_ngram_size={cfg.no_repeat_ngram_size}" if cfg.no_repeat_ngram_size else "")
        + ".",
        "",
        "## Statistics",
        "",
        "- Over every timed run (image × repeat): mean, population std, p50 and p95 (linear "
        "interpolation), min, max and the sample count n. Stage timings in metrics.json are means.",
        "",
        "## MFU and bandwidth",
        "",
        "- MFU = analytic FLOPs of the exact measured input (mode, page size → tile grid, max crops, prompt "
        "tokens, generated tokens, batch size) ÷ (measured time × dense peak FLOP/s). A multiply-add counts "
        "2 FLOPs. Per stage, the ratio is time-weighted over runs (Σ FLOPs ÷ Σ time).",
        "- Analytic stages: vision ↔ vision, projector ↔ projector, decoder part of prefill ↔ prefill "
        "(decoder only), prefill ↔ vision + projector + prefill, decode ↔ decode, model level ↔ all.",
        f"- Peaks: {peaks.source if peaks else 'none'}. Dense figures from the hardware table, matched by "
        "the exact CUDA device name; bf16/fp16 use the FP32-accumulate tensor rate, fp32 uses the TF32 "
        "rate. No peak is invented: on CPU or an unknown GPU MFU is reported as not available "
        "(--peak-tflops / --peak-bandwidth-tbs override).",
        "- Bandwidth utilisation = analytic DRAM bytes ÷ time ÷ peak bandwidth. A ratio above 1 is "
        "physically impossible and is flagged as an estimator error; metrics.json caps contract fields at "
        "1.5 and keeps the raw value in `analytic`.",
        "- Operator tables: self times are summed (never totals); see operators.md.",
        "",
        "## Inputs",
        "",
    ]
    if state.inputs.synthetic:
        lines.append(
            "- Built-in synthetic pages (text-heavy, mixed layout, image-rich), A4 at 200 dpi, drawn "
            f"with Pillow (seed {cfg.seed}); see inputs.yaml for paths and sha256."
        )
    lines.append(
        "- Images are loaded like the official loader (EXIF transpose, convert to RGB). 16-bit images "
        "are scaled to 8 bit first (a plain convert would clip them to white)."
    )
    for issue in state.inputs.issues:
        lines.append(f"- {issue.line()}")
    if cfg.batch_size > 1:
        lines.append(
            f"- --batch-size {cfg.batch_size}: pages with equal tile grid and image-token count are "
            "batched together; no padding, so a smaller group runs as a smaller batch."
        )
    lines += ["", "## Model", ""]
    if session is not None:
        lines.append(
            f"- Weights: {session.weights}. Random weights give representative timings (shapes and "
            "kernels are those of the real model) but meaningless text."
        )
        lines.append(f"- Attention: {cfg.attn_impl}; dtype {state.dtype}; seed {cfg.seed}.")
        lines += [f"- {note}" for note in session.notes]
    else:
        lines.append("- The model was not loaded (the run stopped before).")
    lines.append("")
    return "\n".join(lines)
