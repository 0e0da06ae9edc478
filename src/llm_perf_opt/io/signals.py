"""Treat SIGTERM (``kill``, a batch scheduler's stop, ``timeout``) exactly like Ctrl-C.

Root cause: only SIGINT raised ``KeyboardInterrupt``; SIGTERM killed the process wherever it was,
so none of the interruption handling (incomplete artifacts, staging cleanup, lock release) ran.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType


class Terminated(KeyboardInterrupt):
    """SIGTERM, delivered as a KeyboardInterrupt so every Ctrl-C handler also handles it."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated(f"signal {signal.Signals(signum).name}")


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block SIGTERM raises :class:`Terminated`; the previous handler is restored after.

    Signal handlers can only be set from the main thread; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Defer SIGINT and SIGTERM during a short critical section (taking a lock, renaming a set into
    place, cleaning up); one that arrives meanwhile is handled, as before, right after it.

    Done with Python-level handlers, not ``pthread_sigmask``: a mask only covers the calling thread,
    and the kernel hands a process-directed signal to any thread that does not block it (torch
    starts several), whose delivery then raises in the main thread anyway.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []

    def defer(signum: int, frame: FrameType | None) -> None:
        pending.append(signum)

    previous = {sig: signal.signal(sig, defer) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if pending:
            handler = previous[signal.Signals(pending[0])]
            if callable(handler):
                handler(pending[0], None)  # e.g. raises KeyboardInterrupt / Terminated
            elif handler == signal.SIG_DFL:
                os.kill(os.getpid(), pending[0])


def interruption_name(exc: BaseException) -> str:
    """'SIGTERM' or 'Ctrl-C' for messages and incomplete-run reasons."""
    return "SIGTERM" if isinstance(exc, Terminated) else "Ctrl-C"
