"""Named ranges that show up in Nsight Systems (NVTX) and in torch.profiler (``record_function``).

The model's ``generate`` takes a *range factory*: a callable ``ranges(name)`` that returns a context
manager. It opens ``prefill`` ⊃ ``vision`` ⊃ (``sam``, ``clip``, ``projector``), then ``decode``.
The same names are used for NVTX and for ``record_function``, so an Nsight timeline and a
torch.profiler table line up.

NVTX degrades to a no-op: the ``nvtx`` package is used when importable, else ``torch.cuda.nvtx``
when CUDA is available, else nothing. No import here fails on a CPU-only machine.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import torch

RangeFactory = Callable[[str], AbstractContextManager[Any]]
"""``ranges(name)`` → a context manager that brackets one named region."""

STAGE_RANGES: tuple[str, ...] = ("prefill", "vision", "sam", "clip", "projector", "decode")
"""Range names the model opens (outermost first); operators are attributed to the innermost one."""

NVTX_DOMAIN = "llm_perf_opt"


def _nvtx_package() -> Any | None:
    try:
        import nvtx  # type: ignore[import-not-found,unused-ignore]
    except Exception:  # missing, or a broken native library
        return None
    return nvtx


_NVTX = _nvtx_package()


def nvtx_backend() -> str:
    """Which NVTX implementation ranges go to: ``nvtx``, ``torch.cuda.nvtx`` or ``none``."""
    if _NVTX is not None:
        return "nvtx"
    if torch.cuda.is_available():
        return "torch.cuda.nvtx"
    return "none"


@contextlib.contextmanager
def nvtx_range(name: str) -> Iterator[None]:
    """Push an NVTX range for the duration of the block (a no-op without NVTX)."""
    backend = nvtx_backend()
    if backend == "nvtx":
        assert _NVTX is not None
        _NVTX.push_range(message=name, domain=NVTX_DOMAIN)
        try:
            yield
        finally:
            _NVTX.pop_range(domain=NVTX_DOMAIN)
    elif backend == "torch.cuda.nvtx":
        torch.cuda.nvtx.range_push(name)
        try:
            yield
        finally:
            torch.cuda.nvtx.range_pop()
    else:
        yield


@contextlib.contextmanager
def annotated_range(name: str) -> Iterator[None]:
    """NVTX range plus a torch.profiler ``record_function`` range, both called ``name``."""
    with nvtx_range(name), torch.profiler.record_function(name):
        yield


def null_ranges(name: str) -> AbstractContextManager[None]:
    """A range factory that does nothing (plain, unprofiled generation)."""
    return contextlib.nullcontext()


def combine(*factories: RangeFactory) -> RangeFactory:
    """A range factory that enters every given factory's range, outermost first; it yields what the
    innermost range that yields something yields (the stage clock's handle, when the clock is one)."""

    @contextlib.contextmanager
    def ranges(name: str) -> Iterator[Any]:
        with contextlib.ExitStack() as stack:
            values = [stack.enter_context(factory(name)) for factory in factories]
            yield next((v for v in reversed(values) if v is not None), None)

    return ranges
