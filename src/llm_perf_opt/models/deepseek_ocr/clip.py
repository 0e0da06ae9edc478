"""CLIP-L transformer fed by SAM features instead of pixels (deepseek-ocr-architecture.md §4).

The SAM map [B, 1024, h, w] is flattened row-major into h·w tokens and a learned class token is
prepended, so L = h·w + 1 (257 for a 1024 px view). The CLIP patch-embedding conv exists only so
that the checkpoint loads: it is never run.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from llm_perf_opt.models.deepseek_ocr.common import attend
from llm_perf_opt.specs.model_spec import ClipSpec

CLIP_LN_EPS = 1e-5


def quick_gelu(x: torch.Tensor) -> torch.Tensor:
    """x·sigmoid(1.702·x), CLIP's GELU approximation."""
    return x * torch.sigmoid(1.702 * x)


class ClipEmbeddings(nn.Module):
    def __init__(self, spec: ClipSpec) -> None:
        super().__init__()
        self.class_embedding = nn.Parameter(torch.zeros(spec.width))
        # Unused at inference ("we remove the first patch embedding layer"); kept for the checkpoint.
        self.patch_embedding = nn.Conv2d(3, spec.width, kernel_size=spec.patch_size, stride=spec.patch_size, bias=False)
        self.position_embedding = nn.Embedding(spec.num_positions, spec.width)
        # Persistent int64 buffer in the checkpoint; always arange, so forward reads the table directly.
        self.register_buffer("position_ids", torch.arange(spec.num_positions).unsqueeze(0), persistent=True)

    def position_table(self, grid_h: int, grid_w: int) -> torch.Tensor:
        """[1 + grid_h·grid_w, C]: the CLS row, then the 16×16 grid part resized bicubically.

        Bicubic with antialias and align_corners=False in fp32, as the official ``get_abs_pos``;
        a 1024 px view (16×16 SAM grid) uses the table unchanged.
        """
        table = self.position_embedding.weight
        side = math.isqrt(table.shape[0] - 1)
        if side == grid_h == grid_w:
            return table
        grid = table[1:].float().reshape(1, side, side, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=(grid_h, grid_w), mode="bicubic", antialias=True, align_corners=False)
        grid = grid.permute(0, 2, 3, 1).reshape(grid_h * grid_w, -1).to(table.dtype)
        return torch.cat([table[:1], grid], dim=0)

    def forward(self, sam_features: torch.Tensor) -> torch.Tensor:
        b, c, h, w = sam_features.shape
        tokens = sam_features.flatten(2).transpose(1, 2)
        cls = self.class_embedding.to(tokens.dtype).expand(b, 1, c)
        tokens = torch.cat([cls, tokens], dim=1)
        return tokens + self.position_table(h, w).to(tokens.dtype)


class ClipAttention(nn.Module):
    def __init__(self, spec: ClipSpec, attn_impl: str) -> None:
        super().__init__()
        self.num_heads = spec.num_heads
        self.head_dim = spec.head_dim
        self.attn_impl = attn_impl
        self.qkv_proj = nn.Linear(spec.width, 3 * spec.width, bias=True)
        self.out_proj = nn.Linear(spec.width, spec.width, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv_proj(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        out = attend(q, k, v, impl=self.attn_impl)  # bidirectional, no mask
        return self.out_proj(out.transpose(1, 2).reshape(b, n, c))


class ClipMLP(nn.Module):
    def __init__(self, spec: ClipSpec) -> None:
        super().__init__()
        self.fc1 = nn.Linear(spec.width, spec.ffn_dim)
        self.fc2 = nn.Linear(spec.ffn_dim, spec.width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(quick_gelu(self.fc1(x)))


class ClipLayer(nn.Module):
    """Pre-LN layer: h = x + attn(LN1(x)); out = h + mlp(LN2(h))."""

    def __init__(self, spec: ClipSpec, attn_impl: str) -> None:
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(spec.width, eps=CLIP_LN_EPS)
        self.self_attn = ClipAttention(spec, attn_impl)
        self.layer_norm2 = nn.LayerNorm(spec.width, eps=CLIP_LN_EPS)
        self.mlp = ClipMLP(spec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class ClipTransformer(nn.Module):
    def __init__(self, spec: ClipSpec, attn_impl: str) -> None:
        super().__init__()
        self.layers = nn.ModuleList(ClipLayer(spec, attn_impl) for _ in range(spec.num_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class ClipVisionModel(nn.Module):
    """``model.vision_model``: SAM features [B, C, h, w] → hidden states [B, 1 + h·w, C].

    No post-layernorm and no pooling: the last layer's states are the output; the caller drops
    the CLS row before fusing with the SAM features.
    """

    def __init__(self, spec: ClipSpec, attn_impl: str) -> None:
        super().__init__()
        self.embeddings = ClipEmbeddings(spec)
        self.pre_layrnorm = nn.LayerNorm(spec.width, eps=CLIP_LN_EPS)  # (sic) checkpoint spelling
        self.transformer = ClipTransformer(spec, attn_impl)

    def forward(self, sam_features: torch.Tensor) -> torch.Tensor:
        return self.transformer(self.pre_layrnorm(self.embeddings(sam_features)))
