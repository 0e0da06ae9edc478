"""SAM ViT-B layers (windowed/global blocks, neck, net_2/net_3) and pieces shared with CLIP.

Shapes follow deepseek-ocr-architecture.md §3. A square view of side V px gives a SAM grid
G = V/16 (tokens G²). Windowed blocks pad the grid on the bottom/right to Gp = ⌈G/14⌉·14 and split
it into (Gp/14)² windows of 14×14; the padded tokens are computed like real ones (not masked),
so qkv/proj and attention run on Gp² tokens while the MLP runs after un-padding on G² tokens.
Every attention adds decomposed relative positions: two einsums (q against R_h and R_w) and an
additive [B, h, N, N] bias materialised and read by SDPA (no flash kernel with a bias).
"""

from __future__ import annotations

from typing import ClassVar

from attrs import frozen

from llm_perf_opt.analytic.base import BaseLayer, Child, Cost
from llm_perf_opt.analytic.primitives import AttentionCore, Conv2d, Elementwise, LayerNorm, LayerNorm2d, Linear
from llm_perf_opt.analytic.vision_ops import EW, VA, VM, code_extra, head_merge, residual, stream_copy
from llm_perf_opt.specs.model_spec import SamSpec


@frozen(kw_only=True, cache_hash=True)
class PositionAdd(BaseLayer):
    """Add a learned absolute position table, resized when the grid differs from the table's.

    Table: (table_grid² + extra_rows) × width parameters (SAM: 64² × 768; CLIP: 16² + 1 CLS row).
    A grid of another side is resized bicubically (antialias) in fp32 first (deepseek-ocr-architecture.md §3, §4).
    """

    batch: int
    grid: int
    width: int
    table_grid: int
    extra_rows: int = 0

    formula: ClassVar[str] = (
        "non-matmul FLOPs = B·tokens·W (+ 32·G²·W bicubic resize when G ≠ table side); "
        "read table + B·tokens·W·a; write B·tokens·W·a"
    )

    def leaf_cost(self) -> Cost:
        """One broadcast add; a resize adds ≈ 16 taps × 2 FLOPs per output element and 5 launches."""
        p = self.prec
        tokens = self.grid**2 + self.extra_rows
        params = (self.table_grid**2 + self.extra_rows) * self.width
        resized = self.grid != self.table_grid
        elems = self.batch * tokens * self.width
        resize_flops = 32.0 * self.grid**2 * self.width if resized else 0.0
        return self.make_cost(
            vector_flops=elems + resize_flops,
            bytes_read=params * p.w + elems * p.a + (tokens * self.width * 4 if resized else 0),
            bytes_written=elems * p.a + (tokens * self.width * 4 if resized else 0),
            weight_params=params,
            weight_bytes=params * p.w,
            activation_bytes=2 * elems * p.a,
            kernels=6 if resized else 1,
        )


