"""SAM ViT-B image encoder with neck and the two stride-2 compressor convolutions (deepseek-ocr-architecture.md §3).

Tokens live in BHWC layout inside the blocks (as in SAM). Shapes for the full model: a view of S px
gives an S/16 grid of 768-wide tokens; the neck maps 768 → 256 channels and net_2/net_3 halve the
grid twice, so the output is [B, 1024, S/64, S/64].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from llm_perf_opt.models.deepseek_ocr.common import attend
from llm_perf_opt.specs.model_spec import SamSpec

SAM_LN_EPS = 1e-6


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel dim of an NCHW map (the neck's norm), eps 1e-6."""

    def __init__(self, channels: int, eps: float = SAM_LN_EPS) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # F.layer_norm normalises trailing dims, so move channels last and back.
        y = F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), self.weight, self.bias, self.eps)
        return y.permute(0, 3, 1, 2)


def resize_rel_table(table: torch.Tensor, length: int) -> torch.Tensor:
    """A relative-position table (2S−1, d) resized to ``length`` rows by 1-D linear interpolation.

    Done in fp32 and cast back, as the official code does, e.g. 127 → 79 rows for a 640 px view.
    """
    if table.shape[0] == length:
        return table
    resized = F.interpolate(table.float().t().unsqueeze(0), size=length, mode="linear")
    return resized[0].t().to(table.dtype)


def rel_positions(table: torch.Tensor, size: int) -> torch.Tensor:
    """R[i, j] = table[i − j + size − 1] for query/key positions i, j along one axis: [size, size, d]."""
    table = resize_rel_table(table, 2 * size - 1)
    idx = torch.arange(size, device=table.device)
    return table[idx[:, None] - idx[None, :] + (size - 1)]


def decomposed_rel_bias(
    q: torch.Tensor, rel_h: torch.Tensor, rel_w: torch.Tensor, height: int, width: int
) -> torch.Tensor:
    """MViTv2-style bias [B, heads, HW, HW]: bias[(h,w),(h',w')] = q·Rh[h,h'] + q·Rw[w,w'].

    Uses the unscaled queries. It is materialised in full (12·N² values per image in a global
    block) because the official code passes it to SDPA as ``attn_mask``; the analytic model counts
    that buffer, so the runnable model keeps it.
    """
    b, heads, n, d = q.shape
    r_q = q.reshape(b, heads, height, width, d)
    # einsum returns permuted strides; contiguous operands make the big broadcast add write the
    # [B, heads, H, W, H, W] bias in row-major order, so the reshape below is a view, not a copy.
    bias_h = torch.einsum("bnhwc,hkc->bnhwk", r_q, rel_positions(rel_h, height).to(q.dtype)).contiguous()
    bias_w = torch.einsum("bnhwc,wkc->bnhwk", r_q, rel_positions(rel_w, width).to(q.dtype)).contiguous()
    bias = bias_h[..., :, None] + bias_w[..., None, :]
    return bias.reshape(b, heads, n, height * width)


