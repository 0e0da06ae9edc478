"""Wall time per phase of ``llm-perf-opt profile``: load, prepare, warmup, timed, profile.

Target (issue 11): at defaults the profiling phase (torch.profiler pass) takes ≤ 0.5× the timed
phase, on CPU with the tiny model and on the GPU. Prints the phase times of each run and the ratio.

    python benchmarks/bench_profile_phases.py                       # CPU tiny, profile defaults
    python benchmarks/bench_profile_phases.py --model deepseek-ocr --device cuda:0 --mode base \\
        --max-new-tokens 256                                        # the GPU measurement

Any further ``--key value`` pair is passed to :class:`ProfileConfig` (``--profile-decode-steps 16``).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from attrs import fields

from llm_perf_opt.profiling.runner import run_profile
from llm_perf_opt.profiling.state import ProfileConfig


def _config(args: argparse.Namespace, extra: list[str], out: Path) -> ProfileConfig:
    kwargs: dict[str, object] = {"model": args.model, "device": args.device, "output_dir": out, "run_id": "bench"}
    types = {f.name: f.type for f in fields(ProfileConfig)}
    for key, value in zip(extra[::2], extra[1::2], strict=True):
        name = key.lstrip("-").replace("-", "_")
        if name not in types:
            raise SystemExit(f"bench_profile_phases: unknown ProfileConfig field {key!r}")
        kind = str(types[name])
        kwargs[name] = int(value) if "int" in kind else float(value) if "float" in kind else value
    return ProfileConfig(**kwargs)  # type: ignore[arg-type]


def main() -> None:
    # allow_abbrev=False: "--mode" is a ProfileConfig field passed through, not a prefix of "--model"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--runs", type=int, default=1, help="Whole profile runs (each prints its phases).")
    args, extra = parser.parse_known_args()
    ratios = []
    for i in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            result = run_profile(_config(args, extra, Path(tmp)))
            wall = time.perf_counter() - start
        phases = result.state.phase_seconds
        ratio = phases.get("profile", 0.0) / phases["timed"]
        ratios.append(ratio)
        text = ", ".join(f"{k} {v:.2f} s" for k, v in phases.items())
        print(f"run {i + 1}: {text}; whole run {wall:.2f} s; profile/timed = {ratio:.2f} (target ≤ 0.50)")
    if len(ratios) > 1:
        print(f"profile/timed over {len(ratios)} runs: min {min(ratios):.2f}, max {max(ratios):.2f}")


if __name__ == "__main__":
    main()
