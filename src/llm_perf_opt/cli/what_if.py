"""``llm-perf-opt what-if`` (not available yet: built in its own issue)."""

from __future__ import annotations

import click

from llm_perf_opt.errors import UserError


@click.command("what-if", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def what_if(args: tuple[str, ...]) -> None:
    """Recompute an analytic report for other settings (not available yet)."""
    raise UserError("'what-if' is not available yet in this version")
