"""Operator categories: every leaf uses a known category; every match class exists in the runnable model."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from llm_perf_opt.analytic.categories import operator_categories
from llm_perf_opt.analytic.deepseek_ocr import build_root, build_stages
from llm_perf_opt.analytic.report_tree import walk
from llm_perf_opt.analytic.roofline import CATEGORY_IDS
from llm_perf_opt.specs.model_spec import DEEPSEEK_OCR
from llm_perf_opt.specs.workload import WORKLOAD_PROFILES

MODEL_DIR = Path(importlib.util.find_spec("llm_perf_opt").origin).parent / "models" / "deepseek_ocr"  # type: ignore[union-attr,arg-type]


def _runnable_model_classes() -> set[str]:
    """Class names defined in models/deepseek_ocr/*.py, read with ast (no torch import needed)."""
    names = set()
    for path in MODEL_DIR.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names |= {node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)}
    return names


def test_categories_are_the_roofline_ids() -> None:
    cats = operator_categories()
    assert [c.category_id for c in cats] == [
        "vision_conv", "vision_attention", "vision_mlp", "norm", "embedding", "projector",
        "decoder_attention", "dense_mlp", "moe_router", "moe_experts", "lm_head", "elementwise",
    ]  # fmt: skip
    assert all(c.display_name and c.description for c in cats)


def test_every_leaf_has_a_known_category() -> None:
    root = build_root(build_stages(DEEPSEEK_OCR, WORKLOAD_PROFILES["gundam"]))
    used = {v.layer.category for v in walk(root) if v.layer.is_leaf}
    assert used <= set(CATEGORY_IDS)
    assert {"vision_attention", "moe_experts", "lm_head", "decoder_attention", "moe_router"} <= used


def test_match_classes_exist_in_the_runnable_model() -> None:
    if not MODEL_DIR.is_dir() or not list(MODEL_DIR.glob("*.py")):
        pytest.skip("runnable model not present")
    defined = _runnable_model_classes()
    local = [name for c in operator_categories() for name in c.match_classes if "." not in name]
    missing = sorted(set(local) - defined)
    assert not missing, f"match_classes not defined in models/deepseek_ocr: {missing}"


def test_dotted_match_classes_are_torch_classes() -> None:
    pytest.importorskip("torch")
    for cat in operator_categories():
        for name in cat.match_classes:
            if "." in name:
                module, _, attr = name.rpartition(".")
                assert isinstance(getattr(importlib.import_module(module), attr), type), name
