"""CPU time of the `tiny` model on one page: preprocessing, vision, prefill and 8 decode steps.

Target (issue): well under a second on CPU. Prints wall and CPU seconds per mode (median of 5).

    python benchmarks/bench_tiny_model.py
"""

from __future__ import annotations

import statistics
import time

import torch
from PIL import Image, ImageDraw

from llm_perf_opt.models.deepseek_ocr import build_inputs, build_model, generate, prepare_page
from llm_perf_opt.specs.image_tokens import resolution_mode
from llm_perf_opt.specs.model_spec import TINY


def _page() -> Image.Image:
    image = Image.new("RGB", (1654, 2339), "white")
    draw = ImageDraw.Draw(image)
    for y in range(100, 2200, 40):
        draw.rectangle((120, y, 1500, y + 12), fill=(20, 20, 20))
    return image


def main() -> None:
    model = build_model(TINY, device="cpu", dtype=torch.float32, seed=0)
    image = _page()
    for mode in ("tiny", "small", "base", "gundam"):
        walls, cpus = [], []
        for i in range(6):
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            inputs = build_inputs(TINY, [prepare_page(image, resolution_mode(mode))])
            generate(model, inputs, max_new_tokens=9, min_new_tokens=9)
            if i:  # the first run is warm-up
                walls.append(time.perf_counter() - start_wall)
                cpus.append(time.process_time() - start_cpu)
        print(f"{mode:7s} tokens={inputs.prompt_len:5d}  wall {statistics.median(walls):.3f} s  "
              f"cpu {statistics.median(cpus):.3f} s  (target: well under 1 s)")


if __name__ == "__main__":
    main()
