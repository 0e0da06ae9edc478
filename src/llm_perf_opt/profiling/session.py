"""Load the model once and run generations on prepared page batches.

A :class:`ProfileSession` owns the spec, the runnable model (random init, a safetensors checkpoint,
or — behind ``trust_remote_code`` — a checkpoint's own Python code loaded through transformers,
offline) and the tokenizer. Everything the runner measures goes through :meth:`generate`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from attrs import define, field

from llm_perf_opt.errors import UserError
from llm_perf_opt.profiling.env import DTYPE_NAMES
from llm_perf_opt.profiling.inputs import PageImage
from llm_perf_opt.profiling.nvtx_ranges import RangeFactory, null_ranges
from llm_perf_opt.specs.image_tokens import resolution_mode
from llm_perf_opt.specs.loader import load_model_spec
from llm_perf_opt.specs.model_spec import MODEL_REGISTRY, ModelSpec

_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json")


@define(kw_only=True)
class PreparedItem:
    """A page after preprocessing for one mode."""

    page: PageImage
    prepared: Any
    """``PreparedPage`` of the model package (``.layout``, ``.num_image_tokens``, ``.tile_grid``)."""

    @property
    def image_tokens(self) -> int:
        return int(self.prepared.num_image_tokens)

    @property
    def tile_grid(self) -> tuple[int, int]:
        grid = tuple(self.prepared.tile_grid)
        return (int(grid[0]), int(grid[1]))


@define(kw_only=True)
class Batch:
    """Pages that run in one generation call (equal tile grid and image-token count)."""

    index: int
    items: list[PreparedItem]
    inputs: Any = None
    """``ModelInputs`` on the device, built once and reused by every repeat."""
    build_ms: float = 0.0

    @property
    def size(self) -> int:
        return len(self.items)

    @property
    def shape_key(self) -> tuple[int, tuple[int, int], int]:
        return (self.items[0].image_tokens, self.items[0].tile_grid, self.size)


def _has_safetensors(directory: Path) -> bool:
    return any(directory.glob("*.safetensors"))


@define(kw_only=True)
class ProfileSession:
    """The loaded model plus what is needed to feed it."""

    graph_decode: ClassVar[bool] = True
    """Whether this session's generate can replay a captured decode step (our model: yes)."""

    spec: ModelSpec
    model: Any
    tokenizer: Any
    device: torch.device
    dtype: str
    attn_impl: str
    weights: str
    """``random`` or the absolute checkpoint directory."""
    model_path: str
    remote_code: bool
    load_seconds: float
    notes: list[str]
    decode_step_forms: dict[int, dict[str, str]] = field(factory=dict)
    """Per batch size, the graph decode step's attention form and MoE dispatch (``prepare_decode``)."""

    @property
    def torch_dtype(self) -> torch.dtype:
        return DTYPE_NAMES[self.dtype]

    @property
    def parameter_count(self) -> int:
        return sum(int(p.numel()) for p in self.model.parameters())

    @classmethod
    def load(
        cls,
        *,
        model: str,
        weights: str | None,
        device: torch.device,
        dtype: str,
        attn_impl: str = "sdpa",
        seed: int = 0,
        trust_remote_code: bool = False,
    ) -> ProfileSession:
        """Resolve ``--model`` / ``--weights`` and build the model once (timed)."""
        from llm_perf_opt.models import deepseek_ocr as dso

        spec = load_model_spec(model)
        model_dir = None if model in MODEL_REGISTRY else Path(model if Path(model).is_dir() else Path(model).parent)
        notes: list[str] = []
        if weights in (None, ""):
            weights = "random" if model_dir is None else str(model_dir)
        ckpt: Path | None = None
        if weights != "random":
            ckpt = Path(weights).expanduser().resolve()
            if not ckpt.is_dir():
                raise UserError(f"--weights {weights}: not a checkpoint directory (or 'random')")
            if not trust_remote_code and not _has_safetensors(ckpt):
                raise UserError(f"--weights {weights}: no *.safetensors files in that directory")
        torch.manual_seed(seed)
        start = time.perf_counter()
        if trust_remote_code:
            source = ckpt or model_dir
            if source is None:
                raise UserError("--trust-remote-code needs a local checkpoint directory (--model DIR or --weights DIR)")
            from llm_perf_opt.profiling.official import OfficialSession, is_official_checkpoint

            if is_official_checkpoint(model_dir or source):  # the official HF code: its own loader and generate
                return OfficialSession.load_official(
                    spec=spec, code_dir=model_dir or source, weights=ckpt, device=device, dtype=dtype,
                    attn_impl=attn_impl, seed=seed,
                )  # fmt: skip
            runnable = _load_remote_code(source, device=device, dtype=DTYPE_NAMES[dtype])
            notes.append(f"model code loaded from {source} with trust_remote_code (offline, local files only)")
            weights_label = str(source)
            remote_spec = getattr(runnable, "spec", None)
            if isinstance(remote_spec, ModelSpec) and remote_spec != spec:
                notes.append(f"the checkpoint's model is {remote_spec.name!r}, not {spec.name!r}: its spec is used")
                spec = remote_spec
            if hasattr(runnable, "set_attn_impl"):
                runnable.set_attn_impl(attn_impl)
        else:
            if ckpt is not None and any(ckpt.glob("modeling_*.py")):
                notes.append(f"{ckpt} ships Python model code; it was NOT run (use --trust-remote-code to run it)")
            runnable = dso.build_model(
                spec,
                device=device,
                dtype=DTYPE_NAMES[dtype],
                weights=ckpt if ckpt else "random",
                attn_impl=attn_impl,
                seed=seed,
            )
            weights_label = str(ckpt) if ckpt else "random"
        if hasattr(runnable, "eval"):
            runnable.eval()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        load_seconds = time.perf_counter() - start
        tokenizer = None
        if ckpt is not None and any((ckpt / f).exists() for f in _TOKENIZER_FILES):
            try:
                tokenizer = dso.load_tokenizer(ckpt)
            except UserError as exc:
                notes.append(f"tokenizer not loaded ({exc}); prompt ids come from the built-in prompt")
        return cls(
            spec=spec,
            model=runnable,
            tokenizer=tokenizer,
            device=device,
            dtype=dtype,
            attn_impl=attn_impl,
            weights=weights_label,
            model_path=str(ckpt or model_dir or spec.model_id),
            remote_code=trust_remote_code,
            load_seconds=load_seconds,
            notes=notes,
        )

    def prepare(self, page: PageImage, mode: str, max_crops: int) -> PreparedItem:
        from llm_perf_opt.models import deepseek_ocr as dso

        prepared = dso.prepare_page(page.image, resolution_mode(mode), max_crops=max_crops)
        return PreparedItem(page=page, prepared=prepared)

    def build_inputs(self, batch: Batch) -> None:
        """Build the batch's model inputs once, on the device (timed into ``batch.build_ms``)."""
        from llm_perf_opt.models import deepseek_ocr as dso

        start = time.perf_counter()
        built = dso.build_inputs(self.spec, [item.prepared for item in batch.items], tokenizer=self.tokenizer)
        # Staged on the device here, outside every timed call: the host→device copy of the pixels (and
        # their cast) is input staging, not model work; inside a call it was 154 ms of a Gundam batch-8
        # call's 485 (H200 validation, `other_ms`), time no stage owns and the analytic model cannot see.
        batch.inputs = built.to(self.device, self.torch_dtype)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        batch.build_ms = (time.perf_counter() - start) * 1000.0

    @torch.inference_mode()
    def generate(
        self,
        batch: Batch,
        *,
        max_new_tokens: int,
        min_new_tokens: int | None = None,
        no_repeat_ngram_size: int = 0,
        ranges: RangeFactory = null_ranges,
        decode_mode: str | None = None,
        on_token: Any = None,
    ) -> Any:
        """One generation call over the batch; returns the model package's ``GenerationResult``."""
        from llm_perf_opt.models import deepseek_ocr as dso

        if batch.inputs is None:
            self.build_inputs(batch)
        return dso.generate(
            self.model,
            batch.inputs,
            max_new_tokens=max_new_tokens,
            min_new_tokens=min_new_tokens,
            no_repeat_ngram_size=no_repeat_ngram_size,
            ranges=ranges,
            decode_mode=decode_mode,
            on_token=on_token,
        )

    def prepare_decode(self, batches: Sequence[Batch], max_new_tokens: int) -> float:
        """Capture the CUDA graphs every batch will replay, before anything is timed; returns seconds spent.

        One graph decoder per batch size, sized for the longest prompt of that size, so later
        calls reuse it instead of capturing inside a timed run; on it, the vision + prefill graphs
        of every batch's input shape.
        """
        from llm_perf_opt.models.deepseek_ocr.generate import static_decoder
        from llm_perf_opt.models.deepseek_ocr.static_prefill import prefill_capturable

        longest: dict[int, int] = {}
        for batch in batches:
            if batch.inputs is None:
                self.build_inputs(batch)
            need = batch.inputs.prompt_len + max(max_new_tokens - 1, 0)
            longest[batch.size] = max(longest.get(batch.size, 0), need)
        spent = 0.0
        capturable = prefill_capturable(self.model, self.torch_dtype)
        for size, need in sorted(longest.items()):
            decoder = static_decoder(self.model, size, need)
            if capturable:  # vision + prefill graphs per input shape, on the cache they will fill
                for batch in batches:
                    if batch.size == size:
                        decoder.prefill_graphs(batch.inputs)
            spent += decoder.capture_seconds
            self.decode_step_forms[size] = {**decoder.kernel_forms(), "prefill": "graph" if capturable else "eager"}
        return spent


