"""The profiled decode window: which decode steps of one generate call the operator pass keeps.

A zero-length marker range is opened after every token (``on_token``, or forward pre-hooks for a
generate without it); the marker after token ``skip`` opens the window, so the first decode steps
(allocator growth, first use of kernels for a new cache shape) stay out of the tables.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from attrs import define
from torch.profiler import record_function

TOKEN_MARK = "llm_perf_opt::token#"
"""Name prefix of the zero-length marker range opened after token ``i`` (``…#i``) in a profiled call."""
SKIP_DECODE_STEPS = 3
"""Decode steps left out at the start of the window: the first steps after prefill can carry
one-time work (allocator growth, first use of a kernel for the new cache shape)."""

@define(kw_only=True)
class StepWindow:
    """The profiled window of one generate call: prefill plus decode steps ``skip+1 … skip+steps``.

    ``on_token`` (the generate callback) drops a zero-length marker range after each token; the
    marker of token ``skip`` opens the decode window. ``produced`` is filled in after the call.
    """

    skip: int
    steps: int
    produced: int | None = None

    @classmethod
    def plan(cls, max_new_tokens: int, decode_steps: int) -> StepWindow:
        """``decode_steps`` steps after :data:`SKIP_DECODE_STEPS`, or all of a short generation."""
        total = max(max_new_tokens - 1, 0)
        steps = min(decode_steps, total)
        return cls(skip=min(SKIP_DECODE_STEPS, total - steps), steps=steps)

    @property
    def new_tokens(self) -> int:
        """Tokens the profiled call generates: the prefill token, ``skip`` and ``steps`` decode steps."""
        return 1 + self.skip + self.steps

    @property
    def window_steps(self) -> int:
        """Decode steps actually inside the window (fewer when EOS ended the call early)."""
        produced = self.new_tokens if self.produced is None else self.produced
        return max(produced - 1 - self.skip, 0)

    def on_token(self, step_index: int, ids: object = None) -> None:
        with record_function(f"{TOKEN_MARK}{step_index}"):
            pass

    def describe(self, run_tokens: int) -> str:
        first = self.skip + 1
        return (
            f"prefill (vision included) + decode steps {first}–{self.skip + self.window_steps} "
            f"of {max(run_tokens - 1, 0)} (K = {self.window_steps}, first {self.skip} left out)"
        )


@contextlib.contextmanager
def forward_token_marks(module: torch.nn.Module, window: StepWindow) -> Iterator[None]:
    """Markers from forward calls, for a generate without ``on_token``: the model's forward call
    ``c`` ≥ 1 is decode step ``c``, which starts right after token ``c − 1``."""
    calls = [0]

    def hook(_module: torch.nn.Module, _args: object) -> None:
        if calls[0] >= 1:
            window.on_token(calls[0] - 1)
        calls[0] += 1

    handle = module.register_forward_pre_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def window_start_us(events: Iterable[Any], skip: int) -> float | None:
    """Start (µs, profiler clock) of the marker after token ``skip``: where the decode window opens."""
    name = f"{TOKEN_MARK}{skip}"
    return next((float(ev.time_range.start) for ev in events if str(ev.name) == name), None)
