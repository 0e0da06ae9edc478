"""`analyze --implementation hf-official`: the official code's report, and what-if reproduces it."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from llm_perf_opt.analytic import implementations as impl
from llm_perf_opt.cli import cli
from llm_perf_opt.specs.model_spec import MODEL_REGISTRY
from llm_perf_opt.specs.workload import Workload
from llm_perf_opt.whatif import evaluate, load_report

ARGS = ["analyze", "--mode", "analytic", "--hardware", "h200", "--resolution", "gundam", "--max-new-tokens", "16"]


def report(tmp_path: Path, *extra: str) -> dict:
    out = tmp_path / "-".join(extra or ("ours",))
    result = CliRunner().invoke(cli, [*ARGS, *extra, "--output-dir", str(out)])
    assert result.exit_code == 0, result.output
    return json.loads((out / "report.json").read_text())


def test_official_report_is_eager_and_carries_the_official_decode_kernels(tmp_path: Path) -> None:
    official = report(tmp_path, "--implementation", "hf-official")
    ours = report(tmp_path, "--execution", "eager")
    roof = official["inputs"]["roofline"]
    assert roof["implementation"] == "hf-official" and roof["execution"] == "eager"
    stages = {s["stage"]: s for s in official["stages"]}
    # infer() bans repeated 20-grams: the ban's scores clone and index_put are 2 kernels of every step.
    per_step = impl.decode_step_kernels(MODEL_REGISTRY["deepseek-ocr"], "hf-official", ngram=True)
    assert stages["decode"]["kernels"] == 15 * per_step
    work = Workload(profile_id="w", mode="gundam", max_new_tokens=16)
    lm_head = 2 * (work.prefill_tokens - 1) * 1280 * 129_280
    ours_prefill = {s["stage"]: s for s in ours["stages"]}["prefill"]["flops_tflops"]
    assert (stages["prefill"]["flops_tflops"] - ours_prefill) * 1e12 >= lm_head
    assert official["predicted_total_time_ms"] > ours["predicted_total_time_ms"]
    assert any("hf-official" in line for line in official["assumptions"])


def test_what_if_reproduces_the_official_report(tmp_path: Path) -> None:
    report(tmp_path, "--implementation", "hf-official")
    loaded = load_report(tmp_path / "--implementation-hf-official" / "report.json")
    assert evaluate(loaded)[0].latency_ms == loaded.predicted_total_time_ms
