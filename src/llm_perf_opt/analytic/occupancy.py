"""How much of the GPU a matmul-class kernel keeps busy: wave quantization of its output tiles.

A GEMM runs one CTA per output tile on one SM; with ``n`` tiles on ``S`` SMs it runs ⌈n/S⌉ waves and
the last one is partly empty, so it reaches ``n / (⌈n/S⌉·S)`` of the compute rate it would reach on
a full machine. That matters for the small matmuls of batch-1 vision and prefill once they are
replayed from graphs (no host time hiding them): CLIP-L at batch 1 runs 257-row GEMMs whose output
projection and fc2 (1024 wide) have 3 × 8 = 24 tiles of 128 × 128 on 132 SMs (18% of the SMs),
which is why its batch-1 graph replay took 1.50 ms on the H200 where a full-machine roofline gives
1.11 ms (docs/validation/h200). Flash attention runs one CTA per (sequence, head, 128-query block).

Grouped expert GEMMs (the MoE of vision-free prefill) pad each expert's rows to whole tiles: with
t = T·k/E rows per expert at the expected load, they execute ⌈t/128⌉·128 rows' worth of FLOPs. At
batch 1 (283 prompt tokens, k = 6, E = 64: 26.5 rows per expert) that is 21% useful work, at batch 8
(212 rows) 83%.

The official checkpoint code is not filled this way (the roofline passes it a full machine): it is
host-bound eager, so its GPU rate never sets the pace, and its per-expert cuBLAS calls pick tiles for
their few rows instead of a grouped GEMM's fixed 128.

Decode-step matmuls are weight-streaming GEMVs (memory-bound at every batch the model serves), so
the decode stage is left at a full machine.
"""

from __future__ import annotations

from llm_perf_opt.analytic.base import BaseLayer
from llm_perf_opt.analytic.moe import ExpertMLP
from llm_perf_opt.analytic.primitives import AttentionCore, Conv2d, Linear
from llm_perf_opt.data.analytic_inputs import RooflineParams
from llm_perf_opt.hardware.gemm_table import GemmTable, gemm_table

GEMM_TILE = 128
"""Output tile side of a bf16 GEMM CTA on Hopper-class GPUs (cuBLAS / CUTLASS 128 × 128 tiles)."""
ATTENTION_Q_TILE = 128
"""Queries per CTA of a flash-attention forward kernel (FlashAttention 2/3 on Hopper)."""
BIASED_ATTENTION_TILE = 64
"""Queries per CTA and keys per block of PyTorch's memory-efficient attention forward (taken with a bias)."""
BIASED_ATTENTION_CTAS_PER_SM = 4
"""CTAs of that kernel resident per SM at a time."""


