"""`llm-perf-opt profile` end to end on CPU with the tiny model: artifacts, numbers, bad inputs, interrupts."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from click.testing import CliRunner
from PIL import Image

from llm_perf_opt.cli import cli
from llm_perf_opt.contracts.profile import LLMProfileReportSummary
from llm_perf_opt.data.profile import LLMProfileReport
from llm_perf_opt.io.convert import load
from llm_perf_opt.profiling.artifacts import ARTIFACTS
from llm_perf_opt.profiling.synthetic import SYNTHETIC_KINDS, synthetic_page

FAST = ["--model", "tiny", "--mode", "tiny", "--device", "cpu", "--quiet"]


def run(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["profile", *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three generated page images: text-heavy, mixed layout, image-rich (A4 at 200 dpi)."""
    d = tmp_path_factory.mktemp("pages")
    for kind in SYNTHETIC_KINDS:
        synthetic_page(kind, seed=1).save(d / f"{kind}.png")
    return d


@pytest.fixture(scope="module")
def main_run(pages: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("profile") / "run"
    code, stdout, stderr = run(
        [
            *FAST,
            "--images",
            str(pages),
            "--repeats",
            "2",
            "--max-new-tokens",
            "8",
            "--output-dir",
            str(out),
            "--run-id",
            "cli-test",
        ]
    )
    return {"code": code, "stdout": stdout, "stderr": stderr, "out": out}


def test_every_artifact_is_written_and_valid(main_run: dict[str, Any], pages: Path) -> None:
    assert main_run["code"] == 0, main_run["stderr"]
    out: Path = main_run["out"]
    for name in ARTIFACTS:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")], "no temp files left behind"
    report = load(out / "metrics.json", LLMProfileReport)
    summary = load(out / "summary.json", LLMProfileReportSummary)
    assert report.run_id == summary.run_id == "cli-test"
    assert not report.incomplete and summary.top_operators
    assert report.input_set.count == 3
    assert {i.category for i in report.input_set.images} == set(SYNTHETIC_KINDS)
    runs = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    assert len(runs) == 6 and {r["repeat"] for r in runs} == {0, 1}
    inputs = yaml.safe_load((out / "inputs.yaml").read_text())
    for image in inputs["images"]:
        assert image["sha256"] == hashlib.sha256(Path(image["path"]).read_bytes()).hexdigest()
        assert (image["width"], image["height"]) == (1654, 2339)
    env = json.loads((out / "env.json").read_text())
    for key in (
        "device_name",
        "torch_version",
        "transformers_version",
        "python_version",
        "git",
        "seeds",
        "cuda_version",
        "compute_capability",
        "driver_version",
        "peak_tflops_used",
    ):
        assert key in env, key
    with Image.open(out / "stage_breakdown.png") as png:
        assert png.format == "PNG" and png.width > 400
    for md in ("report.md", "operators.md", "stakeholder_summary.md", "assumptions.md"):
        assert (out / md).read_text().startswith("# ")
    assert "Stage times" in main_run["stdout"] and "Decode" in main_run["stdout"]


def test_stage_times_are_positive_and_consistent(main_run: dict[str, Any]) -> None:
    out: Path = main_run["out"]
    report = load(out / "metrics.json", LLMProfileReport)
    means = {t.stage: t.elapsed_ms for t in report.timings if t.repeat is None}
    assert set(means) == {"vision", "sam", "clip", "projector", "prefill", "decode", "total"}
    assert all(v > 0 for v in means.values())
    assert {t.repeat for t in report.timings} == {None, 0, 1}
    agg = report.aggregates
    assert agg["total_ms"].count == 6 and agg["total_ms"].p95 is not None
    parts = agg["vision_ms"].mean + agg["projector_ms"].mean + agg["prefill_decoder_ms"].mean + agg["decode_ms"].mean
    assert parts == pytest.approx(agg["total_ms"].mean, rel=0.05)
    for r in (json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()):
        vision_prefill_decode = r["vision_range_ms"] + r["prefill_decoder_ms"] + r["decode_ms"]
        assert 0 < vision_prefill_decode <= r["total_ms"] + 1e-6
        assert r["total_ms"] - vision_prefill_decode < 0.05 * r["total_ms"] + 1.0
        assert r["sam_ms"] + r["clip_ms"] <= r["vision_ms"] + 1e-6
        assert r["new_tokens"] == 8 and r["decode_range_openings"] == 1
    assert means["sam"] + means["clip"] <= means["vision"] + 1e-6
    assert means["vision"] + means["projector"] <= means["prefill"] < means["total"]


def test_operator_tables_and_mfu_unavailable_on_cpu(main_run: dict[str, Any]) -> None:
    out: Path = main_run["out"]
    report = load(out / "metrics.json", LLMProfileReport)
    assert report.operators_topk and len(report.operators_topk) <= 20
    assert {"vision", "sam", "clip", "projector", "prefill", "decode"} <= set(report.operators_per_stage)
    assert all(op.calls > 0 for op in report.operators_topk)
    ops_md = (out / "operators.md").read_text()
    assert "Only self times add up" in ops_md and "aten::" in ops_md
    assert report.mfu_model_level == 0.0 and report.mfu_per_stage == {}
    assert any("MFU is not available on CPU" in w for w in report.warnings)
    assert "not available" in (out / "stakeholder_summary.md").read_text()
    assert report.analytic["decode_tflop_per_call"] > 0, "analytic FLOPs are still computed"
    summary = (out / "stakeholder_summary.md").read_text()
    for heading in ("Where the time goes", "Top 3 cost centres", "How well the hardware is used", "What to try next"):
        assert heading in summary


def test_mfu_in_range_with_peak_override(pages: Path, tmp_path: Path) -> None:
    code, stdout, stderr = run(
        [
            *FAST,
            "--images",
            str(pages / "text_heavy.png"),
            "--repeats",
            "1",
            "--max-new-tokens",
            "4",
            "--no-torch-profiler",
            "--peak-tflops",
            "50",
            "--peak-bandwidth-tbs",
            "0.5",
            "--output-dir",
            str(tmp_path),
        ]
    )
    assert code == 0, stderr
    report = load(tmp_path / "metrics.json", LLMProfileReport)
    assert 0 < report.mfu_model_level <= 1
    assert {"vision", "projector", "prefill", "prefill_decoder", "decode"} <= set(report.mfu_per_stage)
    assert all(0 <= v <= 1 for v in report.mfu_per_stage.values())
    assert 0 < report.bandwidth_utilization["decode"] <= 1
    assert report.operators_topk == [] and "MFU: model" in stdout
    assert "skipped (--no-torch-profiler)" in (tmp_path / "operators.md").read_text()


def test_builtin_synthetic_pages_batching_and_trace(tmp_path: Path) -> None:
    code, _, stderr = run(
        [
            *FAST,
            "--repeats",
            "1",
            "--warmup",
            "0",
            "--max-new-tokens",
            "2",
            "--batch-size",
            "2",
            "--trace",
            "--top-k",
            "5",
            "--output-dir",
            str(tmp_path),
        ]
    )
    assert code == 0, stderr
    inputs = yaml.safe_load((tmp_path / "inputs.yaml").read_text())
    assert inputs["synthetic"] and [i["category"] for i in inputs["images"]] == list(SYNTHETIC_KINDS)
    assert all(Path(i["path"]).parent == tmp_path / "inputs" for i in inputs["images"])
    runs = [json.loads(line) for line in (tmp_path / "runs.jsonl").read_text().splitlines()]
    assert [r["batch_size"] for r in runs] == [2, 1]
    report = load(tmp_path / "metrics.json", LLMProfileReport)
    assert any("--batch-size 2" in w and "fewer pages" in w for w in report.warnings)
    assert len(report.operators_topk) == 5
    trace = json.loads((tmp_path / "trace.json").read_text())
    names = {e.get("name") for e in trace["traceEvents"]}
    assert {"prefill", "vision", "sam", "decode"} <= names


def test_no_images_is_one_error_exit_2(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    code, _stdout, stderr = run([*FAST, "--images", str(tmp_path / "empty")])
    assert code == 2
    assert stderr.startswith("error: no usable images") and stderr.count("\n") == 1
    code, _, stderr = run([*FAST, "--images", str(tmp_path / "missing.png")])
    assert code == 2 and "does not exist" in stderr


def test_bad_images_are_skipped_and_listed_or_fatal_with_strict(pages: Path, tmp_path: Path) -> None:
    d = tmp_path / "mixed"
    d.mkdir()
    Image.new("CMYK", (300, 400), (0, 50, 100, 0)).save(d / "cmyk.jpg")
    (d / "notes.png").write_text("not an image")
    (d / "zero.png").write_bytes(b"")
    out = tmp_path / "out"
    code, _, stderr = run(
        [
            *FAST,
            "--images",
            str(d),
            "--repeats",
            "1",
            "--max-new-tokens",
            "2",
            "--no-torch-profiler",
            "--output-dir",
            str(out),
        ]
    )
    assert code == 0, stderr
    report = load(out / "metrics.json", LLMProfileReport)
    assert report.input_set.count == 1
    assert any("notes.png" in w and "skipped" in w for w in report.warnings)
    assert any("zero.png" in w and "empty file" in w for w in report.warnings)
    assert any("CMYK" in w and "converted" in w for w in report.warnings)
    assert "notes.png" in (out / "report.md").read_text()
    code, _, stderr = run([*FAST, "--images", str(d), "--strict", "--output-dir", str(tmp_path / "strict")])
    assert code == 2 and "--strict" in stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_requested_without_cuda_exit_2(tmp_path: Path) -> None:
    code, _, stderr = run(["--model", "tiny", "--device", "cuda:0", "--output-dir", str(tmp_path)])
    assert code == 2 and "CUDA is not available" in stderr and stderr.count("\n") == 1


@pytest.mark.parametrize("failure", ["interrupt", "oom"])
def test_interrupted_run_leaves_incomplete_valid_report(
    pages: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    from llm_perf_opt.profiling import session as session_mod

    real = session_mod.ProfileSession.generate
    calls = {"n": 0}

    def flaky(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 4:  # 1 warm-up, 2 timed runs finished, then fail
            raise KeyboardInterrupt if failure == "interrupt" else torch.cuda.OutOfMemoryError("CUDA out of memory.")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(session_mod.ProfileSession, "generate", flaky)
    code, _, stderr = run(
        [
            *FAST,
            "--images",
            str(pages / "mixed_layout.png"),
            "--repeats",
            "5",
            "--max-new-tokens",
            "2",
            "--output-dir",
            str(tmp_path),
        ]
    )
    assert code == (130 if failure == "interrupt" else 1)
    assert "incomplete" in stderr
    report = load(tmp_path / "metrics.json", LLMProfileReport)
    assert report.incomplete
    assert report.warnings[0].startswith("INCOMPLETE: ")
    assert len((tmp_path / "runs.jsonl").read_text().splitlines()) == 2
    assert report.aggregates["total_ms"].count == 2
    assert "INCOMPLETE" in (tmp_path / "report.md").read_text()


def _write_remote_checkpoint(directory: Path) -> None:
    """A checkpoint directory with its own model code that wraps the package's module (transformers API)."""
    directory.mkdir()
    (directory / "modeling_tiny_ocr.py").write_text(
        '"""Test checkpoint code: a transformers model that wraps llm_perf_opt\'s DeepSeek-OCR module."""\n'
        "from transformers import PretrainedConfig, PreTrainedModel\n"
        "from llm_perf_opt.models.deepseek_ocr import DeepseekOCRForCausalLM\n"
        "from llm_perf_opt.specs.model_spec import MODEL_REGISTRY\n\n\n"
        "class TinyOCRConfig(PretrainedConfig):\n"
        '    model_type = "tiny_ocr_remote"\n\n'
        '    def __init__(self, spec_name="tiny", **kwargs):\n'
        "        self.spec_name = spec_name\n"
        "        super().__init__(**kwargs)\n\n\n"
        "class TinyOCRForCausalLM(PreTrainedModel):\n"
        "    config_class = TinyOCRConfig\n"
        "    REMOTE_CODE_RAN = True\n\n"
        "    def __init__(self, config):\n"
        "        super().__init__(config)\n"
        "        self.ocr = DeepseekOCRForCausalLM(MODEL_REGISTRY[config.spec_name])\n"
        "        self.post_init()\n\n"
        "    def _init_weights(self, module):\n"
        "        pass\n\n"
        "    def forward(self, input_ids, **kwargs):\n"
        "        return self.ocr(input_ids, **kwargs)\n"
    )
    (directory / "config.json").write_text(
        json.dumps(
            {
                "model_type": "tiny_ocr_remote",
                "spec_name": "tiny",
                "auto_map": {
                    "AutoConfig": "modeling_tiny_ocr.TinyOCRConfig",
                    "AutoModel": "modeling_tiny_ocr.TinyOCRForCausalLM",
                },
            }
        )
    )
    from transformers import AutoConfig, AutoModel

    from llm_perf_opt.models.deepseek_ocr import init_random_

    config = AutoConfig.from_pretrained(str(directory), trust_remote_code=True, local_files_only=True)
    model = AutoModel.from_config(config, trust_remote_code=True)
    with torch.no_grad():
        ids = model.ocr.model.vision_model.embeddings.position_ids
        ids.copy_(torch.arange(ids.shape[-1]).unsqueeze(0))
    init_random_(model.ocr, 0)
    model.save_pretrained(str(directory))


def test_trust_remote_code_loads_the_checkpoints_own_code(pages: Path, tmp_path: Path) -> None:
    ckpt = tmp_path / "remote-ckpt"
    _write_remote_checkpoint(ckpt)
    out = tmp_path / "out"
    common = [
        *FAST,
        "--weights",
        str(ckpt),
        "--images",
        str(pages / "image_rich.png"),
        "--repeats",
        "1",
        "--max-new-tokens",
        "3",
        "--no-torch-profiler",
    ]
    code, _, stderr = run([*common, "--trust-remote-code", "--output-dir", str(out)])
    assert code == 0, stderr
    assumptions = (out / "assumptions.md").read_text()
    assert "trust_remote_code" in assumptions
    report = load(out / "metrics.json", LLMProfileReport)
    assert report.model.model_path == str(ckpt.resolve()) and report.aggregates["decode_ms"].mean > 0
    # Without the flag the code is never run and this checkpoint (code + wrapped names) is refused.
    code, _, stderr = run([*common, "--output-dir", str(tmp_path / "no-flag")])
    assert code == 2 and stderr.startswith("error: ")


def test_interrupt_while_loading_still_writes_a_valid_incomplete_report(
    pages: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llm_perf_opt.profiling import session as session_mod

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(session_mod.ProfileSession, "load", boom)
    code, _, stderr = run([*FAST, "--images", str(pages / "text_heavy.png"), "--output-dir", str(tmp_path)])
    assert code == 130 and "incomplete" in stderr
    report = load(tmp_path / "metrics.json", LLMProfileReport)
    assert report.incomplete and report.timings == [] and report.aggregates == {}
    assert "during load" in report.warnings[0]
    assert (tmp_path / "runs.jsonl").read_text() == ""
    assert "No timed run finished" in (tmp_path / "report.md").read_text()
