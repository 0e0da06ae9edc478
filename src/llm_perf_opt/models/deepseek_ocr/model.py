"""DeepseekOCRForCausalLM: SAM + CLIP + projector + DeepSeek-V2 MoE decoder, official state-dict names.

Module attribute names mirror the checkpoint (deepseek-ocr-architecture.md §2.1–§2.2): ``model.sam_model``,
``model.vision_model``, ``model.projector.layers``, ``model.image_newline``,
``model.view_seperator`` (sic), ``model.embed_tokens``, ``model.layers.N``, ``model.norm``, ``lm_head``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from llm_perf_opt.models.deepseek_ocr.clip import ClipVisionModel
from llm_perf_opt.models.deepseek_ocr.common import Ranges, check_attn_impl, null_ranges
from llm_perf_opt.models.deepseek_ocr.decoder import MOE_IMPLS, DecoderLayer, MoE, RMSNorm, RotaryEmbedding
from llm_perf_opt.models.deepseek_ocr.kv_cache import KVCache
from llm_perf_opt.models.deepseek_ocr.preprocess import PreparedPage
from llm_perf_opt.models.deepseek_ocr.projector import MlpProjector, fuse_features
from llm_perf_opt.models.deepseek_ocr.sam import SamEncoder
from llm_perf_opt.models.deepseek_ocr.step_attention import STEP_ATTENTIONS
from llm_perf_opt.specs.model_spec import ModelSpec


class DeepseekOCRModel(nn.Module):
    """``model``: the decoder stack plus the vision encoders and the two learned special vectors."""

    def __init__(self, spec: ModelSpec, attn_impl: str) -> None:
        super().__init__()
        dec = spec.decoder
        self.embed_tokens = nn.Embedding(dec.vocab_size, dec.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(dec, i, attn_impl) for i in range(dec.num_layers))
        self.norm = RMSNorm(dec.hidden_size, dec.rms_norm_eps)
        self.sam_model = SamEncoder(spec.sam, attn_impl)
        self.vision_model = ClipVisionModel(spec.clip, attn_impl)
        self.projector = MlpProjector(spec.projector_input_dim, dec.hidden_size)
        self.image_newline = nn.Parameter(torch.zeros(dec.hidden_size))
        self.view_seperator = nn.Parameter(torch.zeros(dec.hidden_size))  # (sic) checkpoint spelling
        self.rotary = RotaryEmbedding(dec.head_dim, dec.rope_theta, dec.max_position_embeddings)

    def decode(self, embeds: torch.Tensor, cache: KVCache | None) -> torch.Tensor:
        """Run the decoder layers over embeds [B, T, H] at the cache's next positions; final norm applied."""
        t = embeds.shape[1]
        start = cache.reserve(t) if cache is not None else 0
        cos, sin = self.rotary.tables(start + t, embeds.device, embeds.dtype)
        cos, sin = cos[start : start + t, None], sin[start : start + t, None]  # [T, 1, d]: slices, no kernels
        x = embeds
        for i, layer in enumerate(self.layers):
            x = layer(x, cos, sin, cache.layer(i) if cache is not None else None, start)
        if cache is not None:
            cache.length = start + t
        return self.norm(x)


def _with_newlines(grid: torch.Tensor, newline: torch.Tensor) -> torch.Tensor:
    """[rows, cols, H] → [rows·(cols + 1), H]: each row followed by ``image_newline``."""
    rows = grid.shape[0]
    return torch.cat([grid, newline.expand(rows, 1, -1)], dim=1).flatten(0, 1)


