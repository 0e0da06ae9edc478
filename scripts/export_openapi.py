#!/usr/bin/env python3
"""Write the OpenAPI 3.1 document of llm_perf_opt.contracts to its committed location.

Usage:
    python scripts/export_openapi.py            # (re)write specs/001-deepseek-ocr-modelmeter/contracts/openapi.yaml
    python scripts/export_openapi.py --check    # exit 1 if the committed file is out of date
    python scripts/export_openapi.py --output other.yaml
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from llm_perf_opt.contracts.openapi import OPENAPI_RELPATH, render_openapi_yaml
from llm_perf_opt.io_utils import atomic_write_text

REPO_ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--output", type=Path, default=REPO_ROOT / OPENAPI_RELPATH, help="file to write")
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when the file differs")
    args = parser.parse_args(argv)
    text = render_openapi_yaml()
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.is_file() else None
        if current != text:
            print(f"{args.output} is out of date; run: python scripts/export_openapi.py", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date")
        return 0
    atomic_write_text(args.output, text)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