def _tiles(n: int, tile: int) -> int:
    return -(-n // tile)


def output_tiles(layer: BaseLayer) -> int | None:
    """CTAs of ``layer``'s main kernel, or None where the layer is not a tiled matmul."""
    if isinstance(layer, Linear):
        return _tiles(layer.tokens, GEMM_TILE) * _tiles(layer.out_features, GEMM_TILE)
    if isinstance(layer, Conv2d):  # implicit GEMM: output pixels × output channels
        return _tiles(layer.batch * layer.out_side**2, GEMM_TILE) * _tiles(layer.out_channels, GEMM_TILE)
    if isinstance(layer, AttentionCore) and layer.q_len > 1:
        return layer.batch * layer.heads * _tiles(layer.q_len, ATTENTION_Q_TILE)
    return None


def sm_fill(layer: BaseLayer, sms: int | None) -> float:
    """Share of the compute rate ``layer`` reaches on ``sms`` SMs: tiles / (waves · SMs), or for a routed
    expert of the grouped GEMM its rows / rows padded to whole tiles; 1.0 when the SM count is unknown,
    the layer is no tiled matmul, or it belongs to the decode stage."""
    if layer.stage == "decode":
        return 1.0
    if isinstance(layer, ExpertMLP):
        rows = layer.tokens
        return rows / (_tiles(int(-(-rows // 1)), GEMM_TILE) * GEMM_TILE) if rows > 0 else 1.0
    tiles = output_tiles(layer)
    if not tiles or not sms:
        return 1.0
    waves = -(-tiles // sms)
    return tiles / (waves * sms)


def measured_gemm_s(layer: BaseLayer, table: GemmTable | None) -> float | None:
    """A dense matmul outside the decode step, a convolution or a routed expert of a grouped MoE layer timed
    from the GPU's GEMM table (``roofline.gemm_table``), which holds tile choice, waves, fill, cuDNN's layout
    conversions and the touched experts' weight reads as measured (an expert gets its share of pairs of the
    layer's time); None without a table, where it lacks the shape, or for decode-step GEMVs (weight
    streaming, which the bandwidth term times)."""
    if table is None:
        return None
    if isinstance(layer, ExpertMLP):  # its share of the layer's grouped GEMMs (decode's batch > 16 too)
        if layer.layer_pairs <= 0:
            return None
        whole = table.grouped_time_s(layer.layer_pairs, (layer.experts, layer.hidden, layer.inter), layer.load_ratio)
        return None if whole is None else whole * layer.pair_share
    if layer.stage == "decode":
        return None
    if isinstance(layer, Conv2d):
        conv = (layer.in_channels, layer.out_channels, layer.kernel, layer.stride, layer.padding, layer.in_side,
                layer.bias)  # fmt: skip
        return table.conv_time_s(layer.batch, conv)
    if not isinstance(layer, Linear):
        return None
    return table.time_s(layer.tokens, layer.out_features, layer.in_features, layer.bias)


def gemm_source(hardware_id: str, dtype: str, params: RooflineParams) -> str:
    """One sentence for a report: where the dense matmuls outside the decode step get their time."""
    what = "Dense matmuls outside decode, convolutions and grouped expert GEMMs"
    if params.gemm_table and gemm_table(hardware_id, dtype) is not None:
        return (f"{what} are timed from the measured GEMM table gemm_tables/{hardware_id}-{dtype}.json where it "
                "holds the shape (roofline.gemm_table).")
    why = "roofline.gemm_table is off" if params.gemm_table is False else f"no GEMM table is measured for {hardware_id}"
    return f"{what} follow the roofline with SM fill ({why})."


def biased_attention_waves_s(layer: AttentionCore, sms: int | None, params: RooflineParams) -> float:
    """Time of a memory-efficient attention call (the kernel SDPA takes with a bias) from its CTAs: B·h·⌈q/64⌉
    CTAs, BIASED_ATTENTION_CTAS_PER_SM per SM at a time, each ``biased_attention_cta_us`` plus
    ``biased_attention_block_us`` per 64-key block (132 SMs when the count is unknown)."""
    tile = BIASED_ATTENTION_TILE
    ctas = layer.batch * layer.heads * _tiles(layer.q_len, tile)
    waves = _tiles(ctas, (sms or 132) * BIASED_ATTENTION_CTAS_PER_SM)
    per_cta_us = params.biased_attention_cta_us + _tiles(layer.kv_len, tile) * params.biased_attention_block_us
    return waves * per_cta_us * 1e-6


def attention_floor_s(layer: AttentionCore, params: RooflineParams, sms: int | None = None) -> float:
    """Least time of a fused attention kernel of vision or prefill: CLIP's flash kernel (no bias, not causal)
    walks its keys, ``vision_attention_floor_us`` + kv · ``attention_floor_per_key_ns`` for one CTA, and its
    B·h·⌈q/128⌉ CTAs share the SMs at ``vision_attention_cta_us`` + kv · ``vision_attention_cta_per_key_ns``
    of SM time each (several resident per SM, so no whole waves); the others ``attention_floor_us``."""
    if layer.stage == "vision" and not (layer.causal or layer.bias):
        latency_us = params.vision_attention_floor_us + layer.kv_len * params.attention_floor_per_key_ns * 1e-3
        ctas = layer.batch * layer.heads * _tiles(layer.q_len, ATTENTION_Q_TILE)
        per_cta_us = params.vision_attention_cta_us + layer.kv_len * params.vision_attention_cta_per_key_ns * 1e-3
        return max(latency_us, ctas * per_cta_us / (sms or 132)) * 1e-6
    return params.attention_floor_us * 1e-6
