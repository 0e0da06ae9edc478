"""Profile the official DeepSeek-OCR code: its inputs as ``infer()`` builds them, its own ``generate``.

Inputs (per page and mode, as the official ``infer()``): the same global view, crop grid and
tiles as :func:`llm_perf_opt.models.deepseek_ocr.prepare_page` (both follow the official rules:
``dynamic_preprocess`` grid, ``ImageOps.pad`` grey global view, direct resize for tiny/small),
passed the official way: ``images=[(crops, global)]`` per page with ``zeros(1, 3, base, base)`` as
crops when a page is not tiled, ``images_seq_mask`` (True at image slots) and
``images_spatial_crop = [[tiles across, tiles down]]`` (a CPU tensor, as ``infer()`` leaves it).

Generation: the model's own ``generate`` (transformers' greedy loop, DynamicCache), with
``temperature=0.0`` and ``no_repeat_ngram_size`` as configured (``infer()`` uses 20; 35 in eval
mode), under ``torch.autocast("cuda", bfloat16)`` on CUDA as ``infer()`` does. Fixed-length runs
suppress EOS with ``min_new_tokens`` (transformers' MinNewTokensLengthLogitsProcessor).

Stages come from forward hooks on the official module names: ``sam_model`` → ``sam``,
``vision_model`` → ``clip``, ``projector`` → ``projector``, ``vision`` from the first SAM call to
the last projector call of the prefill; the model's forward calls: the first is ``prefill``,
the rest ``decode``. The range factory is the runner's (NVTX + ``record_function`` + clock).
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, ClassVar

import torch
from attrs import define

from llm_perf_opt.errors import UserError
from llm_perf_opt.profiling.env import DTYPE_NAMES
from llm_perf_opt.profiling.nvtx_ranges import RangeFactory, null_ranges
from llm_perf_opt.profiling.official.loader import load_official_model, official_attn_impl, official_image_token_id
from llm_perf_opt.profiling.session import Batch, ProfileSession
from llm_perf_opt.specs.model_spec import ModelSpec

OFFICIAL_NO_REPEAT_NGRAM_SIZE = 20
"""``infer()``'s setting (35 with ``eval_mode=True``); pass ``--no-repeat-ngram-size 20`` to match it."""


@define(kw_only=True)
class OfficialInputs:
    """One batch in the official ``generate`` keyword form (on the device, except the crop list)."""

    input_ids: torch.Tensor
    """[B, T] int64; image slots hold the official image token id."""
    images: list[tuple[torch.Tensor, torch.Tensor]]
    """Per page (crops [n, 3, t, t] or zeros [1, 3, base, base], global view [1, 3, S, S])."""
    images_seq_mask: torch.Tensor
    """[B, T] bool, True at image slots."""
    images_spatial_crop: torch.Tensor
    """[B, 2] int64 on the CPU: (tiles across, tiles down), (1, 1) when not tiled."""
    projector_calls: int
    """Projector forwards of one prefill: 2 per tiled page (tiles, global), 1 otherwise."""

    @property
    def prompt_len(self) -> int:
        return int(self.input_ids.shape[1])


def build_official_inputs(
    spec: ModelSpec,
    prepared: list[Any],
    *,
    tokenizer: Any,
    image_token_id: int,
    device: torch.device,
    dtype: torch.dtype,
) -> OfficialInputs:
    """The official ``generate`` inputs for pages prepared by our (official-rule) preprocessing."""
    from llm_perf_opt.models import deepseek_ocr as dso

    ours = dso.build_inputs(spec, prepared, tokenizer=tokenizer)
    ids = ours.input_ids.masked_fill(ours.image_mask, image_token_id)
    images = []
    crops = []
    calls = 0
    for page in prepared:
        base = page.mode.base_size
        tiles = page.tiles if page.tiles is not None else torch.zeros(1, 3, base, base)
        images.append((tiles.to(device=device, dtype=dtype), page.global_view[None].to(device=device, dtype=dtype)))
        crops.append(list(page.tile_grid))
        calls += 2 if page.tiles is not None else 1
    return OfficialInputs(
        input_ids=ids.to(device),
        images=images,
        images_seq_mask=ours.image_mask.to(device),
        images_spatial_crop=torch.tensor(crops, dtype=torch.long),
        projector_calls=calls,
    )


