"""Measured GEMM tables: interpolation in the row count, validation of the file, and the roofline's use of them."""

from __future__ import annotations

import json

import pytest
from attrs import evolve

from llm_perf_opt.analytic.primitives import Conv2d, Linear
from llm_perf_opt.analytic.roofline import Roofline, RooflineParams
from llm_perf_opt.errors import UserError
from llm_perf_opt.hardware.gemm_table import SCHEMA, GemmShape, gemm_table, parse_table
from llm_perf_opt.hardware.table import HARDWARE_TABLE

SHAPE = GemmShape(n=1024, k=4096, bias=True, rows=(64, 65, 128), us=(5.0, 6.0, 8.0))


CONV = {"in_channels": 256, "out_channels": 512, "kernel": 3, "stride": 2, "padding": 1, "in_side": 64,
        "bias": False, "channels_last": True, "rows": [1, 2, 4], "us": [17.0, 19.0, 33.0]}  # fmt: skip


def _doc(**shape: object) -> dict[str, object]:
    item = {"n": 8, "k": 8, "bias": False, "rows": [1, 2], "us": [1.0, 2.0], **shape}
    return {"schema": SCHEMA, "hardware": "toy", "dtype": "bf16", "device_name": "Toy GPU", "torch": "2.11",
            "cuda": "13.0", "command": "bench", "shapes": [item]}  # fmt: skip


def test_interpolates_linearly_between_points_and_proportionally_beyond() -> None:
    assert SHAPE.time_us(64) == 5.0 and SHAPE.time_us(65) == 6.0
    # 96.5 rows: halfway between 65 and 128 → 6 + 0.5 · (8 − 6).
    assert SHAPE.time_us(96.5) == pytest.approx(7.0)
    assert SHAPE.time_us(256) == pytest.approx(16.0)  # 2 × the last point's rows → 2 × its time
    assert SHAPE.time_us(32) is None  # below the grid: the caller keeps its roofline


def test_table_lookup_by_shape() -> None:
    table = parse_table(_doc(n=1024, k=4096, bias=True, rows=[64, 65, 128], us=[5, 6, 8]), "toy.json")
    assert table.time_s(96.5, 1024, 4096, True) == pytest.approx(7e-6)
    assert table.time_s(96.5, 1024, 4096, False) is None  # no bias-free entry
    assert "Toy GPU" in table.source and "bench" in table.source


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"schema": "other"}, "not a GEMM table"),
        (_doc(rows=[2, 1]), "rows must ascend"),
        (_doc(us=[1.0]), "rows must ascend"),
        (_doc(us=[0.0, 1.0]), "one positive time each"),
        ({**_doc(), "shapes": [{"n": 8}]}, "malformed GEMM table"),
        ({**_doc(), "convs": [{"in_channels": 8}]}, "malformed GEMM table"),
        ({**_doc(), "convs": [{**CONV, "rows": [2, 1]}], "conv_command": "c"}, "rows must ascend"),
        ({**_doc(), "convs": [CONV]}, "malformed GEMM table"),  # convolutions without their command
    ],
)
def test_malformed_tables_are_one_clear_error(doc: dict[str, object], message: str) -> None:
    with pytest.raises(UserError, match=message):
        parse_table(json.loads(json.dumps(doc)), "bad.json")


def test_packaged_h200_table_covers_clip_and_decoder_shapes() -> None:
    table = gemm_table("h200", "bf16")
    assert table is not None and "H200" in table.source
    for key in [(1024, 4096, True), (3072, 1024, True), (3840, 1280, False), (129280, 1280, False)]:
        assert key in table.shapes
    assert all(u > 0 for shape in table.shapes.values() for u in shape.us)
    assert gemm_table("rtx5090", "bf16") is None  # no table measured: the roofline stays


def test_roofline_reads_prefill_matmuls_from_the_table_only_when_asked() -> None:
    h200 = HARDWARE_TABLE["h200"]
    table = gemm_table("h200", "bf16")
    assert table is not None
    fc2 = Linear(tokens=257, in_features=4096, out_features=1024, bias=True, op_category="vision_mlp", stage="vision")
    measured = table.time_s(257, 1024, 4096, True)
    on = Roofline(h200, RooflineParams(gemm_table=True), "bf16")
    off = Roofline(h200, RooflineParams(gemm_table=False), "bf16")
    assert on.time(fc2).compute_s == pytest.approx(measured)
    assert off.time(fc2).compute_s != pytest.approx(measured)
    # A decode-step GEMV keeps the bandwidth-bound roofline even with the table on.
    gemv = evolve(fc2, tokens=1, stage="decode")
    assert on.time(gemv).compute_s == pytest.approx(off.time(gemv).compute_s)


