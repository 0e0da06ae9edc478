"""Reading a profile run directory: the exact workload, the GPU, the model; every bad input is one clear error."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from calib_helpers import H100, copy_run, edit_json

from llm_perf_opt.calibration import read_run_dir
from llm_perf_opt.errors import UserError
from llm_perf_opt.hardware.table import load_hardware


def runs(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "runs.jsonl").read_text().splitlines()]


def test_reads_the_exact_input_and_mean_stage_times(gpu_run: Path) -> None:
    run = read_run_dir(gpu_run)
    assert run.run_id == "calib-test" and run.n_runs == 2 and not run.incomplete
    assert run.hardware.id == "h100-sxm" and run.gpu_name == H100 and "env.json" in run.hardware_source
    assert run.spec.name == "tiny" and run.precision == "fp32"
    assert (run.mode, run.max_crops) == ("tiny", 9)  # in-process CLI: argv is pytest's, so inferred
    (mw,) = run.workloads
    recs = runs(gpu_run)
    w = mw.workload
    assert w.page_size == (600, 800) and w.mode == "tiny" and w.batch_size == 1 and w.max_new_tokens == 4
    assert w.prefill_tokens == recs[0]["prompt_len"] and w.layout.total_slots == recs[0]["image_tokens"]
    for stage, col in (
        ("sam", "sam_ms"),
        ("decode", "decode_ms"),
        ("prefill_decoder", "prefill_decoder_ms"),
        ("total", "total_ms"),
    ):
        assert mw.stages[stage].mean_ms == pytest.approx(sum(r[col] for r in recs) / len(recs))
        assert mw.stages[stage].n == 2


@pytest.mark.parametrize("flags", [["--mode", "tiny"], ["--mode=tiny", "--max-crops=6"]])
def test_mode_comes_from_the_cli_argv(gpu_run: Path, flags: list[str]) -> None:
    edit_json(gpu_run / "env.json", argv=["/usr/bin/llm-perf-opt", "profile", "--quiet", *flags])
    run = read_run_dir(gpu_run)
    assert run.mode == "tiny" and "argv" in run.mode_source


def test_mode_is_inferred_without_argv(gpu_run: Path) -> None:
    edit_json(gpu_run / "env.json", argv=["some_script.py"])
    run = read_run_dir(gpu_run)
    assert run.mode == "tiny" and "inferred" in run.mode_source


def test_argv_that_contradicts_the_records_is_refused(gpu_run: Path) -> None:
    edit_json(gpu_run / "env.json", argv=["llm-perf-opt", "profile", "--mode", "base"])
    with pytest.raises(UserError, match="does not reproduce"):
        read_run_dir(gpu_run)


def test_missing_and_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        read_run_dir(tmp_path / "nope")
    f = tmp_path / "file.json"
    f.write_text("{}")
    with pytest.raises(UserError, match="not a directory"):
        read_run_dir(f)


def test_no_metrics_json(gpu_run: Path) -> None:
    (gpu_run / "metrics.json").unlink()
    with pytest.raises(UserError, match=r"no metrics\.json"):
        read_run_dir(gpu_run)


def test_malformed_metrics_json(gpu_run: Path) -> None:
    (gpu_run / "metrics.json").write_text('{"run_id": "x", ')
    with pytest.raises(UserError, match=r"metrics.json: not valid JSON"):
        read_run_dir(gpu_run)


def test_malformed_env_json_and_runs_jsonl(gpu_run: Path) -> None:
    good = (gpu_run / "runs.jsonl").read_text()
    (gpu_run / "runs.jsonl").write_text(good + "{oops\n")
    with pytest.raises(UserError, match=r"runs.jsonl: line 3 is not valid JSON"):
        read_run_dir(gpu_run)
    (gpu_run / "runs.jsonl").write_text("")
    with pytest.raises(UserError, match="no timed calls"):
        read_run_dir(gpu_run)
    (gpu_run / "runs.jsonl").unlink()
    with pytest.raises(UserError, match=r"no runs\.jsonl"):
        read_run_dir(gpu_run)
    (gpu_run / "env.json").write_text("[1, 2")
    with pytest.raises(UserError, match=r"env.json: not valid JSON"):
        read_run_dir(gpu_run)


def test_unknown_gpu_suggests_hardware(gpu_run: Path) -> None:
    edit_json(gpu_run / "env.json", device_name="NVIDIA H100")  # a loose name must not match
    with pytest.raises(UserError, match=r"not in the hardware table.*--hardware"):
        read_run_dir(gpu_run)
    run = read_run_dir(gpu_run, hardware=load_hardware("h100-pcie"))
    assert run.hardware.id == "h100-pcie" and run.hardware_source == "--hardware h100-pcie"


def test_cpu_run_needs_hardware(tiny_run: Path) -> None:
    with pytest.raises(UserError, match=r"measured on the CPU.*--hardware"):
        read_run_dir(tiny_run)
    assert read_run_dir(tiny_run, hardware=load_hardware("h100-sxm")).hardware.id == "h100-sxm"


def test_override_of_a_known_gpu_is_a_warning(gpu_run: Path) -> None:
    run = read_run_dir(gpu_run, hardware=load_hardware("h200"))
    assert run.hardware.id == "h200" and any("h100-sxm" in w for w in run.warnings)


def test_incomplete_run_is_refused(gpu_run: Path) -> None:
    metrics = json.loads((gpu_run / "metrics.json").read_text())
    metrics["incomplete"] = True
    metrics["warnings"] = ["INCOMPLETE: interrupted (Ctrl-C) during timed", *metrics["warnings"]]
    (gpu_run / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(UserError, match=r"marked incomplete \(INCOMPLETE: interrupted"):
        read_run_dir(gpu_run)
    run = read_run_dir(gpu_run, allow_incomplete=True)
    assert run.incomplete and any("incomplete" in w for w in run.warnings)


def test_record_for_an_unknown_page(gpu_run: Path, tmp_path: Path) -> None:
    recs = runs(gpu_run)
    recs[0]["pages"] = ["elsewhere.png"]
    (gpu_run / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    with pytest.raises(UserError, match=r"not in metrics\.json input_set"):
        read_run_dir(gpu_run)


def test_two_inputs_become_two_workloads(gpu_run: Path, tmp_path: Path) -> None:
    other = copy_run(gpu_run, tmp_path / "two")
    recs = runs(other)
    recs[1]["new_tokens"] = 3  # as if the second call stopped one token early (EOS)
    (other / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    run = read_run_dir(other)
    assert sorted(m.workload.max_new_tokens for m in run.workloads) == [3, 4]
    assert len({m.key for m in run.workloads}) == 2
    shutil.rmtree(other)


EXAMPLE = Path(__file__).resolve().parents[3] / "docs" / "examples" / "profile-base"


@pytest.mark.skipif(not (EXAMPLE / "metrics.json").is_file(), reason="no committed H100 example run")
def test_reads_a_real_h100_run_with_gpu_busy_times() -> None:
    from llm_perf_opt.calibration import compare_run, fit_run

    run = read_run_dir(EXAMPLE)
    assert run.hardware.id == "h100-sxm" and run.precision == "bf16" and run.spec.name == "deepseek-ocr"
    assert run.mode == "base" and "argv" in run.mode_source
    (mw,) = run.workloads  # three synthetic A4 pages: one exact input
    assert mw.workload.prefill_tokens == 283 and mw.stages["decode"].n == run.n_runs
    for stage in ("sam_gpu", "clip_gpu", "prefill_decoder_gpu", "decode_gpu"):
        busy, wall = mw.stages[stage].mean_ms, mw.stages[stage.removesuffix("_gpu")].mean_ms
        assert 0 < busy <= 1.05 * wall, stage  # device-busy time cannot exceed the wall time
    fit = fit_run(run)
    assert 1.0 < fit.params.launch_overhead_us < 200.0
    assert all(abs(r.error_after) < 0.3 for r in fit.rows if r.stage != "projector")

    from llm_perf_opt.analytic.api import build_report

    report = build_report(run.spec, mw.workload, run.hardware, params=fit.params, precision=run.precision)
    comparison = compare_run(run, report)
    assert {"sam_gpu", "decode", "total"} <= {r.stage for r in comparison.rows}


def test_execution_modes_come_from_the_records(gpu_run: Path) -> None:
    """Graph only when every timed call replayed graphs; runs from before prefill graphs (no field) are eager."""
    recs = runs(gpu_run)
    for rec in recs:
        rec.pop("prefill_mode", None)
        rec["decode_mode"] = "graph"
    (gpu_run / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    run = read_run_dir(gpu_run)
    assert (run.execution, run.prefill_execution) == ("graph", "eager")
    assert run.start_params().prefill_execution == "eager" and run.start_params().execution == "graph"
    for rec in recs:
        rec["prefill_mode"] = "graph"
    (gpu_run / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    assert read_run_dir(gpu_run).prefill_execution == "graph"
    recs[0]["decode_mode"] = "eager"  # a mixed run (--decode-mode both) is not a graph run
    (gpu_run / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    assert read_run_dir(gpu_run).execution == "eager"
    assert read_run_dir(gpu_run).start_params().prefill_execution == "eager"


def test_in_graph_stage_timing_comes_from_the_records(gpu_run: Path) -> None:
    """Runs from before in-graph spans (no field) timed their graphed stages by ranges; span only when every
    timed call says which stages its graphs timed."""
    recs = runs(gpu_run)
    assert read_run_dir(gpu_run).start_params().graph_stage_timing == "range"
    for rec in recs:
        rec["gpu_span_stages"] = ["sam", "clip", "projector"]
    (gpu_run / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    assert read_run_dir(gpu_run).start_params().graph_stage_timing == "span"
    recs[-1]["gpu_span_stages"] = []
    (gpu_run / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    assert read_run_dir(gpu_run).graph_stage_timing == "range"


def test_the_routing_census_sets_the_start_ratio(gpu_run: Path, tmp_path: Path) -> None:
    own = json.loads((gpu_run / "metrics.json").read_text())["aggregates"]["moe_expert_load_ratio"]["mean"]
    assert read_run_dir(gpu_run).start_params().expert_load_ratio == own  # the profile run measured its own
    run = copy_run(gpu_run, tmp_path / "census")
    metrics = json.loads((run / "metrics.json").read_text())
    census = {"mean": 0.85, "std": 0.01, "count": 2, "min": 0.84, "max": 0.86, "p50": 0.85, "p95": 0.86}
    metrics["aggregates"]["moe_expert_load_ratio"] = census
    (run / "metrics.json").write_text(json.dumps(metrics))
    read = read_run_dir(run)
    assert read.expert_load_ratio == 0.85 and read.start_params().expert_load_ratio == 0.85
    del metrics["aggregates"]["moe_expert_load_ratio"]  # a run from before the census: uniform
    (run / "metrics.json").write_text(json.dumps(metrics))
    assert read_run_dir(run).expert_load_ratio == 1.0