class _StageHooks:
    """Forward hooks that open and close the runner's named ranges around the official modules."""

    def __init__(self, model: Any, ranges: RangeFactory, projector_calls: int) -> None:
        self.model, self.ranges, self.projector_calls = model, ranges, projector_calls
        self.open: list[tuple[str, AbstractContextManager[Any]]] = []
        self.forwards = 0
        self.projected = 0
        self.handles: list[Any] = []

    def _push(self, name: str) -> None:
        cm = self.ranges(name)
        cm.__enter__()
        self.open.append((name, cm))

    def _pop(self, name: str) -> None:
        """Close ``name`` and anything opened inside it (innermost first)."""
        if all(n != name for n, _ in self.open):
            return
        while self.open:
            n, cm = self.open.pop()
            cm.__exit__(None, None, None)
            if n == name:
                return

    def _in_prefill(self) -> bool:
        return self.forwards == 1

    def _module_pre(self, stage: str) -> Any:
        def hook(module: Any, args: Any) -> None:
            if not self._in_prefill():
                return
            if stage == "sam" and all(n != "vision" for n, _ in self.open) and self.projected < self.projector_calls:
                self._push("vision")
            self._push(stage)

        return hook

    def _module_post(self, stage: str) -> Any:
        def hook(module: Any, args: Any, output: Any) -> None:
            if not self._in_prefill():
                return
            self._pop(stage)
            if stage == "projector":
                self.projected += 1
                if self.projected == self.projector_calls:
                    self._pop("vision")

        return hook

    def _top_pre(self, module: Any, args: Any, kwargs: Any) -> None:
        self.forwards += 1
        if self.forwards == 1:
            self._push("prefill")

    def _top_post(self, module: Any, args: Any, kwargs: Any, output: Any) -> None:
        if self.forwards == 1:
            self._pop("prefill")
            self._push("decode")

    def __enter__(self) -> _StageHooks:
        inner = self.model.model
        for attr, stage in (("sam_model", "sam"), ("vision_model", "clip"), ("projector", "projector")):
            sub = getattr(inner, attr)
            self.handles.append(sub.register_forward_pre_hook(self._module_pre(stage)))
            self.handles.append(sub.register_forward_hook(self._module_post(stage)))
        self.handles.append(self.model.register_forward_pre_hook(self._top_pre, with_kwargs=True))
        self.handles.append(self.model.register_forward_hook(self._top_post, with_kwargs=True))
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self.handles:
            handle.remove()
        if exc[0] is None:
            while self.open:
                self.open.pop()[1].__exit__(None, None, None)
        else:
            self.open.clear()


