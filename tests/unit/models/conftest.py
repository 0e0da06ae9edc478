"""Fixtures for the runnable-model tests: the tiny variant on CPU in fp32, and synthetic pages."""

from __future__ import annotations

import pytest
import torch
from dsocr_helpers import striped_page
from PIL import Image

from llm_perf_opt.models.deepseek_ocr import DeepseekOCRForCausalLM, build_model
from llm_perf_opt.specs.model_spec import MODEL_REGISTRY, ModelSpec


@pytest.fixture(scope="session")
def tiny_spec() -> ModelSpec:
    return MODEL_REGISTRY["tiny"]


@pytest.fixture(scope="session")
def tiny_model(tiny_spec: ModelSpec) -> DeepseekOCRForCausalLM:
    """Shared, read-only: tests that change the model build their own."""
    return build_model(tiny_spec, device="cpu", dtype=torch.float32, seed=0)


@pytest.fixture(scope="session")
def page_image() -> Image.Image:
    return striped_page(900, 1200)