class SamAttention(nn.Module):
    """Multi-head attention with fused [Q|K|V] projection and decomposed relative positions."""

    def __init__(self, dim: int, num_heads: int, rel_side: int, attn_impl: str) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.attn_impl = attn_impl
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.proj = nn.Linear(dim, dim, bias=True)
        self.rel_pos_h = nn.Parameter(torch.zeros(2 * rel_side - 1, self.head_dim))
        self.rel_pos_w = nn.Parameter(torch.zeros(2 * rel_side - 1, self.head_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, dim = x.shape
        # Output dim splits as [Q | K | V], heads contiguous inside each third (deepseek-ocr-architecture.md §2.2).
        qkv = self.qkv(x).reshape(b, h * w, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        bias = decomposed_rel_bias(q, self.rel_pos_h, self.rel_pos_w, h, w)
        out = attend(q, k, v, impl=self.attn_impl, mask=bias)
        return self.proj(out.transpose(1, 2).reshape(b, h, w, dim))


class SamMLP(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.lin1 = nn.Linear(dim, hidden)
        self.lin2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin2(F.gelu(self.lin1(x)))  # exact (erf) GELU, as nn.GELU()


def window_partition(x: torch.Tensor, window: int) -> tuple[torch.Tensor, int, int]:
    """[B, H, W, C] → [B·nWin, window, window, C], zero-padding bottom/right to a multiple of window.

    The padded positions are NOT masked: they are keys/values of their window like any token.
    Returns the padded sides too, for :func:`window_unpartition`.
    """
    b, h, w, c = x.shape
    pad_h, pad_w = (-h) % window, (-w) % window
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    hp, wp = h + pad_h, w + pad_w
    x = x.view(b, hp // window, window, wp // window, window, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, window, window, c), hp, wp


def window_unpartition(x: torch.Tensor, window: int, hp: int, wp: int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`, dropping the padding."""
    c = x.shape[-1]
    b = x.shape[0] // ((hp // window) * (wp // window))
    x = x.view(b, hp // window, wp // window, window, window, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, hp, wp, c)[:, :h, :w]


class SamBlock(nn.Module):
    """Pre-norm block: x + Attn(LN1(x)), then x + MLP(LN2(x)); windowed unless global."""

    def __init__(self, spec: SamSpec, index: int, attn_impl: str) -> None:
        super().__init__()
        self.window = 0 if spec.is_global(index) else spec.window_size
        rel_side = spec.pos_grid if self.window == 0 else spec.window_size
        self.norm1 = nn.LayerNorm(spec.width, eps=SAM_LN_EPS)
        self.attn = SamAttention(spec.width, spec.num_heads, rel_side, attn_impl)
        self.norm2 = nn.LayerNorm(spec.width, eps=SAM_LN_EPS)
        self.mlp = SamMLP(spec.width, spec.mlp_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.norm1(x)
        if self.window:
            h, w = x.shape[1], x.shape[2]
            x, hp, wp = window_partition(x, self.window)
            x = window_unpartition(self.attn(x), self.window, hp, wp, h, w)
        else:
            x = self.attn(x)
        x = shortcut + x
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, spec: SamSpec) -> None:
        super().__init__()
        self.proj = nn.Conv2d(spec.in_chans, spec.width, kernel_size=spec.patch_size, stride=spec.patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).permute(0, 2, 3, 1)  # BCHW → BHWC


def resize_abs_pos(pos: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """[1, G, G, C] table → [1, height, width, C]: bicubic, antialias, align_corners=False, fp32.

    The table belongs to a 1024 px view (G = 64); other views interpolate it (640 → 40×40).
    """
    if pos.shape[1] == height and pos.shape[2] == width:
        return pos
    grid = pos.float().permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(height, width), mode="bicubic", antialias=True, align_corners=False)
    return grid.permute(0, 2, 3, 1).to(pos.dtype)


class SamEncoder(nn.Module):
    """``model.sam_model``: pixels [B, 3, S, S] → features [B, C_out, S/64, S/64]."""

    def __init__(self, spec: SamSpec, attn_impl: str) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed(spec)
        self.pos_embed = nn.Parameter(torch.zeros(1, spec.pos_grid, spec.pos_grid, spec.width))
        self.blocks = nn.ModuleList(SamBlock(spec, i, attn_impl) for i in range(spec.depth))
        n = spec.neck_channels
        self.neck = nn.Sequential(
            nn.Conv2d(spec.width, n, kernel_size=1, bias=False),
            LayerNorm2d(n),
            nn.Conv2d(n, n, kernel_size=3, padding=1, bias=False),
            LayerNorm2d(n),
        )
        c2, c3 = spec.downsample_channels
        self.net_2 = nn.Conv2d(n, c2, kernel_size=3, stride=2, padding=1, bias=False)
        self.net_3 = nn.Conv2d(c2, c3, kernel_size=3, stride=2, padding=1, bias=False)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(pixels)
        x = x + resize_abs_pos(self.pos_embed, x.shape[1], x.shape[2])
        for block in self.blocks:
            x = block(x)
        x = self.neck(x.permute(0, 3, 1, 2))
        return self.net_3(self.net_2(x))
