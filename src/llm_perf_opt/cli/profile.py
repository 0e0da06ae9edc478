"""``llm-perf-opt profile`` (not available yet: built in its own issue)."""

from __future__ import annotations

import click

from llm_perf_opt.errors import UserError


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def profile(args: tuple[str, ...]) -> None:
    """Stage-1 profiling of the runnable model (not available yet)."""
    raise UserError("'profile' is not available yet in this version")
