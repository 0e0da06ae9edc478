"""Building the model: random init in place on the target device, or strict safetensors loading.

``build_model`` constructs on the ``meta`` device (no memory, no init work), casts there, then
``to_empty`` allocates once on the target device in the target dtype; random weights are drawn in
place and checkpoint tensors are copied in place, one tensor at a time from a memory map. So a 3.3 B
model never has an extra fp32 or CPU copy.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from attrs import asdict
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from llm_perf_opt.errors import UserError
from llm_perf_opt.models.deepseek_ocr.common import check_attn_impl
from llm_perf_opt.models.deepseek_ocr.decoder import RMSNorm
from llm_perf_opt.models.deepseek_ocr.model import DeepseekOCRForCausalLM
from llm_perf_opt.models.deepseek_ocr.sam import LayerNorm2d
from llm_perf_opt.specs.loader import read_config_json
from llm_perf_opt.specs.model_spec import ModelSpec

INIT_STD = 0.02
"""initializer_range of config.json, used for every random matrix and table."""
INDEX_FILE = "model.safetensors.index.json"
POSITION_IDS = "model.vision_model.embeddings.position_ids"
OPTIONAL_TENSORS = frozenset({POSITION_IDS})
"""May be absent from a checkpoint (the bf16 release may not store it); it is always arange(257)."""
_LISTED = 5


def build_model(
    spec: ModelSpec,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    weights: str | Path = "random",
    attn_impl: str = "sdpa",
    seed: int = 0,
) -> DeepseekOCRForCausalLM:
    """A DeepseekOCRForCausalLM in eval mode with frozen parameters.

    ``weights``: "random" (seeded, drawn on ``device``) or a checkpoint directory / .safetensors
    file, loaded strictly (see :func:`load_checkpoint_`). ``device="meta"`` gives a shape-only
    model for analysis (checkpoint names and shapes are still checked).
    """
    check_attn_impl(attn_impl)
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise UserError(f"model dtype must be a floating-point torch dtype, got {dtype!r}")
    target = torch.device(device)
    with torch.device("meta"):
        model = DeepseekOCRForCausalLM(spec, attn_impl)
    model.to(dtype=dtype)  # on meta: free; integer buffers (position_ids) stay int64
    model.requires_grad_(False)
    model.eval()
    tensors = None if weights == "random" else checkpoint_tensors(Path(weights), model)
    if target.type == "meta":
        return model
    model.to_empty(device=target)
    with torch.no_grad():
        ids = model.get_buffer(POSITION_IDS)
        ids.copy_(torch.arange(ids.shape[-1], device=target).unsqueeze(0))
    if tensors is None:
        init_random_(model, seed)
    else:
        _copy_tensors(model, tensors)
    return model


def init_random_(model: nn.Module, seed: int = 0) -> None:
    """Seeded in-place init: matrices, convs, embeddings and tables ~ N(0, 0.02); norms 1/0; biases 0.

    Deviations from the official init, on purpose: SAM's rel-pos tables are random rather than
    zero so that the relative-position path is exercised; image_newline / view_seperator use the
    official randn/√H.
    """
    generators: dict[torch.device, torch.Generator] = {}

    def normal_(t: torch.Tensor, std: float) -> None:
        gen = generators.get(t.device)
        if gen is None:
            gen = generators[t.device] = torch.Generator(device=t.device).manual_seed(seed)
        t.normal_(0.0, std, generator=gen)

    with torch.no_grad():
        for module in model.modules():
            for pname, p in module.named_parameters(recurse=False):
                if isinstance(module, (nn.LayerNorm, RMSNorm, LayerNorm2d)):
                    p.fill_(1.0 if pname == "weight" else 0.0)
                elif pname == "bias":
                    p.zero_()
                elif pname in ("image_newline", "view_seperator"):
                    normal_(p, 1.0 / math.sqrt(p.shape[-1]))
                else:
                    normal_(p, INIT_STD)


# ---------------------------------------------------------------- checkpoint loading


def checkpoint_files(path: Path) -> list[Path]:
    """The safetensors files of a checkpoint dir (via its index if present) or a single file."""
    if not path.exists():
        raise UserError(f"checkpoint {path} does not exist")
    if path.is_file():
        if path.suffix != ".safetensors":
            raise UserError(f"checkpoint file {path} is not a .safetensors file")
        return [path]
    config = path / "config.json"
    if config.exists():
        read_config_json(config)  # unreadable / invalid JSON → UserError naming the file
    index = path / INDEX_FILE
    if index.exists():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
            names = sorted(set(weight_map.values()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UserError(f"checkpoint index {index} is unreadable or has no weight_map: {exc}") from None
        missing = [n for n in names if not (path / n).is_file()]
        if missing:
            raise UserError(f"checkpoint index {index} names missing shard file(s): {', '.join(missing)}")
        return [path / n for n in names]
    files = sorted(path.glob("model*.safetensors"))
    if not files:
        raise UserError(f"checkpoint directory {path} has no model*.safetensors file")
    return files


def _read_headers(files: list[Path]) -> dict[str, tuple[Path, tuple[int, ...]]]:
    found: dict[str, tuple[Path, tuple[int, ...]]] = {}
    for f in files:
        try:
            with safe_open(str(f), framework="pt", device="cpu") as handle:
                for key in handle.keys():  # noqa: SIM118 (safe_open is not a mapping)
                    if key in found:
                        raise UserError(f"tensor {key} is stored twice: in {found[key][0].name} and {f.name}")
                    found[key] = (f, tuple(handle.get_slice(key).get_shape()))
        except UserError:
            raise
        except Exception as exc:  # safetensors raises its own error type for bad headers
            raise UserError(f"checkpoint file {f} is not a readable safetensors file: {exc}") from None
    return found


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:_LISTED])
    return shown + (f" and {len(names) - _LISTED} more" if len(names) > _LISTED else "")


def checkpoint_tensors(path: Path, model: nn.Module) -> dict[str, tuple[Path, tuple[int, ...]]]:
    """Check a checkpoint against the model strictly (names and shapes) before any allocation.

    Every problem is collected into one UserError: missing tensors (``position_ids`` may be
    absent), unexpected tensors, and wrong shapes, each by name.
    """
    found = _read_headers(checkpoint_files(path))
    expected = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    missing = sorted(set(expected) - set(found) - OPTIONAL_TENSORS)
    unexpected = sorted(set(found) - set(expected))
    wrong = sorted(
        f"{name} (checkpoint {list(found[name][1])}, model {list(expected[name])})"
        for name in set(found) & set(expected)
        if found[name][1] != expected[name]
    )
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing tensor(s): {_listing(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected tensor(s): {_listing(unexpected)}")
    if wrong:
        problems.append(f"{len(wrong)} tensor(s) with the wrong shape: {_listing(wrong)}")
    if problems:
        spec = getattr(model, "spec", None)
        name = f"model {spec.name!r}" if spec is not None else "the model"
        raise UserError(f"checkpoint {path} does not match {name}: " + "; ".join(problems))
    return found


def _copy_tensors(model: nn.Module, tensors: dict[str, tuple[Path, tuple[int, ...]]]) -> None:
    """Copy each checkpoint tensor into its (already allocated) parameter or buffer, file by file."""
    targets = dict(model.state_dict(keep_vars=True))
    by_file: dict[Path, list[str]] = {}
    for name, (f, _) in tensors.items():
        by_file.setdefault(f, []).append(name)
    with torch.no_grad():
        for f, names in by_file.items():
            with safe_open(str(f), framework="pt", device="cpu") as handle:
                for name in names:
                    targets[name].copy_(handle.get_tensor(name))  # casts to the model dtype, H2D if needed


def load_checkpoint_(model: DeepseekOCRForCausalLM, path: str | Path) -> None:
    """Strictly load a checkpoint into an already materialised model (in place)."""
    _copy_tensors(model, checkpoint_tensors(Path(path), model))


# ---------------------------------------------------------------- saving


def save_checkpoint(
    model: DeepseekOCRForCausalLM, out_dir: str | Path, *, max_shard_bytes: int | None = None
) -> list[Path]:
    """Write ``model.safetensors`` (or shards + index) and a ``config.json``; returns the files.

    Packed parameters share storage, which safetensors refuses, so each shard's tensors are
    cloned while it is written (peak extra memory: one shard). config.json carries the official
    keys plus ``llm_perf_opt_spec``, the full ModelSpec (tiny variants need fields that the
    official config has no key for).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = model.state_dict()
    shards: list[list[str]] = [[]]
    size = 0
    for name, t in state.items():
        nbytes = t.numel() * t.element_size()
        if max_shard_bytes is not None and shards[-1] and size + nbytes > max_shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(name)
        size += nbytes
    files: list[Path] = []
    weight_map: dict[str, str] = {}
    for i, names in enumerate(shards, start=1):
        fname = "model.safetensors" if len(shards) == 1 else f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        save_file({n: state[n].detach().clone().contiguous().cpu() for n in names}, str(out / fname))
        files.append(out / fname)
        weight_map.update(dict.fromkeys(names, fname))
    if len(shards) > 1:
        total = sum(t.numel() * t.element_size() for t in state.values())
        index = {"metadata": {"total_size": total}, "weight_map": weight_map}
        (out / INDEX_FILE).write_text(json.dumps(index, indent=2), encoding="utf-8")
    (out / "config.json").write_text(json.dumps(config_dict(model.spec), indent=2), encoding="utf-8")
    return files


