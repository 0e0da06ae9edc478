"""Fixtures of the official-code tests: the tiny official-structure checkpoint directory."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

FIXTURE = Path(__file__).resolve().parents[3] / "fixtures" / "official_ckpt" / "__init__.py"


def fixture_module() -> ModuleType:
    """tests/fixtures/official_ckpt as a module (tests are not a package)."""
    if "official_ckpt_fixture" not in sys.modules:
        spec = importlib.util.spec_from_file_location("official_ckpt_fixture", FIXTURE)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["official_ckpt_fixture"] = module
        spec.loader.exec_module(module)
    return sys.modules["official_ckpt_fixture"]


@pytest.fixture(scope="module")
def official_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fixture_module().write_official_checkpoint(tmp_path_factory.mktemp("official") / "ckpt")
