"""The ``llm-perf-opt`` command line: a thin click group that parses and delegates.

Each subcommand lives in its own module and calls library functions; library code never prints.
A :class:`~llm_perf_opt.errors.UserError` becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from llm_perf_opt import __version__
from llm_perf_opt.errors import UserError


class _Group(click.Group):
    """Turns user errors raised anywhere below into one line and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UserError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="llm-perf-opt")
def cli() -> None:
    """Where the time, FLOPs and memory of DeepSeek-OCR inference go.

    \b
      analyze   analytic model: FLOPs, bytes, memory and roofline time per module and stage (no GPU)
      profile   measure stages and operators of the runnable model on a GPU (or CPU)
      what-if   recompute an analytic report for other GPUs, resolutions, token budgets, batches
    """


def _register() -> None:
    # Imported here so `llm-perf-opt --help` and `analyze` never import torch.
    from llm_perf_opt.cli.analyze import analyze
    from llm_perf_opt.cli.profile import profile
    from llm_perf_opt.cli.what_if import what_if

    cli.add_command(analyze)
    cli.add_command(profile)
    cli.add_command(what_if)


_register()


def main() -> None:
    cli(prog_name="llm-perf-opt")
