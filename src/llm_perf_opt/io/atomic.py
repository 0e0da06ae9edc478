"""Atomic single-file writes: a reader never sees half a file.

The one implementation of "write to a temporary file beside the target, flush, rename into place"
in this package (it was written four ways before). Whole artifact *sets* use
:class:`llm_perf_opt.io.artifact_set.ArtifactSet`, which stages a directory the same way.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml


def default_file_mode() -> int:
    """0666 minus the umask (mkstemp creates files 0600; artifacts should be readable as usual)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block succeeds it is renamed onto ``path``.

    For writers that need a file name (e.g. torch.profiler's trace export). On any exception,
    Ctrl-C included, the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name[:64]}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename); returns ``path``."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """UTF-8 text, atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, data: Any) -> Path:
    """Indented JSON (NaN and infinities refused: they are not JSON), atomically."""
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False, allow_nan=False) + "\n")


def atomic_write_yaml(path: str | Path, data: Any) -> Path:
    """Safe-dumped YAML in field order, atomically."""
    return atomic_write_text(path, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
