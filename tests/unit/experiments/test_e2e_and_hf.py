"""e2e and decode-vs-hf on the tiny model (CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llm_perf_opt.experiments.decode_vs_hf import DecodeVsHFConfig, run_decode_vs_hf
from llm_perf_opt.experiments.e2e import E2EConfig, run_e2e
from llm_perf_opt.specs.model_spec import MODEL_REGISTRY

TINY = MODEL_REGISTRY["tiny"].decoder


def has_deepseek_ocr2() -> bool:
    try:
        from transformers.models.deepseek_ocr2 import modeling_deepseek_ocr2  # noqa: F401
    except Exception:
        return False
    return True


def test_e2e_checks_hold_and_kv_bytes_match_by_hand(tmp_path: Path) -> None:
    result = run_e2e(E2EConfig(out=tmp_path, model="tiny", device="cpu", mode="tiny", new_tokens=3, repeats=1,
                               hardware="h100-sxm"))
    assert result["checks"] == {"image_tokens_equal": True, "exact_new_tokens": True,
                                "kv_cache_matches_analytic": True}
    assert result["status"] == "ok" and result["decode_mode"] == "eager"
    record = json.loads((tmp_path / "run" / "runs.jsonl").read_text(encoding="utf-8").splitlines()[0])
    head_dim = TINY.hidden_size // TINY.num_heads
    per_position = 2 * TINY.num_layers * TINY.num_kv_heads * head_dim * 4  # K and V, fp32
    assert result["kv_cache_bytes"]["measured"] == per_position * (record["prompt_len"] + 3 - 1)
    stages = {s["stage"] for s in result["stages"]}
    assert {"sam", "clip", "projector", "prefill_decoder", "decode", "total"} <= stages
    saved = json.loads((tmp_path / "e2e.json").read_text(encoding="utf-8"))
    assert saved["config"]["mode"] == "tiny" and saved["checks"] == result["checks"]


@pytest.mark.skipif(not has_deepseek_ocr2(), reason="transformers has no deepseek_ocr2")
def test_decode_vs_hf_logits_agree_and_both_are_timed(tmp_path: Path) -> None:
    cfg = DecodeVsHFConfig(model="tiny", device="cpu", contexts=(8,), steps=2, warmup_steps=1, attn=("sdpa",),
                           hf_experts=("auto",), check_tokens=6, out=tmp_path)
    result = run_decode_vs_hf(cfg)
    check = result["equivalence"]["fp32"]
    assert check["pass"] and check["full_sequence"]["rel_max_diff"] < 1e-3 and check["cached_steps"] == 1
    (row,) = result["timings"]
    assert row["ours_ms"] > 0 and row["hf[auto]_ms"] > 0
    assert row["hf_over_ours"] == pytest.approx(row["hf[auto]_ms"] / row["ours_ms"])
    assert json.loads((tmp_path / "decode_vs_hf.json").read_text(encoding="utf-8"))["status"] == "ok"


@pytest.mark.skipif(not has_deepseek_ocr2(), reason="transformers has no deepseek_ocr2")
def test_weight_copy_packs_every_expert() -> None:
    import torch

    from llm_perf_opt.experiments.hf_decoder import build_hf
    from llm_perf_opt.models.deepseek_ocr import build_model

    ours = build_model(MODEL_REGISTRY["tiny"], device="cpu", dtype=torch.float32, seed=3)
    hf = build_hf(ours, torch.device("cpu"), torch.float32, "eager")
    layer, packed, i = ours.model.layers[1].mlp, hf.layers[1].mlp.experts, TINY.moe_intermediate_size
    assert torch.equal(packed.gate_up_proj[5, :i], layer.experts[5].gate_proj.weight)
    assert torch.equal(packed.gate_up_proj[5, i:], layer.experts[5].up_proj.weight)
    assert torch.equal(packed.down_proj[2], layer.experts[2].down_proj.weight)
    assert hf.rotary_emb.inv_freq.dtype == torch.float32
