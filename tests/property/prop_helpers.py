"""Shared pieces of the property suite: strategies for hostile text and the 'clean outcome' check."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# Few examples and a generous per-example deadline: the suite must stay fast on 2 cores, and the
# deadline is the "never hangs" bound (a hang or an unbounded loop fails it), not a speed target.
settings.register_profile(
    "issue12",
    max_examples=15,
    deadline=20_000,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)

NUMBERS_AS_TEXT = st.one_of(
    st.integers(min_value=-(10**6), max_value=10**6).map(str),
    st.integers(min_value=10**15, max_value=10**400).map(str),
    st.sampled_from(["nan", "inf", "-inf", "1e308", "-0", "0", "1.5", "0x10", "", " ", "1_000", "٣"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)
HOSTILE_TEXT = st.one_of(
    NUMBERS_AS_TEXT,
    st.text(max_size=40),
    st.sampled_from(["/dev/zero", "/proc", "/", "..", ".", "~", "/etc/passwd", "a\nb", "-x", "--help", "é" * 300]),
)


def assert_clean(result: Result) -> None:
    """Success, or one 'error: …' line and a non-zero exit; never a traceback."""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"uncaught {type(result.exception).__name__}: {result.exception}") from result.exception
    assert "Traceback" not in result.output
    if result.exit_code != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith(("error: ", "interrupted")), result.stderr


@pytest.fixture
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


def new_dir() -> Path:
    """A fresh directory per hypothesis example (function-scoped fixtures are shared by examples)."""
    return Path(tempfile.mkdtemp(prefix="prop-"))
