"""The one cattrs converter of the package, and JSON / YAML file helpers built on it.

:data:`converter` is created here and every hook is registered here:

* ``datetime`` ⇄ ISO 8601 string (YAML's own timestamps are accepted too);
* ``Path`` ⇄ ``str``;
* tuples unstructure to lists (YAML's safe dumper cannot write tuples) and structure back;
* primitives are strict: a ``float`` accepts an ``int`` (JSON writes ``3``), but a string is not a
  number, a number is not a string, and ``"false"`` / ``0`` are not booleans;
* ``Literal`` values are checked against their options;
* unknown keys are rejected, so a typo in a hand-written file is reported, not ignored.

Any attrs class round-trips, including the frozen specs elsewhere in the package
(``ModelSpec``, ``Workload``, ``HardwareSpec``). Load failures of every kind (missing file,
malformed JSON/YAML, wrong shape, failed validation) raise :class:`~llm_perf_opt.errors.UserError`
with one line naming the file and the problems.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import attrs
import yaml
from cattrs import Converter, transform_error
from cattrs.errors import ForbiddenExtraKeysError

from llm_perf_opt.errors import UserError
from llm_perf_opt.io.atomic import atomic_write_text
from llm_perf_opt.io.documents import document_kind, parse_json, parse_yaml
from llm_perf_opt.io.files import MAX_REPORT_BYTES, read_text

T = TypeVar("T")

MAX_PROBLEMS = 5
"""Problems listed in one error line; the rest are counted."""


def _structure_float(value: Any, _type: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number, got {value!r}")
    return float(value)


def _structure_int(value: Any, _type: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {value!r}")
    return value


def _structure_str(value: Any, _type: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def _structure_bool(value: Any, _type: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def _structure_datetime(value: Any, _type: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected an ISO 8601 date-time string, got {value!r}")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"expected an ISO 8601 date-time string, got {value!r}") from None


def _structure_path(value: Any, _type: Any) -> Path:
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a path string, got {value!r}")
    return Path(value)


def _is_literal(tp: Any) -> bool:
    return get_origin(tp) is Literal


def _literal_hook(tp: Any) -> Callable[[Any, Any], Any]:
    options = get_args(tp)

    def structure(value: Any, _type: Any) -> Any:
        # ``in`` alone would accept True for 1 and 1 for 1.0; compare types too.
        for option in options:
            if value == option and type(value) is type(option):
                return value
        raise ValueError(f"expected one of {', '.join(repr(o) for o in options)}, got {value!r}")

    return structure


def _make_converter() -> Converter:
    conv = Converter(unstruct_collection_overrides={tuple: list}, forbid_extra_keys=True)
    conv.register_structure_hook(float, _structure_float)
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(str, _structure_str)
    conv.register_structure_hook(bool, _structure_bool)
    conv.register_structure_hook(datetime, _structure_datetime)
    conv.register_unstructure_hook(datetime, datetime.isoformat)
    conv.register_structure_hook(Path, _structure_path)
    conv.register_unstructure_hook(Path, str)
    conv.register_structure_hook_factory(_is_literal, _literal_hook)
    return conv


converter: Converter = _make_converter()
"""The package-wide converter; register new hooks in :func:`_make_converter`, nowhere else."""


def _format_exception(exc: BaseException, _type: Any) -> str:
    if isinstance(exc, KeyError):
        return "required field missing"
    if isinstance(exc, ForbiddenExtraKeysError):
        return f"unknown field(s) {', '.join(sorted(exc.extra_fields))}"
    if isinstance(exc, AttributeError) and str(exc).endswith("has no attribute 'items'"):
        return "expected a mapping"
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def describe_error(exc: BaseException) -> str:
    """Flatten a cattrs/attrs structuring failure into one line: ``problem @ $.path; ...``."""
    problems = [p.replace("\n", " ") for p in transform_error(exc, "$", _format_exception)]
    if not problems:
        return _format_exception(exc, None)
    extra = len(problems) - MAX_PROBLEMS
    line = "; ".join(problems[:MAX_PROBLEMS])
    return f"{line}; and {extra} more" if extra > 0 else line


def unstructure(obj: Any) -> Any:
    """Plain JSON/YAML-ready data (dicts, lists, str, numbers, bools, None) for ``obj``."""
    return converter.unstructure(obj)


def structure(data: Any, cls: type[T], *, source: str = "<data>") -> T:
    """Build a ``cls`` from plain data; any failure is a one-line UserError naming ``source``."""
    if attrs.has(cls) and not isinstance(data, dict):
        got = "nothing (empty document)" if data is None else type(data).__name__
        raise UserError(f"{source}: expected a mapping of {cls.__name__} fields, got {got}")
    try:
        return converter.structure(data, cls)
    except UserError as exc:
        raise UserError(f"{source}: invalid {_name(cls)}: {exc.message}") from None
    except Exception as exc:  # cattrs wraps everything raised inside in (Class)ValidationError
        raise UserError(f"{source}: invalid {_name(cls)}: {describe_error(exc)}") from None


def _name(cls: Any) -> str:
    return str(getattr(cls, "__name__", cls))


def to_json(obj: Any, *, indent: int | None = 2) -> str:
    """``obj`` as JSON text (NaN/inf are refused: they are not JSON)."""
    return json.dumps(unstructure(obj), indent=indent, allow_nan=False, ensure_ascii=False)


def from_json(text: str, cls: type[T], *, source: str = "<json>") -> T:
    """Parse JSON text into ``cls``; errors are one-line UserErrors naming ``source``."""
    return structure(parse_json(text, source), cls, source=source)


def to_yaml(obj: Any) -> str:
    """``obj`` as YAML text, fields in declaration order."""
    return yaml.safe_dump(unstructure(obj), sort_keys=False, allow_unicode=True)


def from_yaml(text: str, cls: type[T], *, source: str = "<yaml>") -> T:
    """Parse YAML text into ``cls``; errors are one-line UserErrors naming ``source``."""
    return structure(parse_yaml(text, source), cls, source=source)


def _format_of(path: Path) -> str:
    return document_kind(path)


def dump(obj: Any, path: str | Path) -> Path:
    """Write ``obj`` atomically as JSON or YAML, chosen by the suffix of ``path``; returns the path."""
    path = Path(path)
    text = to_json(obj) + "\n" if _format_of(path) == "json" else to_yaml(obj)
    return atomic_write_text(path, text)


def load(path: str | Path, cls: type[T]) -> T:
    """Read a ``cls`` from a JSON or YAML file (by suffix); every failure is a one-line UserError.

    Parsing is :mod:`llm_perf_opt.io.documents` (regular files only, size-capped, no YAML aliases)."""
    path = Path(path)
    kind = _format_of(path)
    if not path.exists():
        raise UserError(f"{path}: file does not exist")
    text = read_text(path, "", max_bytes=MAX_REPORT_BYTES)
    if kind == "json":
        return from_json(text, cls, source=str(path))
    return from_yaml(text, cls, source=str(path))
