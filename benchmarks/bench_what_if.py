"""Wall time of a 1,000-scenario `llm-perf-opt what-if` sweep, Python start-up included.

Target (issue): under 2 s on a 2-core machine. Writes one analytic report first (not timed), then
runs the real console entry in a fresh interpreter for each run, so import cost counts, with the
default table output (stdout discarded) and files written. Grids:

* planning — 5 GPUs x 2 dtypes x 10 batch sizes x 10 token budgets (200 distinct layer trees);
* worst — 100 batch sizes x 10 token budgets: every scenario a new layer tree.

Prints one line per run (wall and CPU time: the process is single-threaded, so on a busy machine
the CPU time is what an idle one would take), the median per grid, and whether torch / numpy /
matplotlib were imported.

    python benchmarks/bench_what_if.py [--runs 5] [--grid planning|worst|both]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 2.0
GRIDS = {
    "planning": [
        "--sweep", "hardware=h100-sxm,h200,b200,l40s,h20",
        "--sweep", "dtype=bf16,fp8",
        "--sweep", "batch_size=1,2,4,8,16,32,64,128,256,512",
        "--sweep", "max_new_tokens=64,128,256,384,512,768,1024,1536,2048,4096",
    ],
    "worst": [
        "--sweep", "batch_size=" + ",".join(str(b) for b in range(1, 101)),
        "--sweep", "max_new_tokens=64,128,256,384,512,768,1024,1536,2048,4096",
    ],
}


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "llm_perf_opt", *args]


def time_grid(name: str, report: Path, out: Path, runs: int) -> float:
    args = _cli("what-if", "--report", str(report), "--output-dir", str(out / name), *GRIDS[name])
    times, cpus = [], []
    for i in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
        elapsed = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        times.append(elapsed)
        cpus.append(cpu)
        print(f"{name} run {i + 1}: {elapsed:.3f} s wall, {cpu:.3f} s CPU")
    rows = sum(1 for _ in (out / name / "whatif.csv").open()) - 1
    median = statistics.median(times)
    verdict = "ok" if median < TARGET_S else "OVER"
    print(f"{name}: median {median:.3f} s wall ({statistics.median(cpus):.3f} s CPU) over {runs} runs for {rows} "
          f"scenarios (target < {TARGET_S} s wall: {verdict})")
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--grid", choices=["planning", "worst", "both"], default="both")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPU(s), Python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        subprocess.run(_cli("analyze", "--hardware", "h100-sxm", "--output-dir", str(out / "report"), "--json"),
                       check=True, stdout=subprocess.DEVNULL)
        report = out / "report" / "report.json"
        for name in (["planning", "worst"] if args.grid == "both" else [args.grid]):
            time_grid(name, report, out, args.runs)
        probe = subprocess.run(
            [sys.executable, "-c",
             "import sys; from llm_perf_opt.cli import cli; "
             f"cli(['what-if', '--report', {str(report)!r}, '--output-dir', {str(out / 'probe')!r}, "
             "'--sweep', 'batch_size=1,2'], standalone_mode=False); "
             "print('imported:', [m for m in ('torch', 'numpy', 'matplotlib') if m in sys.modules] or 'none of "
             "torch, numpy, matplotlib', file=sys.stderr)"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        print(probe.stderr.strip())


if __name__ == "__main__":
    main()
