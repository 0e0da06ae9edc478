"""The report: model totals, tree validity, stage/memory figures, files, atomicity, speed, no torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from llm_perf_opt.analytic import api
from llm_perf_opt.analytic.base import Precision, resident_bytes
from llm_perf_opt.analytic.deepseek_ocr import build_root, build_stages, model_weight_params
from llm_perf_opt.contracts.analytic import validate_module_tree
from llm_perf_opt.data.analytic_report import SCHEMA_VERSION, AnalyticModelReport
from llm_perf_opt.hardware.table import HARDWARE_TABLE
from llm_perf_opt.specs.model_spec import DEEPSEEK_OCR, TINY
from llm_perf_opt.specs.workload import WORKLOAD_PROFILES

STD = WORKLOAD_PROFILES["dsocr-standard-v1"]


@pytest.fixture(scope="module")
def report() -> AnalyticModelReport:
    return api.build_report(DEEPSEEK_OCR, STD, HARDWARE_TABLE["rtx5090"])


def test_total_weights_of_the_checkpoint() -> None:
    assert model_weight_params(DEEPSEEK_OCR) == 3_336_106_240
    root = build_root(build_stages(DEEPSEEK_OCR, STD))
    assert root.weight_params() == 3_336_106_240
    assert root.weight_bytes() == 6_672_212_480
    parts = {name: layer.weight_params() for name, layer in build_stages(DEEPSEEK_OCR, STD).items()}
    assert parts["vision"] == 95_569_152 + 303_177_728  # SAM + CLIP (incl. its unused patch conv)
    assert parts["projector"] == 2_622_720 + 2_560  # linear + image_newline + view_seperator
    assert parts["prefill"] == parts["decode"] == 2_934_734_080  # decode re-uses the same weights


def test_module_tree_is_valid_and_compact(report: AnalyticModelReport) -> None:
    validate_module_tree(report.modules)
    ids = [m.module_id for m in report.modules]
    assert len(ids) == len(set(ids)) and len(ids) < 400
    report.to_contract()  # the seed contract view validates too
    by_id = {m.module_id: m for m in report.modules}
    expect = {
        "deepseek_ocr/vision/pass@1024/sam_model/blocks.global": ("for", 4),
        "deepseek_ocr/vision/pass@640/sam_model/blocks.windowed": ("for", 8),
        "deepseek_ocr/vision/pass@640/vision_model/transformer.layers": ("for", 24),
        "deepseek_ocr/prefill/layers.dense": ("for", 1),
        "deepseek_ocr/prefill/layers.moe": ("for", 11),
        "deepseek_ocr/prefill/layers.moe/mlp/experts": ("parfor", 64),
        "deepseek_ocr/decode/step": ("for", 511),
    }
    for mid, (rep, count) in expect.items():
        assert (by_id[mid].repetition, by_id[mid].repetition_count) == (rep, count), mid
    assert by_id["deepseek_ocr"].parent_id is None
    assert {by_id[c].stage for c in by_id["deepseek_ocr"].children} == {"vision", "projector", "prefill", "decode"}
    metrics = {m.module_id: m for m in report.module_metrics}
    assert metrics["deepseek_ocr/decode/step/layers.moe"].calls == 511 * 11
    assert metrics["deepseek_ocr/vision/pass@640/sam_model/blocks.global"].calls == 4


def test_stage_totals_add_up(report: AnalyticModelReport) -> None:
    root = report.module_metrics[0]
    assert root.module_id == "deepseek_ocr" and root.share_of_model_time == pytest.approx(1.0)
    assert sum(s.flops_tflops for s in report.stages) == pytest.approx(root.total_flops_tflops)
    assert sum(s.predicted_ms or 0 for s in report.stages) == pytest.approx(report.predicted_total_time_ms)
    assert report.predicted_total_time_ms == pytest.approx(root.total_time_ms)
    for s in report.stages:
        assert s.predicted_ms is not None and s.predicted_ms >= max(s.compute_ms or 0, s.memory_ms or 0)
        assert s.bound in ("compute", "memory", "launch")
    vision = report.stage("vision")
    # Gundam A4 page: 6 tiles of 640 + 1 global 1024 ≈ 3.47 TFLOP (Appendix A).
    assert vision.flops_tflops == pytest.approx(6 * (325.6 + 62.0) / 1e3 + (976.9 + 161.7) / 1e3, rel=5e-3)
    assert report.stage("decode").calls == 511 and report.stage("prefill").tokens == 913


def test_memory_and_token_facts(report: AnalyticModelReport) -> None:
    m = report.memory
    assert m.weights_gb == pytest.approx(6.67221248)
    assert m.kv_cache_gb == pytest.approx(61_440 * 1424 / 1e9)
    assert m.activations_gb >= 12 * 4096**2 * 2 / 1e9  # SAM global-block bias at 1024 px
    assert m.total_gb == pytest.approx(m.weights_gb + m.kv_cache_gb + m.activations_gb)
    assert m.fits and m.device_memory_gb == 32.0
    t = report.image_tokens
    assert (t.tile_grid, t.image_tokens, t.prefill_tokens, t.decode_steps, t.final_context) == (
        [2, 3],
        903,
        913,
        511,
        1424,
    )
    assert report.workload.seq_len == 913 and report.schema_version == SCHEMA_VERSION
    assert any("distinct" in a.lower() for a in report.assumptions)


def test_state_walk_equals_root_cost() -> None:
    """resident_bytes (memory_of: reports and what-if) is bit-identical to the full cost aggregate."""
    for spec in (DEEPSEEK_OCR, TINY):
        for work in (WORKLOAD_PROFILES["dsocr-standard-v1"], WORKLOAD_PROFILES["base"].replace(batch_size=5)):
            root = build_root(build_stages(spec, work))
            cost = root.cost()
            assert resident_bytes(root) == (cost.weight_bytes, cost.kv_cache_bytes, cost.activation_bytes)


def test_stage_totals_api_matches_report_and_accepts_a_dtype_string(report: AnalyticModelReport) -> None:
    totals = api.stage_totals(DEEPSEEK_OCR, STD, precision="bf16")
    assert list(totals) == ["vision", "projector", "prefill", "decode"]
    for s in report.stages:
        assert totals[s.stage].flops_tflops == s.flops_tflops and totals[s.stage].predicted_ms is None
        assert totals[s.stage].flops == pytest.approx(s.flops_tflops * 1e12)
    timed = api.stage_totals(DEEPSEEK_OCR, STD, hardware=HARDWARE_TABLE["rtx5090"])
    assert timed["decode"].predicted_ms == pytest.approx(report.stage("decode").predicted_ms)


def test_batch_and_precision_knobs() -> None:
    one = api.stage_totals(TINY, WORKLOAD_PROFILES["base"])
    four = api.stage_totals(TINY, WORKLOAD_PROFILES["base"].replace(batch_size=4))
    assert four["vision"].flops_tflops == pytest.approx(4 * one["vision"].flops_tflops)
    assert four["decode"].kv_cache_gb == pytest.approx(4 * one["decode"].kv_cache_gb)
    fp8 = api.stage_totals(DEEPSEEK_OCR, STD, precision=Precision(weight_dtype="fp8", kv_dtype="fp8"))
    bf16 = api.stage_totals(DEEPSEEK_OCR, STD)
    assert fp8["prefill"].weights_gb == pytest.approx(bf16["prefill"].weights_gb / 2)
    assert fp8["decode"].kv_cache_gb == pytest.approx(bf16["decode"].kv_cache_gb / 2)
    assert api.precision_for("fp16").compute_dtype == "fp16"


def test_recompute_overrides_inputs(report: AnalyticModelReport) -> None:
    h100 = api.recompute(report, hardware=HARDWARE_TABLE["h100-sxm"])
    assert h100.stage("vision").flops_tflops == report.stage("vision").flops_tflops
    assert h100.predicted_total_time_ms < report.predicted_total_time_ms
    longer = api.recompute(report, workload_spec=STD.replace(max_new_tokens=1024))
    assert longer.stage("decode").calls == 1023


def test_write_report_files_and_round_trip(report: AnalyticModelReport, tmp_path: Path) -> None:
    out = tmp_path / "analytic"
    paths = api.write_report(report, out)
    names = {p.relative_to(out).as_posix() for p in paths}
    assert {"report.json", "report.yaml", "summary.json", "report.md"} <= names
    assert paths[-1].name == "report.json"
    for cls in ("SamAttention", "RelPosBias", "MoE", "ExpertMLP", "DecoderAttention", "LMHead", "Linear"):
        page = (out / "layers" / f"{cls}.md").read_text()
        assert "## Formula" in page and "## In this workload" in page
    data = json.loads((out / "report.json").read_text())
    assert data == yaml.safe_load((out / "report.yaml").read_text())
    assert api.load_report(out / "report.json") == report
    assert api.load_report(out / "report.yaml") == report
    summary = json.loads((out / "summary.json").read_text())
    assert summary["predicted_total_time_ms"] == report.predicted_total_time_ms and summary["top_modules"]
    md = (out / "report.md").read_text()
    for needle in ("## Stages", "## Top modules", "## Memory", "## Assumptions", "decode"):
        assert needle in md
    assert not list(tmp_path.glob(".*staging*")), "staging directory removed"


def test_failure_mid_write_keeps_the_previous_set(
    report: AnalyticModelReport, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llm_perf_opt.io.artifact_set import verify

    out = tmp_path / "analytic"
    api.write_report(report, out)  # an older complete report is there
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    calls = {"n": 0}
    real_write = Path.write_text

    def flaky(self: Path, *args: object, **kwargs: object) -> int:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(28, "No space left on device")
        return real_write(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "write_text", flaky)
    with pytest.raises(OSError, match="No space"):
        api.write_report(report, out)
    monkeypatch.setattr(Path, "write_text", real_write)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before, "old set untouched"
    assert verify(out)["status"] == "complete"
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")], "no staging dir or lock left"

    fresh = tmp_path / "fresh"

    def boom(*_args: object) -> dict[str, str]:
        raise RuntimeError("render failed")

    monkeypatch.setattr("llm_perf_opt.analytic.writer.render_layer_pages", boom)
    with pytest.raises(RuntimeError):
        api.write_report(report, fresh)
    assert not fresh.exists()


def test_analytic_path_imports_no_torch(tmp_path: Path) -> None:
    probe = (
        "import sys\n"
        "from llm_perf_opt.analytic import api\n"
        "from llm_perf_opt.specs.model_spec import DEEPSEEK_OCR\n"
        "from llm_perf_opt.specs.workload import WORKLOAD_PROFILES\n"
        "from llm_perf_opt.hardware.table import HARDWARE_TABLE\n"
        "r = api.build_report(DEEPSEEK_OCR, WORKLOAD_PROFILES['dsocr-standard-v1'], HARDWARE_TABLE['rtx5090'])\n"
        f"api.write_report(r, {str(tmp_path / 'o')!r})\n"
        "api.load_report({!r})\n".format(str(tmp_path / "o" / "report.json"))
        + "bad = [m for m in ('torch', 'numpy', 'matplotlib') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True)


@pytest.mark.parametrize("new_tokens", [0, 1])
def test_no_decode_steps_in_the_report(new_tokens: int) -> None:
    work = WORKLOAD_PROFILES["base"].replace(max_new_tokens=new_tokens)
    rep = api.build_report(TINY, work, HARDWARE_TABLE["rtx5090"])
    decode = rep.stage("decode")
    assert (decode.calls, decode.flops_tflops, decode.predicted_ms, decode.bound) == (0, 0.0, 0.0, "none")
    assert rep.memory.kv_cache_gb == pytest.approx(rep.stage("prefill").kv_cache_gb)
    validate_module_tree(rep.modules)


def test_unknown_schema_version_is_refused(report: AnalyticModelReport, tmp_path: Path) -> None:
    from llm_perf_opt.errors import UserError

    api.write_report(report, tmp_path)
    data = json.loads((tmp_path / "report.json").read_text())
    data["schema_version"] = "llm-perf-opt.analytic-report/99"
    (tmp_path / "old.json").write_text(json.dumps(data))
    # name the version: the bare words "schema_version" also match this test's tmp_path
    with pytest.raises(UserError, match=r"schema.version 'llm-perf-opt\.analytic-report/99'"):
        api.load_report(tmp_path / "old.json")
