"""What the GPU scripts (``gpu_model_e2e``, ``bench_decode_vs_transformers``) share.

Importing this module puts the repository's ``src`` on ``sys.path``, so the scripts run as
``python3 scripts/X.py`` without installing the package (Python puts ``scripts/`` itself on the
path, which is how they find this module). Then: the dtype table, timestamped logging, strict-JSON
output, the environment record, and the guarded body of ``main`` that always writes the JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

_SRC = Path(__file__).resolve().parent.parent / "src"
if _SRC.is_dir() and str(_SRC) not in sys.path:
    sys.path.insert(0, str(_SRC))

DTYPES: dict[str, torch.dtype] = {
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
    "fp16": torch.float16,
    "float16": torch.float16,
    "fp32": torch.float32,
    "float32": torch.float32,
}
GIB = 2**30
_T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - _T0:7.1f}s] {msg}", flush=True)


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def clean_json(value: Any) -> Any:
    """NaN/inf → None, tuples → lists, torch dtypes → their names, anything exotic → str (strict JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_json(v) for v in value]
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, torch.dtype):
        return dtype_name(value)
    return str(value)


def write_json(path: str | None, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` (if given) through a temporary file, so a reader never sees half a file."""
    if not path:
        return
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps(clean_json(data), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    tmp.replace(out)
    log(f"wrote {out}")


def environment(device: torch.device) -> dict[str, Any]:
    """Versions and the device, for the JSON; logged, so a console log alone says what ran where."""
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "device": str(device),
    }
    try:
        import transformers

        env["transformers"] = transformers.__version__
    except Exception as exc:  # missing or broken install: report, do not fail
        env["transformers"] = f"unavailable: {exc}"
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env["gpu_name"] = torch.cuda.get_device_name(device)
        env["gpu_capability"] = f"{props.major}.{props.minor}"
        env["gpu_memory_bytes"] = int(props.total_memory)
        env["gpu_sms"] = int(props.multi_processor_count)
    else:
        env["cpu_threads"] = torch.get_num_threads()
    log(
        f"python {env['python']}, torch {env['torch']} (CUDA {env['torch_cuda']}, cuDNN {env['cudnn']}), "
        f"transformers {env['transformers']}"
    )
    log(
        f"device: {env.get('gpu_name', device)}"
        + (
            f" (sm {env['gpu_capability']}, {env['gpu_sms']} SMs, {env['gpu_memory_bytes'] / GIB:.1f} GiB)"
            if device.type == "cuda"
            else ""
        )
    )
    return env


def default_device(requested: str | None) -> str:
    """``--device`` as given, else cuda when available, else cpu."""
    if requested is not None:
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"


def run_guarded(args: argparse.Namespace, result: dict[str, Any], body: Callable[[], int]) -> int:
    """``body()``'s exit code, its outcome in ``result["status"]`` (ok, check_failed, or error with the
    traceback), and ``result`` written to ``args.out`` whatever happens, so a crash keeps what finished."""
    code = 0
    threads = torch.get_num_threads()
    if args.smoke:  # tiny tensors: one thread avoids OpenMP oversubscription on busy CPU boxes
        torch.set_num_threads(1)
    try:
        code = body()
        result["status"] = "ok" if code == 0 else "check_failed"
    except Exception as exc:
        result["status"] = "error"
        result["error"] = f"{type(exc).__name__}: {exc}"
        result["traceback"] = traceback.format_exc()
        traceback.print_exc()
        code = 1
    finally:
        torch.set_num_threads(threads)
        write_json(args.out, result)
    return code
