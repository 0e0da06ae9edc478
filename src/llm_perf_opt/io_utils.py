"""Compatibility names for :mod:`llm_perf_opt.io` (the one implementation of safe reads and atomic writes)."""

from __future__ import annotations

from typing import Any

from llm_perf_opt.io.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text, atomic_write_yaml
from llm_perf_opt.io.documents import field_mapping, load_document

__all__ = [
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "atomic_write_yaml",
    "field_mapping",
    "read_yaml_file",
]


def read_yaml_file(ref: str, kind: str) -> Any:
    """Parse the YAML file ``ref`` (regular file, size-capped, no aliases); errors name the file."""
    return load_document(ref, f"{kind} file", kind="yaml")
