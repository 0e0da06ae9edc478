"""Validators and converters shared by the contract and domain models.

Every validator here raises :class:`ValueError` (or :class:`TypeError` for a wrong type) with a
one-line message that names the field and the offending value. Validators that constrain a number
carry a ``json_schema()`` method, so the OpenAPI export (:mod:`llm_perf_opt.contracts.openapi`)
publishes the same bounds the code enforces.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterable
from typing import Any, cast

from attrs import Attribute, frozen

SHARE_MAX = 1.5
"""Upper guardrail of shares and MFU values; anything above 1 flags an estimator error."""


def to_float(value: float) -> float:
    """Attrs converter: accept an ``int`` (JSON writes 3, not 3.0) or a numpy scalar as a ``float``.

    Anything that is not a real number (bool, str, None) is passed through for the validator to reject.
    """
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and type(value) is not float:
        return float(value)
    return value


def to_opt_float(value: float | None) -> float | None:
    """:func:`to_float` for optional fields: ``None`` stays ``None``."""
    return None if value is None else to_float(value)


def _name(attr: Attribute[Any] | Any) -> str:
    return str(getattr(attr, "name", "value"))


@frozen
class Number:
    """Validator: a finite number of the declared kind within optional bounds.

    ``kind`` is ``float`` (ints are rejected here: the field's converter turns them into floats
    first) or ``int`` (bools are rejected). ``optional`` lets ``None`` through.
    """

    kind: type = float
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    optional: bool = False

    def __call__(self, _inst: object, attr: Attribute[Any] | Any, value: Any) -> None:
        name = _name(attr)
        if value is None and self.optional:
            return
        if isinstance(value, bool) or not isinstance(value, self.kind):
            raise TypeError(f"{name} must be {'an integer' if self.kind is int else 'a number'}, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value!r}")
        number = float(cast(float, value))
        if self.minimum is not None:
            if self.exclusive_minimum and number <= self.minimum:
                raise ValueError(f"{name} must be > {self.minimum:g}, got {value!r}")
            if number < self.minimum:
                raise ValueError(f"{name} must be >= {self.minimum:g}, got {value!r}")
        if self.maximum is not None and number > self.maximum:
            raise ValueError(f"{name} must be <= {self.maximum:g}, got {value!r}")

    def json_schema(self) -> dict[str, Any]:
        """OpenAPI 3.1 keywords for these bounds."""
        out: dict[str, Any] = {}
        if self.minimum is not None:
            key = "exclusiveMinimum" if self.exclusive_minimum else "minimum"
            out[key] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        return out


NON_NEGATIVE = Number(kind=float, minimum=0.0)
"""Times, FLOPs, bytes: ``>= 0``."""
POSITIVE = Number(kind=float, minimum=0.0, exclusive_minimum=True)
"""Measured elapsed times: ``> 0``."""
SHARE = Number(kind=float, minimum=0.0, maximum=SHARE_MAX)
"""Shares and MFU in ``[0, 1.5]``."""
ANY_FLOAT = Number(kind=float)
"""Any finite float."""
OPT_ANY_FLOAT = Number(kind=float, optional=True)
OPT_NON_NEGATIVE = Number(kind=float, minimum=0.0, optional=True)
OPT_SHARE = Number(kind=float, minimum=0.0, maximum=SHARE_MAX, optional=True)
COUNT = Number(kind=int, minimum=0)
"""Calls, tokens, counts: integer ``>= 0``."""
OPT_COUNT = Number(kind=int, minimum=0, optional=True)
POSITIVE_INT = Number(kind=int, minimum=1)
"""Sizes and repeats: integer ``>= 1``."""
OPT_POSITIVE_INT = Number(kind=int, minimum=1, optional=True)


@frozen
class OneOf:
    """Validator: the value is one of a fixed set of strings (a ``Literal`` enum)."""

    values: tuple[Any, ...]
    optional: bool = False

    def __call__(self, _inst: object, attr: Attribute[Any] | Any, value: Any) -> None:
        if value is None and self.optional:
            return
        if value not in self.values:
            valid = ", ".join(str(v) for v in self.values)
            raise ValueError(f"{_name(attr)} must be one of {valid}; got {value!r}")


@frozen
class Text:
    """Validator: a ``str`` (non-empty when ``nonempty``); ``optional`` lets ``None`` through."""

    nonempty: bool = False
    optional: bool = False

    def __call__(self, _inst: object, attr: Attribute[Any] | Any, value: Any) -> None:
        if value is None and self.optional:
            return
        if not isinstance(value, str):
            raise TypeError(f"{_name(attr)} must be a string, got {value!r}")
        if self.nonempty and not value.strip():
            raise ValueError(f"{_name(attr)} must not be empty")

    def json_schema(self) -> dict[str, Any]:
        return {"minLength": 1} if self.nonempty else {}


STR = Text()
ID = Text(nonempty=True)
OPT_STR = Text(optional=True)


@frozen
class AbsPath:
    """Validator: a non-empty string that is an absolute filesystem path."""

    optional: bool = False

    def __call__(self, _inst: object, attr: Attribute[Any] | Any, value: Any) -> None:
        if value is None and self.optional:
            return
        if not isinstance(value, str) or not value:
            raise TypeError(f"{_name(attr)} must be a non-empty path string, got {value!r}")
        if not os.path.isabs(value):
            raise ValueError(f"{_name(attr)} must be an absolute path, got {value!r}")

    def json_schema(self) -> dict[str, Any]:
        return {"minLength": 1}


ABS_PATH = AbsPath()
OPT_ABS_PATH = AbsPath(optional=True)


@frozen
class Boolean:
    """Validator: a real ``bool`` (not 0/1, not the string "false")."""

    def __call__(self, _inst: object, attr: Attribute[Any] | Any, value: Any) -> None:
        if not isinstance(value, bool):
            raise TypeError(f"{_name(attr)} must be true or false, got {value!r}")


BOOL = Boolean()


@frozen
class ListOf:
    """Validator: a ``list`` whose items are instances of ``item`` (and pass ``check``, if given)."""

    item: type | tuple[type, ...]
    check: Any = None
    nonempty: bool = False

    def __call__(self, inst: object, attr: Attribute[Any] | Any, value: Any) -> None:
        name = _name(attr)
        if not isinstance(value, list):
            raise TypeError(f"{name} must be a list, got {type(value).__name__}")
        if self.nonempty and not value:
            raise ValueError(f"{name} must not be empty")
        for i, item in enumerate(value):
            if isinstance(item, bool) or not isinstance(item, self.item):
                raise TypeError(f"{name}[{i}] has the wrong type: {type(item).__name__}")
            if self.check is not None:
                self.check(inst, _Indexed(f"{name}[{i}]"), item)

    def json_schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"minItems": 1} if self.nonempty else {}
        item_hints = getattr(self.check, "json_schema", None)
        if item_hints is not None and item_hints():
            out["items"] = item_hints()
        return out


@frozen
class DictOf:
    """Validator: a ``dict`` with string keys and values of ``value`` type (and passing ``check``)."""

    value: type | tuple[type, ...]
    check: Any = None
    keys: tuple[str, ...] | None = None

    def __call__(self, inst: object, attr: Attribute[Any] | Any, value: Any) -> None:
        name = _name(attr)
        if not isinstance(value, dict):
            raise TypeError(f"{name} must be a mapping, got {type(value).__name__}")
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{name} keys must be strings, got {key!r}")
            if self.keys is not None and key not in self.keys:
                raise ValueError(f"{name} key {key!r} is not one of {', '.join(self.keys)}")
            if isinstance(item, bool) or not isinstance(item, self.value):
                raise TypeError(f"{name}[{key!r}] has the wrong type: {type(item).__name__}")
            if self.check is not None:
                self.check(inst, _Indexed(f"{name}[{key!r}]"), item)

    def json_schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.keys is not None:
            out["propertyNames"] = {"enum": list(self.keys)}
        value_hints = getattr(self.check, "json_schema", None)
        if value_hints is not None and value_hints():
            out["additionalProperties"] = value_hints()
        return out


@frozen
class _Indexed:
    """A stand-in attribute so item validators name ``field[3]`` / ``field['key']``."""

    name: str


def floats_dict(value: Any) -> Any:
    """Attrs converter for ``dict[str, float]``: int values become floats, anything else is kept."""
    if isinstance(value, dict):
        return {k: to_float(v) for k, v in value.items()}
    return value


def ensure_unique(ids: Iterable[str], what: str) -> None:
    """Raise ValueError naming the first id that appears twice."""
    seen: set[str] = set()
    for item in ids:
        if item in seen:
            raise ValueError(f"duplicate {what} {item!r}")
        seen.add(item)
