"""The scenario grid: fixed overrides (``--set``) times the cartesian product of the sweeps.

The first swept key varies slowest, the last fastest (``itertools.product`` order), so rows of a
``--sweep hardware=… --sweep batch_size=…`` grid come grouped by device.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import Any

from attrs import frozen

from llm_perf_opt.errors import UserError
from llm_perf_opt.whatif.overrides import display_value, parse_value, split_assignment

MAX_SCENARIOS = 100_000
"""Largest grid evaluated in one call (a typo such as 1..100000 should fail fast, not run for minutes)."""


@frozen(kw_only=True)
class Scenario:
    """One point of the grid: parsed values of every fixed and swept key, in key order."""

    index: int
    values: dict[str, Any]

    def display(self) -> dict[str, Any]:
        """Key → value as shown in tables and files (hardware id, ``WxH`` pages)."""
        return {k: display_value(v) for k, v in self.values.items()}

    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.display().items()) or "report"


def split_sweep_values(key: str, text: str) -> list[str]:
    """``'1,2,4'`` → ['1', '2', '4']; an empty item is a UserError naming the key."""
    items = [item.strip() for item in text.split(",")]
    if not text.strip() or any(not item for item in items):
        raise UserError(f"--sweep {key}={text!r} needs comma-separated values, e.g. {key}=V1,V2")
    return items


def parse_cli_sets(texts: Iterable[str]) -> dict[str, str]:
    """``--set KEY=VALUE`` options → {key: text}; a repeated key is a UserError."""
    out: dict[str, str] = {}
    for text in texts:
        key, value = split_assignment(text, "--set")
        if key in out:
            raise UserError(f"--set {key} given twice ({out[key]!r} and {value!r})")
        out[key] = value
    return out


def parse_cli_sweeps(texts: Iterable[str]) -> dict[str, list[str]]:
    """``--sweep KEY=V1,V2`` options → {key: [texts]}; a repeated key is a UserError."""
    out: dict[str, list[str]] = {}
    for text in texts:
        key, value = split_assignment(text, "--sweep")
        if key in out:
            raise UserError(f"--sweep {key} given twice; list every value in one --sweep {key}=V1,V2,…")
        out[key] = split_sweep_values(key, value)
    return out


def sweep_values(key: str, values: Any) -> list[Any]:
    """The values of one sweep: a list (any iterable) or the command-line text ``'V1,V2,…'``."""
    if isinstance(values, str):
        return split_sweep_values(key, values)
    if isinstance(values, Iterable) and not isinstance(values, Mapping):
        out = list(values)
        if not out:
            raise UserError(f"sweep {key} has no values")
        return out
    raise UserError(f"sweep {key} must be a list of values or 'V1,V2,…', got {values!r}")


def build_grid(
    overrides: Mapping[str, Any] | None = None, sweeps: Mapping[str, Any] | None = None
) -> list[Scenario]:
    """Every scenario: ``overrides`` in each, one value of every swept key per scenario.

    Keys and values are validated here (unknown key, bad value, a key both fixed and swept, a grid
    larger than :data:`MAX_SCENARIOS`), before anything is computed.
    """
    fixed = {key: parse_value(key, raw) for key, raw in (overrides or {}).items()}
    swept: dict[str, list[Any]] = {}
    for key, values in (sweeps or {}).items():
        if key in fixed:
            raise UserError(f"key {key} is both set and swept; use one of --set {key}=… or --sweep {key}=…")
        swept[key] = [parse_value(key, raw) for raw in sweep_values(key, values)]
    size = 1
    for values in swept.values():
        size *= len(values)
    if size > MAX_SCENARIOS:
        shape = " x ".join(f"{len(v)} {k}" for k, v in swept.items())
        raise UserError(f"the sweep grid has {size} scenarios ({shape}); at most {MAX_SCENARIOS} are allowed")
    keys = list(swept)
    return [
        Scenario(index=i, values={**fixed, **dict(zip(keys, combo, strict=True))})
        for i, combo in enumerate(itertools.product(*swept.values()))
    ]
