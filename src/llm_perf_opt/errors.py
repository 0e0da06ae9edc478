"""Errors that mean "the user asked for something wrong", as opposed to bugs.

The CLI turns a :class:`UserError` into one line on stderr and exit code 2, never a traceback.
Library code raises it with a message that names the input and what is wrong with it.
"""

from __future__ import annotations


class UserError(Exception):
    """A bad input (unknown id, malformed file, impossible value) reported in one line."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        # One line whatever user text it quotes: a key or value holding a newline or a control
        # character is shown escaped (\n, \x1b), so the error can never span lines or drive the terminal.
        message = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(message))
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def unknown_id(kind: str, value: str, valid: list[str] | tuple[str, ...]) -> UserError:
    """The standard message for an unknown model / workload / hardware / key id."""
    return UserError(f"unknown {kind} {value!r}; valid: {', '.join(sorted(valid))}")