class DeepseekOCRForCausalLM(nn.Module):
    """The full model. Build it with :func:`llm_perf_opt.models.deepseek_ocr.build_model`."""

    def __init__(self, spec: ModelSpec, attn_impl: str = "sdpa") -> None:
        super().__init__()
        self.spec = spec
        self.attn_impl = check_attn_impl(attn_impl)
        self.model = DeepseekOCRModel(spec, attn_impl)
        self.lm_head = nn.Linear(spec.decoder.hidden_size, spec.decoder.vocab_size, bias=False)
        self.step_attention = "auto"
        """Attention form of the graph decode step (:data:`.step_attention.STEP_ATTENTIONS`)."""

    @property
    def device(self) -> torch.device:
        return self.lm_head.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.lm_head.weight.dtype

    def set_attn_impl(self, attn_impl: str) -> None:
        """Switch SAM, CLIP and decoder attention between "sdpa" and "eager" in place."""
        self.attn_impl = check_attn_impl(attn_impl)
        for module in self.modules():
            if hasattr(module, "attn_impl"):
                setattr(module, "attn_impl", attn_impl)  # noqa: B010 (any module with the attribute)

    def set_moe_impl(self, impl: str) -> None:
        """Routed-expert dispatch of every MoE layer: one of MOE_IMPLS (see MoE)."""
        if impl not in MOE_IMPLS:
            raise ValueError(f"unknown MoE implementation {impl!r}; valid: {', '.join(MOE_IMPLS)}")
        for module in self.modules():
            if isinstance(module, MoE):
                module.impl = impl

    def set_step_attention(self, impl: str) -> None:
        """Attention form of the graph decode step; drops decoders (and graphs) built with another."""
        if impl not in STEP_ATTENTIONS:
            raise ValueError(f"unknown decode-step attention {impl!r}; valid: {', '.join(STEP_ATTENTIONS)}")
        self.step_attention = impl
        self.__dict__.pop("_static_decoders", None)

    # ---------------------------------------------------------------- vision

    def encode_images(self, pages: Sequence[PreparedPage], ranges: Ranges = null_ranges) -> torch.Tensor:
        """Image embeddings [B, slots, H] in LM order, slots = layout.total_slots of every page.

        Per page (deepseek-ocr-architecture.md §5.3): [local mosaic rows, each + newline] + [global rows, each +
        newline] + [view_seperator]. Views of one size from all pages run as one batch; ``ranges``
        gets "vision" around everything, with "sam", "clip", "projector" nested inside.
        """
        with ranges("vision"):
            pixels = self.stage_views(pages)
            with ranges("sam"):
                sam_out = self.sam_features(pixels)
            with ranges("clip"):
                clip_out = self.clip_features(sam_out)
            with ranges("projector"):
                feats = self.project(sam_out, clip_out)
            return self.assemble(pages, feats)

    def stage_views(self, pages: Sequence[PreparedPage]) -> dict[int, torch.Tensor]:
        """view side → [views, 3, side, side] on the device: every tile of every page, then every global view."""
        batches: dict[int, list[torch.Tensor]] = {}
        for page in pages:
            if page.tiles is not None:
                batches.setdefault(page.tiles.shape[-1], []).extend(page.tiles.unbind(0))
            batches.setdefault(page.global_view.shape[-1], []).append(page.global_view)
        return {
            side: torch.stack(views).to(device=self.device, dtype=self.dtype, non_blocking=True)
            for side, views in batches.items()
        }

    def sam_features(self, pixels: dict[int, torch.Tensor]) -> dict[int, torch.Tensor]:
        """SAM features per view side (one batched pass per side)."""
        return {side: self.model.sam_model(x) for side, x in pixels.items()}

    def clip_features(self, sam_out: dict[int, torch.Tensor]) -> dict[int, torch.Tensor]:
        """CLIP features per view side, fed by the SAM features."""
        return {side: self.model.vision_model(f) for side, f in sam_out.items()}

    def project(self, sam_out: dict[int, torch.Tensor], clip_out: dict[int, torch.Tensor]) -> dict[int, torch.Tensor]:
        """Projected view features per side: [views, tokens, hidden]."""
        return {side: self.model.projector(fuse_features(clip_out[side], sam_out[side])) for side in sam_out}

    def assemble(self, pages: Sequence[PreparedPage], feats: dict[int, torch.Tensor]) -> torch.Tensor:
        """Image embeddings [B, slots, H] from the projected views (only the pages' shapes are read)."""
        newline = self.model.image_newline.to(self.dtype)
        separator = self.model.view_seperator.to(self.dtype).unsqueeze(0)
        taken = dict.fromkeys(feats, 0)
        out = []
        for page in pages:
            parts = []
            if page.tiles is not None:
                side, (across, down) = page.tiles.shape[-1], page.tile_grid
                n = across * down
                tiles = feats[side][taken[side] : taken[side] + n]
                taken[side] += n
                q = page.layout.tile_side
                # [n, q², H] → mosaic [down·q, across·q, H]; tile i sits at (row i // across, col i % across).
                mosaic = tiles.view(down, across, q, q, -1).permute(0, 2, 1, 3, 4).reshape(down * q, across * q, -1)
                parts.append(_with_newlines(mosaic, newline))
            side = page.global_view.shape[-1]
            g = page.layout.global_side
            parts.append(_with_newlines(feats[side][taken[side]].view(g, g, -1), newline))
            taken[side] += 1
            parts.append(separator)
            out.append(torch.cat(parts, dim=0))
        return torch.stack(out)

    # ---------------------------------------------------------------- language model

    def forward(
        self,
        input_ids: torch.Tensor,
        *,
        image_embeds: torch.Tensor | None = None,
        image_mask: torch.Tensor | None = None,
        cache: KVCache | None = None,
        last_only: bool = False,
    ) -> torch.Tensor:
        """Logits [B, T, V] (or [B, 1, V] with ``last_only``) for ids [B, T].

        ``image_embeds`` [B, n, H] fill the positions where ``image_mask`` is True, in sequence
        order (the official ``masked_scatter``). With ``cache`` the ids continue the cached
        sequence and their keys/values are appended.
        """
        embeds = self.model.embed_tokens(input_ids.to(self.device))
        if image_embeds is not None:
            if image_mask is None:
                raise ValueError("image_embeds need an image_mask")
            mask = image_mask.to(self.device).unsqueeze(-1)
            embeds = embeds.masked_scatter(mask, image_embeds.to(embeds.dtype))
        hidden = self.model.decode(embeds, cache)
        if last_only:
            # Rows [B, H], not the strided slice [B, 1, H]: F.linear on that slice runs as a bmm that reads
            # the vocabulary weight once per row (batch-8 prefill, H200: 0.61 ms vs 0.08 for one read).
            return self.lm_head(hidden[:, -1]).unsqueeze(1)
        return self.lm_head(hidden)
