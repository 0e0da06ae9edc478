"""Fixtures of the calibration tests: one real tiny profile run per session, and a GPU-labelled copy."""

from __future__ import annotations

from pathlib import Path

import pytest
from calib_helpers import as_gpu_run, make_profile_run


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_profile_run(tmp_path_factory.mktemp("tiny-profile"))


@pytest.fixture
def gpu_run(tiny_run: Path, tmp_path: Path) -> Path:
    """The tiny run as if measured on an H100 (env.json device_name edited); safe to modify."""
    return as_gpu_run(tiny_run, tmp_path / "gpu-run")
