"""Architecture of DeepSeek-OCR as small declarative classes: one source for both models.

The analytic model (``llm_perf_opt.analytic``) and the runnable PyTorch model
(``llm_perf_opt.models.deepseek_ocr``) are both built from a :class:`ModelSpec`, so every
analytic number can be checked against a measurement of the same architecture.

Numbers of the ``deepseek-ocr`` variant come from ``shared/reference/deepseek-ocr-architecture.md``
(§1.1 config.json, §1.2 hard-coded encoder hyper-parameters, §2.2 state-dict shapes).
This module imports no torch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from attrs import evolve, field, frozen
from attrs.validators import ge, instance_of

from llm_perf_opt.specs.limits import MAX_MODEL_COUNT, MAX_MODEL_WIDTH, MAX_TOKENS, MAX_VOCAB


def _int_tuple(value: Iterable[int]) -> tuple[int, ...]:
    if isinstance(value, str | bytes | dict) or not isinstance(value, Iterable):
        raise ValueError(f"expected a list of integers, got {value!r}")
    items = tuple(value)
    if any(isinstance(v, bool) or not isinstance(v, int) for v in items):
        raise ValueError(f"expected a list of integers, got {list(items)!r}")
    return items


def _int_pair(value: Iterable[int]) -> tuple[int, int]:
    pair = _int_tuple(value)
    if len(pair) != 2:
        raise ValueError(f"expected two integers, got {pair!r}")
    return (pair[0], pair[1])


def _positive(_inst: object, attr: object, value: int) -> None:
    name = getattr(attr, "name", "value")
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    limit = MAX_VOCAB if name == "vocab_size" else MAX_MODEL_WIDTH
    if value > limit:
        raise ValueError(f"{name} must be at most {limit:,}, got {value:,}")


def _count(_inst: object, attr: object, value: int) -> None:
    """A non-negative count of layers or experts, bounded (see specs.limits)."""
    name = getattr(attr, "name", "value")
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_MODEL_COUNT:
        raise ValueError(f"{name} must be an integer from 0 to {MAX_MODEL_COUNT:,}, got {value!r}")


def _finite_positive(_inst: object, attr: object, value: float) -> None:
    name = getattr(attr, "name", "value")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def _heads_divide(where: str, width: int, heads: int) -> None:
    if width % heads:
        raise ValueError(f"{where}: width {width} is not divisible by num_heads {heads} (head dim must be whole)")


@frozen(kw_only=True)
class SamSpec:
    """SAM ViT-B image encoder plus neck and the two stride-2 compressor convolutions."""

    image_size: int = field(default=1024, validator=_positive)
    """View side (px) the absolute position table was trained for; other views interpolate it."""
    patch_size: int = field(default=16, validator=_positive)
    """Side of the patch-embedding convolution kernel and stride (px)."""
    in_chans: int = field(default=3, validator=_positive)
    """Input image channels (RGB)."""
    width: int = field(default=768, validator=_positive)
    """Token embedding width of every block."""
    depth: int = field(default=12, validator=_positive)
    """Number of transformer blocks."""
    num_heads: int = field(default=12, validator=_positive)
    """Attention heads per block; head dim = width / num_heads."""
    mlp_dim: int = field(default=3072, validator=_positive)
    """Hidden width of the block MLP (lin1 output)."""
    window_size: int = field(default=14, validator=_positive)
    """Side of the square attention window of the non-global blocks (grid padded to a multiple)."""
    global_attn_indexes: tuple[int, ...] = field(default=(2, 5, 8, 11), converter=_int_tuple)
    """Indexes of the blocks that attend over the whole grid instead of windows."""
    neck_channels: int = field(default=256, validator=_positive)
    """Output channels of the neck (1x1 conv, LN2d, 3x3 conv, LN2d)."""
    downsample_channels: tuple[int, int] = field(default=(512, 1024), converter=_int_pair)
    """Output channels of net_2 and net_3 (3x3, stride 2, pad 1, no bias)."""

    @property
    def head_dim(self) -> int:
        return self.width // self.num_heads

    @property
    def out_channels(self) -> int:
        """Channels of the SAM feature map handed to CLIP and the projector."""
        return self.downsample_channels[-1]

    @property
    def pos_grid(self) -> int:
        """Side of the stored absolute position table (64 for 1024 px / 16)."""
        return self.image_size // self.patch_size

    def __attrs_post_init__(self) -> None:
        _heads_divide("sam", self.width, self.num_heads)
        if self.depth > MAX_MODEL_COUNT:
            raise ValueError(f"sam.depth must be at most {MAX_MODEL_COUNT}, got {self.depth}")
        bad = [i for i in self.global_attn_indexes if not 0 <= i < self.depth]
        if bad or len(set(self.global_attn_indexes)) != len(self.global_attn_indexes):
            raise ValueError(
                f"sam.global_attn_indexes {list(self.global_attn_indexes)} must be distinct block indexes "
                f"from 0 to depth-1 = {self.depth - 1}"
            )
        if any(c <= 0 or c > MAX_MODEL_WIDTH for c in self.downsample_channels):
            raise ValueError(f"sam.downsample_channels {self.downsample_channels} must be positive widths")
        if self.image_size % self.patch_size:
            raise ValueError(f"sam.image_size {self.image_size} must be a multiple of patch_size {self.patch_size}")

    def is_global(self, block_index: int) -> bool:
        return block_index in self.global_attn_indexes

    def grid(self, view_size: int) -> int:
        """Token-grid side for a square view of ``view_size`` px."""
        return view_size // self.patch_size

    def out_grid(self, view_size: int) -> int:
        """Side of the output feature map: grid / 4 after two stride-2 convolutions."""
        side = self.grid(view_size)
        for _ in self.downsample_channels:
            side = (side + 2 - 3) // 2 + 1
        return side

    def rel_pos_rows(self, block_index: int) -> int:
        """Rows of the stored relative-position tables (2·S − 1) of one block."""
        side = self.pos_grid if self.is_global(block_index) else self.window_size
        return 2 * side - 1


@frozen(kw_only=True)
class ClipSpec:
    """CLIP-L transformer fed by SAM features (its own patch embedding is unused at inference)."""

    width: int = field(default=1024, validator=_positive)
    """Hidden width; must equal SAM's output channels."""
    num_layers: int = field(default=24, validator=_positive)
    """Number of pre-LN transformer layers."""
    num_heads: int = field(default=16, validator=_positive)
    """Attention heads per layer."""
    ffn_dim: int = field(default=4096, validator=_positive)
    """Hidden width of the quick-GELU MLP (fc1 output)."""
    image_size: int = field(default=224, validator=_positive)
    """Training image side; with patch_size it sizes the position table."""
    patch_size: int = field(default=14, validator=_positive)
    """Patch side of the (unused) patch-embedding conv; kept for checkpoint shapes."""

    @property
    def head_dim(self) -> int:
        return self.width // self.num_heads

    def __attrs_post_init__(self) -> None:
        _heads_divide("clip", self.width, self.num_heads)
        if self.num_layers > MAX_MODEL_COUNT:
            raise ValueError(f"clip.num_layers must be at most {MAX_MODEL_COUNT}, got {self.num_layers}")
        if self.image_size < self.patch_size:
            raise ValueError(f"clip.image_size {self.image_size} must be at least patch_size {self.patch_size}")

    @property
    def num_positions(self) -> int:
        """Rows of the position table: CLS plus a (224/14)² = 16×16 grid → 257."""
        return (self.image_size // self.patch_size) ** 2 + 1


@frozen(kw_only=True)
class DecoderSpec:
    """DeepSeek-V2-style decoder with plain multi-head attention (use_mla = false) and MoE."""

    hidden_size: int = field(default=1280, validator=_positive)
    """Model width."""
    num_layers: int = field(default=12, validator=_positive)
    """Decoder layers (layer 0 dense, the rest MoE with first_k_dense_replace = 1)."""
    num_heads: int = field(default=10, validator=_positive)
    """Query heads."""
    num_kv_heads: int = field(default=10, validator=_positive)
    """Key/value heads (equal to num_heads: MHA, no GQA)."""
    intermediate_size: int = field(default=6848, validator=_positive)
    """SwiGLU width of the dense MLP of the first_k_dense_replace layers."""
    moe_intermediate_size: int = field(default=896, validator=_positive)
    """SwiGLU width of one routed expert."""
    n_routed_experts: int = field(default=64, validator=_positive)
    """Routed experts per MoE layer."""
    num_experts_per_tok: int = field(default=6, validator=_positive)
    """Routed experts selected per token (greedy top-k over softmax scores)."""
    n_shared_experts: int = field(default=2, validator=_count)
    """Shared experts, fused into one SwiGLU of width n_shared × moe_intermediate_size."""
    first_k_dense_replace: int = field(default=1, validator=_count)
    """Leading layers that use the dense MLP instead of MoE."""
    vocab_size: int = field(default=129280, validator=_positive)
    """Rows of embed_tokens and lm_head (padded past the tokenizer's 128,827 ids)."""
    rms_norm_eps: float = field(default=1e-6, validator=_finite_positive)
    """Epsilon of every RMSNorm."""
    rope_theta: float = field(default=10000.0, validator=_finite_positive)
    """RoPE base (rotate-half form over the full head dim, no scaling)."""
    max_position_embeddings: int = field(default=8192, validator=_positive)
    """Trained context length."""
    norm_topk_prob: bool = field(default=False, validator=instance_of(bool))
    """Whether the top-k routing weights are renormalised (false for DeepSeek-OCR)."""
    routed_scaling_factor: float = field(default=1.0, validator=_finite_positive)
    """Multiplier on the routed-expert output."""

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def num_moe_layers(self) -> int:
        return self.num_layers - self.first_k_dense_replace

    @property
    def shared_intermediate_size(self) -> int:
        return self.n_shared_experts * self.moe_intermediate_size

    def __attrs_post_init__(self) -> None:
        d = self
        for name in ("num_layers", "num_heads", "num_kv_heads", "n_routed_experts"):
            if getattr(d, name) > MAX_MODEL_COUNT:
                raise ValueError(f"decoder.{name} must be at most {MAX_MODEL_COUNT}, got {getattr(d, name)}")
        _heads_divide("decoder", d.hidden_size, d.num_heads)
        if d.num_kv_heads > d.num_heads or d.num_heads % d.num_kv_heads:
            raise ValueError(
                f"decoder.num_kv_heads {d.num_kv_heads} must divide num_heads {d.num_heads} (and not exceed it)"
            )
        if d.num_experts_per_tok > d.n_routed_experts:
            raise ValueError(
                f"decoder.num_experts_per_tok {d.num_experts_per_tok} exceeds n_routed_experts {d.n_routed_experts}"
            )
        if d.first_k_dense_replace > d.num_layers:
            raise ValueError(
                f"decoder.first_k_dense_replace {d.first_k_dense_replace} exceeds num_layers {d.num_layers}"
            )
        if d.max_position_embeddings > MAX_TOKENS:
            raise ValueError(f"decoder.max_position_embeddings must be at most {MAX_TOKENS:,}")

    def is_moe(self, layer_index: int) -> bool:
        return layer_index >= self.first_k_dense_replace


@frozen(kw_only=True)
class ModelSpec:
    """A full DeepSeek-OCR architecture: SAM + CLIP + projector + DeepSeek-V2 MoE decoder."""

    name: str = field(validator=instance_of(str))
    """Registry name of this variant (``deepseek-ocr``, ``tiny``, or a checkpoint path)."""
    model_id: str = field(default="deepseek-ai/DeepSeek-OCR", validator=instance_of(str))
    """Canonical upstream model id."""
    sam: SamSpec = field(factory=SamSpec)
    """SAM ViT-B encoder, neck and compressor."""
    clip: ClipSpec = field(factory=ClipSpec)
    """CLIP-L encoder over SAM features."""
    decoder: DecoderSpec = field(factory=DecoderSpec)
    """Language model."""
    image_token_id: int = field(default=128815, validator=ge(0))
    """Token id of every image slot (`<image>`)."""
    bos_token_id: int = field(default=0, validator=ge(0))
    """Beginning-of-sequence id, prepended to every prompt."""
    eos_token_id: int = field(default=1, validator=ge(0))
    """End-of-sequence id that stops generation."""

    def __attrs_post_init__(self) -> None:
        if self.clip.width != self.sam.out_channels:
            raise ValueError(
                f"clip.width ({self.clip.width}) must equal SAM output channels "
                f"({self.sam.out_channels}): CLIP consumes the SAM feature map as its patch tokens"
            )
        for name in ("image_token_id", "bos_token_id", "eos_token_id"):
            if getattr(self, name) >= self.decoder.vocab_size:
                raise ValueError(
                    f"{name} {getattr(self, name)} is outside the vocabulary (vocab_size {self.decoder.vocab_size})"
                )

    @property
    def projector_input_dim(self) -> int:
        """CLIP features (CLS dropped) concatenated with SAM features along channels."""
        return self.clip.width + self.sam.out_channels

    def replace(self, **changes: object) -> ModelSpec:
        return evolve(self, **changes)  # type: ignore[arg-type]


DEEPSEEK_OCR = ModelSpec(name="deepseek-ocr")

TINY = ModelSpec(
    name="tiny",
    model_id="llm-perf-opt/deepseek-ocr-tiny",
    # Same structure and the same image geometry (patch 16, window 14, two stride-2 convs), so
    # token counts match the full model; only widths and depths shrink.
    sam=SamSpec(
        width=32,
        depth=4,
        num_heads=2,
        mlp_dim=64,
        global_attn_indexes=(1, 3),
        neck_channels=16,
        downsample_channels=(32, 64),
    ),
    clip=ClipSpec(width=64, num_layers=2, num_heads=2, ffn_dim=128),
    decoder=DecoderSpec(
        hidden_size=64,
        num_layers=3,
        num_heads=4,
        num_kv_heads=4,
        intermediate_size=160,
        moe_intermediate_size=32,
        n_routed_experts=8,
        num_experts_per_tok=2,
        n_shared_experts=2,
        first_k_dense_replace=1,
        vocab_size=1024,
        max_position_embeddings=4096,
    ),
    image_token_id=1000,
)

MODEL_REGISTRY: dict[str, ModelSpec] = {spec.name: spec for spec in (DEEPSEEK_OCR, TINY)}