@frozen(kw_only=True, cache_hash=True)
class RelPosBias(BaseLayer):
    """Decomposed relative-position bias of one SAM attention over S sequences of n×n tokens.

    rel_h = einsum("bhwc,hkc->bhwk", q, R_h), rel_w = einsum("bhwc,wkc->bhwk", q, R_w) over the
    S·heads query maps, then bias = rel_h[..., None] + rel_w[..., None, :] reshaped to
    [S, heads, n², n²] and written out. The stored tables have R rows (27 windowed, 127 global);
    2n − 1 rows are needed, so the global tables are linearly resized for views other than 1024.
    """

    seqs: int
    side: int
    heads: int
    head_dim: int
    stored_rows: int

    DEFAULT_CATEGORY: ClassVar[str] = VA
    formula: ClassVar[str] = (
        "FLOPs = 2 einsums · 2·S·h·n²·n·d = 4·S·h·n³·d; non-matmul S·h·n⁴ (bias add); "
        "write bias S·h·n⁴·a (the materialised [S, h, N, N] bias)"
    )

    @property
    def broadcast_write_bytes(self) -> float:
        """Bytes the broadcasting add writes (the bias): the roofline charges them at the measured
        bandwidth of that kernel (``broadcast_bandwidth_efficiency``), not the copy bandwidth."""
        return float(self.seqs * self.heads * self.side**4 * self.prec.a)

    def leaf_cost(self) -> Cost:
        """Einsum FLOPs 4·S·h·n³·d; bias materialisation S·h·n⁴ elements written."""
        s, n, h, d, p = self.seqs, self.side, self.heads, self.head_dim, self.prec
        resized = self.stored_rows != 2 * n - 1
        maps = s * h * n * n
        rel = maps * n  # rel_h and rel_w each hold S·h·n²·n elements
        bias = maps * n * n
        params = 2 * self.stored_rows * d
        # The code's copies (models/deepseek_ocr/sam.py decomposed_rel_bias): each einsum copies the strided
        # queries into a contiguous operand, and each einsum output is made contiguous before the add.
        copies = 2 * maps * d + 2 * rel
        return self.make_cost(
            flops=2 * 2.0 * rel * d,
            vector_flops=float(bias) + (8.0 * (2 * n - 1) * d if resized else 0.0),
            bytes_read=2 * maps * d * p.a + 2 * n * n * d * p.a + params * p.w + 2 * rel * p.a + copies * p.a,
            bytes_written=2 * rel * p.a + bias * p.a + copies * p.a,
            weight_params=params,
            weight_bytes=params * p.w,
            activation_bytes=(2 * rel + bias) * p.a,
            kernels=15 + (6 if resized else 0),
        )


