"""Check the ``hf-official`` analytic model against the official DeepSeek-OCR code, on the CPU.

Usage (in an environment with transformers 4.46.3, see constraints/official-transformers-4.46.3.txt):

    python scripts/official_flops.py OFFICIAL_CODE_DIR [--out docs/official/FLOPS.md]

OFFICIAL_CODE_DIR holds the checkpoint's own files (modeling_deepseekocr.py, deepencoder.py,
modeling_deepseekv2.py, configuration_deepseek_v2.py, conversation.py, config.json); they are
copied into a temporary directory with a smaller decoder (2 layers: 1 dense + 1 MoE, narrow
FFNs; hidden size, heads, vocabulary, experts and top-k as in the checkpoint; SAM and CLIP are
hard-coded at full size in that code). For each workload it

1. counts FLOPs with ``torch.utils.flop_counter.FlopCounterMode`` of the official model's
   prefill forward (SAM, CLIP, projector by module; the decoder part is the rest) and of one
   decode forward, and compares them with ``analytic.implementations.stage_flops(..., "hf-official")``;
2. counts the kernels (aten operators that launch device work) and the ``.item()`` host syncs
   of one decode forward per layer kind (``.cpu()`` of a CPU tensor dispatches nothing, so the MoE
   layers' ``tokens_per_expert.cpu()`` is not seen on the CPU), with the model
   in bf16 under autocast (as ``infer()`` runs it), and compares them with the per-layer counts of
   ``analytic.implementations``.

SDPA (SAM, CLIP) runs on its math backend here: the CPU flash kernel has no FLOP formula.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from llm_perf_opt.analytic import implementations as impl
from llm_perf_opt.errors import UserError
from llm_perf_opt.models import deepseek_ocr as dso
from llm_perf_opt.profiling.official import build_official_inputs, load_official_model
from llm_perf_opt.profiling.official.loader import official_image_token_id
from llm_perf_opt.profiling.official.session import cuda_calls_stay_on
from llm_perf_opt.specs.image_tokens import resolution_mode
from llm_perf_opt.specs.loader import load_model_spec
from llm_perf_opt.specs.workload import Workload

CASES = [("base", (1654, 2339)), ("gundam", (1654, 2339)), ("gundam", (2000, 1000)), ("small", (800, 600))]
SMALL_DECODER = {"num_hidden_layers": 2, "intermediate_size": 256, "moe_intermediate_size": 64}
NO_KERNEL = {
    "view", "_unsafe_view", "reshape", "transpose", "t", "permute", "expand", "unsqueeze", "squeeze", "select",
    "slice", "split", "split_with_sizes", "alias", "as_strided", "detach", "_reshape_alias", "lift_fresh",
    "unbind", "narrow", "view_as", "empty", "empty_like", "new_empty", "empty_strided", "sym_size", "sym_stride",
    "is_same_size", "_local_scalar_dense", "result_type", "dim", "size", "stride", "clone_meta",
}  # fmt: skip
"""Operators that allocate or re-view memory without launching device work."""


def small_copy(code_dir: Path, into: Path) -> Path:
    for f in code_dir.glob("*.py"):
        shutil.copyfile(f, into / f.name)
    config = json.loads((code_dir / "config.json").read_text(encoding="utf-8"))
    config.update(SMALL_DECODER)
    if isinstance(config.get("language_config"), dict):
        config["language_config"].update(SMALL_DECODER)
    (into / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return into


def page(size: tuple[int, int]) -> Image.Image:
    g = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (size[1] // 8, size[0] // 8, 3), generator=g, dtype=torch.uint8)
    return Image.fromarray(pixels.numpy()).resize(size)


def module_flops(counts: dict[str, dict[Any, int]], suffix: str) -> int:
    return sum(sum(ops.values()) for name, ops in counts.items() if name.endswith(suffix))


def prefill_forward(model: Any, inputs: Any) -> Any:
    """The official model's first forward over the prompt and image views, cache kept."""
    return model(
        input_ids=inputs.input_ids,
        images=inputs.images,
        images_seq_mask=inputs.images_seq_mask,
        images_spatial_crop=inputs.images_spatial_crop,
        use_cache=True,
    )


