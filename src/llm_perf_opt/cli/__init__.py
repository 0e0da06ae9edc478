"""The ``llm-perf-opt`` command line: a thin click group that parses and delegates.

Each subcommand lives in its own module and calls library functions; library code never prints.
Whatever goes wrong because of the input or the environment ends in ONE line on stderr and a
non-zero exit code, never a traceback (see :meth:`_Group.invoke`); SIGTERM is handled like Ctrl-C.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from typing import Any

import click

from llm_perf_opt import __version__
from llm_perf_opt.errors import UserError
from llm_perf_opt.io.signals import interruption_name, sigterm_as_interrupt

EXIT_ENVIRONMENT = 3
"""Exit code when the environment failed us (disk full, no permission, a missing optional package)."""

# Top-level module of an optional dependency → the extra of pyproject.toml that installs it.
_EXTRAS = {"matplotlib": "plot", "nvtx": "nvtx", "torch": "profile", "transformers": "profile",
           "safetensors": "profile", "PIL": "profile", "torchinfo": "profile", "hta": "profile",
           "scipy": "calibrate"}


def _one_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else ""


def _environment_message(exc: BaseException) -> str:
    """One line for an exception that comes from the environment, not from a bug."""
    if isinstance(exc, ImportError):
        module = (exc.name or _one_line(str(exc)) or "a package").split(".")[0]
        extra = _EXTRAS.get(module)
        hint = f"pip install 'llm-perf-opt[{extra}]'" if extra else f"pip install {module}"
        return f"this command needs the optional package {module!r}, which is not installed ({hint})"
    if isinstance(exc, OSError):
        where = f" {exc.filename}" if exc.filename else ""
        reason = exc.strerror or _one_line(str(exc)) or type(exc).__name__
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            reason += " (free some space or choose another --output-dir)"
        return f"cannot access{where}: {reason}"
    return f"{type(exc).__name__}: {_one_line(str(exc))}"


def _echo_err(line: str) -> None:
    # errors="backslashreplace" on stderr (set in main) keeps this from failing on a non-UTF-8 terminal.
    with contextlib.suppress(OSError, ValueError):
        click.echo(line, err=True)


class _Group(click.Group):
    """Turns user and environment errors raised anywhere below into one line and a non-zero exit."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with sigterm_as_interrupt():
                return super().invoke(ctx)
        except UserError as exc:
            _echo_err(f"error: {exc}")
            sys.exit(exc.exit_code)
        except KeyboardInterrupt as exc:
            _echo_err(f"interrupted ({interruption_name(exc)})")
            sys.exit(130)
        except BrokenPipeError:
            # stdout closed early (`llm-perf-opt ... | head`): nothing more to say, and nowhere to say it.
            with contextlib.suppress(OSError, ValueError):
                sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - replaces a dead stream until exit
            sys.exit(1)
        except (OSError, ImportError, UnicodeError, MemoryError) as exc:
            _echo_err(f"error: {_environment_message(exc)}")
            sys.exit(EXIT_ENVIRONMENT)

    def main(self, args: Any = None, prog_name: str | None = None, *rest: Any, **kwargs: Any) -> Any:
        """click's main, but a usage error (bad option value, unknown option) is one line too."""
        if kwargs.get("standalone_mode", True) is False:
            return super().main(args, prog_name, *rest, **kwargs)
        argv = list(sys.argv[1:] if args is None else args)
        if any("\x00" in str(a) for a in argv):  # the OS cannot take it as a path or a name
            _echo_err("error: an argument contains a NUL character")
            sys.exit(2)
        kwargs["standalone_mode"] = False
        try:
            code = super().main(argv, prog_name, *rest, **kwargs)
        except click.ClickException as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":  # bare `llm-perf-opt`: the help, as click shows it
                exc.show()
                sys.exit(exc.exit_code)
            ctx = getattr(exc, "ctx", None)  # usage errors know their command
            where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            _echo_err(f"error: {_one_line(exc.format_message())}{where}")
            sys.exit(exc.exit_code)
        except click.Abort:
            _echo_err("interrupted")
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="llm-perf-opt")
def cli() -> None:
    """Where the time, FLOPs and memory of DeepSeek-OCR inference go.

    \b
      analyze   analytic model: FLOPs, bytes, memory and roofline time per module and stage (no GPU)
      profile   measure stages and operators of the runnable model on a GPU (or CPU)
      what-if   recompute an analytic report for other GPUs, resolutions, token budgets, batches
      experiment  GPU experiments: decode-bench, validate, e2e, decode-vs-hf
    """


def _register() -> None:
    # Imported here so `llm-perf-opt --help` and `analyze` never import torch.
    from llm_perf_opt.cli.analyze import analyze
    from llm_perf_opt.cli.experiment import experiment
    from llm_perf_opt.cli.profile import profile
    from llm_perf_opt.cli.what_if import what_if

    cli.add_command(analyze)
    cli.add_command(experiment)
    cli.add_command(profile)
    cli.add_command(what_if)


_register()


def _tolerant_streams() -> None:
    """A terminal that cannot encode a character (LANG=C, latin-1) gets an escape, not a traceback."""
    for stream, errors in ((sys.stdout, "replace"), (sys.stderr, "backslashreplace")):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            with contextlib.suppress(ValueError, OSError):
                reconfigure(errors=errors)


def main() -> None:
    _tolerant_streams()
    cli(prog_name="llm-perf-opt")
