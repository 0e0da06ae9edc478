"""Treat SIGTERM (``kill``, a batch scheduler's stop, ``timeout``) exactly like Ctrl-C.

Root cause: only SIGINT raised ``KeyboardInterrupt``; SIGTERM killed the process wherever it was,
so none of the interruption handling (incomplete artifacts, staging cleanup, lock release) ran.
"""

from __future__ import annotations

import contextlib
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


def interruption_name(exc: BaseException) -> str:
    """'SIGTERM' or 'Ctrl-C' for messages and incomplete-run reasons."""
    return "SIGTERM" if isinstance(exc, Terminated) else "Ctrl-C"
