"""Launch versus kernels in a graphed stage's range: the projector at a run's shapes; one JSON row per case.

Why: in graph execution the projector's range is a graph of 2–4 kernels (15–120 µs). The H200
validation measured the same projector work 4–27% apart in separate processes, while each process
repeated itself within 2%. This separates what such a range holds, for one captured projector graph
per buffer placement (a pad allocated first moves every buffer):

- ``range``: the stage clock's way (synchronize, event, replay, event, synchronize): launch + kernels;
- ``in_graph``: timing events captured as the graph's first and last nodes: the GPU's own span;
- ``stream``: replays back to back with no synchronize, per replay: throughput, launch hidden;
- ``cat`` and ``linear``: each of the stage's two kernels alone, back to back (summed over the view sides),
  so the analytic model's concat and matmul can be checked one by one.

    python benchmarks/bench_stage_launch.py --cases base:1 gundam:1 gundam:8 --pads-mib 0 1 3 9
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch

from llm_perf_opt.models.deepseek_ocr.projector import MlpProjector, fuse_features

VIEWS = {
    # workload → {view side: (views per page, SAM grid side)}: gundam-a4's 2 × 3 tiles of 640 plus one 1024 view.
    "tiny": {512: (1, 8)},
    "base": {1024: (1, 16)},
    "large": {1280: (1, 20)},
    "gundam": {640: (6, 10), 1024: (1, 16)},
}
SAM_CHANNELS, CLIP_WIDTH, HIDDEN = 1024, 1024, 1280


def _inputs(case: str, batch: int, device: torch.device) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    out = {}
    for side, (views, grid) in VIEWS[case].items():
        n = views * batch
        sam = torch.randn(n, SAM_CHANNELS, grid, grid, device=device, dtype=torch.bfloat16)
        clip = torch.randn(n, grid * grid + 1, CLIP_WIDTH, device=device, dtype=torch.bfloat16)
        out[side] = (sam, clip)
    return out


def _ms(begin: torch.cuda.Event, end: torch.cuda.Event) -> float:
    return float(begin.elapsed_time(end))


def _kernels_us(
    projector: torch.nn.Module, inputs: dict[int, tuple[torch.Tensor, torch.Tensor]], repeats: int, device: torch.device
) -> tuple[float, float]:
    """GPU µs of the concat and of the linear alone, each run ``repeats`` times back to back, summed over sides."""
    fused = {side: fuse_features(clip, sam) for side, (sam, clip) in inputs.items()}
    out = []
    for work in (
        lambda: [fuse_features(clip, sam) for sam, clip in inputs.values()],
        lambda: [projector(x) for x in fused.values()],
    ):
        work()
        begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize(device)
        begin.record()
        for _ in range(repeats):
            work()
        end.record()
        torch.cuda.synchronize(device)
        out.append(1e3 * _ms(begin, end) / repeats)
    return out[0], out[1]


def measure(case: str, batch: int, pad_mib: float, repeats: int, device: torch.device) -> dict[str, object]:
    pad = torch.empty(int(pad_mib * 2**20), dtype=torch.uint8, device=device)  # moves what follows
    projector = MlpProjector(SAM_CHANNELS + CLIP_WIDTH, HIDDEN).to(device=device, dtype=torch.bfloat16).eval()
    inputs = _inputs(case, batch, device)
    outputs: dict[int, torch.Tensor] = {}

    def stage() -> None:
        for side, (sam, clip) in inputs.items():
            outputs[side] = projector(fuse_features(clip, sam))

    first = torch.cuda.Event(enable_timing=True, external=True)
    last = torch.cuda.Event(enable_timing=True, external=True)
    with torch.inference_mode():
        side_stream = torch.cuda.Stream(device)
        side_stream.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side_stream):
            for _ in range(3):
                stage()
        torch.cuda.current_stream(device).wait_stream(side_stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            first.record()
            stage()
            last.record()
        torch.cuda.synchronize(device)
        for _ in range(10):
            graph.replay()
        range_ms, in_graph_ms = [], []
        for _ in range(repeats):
            begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize(device)
            begin.record()
            graph.replay()
            end.record()
            torch.cuda.synchronize(device)
            range_ms.append(_ms(begin, end))
            in_graph_ms.append(_ms(first, last))
        begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        begin.record()
        for _ in range(repeats):
            graph.replay()
        end.record()
        torch.cuda.synchronize(device)
        cat_us, linear_us = _kernels_us(projector, inputs, repeats, device)
    del pad
    return {
        "case": case,
        "batch": batch,
        "pad_mib": pad_mib,
        "range_us": 1e3 * statistics.mean(range_ms),
        "range_std_us": 1e3 * statistics.pstdev(range_ms),
        "in_graph_us": 1e3 * statistics.mean(in_graph_ms),
        "in_graph_std_us": 1e3 * statistics.pstdev(in_graph_ms),
        "stream_us": 1e3 * _ms(begin, end) / repeats,
        "cat_us": cat_us,
        "linear_us": linear_us,
        "device": torch.cuda.get_device_name(device),
        "torch": torch.__version__,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", default=["base:1", "gundam:1", "gundam:8", "large:8"], help="WORKLOAD:BATCH")
    ap.add_argument("--pads-mib", nargs="+", type=float, default=[0, 1, 3, 9, 17])
    ap.add_argument("--repeats", type=int, default=50)
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("bench_stage_launch: needs a CUDA device (it times CUDA graph replays)")
        return 2
    device = torch.device("cuda")
    for case in args.cases:
        workload, _, batch = case.partition(":")
        for pad in args.pads_mib:
            print(json.dumps(measure(workload, int(batch or 1), pad, args.repeats, device)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