def measure_flops(model: Any, inputs: Any) -> dict[str, float]:
    """FLOPs of the prefill forward (by stage) and of one decode forward at context P + 1."""
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), cuda_calls_stay_on(torch.device("cpu")):
        with FlopCounterMode(display=False) as fc:
            out = prefill_forward(model, inputs)
        counts = fc.get_flop_counts()
        total = fc.get_total_flops()
        sam, clip = module_flops(counts, "model.sam_model"), module_flops(counts, "model.vision_model")
        proj = module_flops(counts, "model.projector")
        nxt = out.logits[:, -1].argmax(-1, keepdim=True)
        with FlopCounterMode(display=False) as fd:
            model(input_ids=nxt, past_key_values=out.past_key_values, use_cache=True)
    return {
        "vision": sam + clip,
        "projector": proj,
        "prefill": total - sam - clip - proj,
        "decode_step": fd.get_total_flops(),
    }


class KernelCounter(TorchDispatchMode):
    """Counts device-work operators and host syncs, attributed to the innermost hooked layer kind."""

    def __init__(self) -> None:
        super().__init__()
        self.where: list[str] = ["step"]
        self.kernels: Counter[str] = Counter()
        self.syncs: Counter[str] = Counter()

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        name = func.overloadpacket.__name__
        out = func(*args, **(kwargs or {}))
        here = self.where[-1]
        if name == "_local_scalar_dense":
            self.syncs[here] += 1
        elif name not in NO_KERNEL:  # .cpu() of a CPU tensor dispatches nothing: MoE syncs come from the code
            self.kernels[here] += 1
        return out


def count_decode_kernels(model: Any, inputs: Any) -> tuple[Counter[str], Counter[str]]:
    """Kernels and syncs of one decode forward, by layer kind (bf16, autocast as infer() uses)."""
    counter = KernelCounter()
    kinds = {"attention": "self_attn", "mlp": "mlp"}
    handles = []
    for layer in model.model.layers:
        for kind, attr in kinds.items():
            sub = getattr(layer, attr)
            label = "moe" if kind == "mlp" and hasattr(sub, "experts") else ("dense_mlp" if kind == "mlp" else kind)
            handles.append(sub.register_forward_pre_hook(lambda m, a, lab=label: counter.where.append(lab)))
            handles.append(sub.register_forward_hook(lambda m, a, o: counter.where.pop() and None))
    with torch.no_grad(), cuda_calls_stay_on(torch.device("cpu")), torch.autocast("cpu", dtype=torch.bfloat16):
        out = prefill_forward(model, inputs)
        nxt = out.logits[:, -1].argmax(-1, keepdim=True)
        mask = torch.ones(1, inputs.prompt_len + 1, dtype=torch.long)  # generate passes its 2-D attention mask
        position = torch.tensor([[inputs.prompt_len]])  # made by prepare_inputs_for_generation, outside the forward
        with counter:
            model(input_ids=nxt, past_key_values=out.past_key_values, attention_mask=mask, position_ids=position,
                  use_cache=True)  # fmt: skip
    for h in handles:
        h.remove()
    return counter.kernels, counter.syncs


def transformers_version() -> str:
    import transformers

    return str(transformers.__version__)