def config_dict(spec: ModelSpec) -> dict[str, object]:
    """A DeepSeek-OCR style config.json for ``spec`` (top-level decoder keys, vision widths)."""
    d, s, c = spec.decoder, spec.sam, spec.clip
    return {
        "architectures": ["DeepseekOCRForCausalLM"],
        "model_type": "DeepseekOCR",
        "_name_or_path": spec.model_id,
        "hidden_size": d.hidden_size,
        "num_hidden_layers": d.num_layers,
        "num_attention_heads": d.num_heads,
        "num_key_value_heads": d.num_kv_heads,
        "intermediate_size": d.intermediate_size,
        "moe_intermediate_size": d.moe_intermediate_size,
        "n_routed_experts": d.n_routed_experts,
        "num_experts_per_tok": d.num_experts_per_tok,
        "n_shared_experts": d.n_shared_experts,
        "first_k_dense_replace": d.first_k_dense_replace,
        "vocab_size": d.vocab_size,
        "rms_norm_eps": d.rms_norm_eps,
        "rope_theta": d.rope_theta,
        "max_position_embeddings": d.max_position_embeddings,
        "norm_topk_prob": d.norm_topk_prob,
        "routed_scaling_factor": d.routed_scaling_factor,
        "topk_method": "greedy",
        "scoring_func": "softmax",
        "use_mla": False,
        "bos_token_id": spec.bos_token_id,
        "eos_token_id": spec.eos_token_id,
        "vision_config": {
            "width": {
                "clip-l-14-224": {
                    "heads": c.num_heads,
                    "image_size": c.image_size,
                    "layers": c.num_layers,
                    "patch_size": c.patch_size,
                    "width": c.width,
                },
                "sam_vit_b": {
                    "downsample_channels": list(s.downsample_channels),
                    "global_attn_indexes": list(s.global_attn_indexes),
                    "heads": s.num_heads,
                    "layers": s.depth,
                    "width": s.width,
                },
            }
        },
        "projector_config": {
            "projector_type": "linear",
            "input_dim": spec.projector_input_dim,
            "n_embed": d.hidden_size,
        },
        "llm_perf_opt_spec": asdict(spec),
    }
