"""Read user-named files safely: regular files only, size-capped, UTF-8, one clear error each.

Root cause this guards against: ``Path.read_text`` on whatever the user names. ``/dev/zero`` reads
until memory runs out, a FIFO blocks forever, a directory or a 10 GB file fails late or never.
Here a file is opened without blocking, checked to be a regular file with ``fstat`` (so the check
and the read see the same inode), and read only up to a cap chosen per kind of file.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from llm_perf_opt.errors import UserError

MiB = 1024 * 1024
MAX_SPEC_BYTES = 4 * MiB
"""Cap for hand-written inputs: model config.json, workload / hardware / calibration YAML, image lists."""
MAX_REPORT_BYTES = 256 * MiB
"""Cap for files this tool wrote and reads back (an analytic report is ~0.3 MB, profile metrics a few MB)."""


def _label(what: str, path: str | Path) -> str:
    return f"{what} {path}".strip()


def _describe(error: OSError) -> str:
    return error.strerror or str(error).splitlines()[0]


def read_bytes(path: str | Path, what: str, *, max_bytes: int = MAX_SPEC_BYTES) -> bytes:
    """The bytes of the regular file ``path``; anything else is one :class:`UserError` naming it.

    ``what`` names the input in the message (e.g. ``"hardware file"``). Devices, FIFOs, sockets and
    directories are refused before anything is read; files over ``max_bytes`` are refused by size
    (and a file that grows while read stops at the cap, so memory stays bounded).
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise UserError(f"{_label(what, path)}: does not exist") from None
    except OSError as exc:
        raise UserError(f"{_label(what, path)}: cannot open: {_describe(exc)}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
            raise UserError(f"{_label(what, path)}: is {kind}; give the path of a regular file")
        if info.st_size > max_bytes:
            raise UserError(f"{_label(what, path)}: {info.st_size:,} bytes, over the limit of {max_bytes:,} bytes")
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = os.read(fd, min(MiB, max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > max_bytes:
                raise UserError(f"{_label(what, path)}: over the limit of {max_bytes:,} bytes")
        return b"".join(chunks)
    except OSError as exc:
        raise UserError(f"{_label(what, path)}: cannot read: {_describe(exc)}") from None
    finally:
        os.close(fd)


def read_text(path: str | Path, what: str, *, max_bytes: int = MAX_SPEC_BYTES) -> str:
    """:func:`read_bytes` decoded as UTF-8 (a BOM is accepted); bad bytes are a UserError with the offset."""
    data = read_bytes(path, what, max_bytes=max_bytes)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"{_label(what, path)}: cannot read: not UTF-8 text (bad byte at offset {exc.start})") from None