def rel(a: float, b: float) -> str:
    return "exact" if a == b else f"{(a - b) / b:+.4%}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("code_dir", type=Path, help="directory with the official checkpoint code and config.json")
    parser.add_argument("--out", type=Path, default=None, help="write the Markdown table here")
    parser.add_argument("--skip-flops", action="store_true", help="only count kernels and syncs (fast)")
    args = parser.parse_args(argv)
    if not (args.code_dir / "modeling_deepseekocr.py").is_file() or not (args.code_dir / "config.json").is_file():
        print(f"error: {args.code_dir}: no modeling_deepseekocr.py or config.json", file=sys.stderr)
        return 2
    lines = [
        "| workload | stage | FlopCounterMode (official code) | analytic hf-official | difference |",
        "|---|---|---:|---:|---|",
    ]
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        code = small_copy(args.code_dir, Path(tmp))
        spec = load_model_spec(str(code))
        model = load_official_model(code, weights=None, device=torch.device("cpu"), dtype=torch.float32)
        image_id = official_image_token_id(model)
        for mode, size in [] if args.skip_flops else CASES:
            prepared = dso.prepare_page(page(size), resolution_mode(mode))
            inputs = build_official_inputs(
                spec, [prepared], tokenizer=None, image_token_id=image_id, device=torch.device("cpu"),
                dtype=torch.float32,
            )  # fmt: skip
            work = Workload(profile_id="check", mode=mode, page_size=size, max_new_tokens=2)
            measured = measure_flops(model, inputs)
            predicted = impl.stage_flops(spec, work, "hf-official")
            predicted["decode_step"] = impl.decode_step_flops(spec, work, "hf-official", context=inputs.prompt_len + 1)
            for stage, value in measured.items():
                worst = max(worst, abs(value - predicted[stage]) / max(predicted[stage], 1.0))
                lines.append(
                    f"| {mode} {size[0]}x{size[1]} | {stage} | {value:,.0f} | {predicted[stage]:,.0f} "
                    f"| {rel(value, predicted[stage])} |"
                )
            print(lines[-4:], flush=True)
        model = model.to(torch.bfloat16)
        prepared = dso.prepare_page(page((1654, 2339)), resolution_mode("base"))
        inputs = build_official_inputs(
            spec, [prepared], tokenizer=None, image_token_id=image_id, device=torch.device("cpu"), dtype=torch.bfloat16
        )
        kernels, syncs = count_decode_kernels(model, inputs)
    h, layers = impl.HF_OFFICIAL, spec.decoder.num_layers
    expected = {
        "attention": h.attention_kernels,
        "dense_mlp": h.dense_mlp_kernels,
        "moe": h.moe_base_kernels + h.moe_per_expert_kernels * impl.active_experts(spec, 1),
        "step": h.forward_kernels + layers * h.layer_kernels,
    }
    per = {"attention": layers, "dense_mlp": spec.decoder.first_k_dense_replace, "moe": 1, "step": 1}
    klines = ["| part of one decode forward | kernels counted | analytic hf-official | .item() syncs counted |"]
    klines.append("|---|---:|---:|---:|")
    for kind in ("attention", "dense_mlp", "moe", "step"):
        n = per[kind]
        klines.append(f"| {kind} (per 1 of {n}) | {kernels[kind] / n:g} | {expected[kind]:g} | {syncs[kind] / n:g} |")
    text = "\n".join(
        [
            "# The official DeepSeek-OCR code vs the analytic hf-official model",
            "",
            f"Produced by `python scripts/official_flops.py OFFICIAL_CODE_DIR` (transformers {transformers_version()}, "
            f"torch {torch.__version__}, CPU). Decoder shrunk to {SMALL_DECODER} (per-layer formulas are the same; "
            "hidden size, heads, vocabulary, experts, top-k, SAM and CLIP at full size). Pages: random pixels.",
            "",
            "FLOPs (FlopCounterMode, matmul-class operators) of the official code vs the analytic hf-official model:",
            "",
            *lines,
            "",
            f"Largest relative difference: {worst:.2e}.",
            "",
            "Kernels and host syncs of one decode forward (batch 1, bf16 under autocast), per layer:",
            "",
            *klines,
        ]
    )
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0 if worst < 1e-6 else 1


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except UserError as exc:  # e.g. the official code needs a package this environment lacks
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
