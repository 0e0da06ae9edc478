"""An exclusive, non-blocking lock on an output directory, held for the whole run.

The lock is ``flock`` on ``.<name>.lock`` beside the directory (the directory itself is replaced
when a run commits, so it cannot hold the lock). The kernel drops the lock when the process dies,
so a killed run never blocks the next one; the file is removed on release.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
from pathlib import Path

from llm_perf_opt.errors import UserError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]


def describe_os_error(exc: OSError) -> str:
    """``strerror`` of an OSError (e.g. 'No space left on device'), or its first line."""
    return exc.strerror or str(exc).splitlines()[0]


def sibling_name(target: Path, suffix: str) -> str:
    """Hidden sibling name for ``target``; long names are shortened (plus a hash) to stay under NAME_MAX."""
    name = target.name
    if len(name) > 80:
        name = name[:60] + "-" + hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    return f".{name}.{suffix}"


class DirectoryLock:
    """``acquire()`` or one UserError naming the directory and the holder's pid."""

    def __init__(self, target: Path, *, option: str = "--output-dir") -> None:
        self.target = target
        self.option = option
        self.path = target.parent / sibling_name(target, "lock")
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        if self._fd is not None or fcntl is None:
            return
        for _ in range(5):  # the file can be unlinked by its last holder between our open and flock
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
            except OSError as exc:
                problem = describe_os_error(exc)
                raise UserError(f"{self.option} {self.target}: cannot create lock file: {problem}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                holder = _read_holder(fd)
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise UserError(
                        f"{self.option} {self.target} is in use by another llm-perf-opt run{holder}; "
                        "wait for it to finish or choose another directory"
                    ) from None
                raise UserError(f"{self.option} {self.target}: cannot lock: {describe_os_error(exc)}") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                self._fd = fd
                return
            os.close(fd)
        raise UserError(f"{self.option} {self.target}: could not take the lock (it kept changing)")

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)  # while still holding it: see acquire's inode check
        os.close(self._fd)
        self._fd = None


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return f" (pid {text})" if text.isdigit() else ""