def group_batches(items: Sequence[PreparedItem], batch_size: int) -> list[Batch]:
    """Group pages with the same tile grid and image-token count, then cut groups into batches.

    No padding: a group smaller than ``batch_size`` (or its remainder) runs as a smaller batch.
    """
    groups: dict[tuple[int, tuple[int, int]], list[PreparedItem]] = {}
    for item in items:
        groups.setdefault((item.image_tokens, item.tile_grid), []).append(item)
    batches: list[Batch] = []
    for members in groups.values():
        for start in range(0, len(members), batch_size):
            batches.append(Batch(index=len(batches), items=list(members[start : start + batch_size])))
    return batches


def _load_remote_code(directory: Path, *, device: torch.device, dtype: torch.dtype) -> Any:
    """``AutoModel.from_pretrained(dir, trust_remote_code=True, local_files_only=True)``, unwrapped.

    The checkpoint's code must build (subclass or wrap) the package's DeepSeek-OCR module, which the
    profiler drives with its own ``generate`` and stage ranges.
    """
    from transformers import AutoModel

    if not (directory / "config.json").is_file():
        raise UserError(f"--trust-remote-code: {directory} has no config.json")
    try:
        loaded = AutoModel.from_pretrained(str(directory), trust_remote_code=True, local_files_only=True)
    except UserError:
        raise
    except (OSError, ValueError, ImportError, AttributeError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"--trust-remote-code: loading {directory} failed: {first}") from None
    runnable = find_runnable(loaded)
    if runnable is None:
        raise UserError(
            f"--trust-remote-code: the model class {type(loaded).__name__} from {directory} neither is nor wraps "
            "a llm_perf_opt DeepSeek-OCR module (its generate cannot be profiled stage by stage)"
        )
    return runnable.to(device=device, dtype=dtype)


def find_runnable(obj: Any) -> Any | None:
    """``obj`` itself when it is the package's model class, else the first such direct child."""
    from llm_perf_opt.models import deepseek_ocr as dso

    model_cls = dso.DeepseekOCRForCausalLM
    if isinstance(obj, model_cls):
        return obj
    for child in getattr(obj, "children", lambda: [])():
        if isinstance(child, model_cls):
            return child
    return None