@contextlib.contextmanager
def cuda_calls_stay_on(device: torch.device) -> Iterator[None]:
    """The official forward calls ``.cuda()`` on the image-token mask; off CUDA it becomes ``.to(device)``."""
    if device.type == "cuda":
        yield
        return
    original = torch.Tensor.cuda

    def _to_device(self: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        return self.to(device)

    torch.Tensor.cuda = _to_device  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        torch.Tensor.cuda = original  # type: ignore[method-assign]


class _NullWriter:
    """A stdout sink: the official forward prints feature shapes on every prefill."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        return None


class OfficialSession(ProfileSession):
    """A :class:`ProfileSession` whose model is the checkpoint's own code (``remote_code=True``)."""

    graph_decode: ClassVar[bool] = False  # the official generate is run as written: eager
    implementation: ClassVar[str] = "hf-official"
    """The analytic implementation whose FLOPs and bytes give this session's MFU."""

    @classmethod
    def load_official(
        cls,
        *,
        spec: ModelSpec,
        code_dir: Path,
        weights: Path | None,
        device: torch.device,
        dtype: str,
        attn_impl: str,
        seed: int = 0,
    ) -> OfficialSession:
        """Build the official model (timed) and its tokenizer if the directory has one."""
        from llm_perf_opt.models import deepseek_ocr as dso

        notes = [f"official checkpoint code from {code_dir} run with trust_remote_code (offline, local files only)"]
        impl, note = official_attn_impl(attn_impl)
        if note:
            notes.append(note)
        torch.manual_seed(seed)
        start = time.perf_counter()
        model = load_official_model(code_dir, weights=weights, device=device, dtype=DTYPE_NAMES[dtype], attn_impl=impl)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        load_seconds = time.perf_counter() - start
        tokenizer = None
        for d in (weights, code_dir):
            if tokenizer is None and d is not None:
                try:
                    tokenizer = dso.load_tokenizer(d)
                except UserError as exc:
                    notes.append(f"tokenizer not loaded ({exc}); placeholder prompt ids used")
        if tokenizer is None:
            notes.append("no tokenizer: the prompt is placeholder ids of the default prompt's length")
        return cls(
            spec=spec,
            model=model,
            tokenizer=tokenizer,
            device=device,
            dtype=dtype,
            attn_impl=impl,
            weights=str(weights) if weights else "random",
            model_path=str(code_dir),
            remote_code=True,
            load_seconds=load_seconds,
            notes=notes,
        )

    def build_inputs(self, batch: Batch) -> None:
        start = time.perf_counter()
        batch.inputs = build_official_inputs(
            self.spec,
            [item.prepared for item in batch.items],
            tokenizer=self.tokenizer,
            image_token_id=official_image_token_id(self.model),
            device=self.device,
            dtype=self.torch_dtype,
        )
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        batch.build_ms = (time.perf_counter() - start) * 1000.0

    def generate(
        self,
        batch: Batch,
        *,
        max_new_tokens: int,
        min_new_tokens: int | None = None,
        no_repeat_ngram_size: int = 0,
        ranges: RangeFactory = null_ranges,
        **_: Any,
    ) -> Any:
        """One call of the official ``generate``; returns a ``GenerationResult`` like our generate."""
        from llm_perf_opt.models.deepseek_ocr.generate import GenerationResult

        if batch.inputs is None:
            self.build_inputs(batch)
        inp: OfficialInputs = batch.inputs
        eos = int(self.model.config.eos_token_id)
        extra: dict[str, Any] = {}
        if min_new_tokens:
            extra["min_new_tokens"] = min(min_new_tokens, max_new_tokens)
        if no_repeat_ngram_size:
            extra["no_repeat_ngram_size"] = no_repeat_ngram_size
        autocast = (
            torch.autocast("cuda", dtype=torch.bfloat16) if self.device.type == "cuda" else contextlib.nullcontext()
        )
        with (
            warnings.catch_warnings(),
            torch.no_grad(),
            autocast,
            cuda_calls_stay_on(self.device),
            contextlib.redirect_stdout(_NullWriter()),  # its prints still run; their text is dropped
            _StageHooks(self.model, ranges, inp.projector_calls),
        ):
            warnings.simplefilter("ignore")  # temperature=0.0 with greedy, as infer() passes it
            out = self.model.generate(
                inp.input_ids,
                images=inp.images,
                images_seq_mask=inp.images_seq_mask,
                images_spatial_crop=inp.images_spatial_crop,
                temperature=0.0,
                do_sample=False,
                eos_token_id=eos,
                pad_token_id=eos,
                max_new_tokens=max_new_tokens,
                use_cache=True,
                **extra,
            )
        prompt_len = inp.prompt_len
        tokens = out[:, prompt_len:].cpu()
        cache_len = prompt_len + max(int(tokens.shape[1]) - 1, 0)
        cfg = self.model.config
        head_dim = int(cfg.hidden_size) // int(cfg.num_attention_heads)
        kv_bytes = (
            2 * int(cfg.num_hidden_layers) * int(cfg.num_key_value_heads) * head_dim
            * self.torch_dtype.itemsize * int(tokens.shape[0]) * cache_len
        )  # fmt: skip
        return GenerationResult(tokens=tokens, prompt_len=prompt_len, cache_len=cache_len, kv_cache_bytes=kv_bytes)
