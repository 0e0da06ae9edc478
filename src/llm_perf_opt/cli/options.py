"""Click options derived from attrs fields declared with :func:`llm_perf_opt.contracts.profile_config.option`.

The attrs class stays the one declaration of an option (default, help, choices); this module only
translates a field into ``click.option``: bool → flag (``--x/--no-x`` when it defaults to True),
``tuple[str, ...]`` → repeatable, ``Path`` → ``click.Path``, ``choices`` → ``click.Choice``.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import attrs
import click

from llm_perf_opt.contracts.profile_config import field_default

F = TypeVar("F", bound=Callable[..., Any])


def _base_type(tp: Any) -> Any:
    """``int | None`` → int; other annotations unchanged."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if type(None) in typing.get_args(tp) and len(args) == 1:
        return args[0]
    return tp


def _click_option(fld: attrs.Attribute[Any], tp: Any) -> Callable[[F], F]:
    meta = fld.metadata
    name = fld.name
    flags = list(meta.get("flags") or ())
    base = _base_type(tp)
    default = field_default(fld)
    kwargs: dict[str, Any] = {"help": meta["help"], "default": default}
    if meta.get("metavar"):
        kwargs["metavar"] = meta["metavar"]
    if base is bool:
        if not flags:
            dashed = name.replace("_", "-")
            flags = [f"--{dashed}/--no-{dashed}"] if default else [f"--{dashed}"]
        if not default and "/" not in flags[0]:
            kwargs["is_flag"] = True
    else:
        flags = flags or ["--" + name.replace("_", "-")]
        if typing.get_origin(base) is tuple:
            kwargs["multiple"] = True
        elif meta.get("choices"):
            kwargs["type"] = click.Choice(list(meta["choices"]))
        elif base is Path:
            kwargs["type"] = click.Path(path_type=Path, file_okay=False)
        elif base in (int, float):
            kwargs["type"] = base
    if default is None:
        kwargs["show_default"] = False
    return click.option(*flags, name, **kwargs)


def options_from(cls: type, *, exclude: tuple[str, ...] = ()) -> Callable[[F], F]:
    """Decorator adding one click option per field of ``cls`` (in declaration order)."""
    hints = typing.get_type_hints(cls)
    decorators = [
        _click_option(fld, hints[fld.name])
        for fld in attrs.fields(cls)
        if fld.metadata.get("cli", True) and fld.name not in exclude
    ]

    def apply(func: F) -> F:
        for decorator in reversed(decorators):
            func = decorator(func)
        return func

    return apply


def config_kwargs(cls: type, params: dict[str, Any]) -> dict[str, Any]:
    """The subset of parsed click parameters that are fields of ``cls``."""
    names = {fld.name for fld in attrs.fields(cls)}
    return {key: value for key, value in params.items() if key in names}
