"""Fixtures of the contract tests."""

from __future__ import annotations

from typing import Any

import pytest
from contract_samples import make_samples


@pytest.fixture
def samples() -> dict[type, Any]:
    """A fresh sample per contract class (tests may mutate them)."""
    return make_samples()
