"""Parse JSON and YAML documents the one way this package does it, and check their shape.

Root causes guarded against:

* YAML aliases: a few hundred bytes of nested ``*alias`` references expand into billions of
  objects once anything walks the result (a "billion laughs" bomb: 39 s and 3 GB before). No input
  of this tool needs aliases, so a document whose node graph shares a node (what an alias makes)
  is refused before any Python object is built. Nesting deeper than :data:`MAX_DEPTH` is refused too.
* ``NaN`` / ``Infinity`` in JSON (Python accepts them, JSON does not): refused at parse time.
* Wrong shapes (a list where a mapping belongs, a mapping key that is a number): one
  :class:`UserError` naming the file, the field and what was expected (:func:`expect_mapping`).

Every hand-written file (hardware, workload, calibration YAML; model config.json) and every file
read back (reports, metrics) goes through :func:`load_document` or :func:`parse_document`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from llm_perf_opt.errors import UserError
from llm_perf_opt.io.files import MAX_SPEC_BYTES, read_text

MAX_DEPTH = 64
"""Deepest nesting of mappings and lists accepted in any document (our deepest files use ~8)."""
JSON_SUFFIXES = (".json",)
YAML_SUFFIXES = (".yaml", ".yml")

_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml is ~4x faster when present


class _ShapeError(Exception):
    """Raised inside the loader; turned into a UserError naming the file."""


def _check_graph(root: yaml.Node) -> None:
    """Refuse a node graph with a shared node (an alias) or nesting deeper than MAX_DEPTH."""
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, int]] = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        if id(node) in seen:
            raise _ShapeError(f"uses a YAML alias (*name) at line {node.start_mark.line + 1}; aliases are not accepted")
        seen.add(id(node))
        if depth >= MAX_DEPTH:
            raise _ShapeError(f"nests deeper than {MAX_DEPTH} levels at line {node.start_mark.line + 1}")
        if isinstance(node, yaml.SequenceNode):
            stack.extend((child, depth + 1) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack.append((key, depth + 1))
                stack.append((value, depth + 1))


class _NoAliasLoader(_Base):  # type: ignore[misc,valid-type]
    """Safe loader that checks the composed node graph before constructing anything."""

    def construct_document(self, node: yaml.Node) -> Any:
        _check_graph(node)
        return super().construct_document(node)


def _refuse_constant(name: str) -> Any:
    raise _ShapeError(f"holds {name}, which is not a JSON number")


def _yaml_problem(exc: yaml.YAMLError) -> str:
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    mark = getattr(exc, "problem_mark", None)
    if mark is not None:
        return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"
    return str(problem)


def parse_json(text: str, source: str) -> Any:
    """JSON text → Python data; invalid JSON, NaN/Infinity or too deep nesting is one UserError."""
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise UserError(f"{source}: not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except _ShapeError as exc:
        raise UserError(f"{source}: {exc}") from None
    except RecursionError:
        raise UserError(f"{source}: nests too deeply to be one of this tool's files") from None
    _check_depth(data, source)
    return data


def _check_depth(data: Any, source: str) -> None:
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth >= MAX_DEPTH:
                raise UserError(f"{source}: nests deeper than {MAX_DEPTH} levels")
            stack.extend((v, depth + 1) for v in (value.values() if isinstance(value, dict) else value))


def parse_yaml(text: str, source: str) -> Any:
    """YAML text → Python data with the safe loader; aliases, bad YAML or deep nesting is one UserError."""
    try:
        return yaml.load(text, Loader=_NoAliasLoader)
    except _ShapeError as exc:
        raise UserError(f"{source}: {exc}") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{source}: not valid YAML: {_yaml_problem(exc)}") from None
    except RecursionError:
        raise UserError(f"{source}: nests too deeply to be one of this tool's files") from None


def parse_document(text: str, source: str, *, kind: str = "yaml") -> Any:
    """Parse ``text`` as ``kind`` (``json`` or ``yaml``)."""
    return parse_json(text, source) if kind == "json" else parse_yaml(text, source)


def document_kind(path: str | Path, *, default: str | None = None) -> str:
    """``json`` or ``yaml`` from the suffix; other suffixes are a UserError unless ``default`` is given."""
    suffix = Path(path).suffix.lower()
    if suffix in JSON_SUFFIXES:
        return "json"
    if suffix in YAML_SUFFIXES:
        return "yaml"
    if default is not None:
        return default
    raise UserError(f"{path}: unknown file type {Path(path).suffix or '(none)'!r}; use .json, .yaml or .yml")


def load_document(path: str | Path, what: str, *, max_bytes: int = MAX_SPEC_BYTES, kind: str | None = None) -> Any:
    """Read (regular file, size-capped, UTF-8) and parse a JSON or YAML file; ``kind`` defaults by suffix
    (YAML, a superset of JSON, for unknown suffixes)."""
    text = read_text(path, what, max_bytes=max_bytes)
    return parse_document(text, f"{what} {path}", kind=kind or document_kind(path, default="yaml"))


def type_name(value: Any) -> str:
    """How a parsed value's type reads in an error message."""
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", type(None): "nothing (null)"}.get(
        type(value), f"a {type(value).__name__}"
    )


def expect_mapping(value: Any, source: str, field: str, expected: str = "a mapping of fields") -> dict[str, Any]:
    """``value`` if it is a mapping with string keys; otherwise a UserError naming source, field, expectation."""
    if not isinstance(value, dict):
        raise UserError(f"{source}: field {field} must be {expected}, got {type_name(value)}")
    bad = [k for k in value if not isinstance(k, str)]
    if bad:
        raise UserError(f"{source}: field {field} must be {expected} with text keys, got key {bad[0]!r}")
    return value


def field_mapping(data: Any, allowed: Iterable[str], kind: str, source: str) -> dict[str, Any]:
    """``data`` as a dict of known field names; anything else is one UserError naming ``source``."""
    data = expect_mapping(data, source, "(top level)", f"a mapping of {kind} fields")
    allowed = tuple(allowed)
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise UserError(f"{source}: unknown {kind} field(s) {', '.join(unknown)}; valid: {', '.join(allowed)}")
    return dict(data)
