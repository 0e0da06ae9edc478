"""Wall time of `llm-perf-opt analyze` with defaults, Python start-up included.

Target (issue): under 1.5 s on a 2-core machine. Runs the real console entry in a fresh
interpreter each time, so import cost counts. Prints one line per run and the median.

    python benchmarks/bench_analyze.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    times = []
    with tempfile.TemporaryDirectory() as out:
        for i in range(args.runs):
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "llm_perf_opt", "analyze", "--output-dir", out, "--json"],
                check=True, stdout=subprocess.DEVNULL,
            )
            elapsed = time.perf_counter() - start
            times.append(elapsed)
            print(f"run {i + 1}: {elapsed:.3f} s")
        probe = subprocess.run(
            [sys.executable, "-c",
             "import sys; from llm_perf_opt.cli import cli; "
             f"cli(['analyze', '--output-dir', {out!r}, '--json'], standalone_mode=False); "
             "print('torch imported' if 'torch' in sys.modules else 'torch not imported', file=sys.stderr)"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
    print(f"median {statistics.median(times):.3f} s over {len(times)} runs (target < 1.5 s); {probe.stderr.strip()}")


if __name__ == "__main__":
    main()