@frozen(kw_only=True, cache_hash=True)
class SamAttention(BaseLayer):
    """SAM attention: qkv (bias) → rel-pos bias → SDPA with the bias → proj (bias).

    ``window`` > 0: S = B·(Gp/window)² windows of N = window² tokens (Gp the padded grid);
    ``window`` = 0: S = B sequences of N = G² tokens (global block).
    """

    batch: int
    grid: int
    width: int
    heads: int
    window: int
    rel_rows: int

    DEFAULT_CATEGORY: ClassVar[str] = VA
    formula: ClassVar[str] = "FLOPs = 2·T·W·3W + 2·T·W·W + 4·S·h·N²·d + 4·S·h·n³·d, T = S·N (padded tokens)"

    @property
    def layout(self) -> tuple[int, int, int]:
        """(sequences S, side n, tokens per sequence N)."""
        if self.window:
            padded = -(-self.grid // self.window) * self.window
            return self.batch * (padded // self.window) ** 2, self.window, self.window**2
        return self.batch, self.grid, self.grid**2

    def build_children(self) -> tuple[Child, ...]:
        s, n, tok = self.layout
        t, w, h = s * tok, self.width, self.heads
        hd = w // h
        sdpa = self.sub(AttentionCore, batch=s, heads=h, q_len=tok, kv_len=tok, head_dim=hd, kv_heads=h,
                        bias=True, op_category=VA)  # fmt: skip
        return (
            Child(
                name="qkv",
                layer=self.sub(Linear, tokens=t, in_features=w, out_features=3 * w, bias=True, op_category=VA),
            ),
            Child(
                name="qkv_split",
                layer=self.sub(
                    Elementwise,
                    label="reshape/permute qkv (copy)",
                    elements=3 * t * w,
                    flops_per_element=0.0,
                    op_category=VA,
                ),
            ),
            Child(
                name="rel_pos",
                layer=self.sub(RelPosBias, seqs=s, side=n, heads=h, head_dim=hd, stored_rows=self.rel_rows),
            ),
            *self._bias_padding(s, tok, h),
            Child(name="sdpa", layer=sdpa),
            Child(name="head_merge", layer=head_merge(self, t * w)),
            Child(
                name="proj", layer=self.sub(Linear, tokens=t, in_features=w, out_features=w, bias=True, op_category=VA)
            ),
        )

    def _bias_padding(self, seqs: int, tokens: int, heads: int) -> tuple[Child, ...]:
        """SDPA's memory-efficient kernel takes a bias whose last dim is a multiple of 16 elements; it pads
        (copies) any other, e.g. the windowed blocks' 196 keys to 208, and reads the padded copy."""
        padded = -(-tokens // BIAS_ALIGN) * BIAS_ALIGN
        if padded == tokens:
            return ()
        elements = float(seqs * heads * tokens * padded)
        pad = self.sub(Elementwise, label="attention bias padding (copy)", elements=elements,
                       flops_per_element=0.0, op_category=VA)  # fmt: skip
        return (Child(name="bias_pad", layer=pad),)


BIAS_ALIGN = 16
"""Alignment (elements) of the additive mask's last dim that PyTorch's memory-efficient SDPA kernel needs."""


@frozen(kw_only=True, cache_hash=True)
class VisionMLP(BaseLayer):
    """fc2(act(fc1(x))) with biases: SAM uses exact GELU (erf), CLIP quick-GELU x·σ(1.702x)."""

    tokens: int
    width: int
    hidden: int
    quick_gelu: bool = False

    DEFAULT_CATEGORY: ClassVar[str] = VM
    formula: ClassVar[str] = "FLOPs = 2 · 2·T·W·H; non-matmul ≈ 8·T·H (GELU) or 4·T·H (quick-GELU, 3 kernels)"

    def build_children(self) -> tuple[Child, ...]:
        t, w, hid = self.tokens, self.width, self.hidden
        act = self.sub(
            Elementwise,
            label="quick_gelu" if self.quick_gelu else "gelu",
            elements=t * hid,
            flops_per_element=4.0 if self.quick_gelu else 8.0,
            kernels=3 if self.quick_gelu else 1,
            op_category=VM,
        )
        return (
            Child(
                name="fc1", layer=self.sub(Linear, tokens=t, in_features=w, out_features=hid, bias=True, op_category=VM)
            ),
            Child(name="act", layer=act),
            Child(
                name="fc2", layer=self.sub(Linear, tokens=t, in_features=hid, out_features=w, bias=True, op_category=VM)
            ),
        )


@frozen(kw_only=True, cache_hash=True)
class SamBlock(BaseLayer):
    """Pre-norm SAM block: x + attn(LN1(x)) [windowed: pad+partition / unpartition], then x + MLP(LN2(x))."""

    batch: int
    grid: int
    width: int
    heads: int
    mlp_dim: int
    window: int
    rel_rows: int

    formula: ClassVar[str] = "norm1, [partition], attn (padded tokens), [unpartition], add, norm2, mlp (G² tokens), add"

    def build_children(self) -> tuple[Child, ...]:
        t, w = self.batch * self.grid**2, self.width
        attn = self.sub(
            SamAttention,
            batch=self.batch,
            grid=self.grid,
            width=w,
            heads=self.heads,
            window=self.window,
            rel_rows=self.rel_rows,
        )
        kids = [
            Child(name="norm1_input", layer=stream_copy(self, t * w)),
            Child(name="norm1", layer=self.sub(LayerNorm, tokens=t, dim=w)),
        ]
        if self.window:
            s, _, tok = attn.layout
            padded = s * tok * w
            kids.append(
                Child(
                    name="window_partition",
                    layer=self.sub(
                        Elementwise,
                        label="pad + window partition (copy)",
                        elements=padded,
                        flops_per_element=0.0,
                        kernels=2,
                        op_category=EW,
                    ),
                )
            )
        kids.append(Child(name="attn", layer=attn))
        if self.window:
            kids.append(
                Child(
                    name="window_unpartition",
                    layer=self.sub(
                        Elementwise,
                        label="window unpartition + unpad (copy)",
                        elements=padded,
                        flops_per_element=0.0,
                        kernels=2,
                        op_category=EW,
                    ),
                )
            )
        kids += [
            Child(name="residual1", layer=residual(self, t * w, strided=True)),
            Child(name="norm2_input", layer=stream_copy(self, t * w)),
            Child(name="norm2", layer=self.sub(LayerNorm, tokens=t, dim=w)),
            Child(name="mlp", layer=self.sub(VisionMLP, tokens=t, width=w, hidden=self.mlp_dim)),
            Child(name="residual2", layer=residual(self, t * w, strided=True)),
        ]
        return tuple(kids)


@frozen(kw_only=True, cache_hash=True)
class SamEncoder(BaseLayer):
    """SAM ViT-B on a batch of square views: patch embed + pos, blocks, neck, net_2, net_3.

    Blocks of the same kind are one node with a count (``for``): their shapes are identical.
    """

    batch: int
    view: int
    sam: SamSpec
    extra_kernels: int = 0
    """Kernels the running code issues per call beyond this tree (0 for ours; the official code's casts)."""

    formula: ClassVar[str] = "patch conv 2·B·G²·W·3·16² + blocks + neck (1×1, 3×3 convs) + net_2/net_3 (3×3 stride 2)"

    def build_children(self) -> tuple[Child, ...]:
        s, b = self.sam, self.batch
        g = s.grid(self.view)
        n_global = sum(1 for i in range(s.depth) if s.is_global(i))
        n_window = s.depth - n_global
        block = {"batch": b, "grid": g, "width": s.width, "heads": s.num_heads, "mlp_dim": s.mlp_dim}
        c1, c2 = s.downsample_channels
        net2 = self.sub(
            Conv2d, batch=b, in_channels=s.neck_channels, out_channels=c1, kernel=3, stride=2, padding=1, in_side=g
        )
        kids = [
            Child(
                name="patch_embed.proj",
                layer=self.sub(
                    Conv2d,
                    batch=b,
                    in_channels=s.in_chans,
                    out_channels=s.width,
                    kernel=s.patch_size,
                    stride=s.patch_size,
                    in_side=self.view,
                    bias=True,
                ),
            ),
            Child(name="pos_embed", layer=self.sub(PositionAdd, batch=b, grid=g, width=s.width, table_grid=s.pos_grid)),
        ]
        if n_window:
            kids.append(
                Child(
                    name="blocks.windowed",
                    repetition="for",
                    count=n_window,
                    layer=self.sub(SamBlock, window=s.window_size, rel_rows=2 * s.window_size - 1, **block),
                )
            )
        if n_global:
            kids.append(
                Child(
                    name="blocks.global",
                    repetition="for",
                    count=n_global,
                    layer=self.sub(SamBlock, window=0, rel_rows=2 * s.pos_grid - 1, **block),
                )
            )
        kids += [
            Child(
                name="neck.0",
                layer=self.sub(Conv2d, batch=b, in_channels=s.width, out_channels=s.neck_channels, kernel=1, in_side=g),
            ),
            Child(name="neck.1", layer=self.sub(LayerNorm2d, tokens=b * g * g, dim=s.neck_channels)),
            Child(
                name="neck.2",
                layer=self.sub(
                    Conv2d,
                    batch=b,
                    in_channels=s.neck_channels,
                    out_channels=s.neck_channels,
                    kernel=3,
                    padding=1,
                    in_side=g,
                ),
            ),
            Child(name="neck.3", layer=self.sub(LayerNorm2d, tokens=b * g * g, dim=s.neck_channels)),
            Child(name="net_2", layer=net2),
            Child(
                name="net_3",
                layer=self.sub(
                    Conv2d,
                    batch=b,
                    in_channels=c1,
                    out_channels=c2,
                    kernel=3,
                    stride=2,
                    padding=1,
                    in_side=net2.out_side,
                ),
            ),
        ]
        if self.extra_kernels:
            kids.append(Child(name="code_extra", layer=code_extra(self, self.extra_kernels)))
        return tuple(kids)
