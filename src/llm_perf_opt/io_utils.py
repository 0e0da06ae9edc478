"""Atomic file writes: a reader never sees a half-written artifact.

Every artifact goes to a temporary file in the same directory and is renamed into place, so an
interrupted run leaves either the previous file or the complete new one.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from llm_perf_opt.errors import UserError


def _default_mode() -> int:
    # mkstemp creates files 0600; artifacts should get the usual 0666 minus the umask.
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, data: Any) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False, allow_nan=False) + "\n")


def atomic_write_yaml(path: str | Path, data: Any) -> Path:
    return atomic_write_text(path, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def read_yaml_file(ref: str, kind: str) -> Any:
    """Parse the YAML file ``ref``; a missing file or bad YAML is one UserError naming the file."""
    path = Path(ref)
    if not path.is_file():
        raise UserError(f"{kind} file {ref} does not exist")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise UserError(f"{kind} file {ref} is not valid YAML: {str(exc).splitlines()[0]}") from None


def field_mapping(data: Any, allowed: Iterable[str], kind: str, source: str) -> dict[str, Any]:
    """``data`` as a dict of known field names; anything else is one UserError naming ``source``."""
    if not isinstance(data, dict):
        raise UserError(f"{source}: a {kind} must be a mapping of fields, got {type(data).__name__}")
    allowed = tuple(allowed)
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise UserError(f"{source}: unknown {kind} field(s) {', '.join(unknown)}; valid: {', '.join(allowed)}")
    return dict(data)
