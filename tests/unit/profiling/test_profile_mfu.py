"""MFU: peaks (table, override, none), analytic adapter, utilisation, estimator-error flags."""

from __future__ import annotations

import pytest

from llm_perf_opt.hardware.table import HARDWARE_TABLE
from llm_perf_opt.profiling import mfu
from llm_perf_opt.profiling.session import Batch, PreparedItem, group_batches
from llm_perf_opt.specs.model_spec import TINY
from llm_perf_opt.specs.workload import Workload


def test_peaks_from_table_override_and_none() -> None:
    h100 = HARDWARE_TABLE["h100-sxm"]
    p = mfu.resolve_peaks(h100, "bf16", device_type="cuda", device_name="NVIDIA H100 80GB HBM3")
    assert (p.tflops, p.bandwidth_tbs, p.hardware_id) == (989.4, 3.35, "h100-sxm")
    assert mfu.resolve_peaks(h100, "fp32", device_type="cuda", device_name="x").tflops == 494.7
    cpu = mfu.resolve_peaks(None, "fp32", device_type="cpu", device_name="AMD EPYC")
    assert not cpu.available and "not available on CPU" in cpu.source
    unknown = mfu.resolve_peaks(None, "bf16", device_type="cuda", device_name="NVIDIA Mystery")
    assert unknown.tflops is None and "not in the hardware table" in unknown.source
    over = mfu.resolve_peaks(None, "fp32", device_type="cpu", device_name="cpu", peak_tflops=2.0)
    assert over.tflops == 2.0 and over.bandwidth_tbs is None


def test_analytic_costs_cover_every_measured_stage() -> None:
    w = Workload(profile_id="t", mode="tiny", page_size=(320, 440), prompt_tokens=10, max_new_tokens=8)
    costs = mfu.analytic_costs(TINY, w, precision="fp32")
    assert set(costs) == {"vision", "projector", "prefill", "decode"}
    assert all(c.flops > 0 and c.bytes > 0 for c in costs.values())
    measured = mfu.measured_costs(costs)
    assert measured["prefill"].flops == pytest.approx(sum(costs[s].flops for s in ("vision", "projector", "prefill")))
    assert measured["total"].flops == pytest.approx(sum(c.flops for c in costs.values()))
    assert measured["prefill_decoder"] == costs["prefill"]
    longer = mfu.analytic_costs(TINY, w.replace(max_new_tokens=16), precision="fp32")
    assert longer["decode"].flops > costs["decode"].flops
    assert longer["vision"] == costs["vision"]


def test_cost_adapter_units() -> None:
    assert mfu._cost_from({"flops_tflops": 2.0, "io_tb": 0.5}) == mfu.StageCost(2e12, 5e11)
    assert mfu._cost_from({"flops": 3.0, "io_gb": 1.0}) == mfu.StageCost(3.0, 1e9)
    with pytest.raises(TypeError):
        mfu._cost_from({"bytes": 1})


def test_utilisation_and_flags() -> None:
    costs = {"decode": mfu.StageCost(flops=1e12, bytes=2e12), "vision": mfu.StageCost(flops=5e12, bytes=1e9)}
    peaks = mfu.Peaks(tflops=100.0, bandwidth_tbs=1.0, source="test")
    u = mfu.utilisation(costs, {"decode": 1000.0, "vision": 0.0}, peaks)
    assert u.mfu == {"decode": pytest.approx(0.01)}
    assert u.bandwidth == {"decode": pytest.approx(2.0)}
    [flag] = mfu.estimator_errors(u)
    assert "estimator error" in flag and "decode" in flag
    none = mfu.utilisation(costs, {"decode": 1000.0}, mfu.Peaks(tflops=None, bandwidth_tbs=None, source="cpu"))
    assert none.mfu == {} and none.achieved_tflops["decode"] == pytest.approx(1.0)


class _Prep:
    def __init__(self, tokens: int, grid: tuple[int, int]) -> None:
        self.num_image_tokens = tokens
        self.tile_grid = grid


def test_batches_group_equal_token_counts_without_padding() -> None:
    def item(tokens: int, grid: tuple[int, int]) -> PreparedItem:
        return PreparedItem(page=None, prepared=_Prep(tokens, grid))  # type: ignore[arg-type]

    items = [item(903, (2, 3)), item(693, (2, 2)), item(903, (2, 3)), item(903, (2, 3))]
    batches = group_batches(items, 2)
    assert [b.size for b in batches] == [2, 1, 1]
    assert [b.items[0].image_tokens for b in batches] == [903, 903, 693]
    assert all(isinstance(b, Batch) for b in batches)
    assert [b.size for b in group_batches(items, 1)] == [1, 1, 1, 1]
