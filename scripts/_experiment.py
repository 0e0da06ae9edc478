"""Run ``llm-perf-opt experiment <name> ARGS`` from a checkout without installing the package.

The GPU scripts in this folder are thin entry points over :mod:`llm_perf_opt.experiments`; this puts
the repository's ``src`` on ``sys.path`` first (Python already has ``scripts/`` there).
"""

from __future__ import annotations

import sys
from pathlib import Path

_SRC = Path(__file__).resolve().parent.parent / "src"


def run(name: str, argv: list[str] | None = None, *, extra: tuple[str, ...] = ()) -> None:
    """``llm-perf-opt experiment NAME *extra *argv`` (argv defaults to the command line)."""
    if _SRC.is_dir() and str(_SRC) not in sys.path:
        sys.path.insert(0, str(_SRC))
    from llm_perf_opt.cli import cli

    args = sys.argv[1:] if argv is None else argv
    cli(["experiment", name, *extra, *args], prog_name=f"{Path(sys.argv[0]).name} (llm-perf-opt experiment {name})")