def test_convolutions_are_looked_up_by_shape_and_interpolated_in_the_batch() -> None:
    table = parse_table({**_doc(), "convs": [CONV], "conv_command": "bench_conv"}, "toy.json")
    key = (256, 512, 3, 2, 1, 64, False)
    assert table.conv_time_s(2, key) == pytest.approx(19e-6)
    assert table.conv_time_s(3, key) == pytest.approx(26e-6)  # halfway between batch 2 and 4
    assert table.conv_time_s(8, key) == pytest.approx(66e-6)  # 2 × the last batch → 2 × its time
    assert table.conv_time_s(2, (256, 512, 3, 2, 1, 32, False)) is None  # another input side
    assert "bench_conv" in table.source
    assert parse_table(_doc(), "old.json").convs == {}  # a table measured before convolutions: none


def test_roofline_times_convolutions_from_the_table() -> None:
    # SAM's patch embedding at a base page: the packaged H200 table holds its measured cuDNN time, far above
    # its FLOPs at the vision_conv rate (4.8 GFLOP: cuDNN runs it at ~17 TFLOP/s).
    h200 = HARDWARE_TABLE["h200"]
    table = gemm_table("h200", "bf16")
    assert table is not None
    patch = Conv2d(batch=1, in_channels=3, out_channels=768, kernel=16, stride=16, in_side=1024, bias=True,
                   stage="vision")  # fmt: skip
    measured = table.conv_time_s(1, (3, 768, 16, 16, 0, 1024, True))
    assert measured is not None and measured > 10 * patch.forward_flops() / 989.4e12
    on = Roofline(h200, RooflineParams(gemm_table=True), "bf16")
    off = Roofline(h200, RooflineParams(gemm_table=False), "bf16")
    assert on.time(patch).compute_s == pytest.approx(measured)
    assert off.time(patch).compute_s < measured / 5


def _grouped(ratio: float, us: list[float]) -> dict[str, object]:
    return {"experts": 64, "hidden": 1280, "inter": 896, "load_ratio": ratio, "rows": [6, 12, 24], "us": us}


def test_grouped_expert_gemms_interpolate_in_pairs_and_skew() -> None:
    doc = {**_doc(), "grouped": [_grouped(1.0, [40.0, 60.0, 100.0]), _grouped(0.8, [20.0, 30.0, 50.0])],
           "grouped_command": "bench_grouped"}  # fmt: skip
    table = parse_table(doc, "toy.json")
    key = (64, 1280, 896)
    assert [g.load_ratio for g in table.grouped[key]] == [0.8, 1.0]  # sorted by skew whatever the file order
    assert table.grouped_time_s(12, key, 0.8) == pytest.approx(30e-6)
    assert table.grouped_time_s(18, key, 1.0) == pytest.approx(80e-6)  # halfway between 12 and 24 pairs
    assert table.grouped_time_s(12, key, 0.9) == pytest.approx(45e-6)  # halfway between the two skews
    assert table.grouped_time_s(48, key, 1.0) == pytest.approx(200e-6)  # 2 × the last pairs → 2 × its time
    assert table.grouped_time_s(12, key, 0.7) is None  # a skew outside the measured ones
    assert table.grouped_time_s(3, key, 0.9) is None  # below the grid
    assert table.grouped_time_s(12, (64, 1280, 1024), 0.9) is None  # another MoE shape
    assert "bench_grouped" in table.source


def test_roofline_splits_a_grouped_layer_over_its_experts_by_pairs() -> None:
    from llm_perf_opt.analytic.moe import MoE
    from llm_perf_opt.specs.model_spec import MODEL_REGISTRY

    h200 = HARDWARE_TABLE["h200"]
    table = gemm_table("h200", "bf16")
    assert table is not None
    dec = MODEL_REGISTRY["deepseek-ocr"].decoder
    moe = MoE(tokens=283, dec=dec, load_ratio=0.85, stage="prefill")
    experts = [c for c in moe.children() if c.name.startswith("experts")]
    assert len(experts) == dec.n_routed_experts
    whole = table.grouped_time_s(283 * 6, (64, 1280, 896), 0.85)
    assert whole is not None
    on = Roofline(h200, RooflineParams(gemm_table=True), "bf16")
    assert sum(on.time(c.layer).total_s for c in experts) == pytest.approx(whole)
    assert on.time(experts[0].layer).total_s > on.time(experts[-1].layer).total_s  # the busiest expert's share
    # The official code's per-expert loop is no grouped call: the roofline keeps its own model there.
    official = Roofline(h200, RooflineParams(gemm_table=True, implementation="hf-official"), "bf16")
    assert sum(official.time(c.layer).total_s for c in experts) != pytest.approx(whole)
    # The graph decode step's fused kernels (≤ 96 pairs) are not grouped GEMMs either.
    step = MoE(tokens=1, dec=dec, load_ratio=0.85, graph_step=True, stage="decode")
    fused = [c.layer for c in step.children() if c.name.startswith("experts")]
    assert all(getattr(x, "layer_pairs", 1) == 0 for x in fused)
