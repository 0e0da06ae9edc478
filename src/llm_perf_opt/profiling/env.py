"""Environment capture for ``env.json`` and device resolution (``--device``, ``--dtype``)."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

import llm_perf_opt
from llm_perf_opt.errors import UserError
from llm_perf_opt.hardware.table import HardwareSpec, hardware_for_cuda_name
from llm_perf_opt.profiling.nvtx_ranges import nvtx_backend

DTYPE_NAMES: dict[str, torch.dtype] = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def resolve_device(requested: str | None) -> torch.device:
    """``None`` → ``cuda:0`` when CUDA is present, else ``cpu``; CUDA without CUDA is a UserError."""
    if requested is None or requested == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(requested)
    except (RuntimeError, ValueError):
        raise UserError(f"--device {requested!r} is not a torch device (use cuda, cuda:N or cpu)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            why = "this torch build has no CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise UserError(f"--device {requested} requested but CUDA is not available ({why}); use --device cpu")
        index = 0 if device.index is None else device.index
        if index >= torch.cuda.device_count():
            raise UserError(f"--device {requested}: only {torch.cuda.device_count()} CUDA device(s) visible")
        return torch.device("cuda", index)
    if device.type != "cpu":
        raise UserError(f"--device {requested}: only cuda and cpu are supported")
    return device


def resolve_dtype(requested: str | None, device: torch.device) -> str:
    """``None`` → bf16 on CUDA, fp32 on CPU."""
    if requested is None:
        return "bf16" if device.type == "cuda" else "fp32"
    if requested not in DTYPE_NAMES:
        raise UserError(f"--dtype {requested!r}: valid: {', '.join(DTYPE_NAMES)}")
    return requested


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def device_name(device: torch.device) -> str:
    """``torch.cuda.get_device_name`` (exact, for the hardware table), or the CPU model."""
    if device.type == "cuda":
        return str(torch.cuda.get_device_name(device))
    return _cpu_model() or platform.processor() or platform.machine() or "cpu"


def compute_capability(device: torch.device) -> str:
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        return f"{major}.{minor}"
    return ""


def detect_hardware(device: torch.device) -> HardwareSpec | None:
    """The hardware-table row for this exact CUDA device name; None on CPU or an unknown GPU."""
    if device.type != "cuda":
        return None
    return hardware_for_cuda_name(device_name(device))


def _run(cmd: list[str], cwd: Path | None = None) -> str | None:
    if shutil.which(cmd[0]) is None:
        return None
    try:
        out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def repo_root(start: Path | None = None) -> Path:
    """The git work tree holding ``start`` (default: this package), else the current directory."""
    here = start or Path(__file__).resolve().parent
    top = _run(["git", "rev-parse", "--show-toplevel"], cwd=here)
    return Path(top) if top else Path.cwd().resolve()


def git_state(root: Path) -> dict[str, Any]:
    commit = _run(["git", "rev-parse", "HEAD"], cwd=root)
    status = _run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root)
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def driver_version() -> str | None:
    out = _run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"])
    return out.splitlines()[0].strip() if out else None


def _version(module: str) -> str:
    try:
        mod = __import__(module)
    except Exception:
        return ""
    return str(getattr(mod, "__version__", ""))


def capture_environment(device: torch.device, *, seed: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything needed to reproduce a run, as a JSON-ready mapping."""
    root = repo_root()
    env: dict[str, Any] = {
        "device": str(device),
        "device_name": device_name(device),
        "compute_capability": compute_capability(device),
        "gpu_count": torch.cuda.device_count() if torch.cuda.is_available() else 0,
        "driver_version": driver_version() if device.type == "cuda" else None,
        "cuda_version": torch.version.cuda or "",
        "cudnn_version": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "torch_version": torch.__version__,
        "transformers_version": _version("transformers"),
        "python_version": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_num_threads": torch.get_num_threads(),
        "nvtx_backend": nvtx_backend(),
        "llm_perf_opt_version": llm_perf_opt.__version__,
        # Where the package was imported from: the git state below is of the current directory's
        # repository, which need not be the code that ran (an installed wheel, another checkout).
        "llm_perf_opt_location": str(Path(llm_perf_opt.__file__).resolve().parent),
        "repo_root": str(root),
        "git": git_state(root),
        "seeds": {"torch": seed, "synthetic_pages": seed},
        "argv": list(sys.argv),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env["gpu_memory_gb"] = round(props.total_memory / 1e9, 2)
        env["sm_count"] = props.multi_processor_count
    if extra:
        env.update(extra)
    return env
