"""The two GPU scripts run end to end in their ``--smoke`` mode (tiny model, CPU), so they cannot rot.

Each script is loaded from its file and its ``main(argv)`` is called in-process (one interpreter,
one torch import); the JSON it writes is checked for the numbers the GPU run reports.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPTS = Path(__file__).resolve().parents[3] / "scripts"


def load_script(name: str) -> ModuleType:
    path = SCRIPTS / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_script_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    # As ``python3 scripts/X.py`` does: scripts/ on the path, so the script finds _gpu_common.
    sys.path.insert(0, str(SCRIPTS))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(SCRIPTS))
    return module


def has_deepseek_ocr2() -> bool:
    try:
        from transformers.models.deepseek_ocr2 import modeling_deepseek_ocr2  # noqa: F401
    except Exception:
        return False
    return True


@pytest.fixture(scope="module")
def e2e() -> ModuleType:
    return load_script("gpu_model_e2e")


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_script("bench_decode_vs_transformers")


def read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def test_e2e_smoke(e2e: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "nested" / "e2e.json"
    assert e2e.main(["--smoke", "--out", str(out)]) == 0
    data = read(out)
    assert data["status"] == "ok"
    assert data["env"]["torch"]
    page = data["page"]
    assert page["image_tokens_preprocess"] == page["image_tokens_analytic"] == page["image_tokens_expected"] == 903
    assert page["tile_grid"] == [2, 3]
    assert page["prompt_len"] == 903 + page["text_tokens"]
    assert data["checks"]["image_tokens_equal"] and data["checks"]["exact_new_tokens"]
    assert data["checks"]["kv_cache_matches_analytic"]
    runs = data["runs"]
    assert len(runs) == data["args"]["runs"] >= 1
    for run in runs:
        assert run["new_tokens"] == data["args"]["new_tokens"]
        assert all(run["stages_ms"][k] > 0 for k in ("prefill", "vision", "sam", "clip", "projector", "decode"))
        assert run["stages_ms"]["prefill"] >= run["stages_ms"]["vision"]
    summary = data["summary"]
    assert summary["decode_steps"] == data["args"]["new_tokens"] - 1
    assert summary["decode_ms_per_step"] > 0
    assert data["workload"]["prompt_tokens"] == page["text_tokens"]
    # analytic prediction present for every stage, side by side with the measurement
    assert set(data["analytic"]["stages"]) == {"vision", "projector", "prefill", "decode"}
    rows = {r["stage"]: r for r in data["comparison"]}
    assert len(rows) == 9
    for r in rows.values():
        assert r["measured_ms"] is not None and r["predicted_ms"] is not None, r
        assert r["pred_over_meas"] > 0
    text = capsys.readouterr().out
    assert "measured ms" in text and "predicted ms" in text and "-> OK" in text


def test_e2e_synthetic_page_is_deterministic(e2e: ModuleType) -> None:
    a = e2e.synthetic_page(200, 280, seed=1)
    b = e2e.synthetic_page(200, 280, seed=1)
    assert a.size == (200, 280) and a.mode == "RGB"
    assert a.tobytes() == b.tobytes()
    assert len(set(a.tobytes())) > 2  # not blank


def test_bench_smoke(bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    code = bench.main(["--smoke", "--out", str(out)])
    data = read(out)
    assert data["status"] == "ok", data.get("traceback")
    assert code == 0
    summary = data["summary"]
    assert [(r["attn"], r["context"]) for r in summary] == [
        (a, c) for a in ("eager", "sdpa") for c in (int(x) for x in data["args"]["contexts"].split(","))
    ]
    assert all(r["ours_ms"] > 0 for r in summary)
    if not has_deepseek_ocr2():
        assert data["hf_available"] is False and data["hf_error"]
        return
    assert data["hf_available"] is True
    check = data["equivalence"]["float32"]
    assert check["pass"]
    assert check["full_sequence"]["rel_max_diff"] < 1e-4 and check["kv_cached"]["rel_max_diff"] < 1e-4
    assert check["full_sequence"]["argmax_agree"] == 1.0
    assert all(r["hf_ms"] > 0 and r["hf_over_ours"] > 0 for r in summary)
    impls = {t["impl"] for t in data["timings"]}
    assert "ours" in impls and any(i.startswith("transformers[experts=") for i in impls)
    assert "tf/ours" in capsys.readouterr().out


def test_bench_without_transformers_still_times_ours(
    bench: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise ImportError("cannot import name 'DeepseekOcr2TextModel' (simulated)")

    monkeypatch.setattr(bench, "build_hf", broken)
    out = tmp_path / "bench.json"
    argv = ["--smoke", "--contexts", "8", "--attn", "eager", "--out", str(out)]
    assert bench.main(argv) == 0
    data = read(out)
    assert data["status"] == "ok"
    assert data["hf_available"] is False
    assert "DeepseekOcr2TextModel" in data["hf_error"]
    assert [r["verdict"] for r in data["summary"]] == ["no tf"]
    assert data["summary"][0]["ours_ms"] > 0
    assert "unavailable" in capsys.readouterr().out


@pytest.mark.skipif(not has_deepseek_ocr2(), reason="transformers has no deepseek_ocr2")
def test_bench_weight_copy_covers_every_tensor(bench: ModuleType) -> None:
    import torch

    from llm_perf_opt.models.deepseek_ocr import build_model
    from llm_perf_opt.specs.model_spec import MODEL_REGISTRY

    ours = build_model(MODEL_REGISTRY["tiny"], device="cpu", dtype=torch.float32, seed=3)
    hf = bench.build_hf(ours, torch.device("cpu"), torch.float32, "eager")
    info = bench.copy_weights_into_hf(ours, hf)
    assert info["hf_tensors_copied"] == len(hf.state_dict())
    layer = ours.model.layers[1].mlp
    packed = hf.layers[1].mlp.experts
    i = MODEL_REGISTRY["tiny"].decoder.moe_intermediate_size
    assert torch.equal(packed.gate_up_proj[5, :i], layer.experts[5].gate_proj.weight)
    assert torch.equal(packed.gate_up_proj[5, i:], layer.experts[5].up_proj.weight)
    assert torch.equal(packed.down_proj[2], layer.experts[2].down_proj.weight)
    assert hf.rotary_emb.inv_freq.dtype == torch.float32
