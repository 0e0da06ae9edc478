"""``experiment validate``: the validation matrix of issue 9 as profile runs on one GPU, resumable.

Each matrix entry (execution mode, workload = resolution mode + page size, batch B, tokens N) is
one ``llm-perf-opt profile`` run made through :func:`~llm_perf_opt.profiling.runner.run_profile`
(timing only: no torch.profiler pass), into ``<out>/runs/<execution>/<workload>-b<B>-n<N>/``.
One model is loaded once and shared by every run. A run directory is complete as soon as its run
ends, so a killed call keeps every finished run, and the next call skips them (resume).
``plan.json`` lists every entry with its status, rewritten after each run. Once the runs are
done, :func:`~llm_perf_opt.experiments.validate_table.build_table` calibrates on ONE run per
execution mode (base, batch 1, 256 tokens, built-in pages) and predicts all the others.

The matrix (see :func:`plan`) is a subset of workloads × batches × tokens chosen to cover each axis
around the calibration point without the full product: every workload at the lowest and highest
batch; the middle batches for base and Gundam-A4; the other token budgets for four workloads at
batch 1 and two at the highest batch. Eager mode (host-bound, ~10× slower per token) gets a
smaller subset. Batch-1 entries run the three built-in synthetic pages (three samples per repeat);
batch-B entries run B synthetic pages of the entry's size in one batch.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
from attrs import define, field, frozen

from llm_perf_opt.errors import UserError
from llm_perf_opt.experiments.common import DECODE_MODES, Log, describe_error, profile_config, quiet, write_json
from llm_perf_opt.specs.workload import A4_200DPI

PLAN_FILE = "plan.json"
PAGE_WORKLOADS: dict[str, tuple[str, tuple[int, int]]] = {
    "tiny": ("tiny", A4_200DPI),
    "small": ("small", A4_200DPI),
    "base": ("base", A4_200DPI),
    "large": ("large", A4_200DPI),
    "gundam-a4": ("gundam", A4_200DPI),
    "gundam-wide": ("gundam", (2000, 1000)),
}
"""Workload id → (resolution mode, page size): A4 at 200 dpi, and a wide page (Gundam 4×2 tiles)."""
CALIBRATION_ID = "base-b1-n256"


@frozen
class Entry:
    """One profile run of the matrix."""

    execution: str
    workload: str
    batch: int
    tokens: int

    @property
    def id(self) -> str:
        return f"{self.workload}-b{self.batch}-n{self.tokens}"

    @property
    def key(self) -> str:
        return f"{self.execution}/{self.id}"

    @property
    def mode(self) -> str:
        return PAGE_WORKLOADS[self.workload][0]

    @property
    def page_size(self) -> tuple[int, int]:
        return PAGE_WORKLOADS[self.workload][1]


@define(kw_only=True)
class ValidateConfig:
    """What ``experiment validate`` runs (CLI flags map one to one)."""

    out: Path
    """Output directory: runs/, pages/, plan.json and the table files."""
    model: str = "deepseek-ocr"
    """Model spec id (random weights)."""
    device: str | None = None
    """``cuda:N`` or ``cpu``; None = CUDA when available."""
    dtype: str | None = None
    """bf16, fp16 or fp32; None = bf16 on CUDA, fp32 on CPU."""
    workloads: tuple[str, ...] = tuple(PAGE_WORKLOADS)
    """Workload ids to include (see PAGE_WORKLOADS)."""
    batches: tuple[int, ...] = (1, 4, 8)
    """Batch sizes; the lowest and highest span every workload, the others base and Gundam-A4."""
    tokens: tuple[int, ...] = (64, 256, 1024)
    """Token budgets; the calibration's is the middle one every workload runs."""
    executions: tuple[str, ...] = DECODE_MODES
    """Decode modes to measure (graph: full subset; eager: a smaller one)."""
    calibrate_on: str = CALIBRATION_ID
    """Entry id of the calibration run (same id in every execution mode)."""
    repeats: int = 2
    """Timed repeats of every batch of a run."""
    warmup: int = 1
    """Untimed warm-up passes per run (graph capture happens there)."""
    max_crops: int = 9
    """Most Gundam tiles per page."""
    budget_s: float = 540.0
    """Wall-clock budget of this call: an entry that would overrun it is left for the next call."""
    only: tuple[str, ...] = ()
    """Entry keys (``graph/base-b1-n256``) or ids to run; empty = the whole plan."""
    seed: int = 0
    """Seed of the random weights and the synthetic pages."""

    def validate(self) -> None:
        unknown = [w for w in self.workloads if w not in PAGE_WORKLOADS]
        if unknown:
            raise UserError(f"--workloads {','.join(unknown)}: valid: {', '.join(PAGE_WORKLOADS)}")
        bad = [m for m in self.executions if m not in DECODE_MODES]
        if bad or not self.executions:
            raise UserError(f"--executions {','.join(bad) or '(none)'}: valid: {', '.join(DECODE_MODES)}")
        if not self.batches or min(self.batches) < 1 or not self.tokens or min(self.tokens) < 2:
            raise UserError("--batches must be ≥ 1 and --tokens ≥ 2 (one decode step)")
        if self.repeats < 1 or self.warmup < 0 or self.budget_s <= 0:
            raise UserError("--repeats must be ≥ 1, --warmup ≥ 0 and --budget-s > 0")


def _middle(values: Sequence[int], preferred: int) -> int:
    ordered = sorted(set(values))
    return preferred if preferred in ordered else ordered[len(ordered) // 2]


def plan(cfg: ValidateConfig) -> list[Entry]:
    """The matrix entries, calibration run first in each execution mode (see the module doc)."""
    ws = [w for w in PAGE_WORKLOADS if w in cfg.workloads]
    batches, tokens = sorted(set(cfg.batches)), sorted(set(cfg.tokens))
    lo, hi = batches[0], batches[-1]
    cal_w, cal_b, cal_n = _split_id(cfg.calibrate_on)
    mid = _middle(tokens, cal_n)
    others = [n for n in tokens if n != mid]

    def pick(names: Sequence[str]) -> list[str]:
        return [w for w in ws if w in names]

    graph = [(w, b, mid) for w in ws for b in dict.fromkeys((lo, hi))]
    graph += [(w, b, mid) for b in batches[1:-1] for w in pick(("base", "gundam-a4"))]
    graph += [(w, lo, n) for n in others for w in pick(("tiny", "base", "gundam-a4", "gundam-wide"))]
    if hi != lo:
        graph += [(w, hi, n) for n in others for w in pick(("base", "gundam-a4"))]
    eager = [(w, lo, mid) for w in pick(("small", "gundam-a4"))]
    eager += [(w, hi, mid) for w in pick(("base", "gundam-a4")) if hi != lo]
    eager += [(w, lo, others[0]) for w in pick(("base",)) if others]
    out: list[Entry] = []
    for execution in cfg.executions:
        chosen = graph if execution == "graph" else eager
        if cal_w in ws:
            out.append(Entry(execution, cal_w, cal_b, cal_n))
        out += [Entry(execution, w, b, n) for w, b, n in dict.fromkeys(chosen)]
    seen: set[str] = set()
    unique = [e for e in out if not (e.key in seen or seen.add(e.key))]  # type: ignore[func-returns-value]
    if cfg.only:
        unique = [e for e in unique if e.key in cfg.only or e.id in cfg.only]
        if not unique:
            raise UserError(f"--only {','.join(cfg.only)}: no such entry in the plan (see --list)")
    return unique


def _split_id(entry_id: str) -> tuple[str, int, int]:
    """``base-b1-n256`` → ("base", 1, 256)."""
    try:
        head, b, n = entry_id.rsplit("-", 2)
        if head not in PAGE_WORKLOADS or not b.startswith("b") or not n.startswith("n"):
            raise ValueError
        return head, int(b[1:]), int(n[1:])
    except ValueError:
        raise UserError(f"--calibrate-on {entry_id!r}: expected WORKLOAD-bB-nN, e.g. {CALIBRATION_ID}") from None


def run_dir(out: Path, entry: Entry) -> Path:
    return out / "runs" / entry.execution / entry.id


def is_complete(path: Path) -> bool:
    """A finished, complete profile run directory (``metrics.json`` not marked incomplete)."""
    import json

    metrics = path / "metrics.json"
    if not metrics.is_file() or not (path / "runs.jsonl").is_file():
        return False
    try:
        return json.loads(metrics.read_text(encoding="utf-8")).get("incomplete") is False
    except (OSError, ValueError):
        return False


@define(kw_only=True)
class _Progress:
    statuses: dict[str, dict[str, Any]] = field(factory=dict)
    started: float = field(factory=time.perf_counter)


def run_validate(cfg: ValidateConfig, log: Log = quiet) -> dict[str, Any]:
    """Run every pending entry within the budget; return (and write) the plan with statuses."""
    cfg.validate()
    entries = plan(cfg)
    prog = _Progress()
    for e in entries:
        prog.statuses[e.key] = {"entry": attrs.asdict(e), "id": e.id, "dir": str(run_dir(cfg.out, e)),
                                "status": "done" if is_complete(run_dir(cfg.out, e)) else "pending"}
    _write_plan(cfg, prog)
    pending = [e for e in entries if prog.statuses[e.key]["status"] == "pending"]
    log(f"{len(entries)} entries, {len(entries) - len(pending)} already done, {len(pending)} to run")
    if not pending:
        return _write_plan(cfg, prog)
    session = _load(cfg, log)
    last: dict[str, float] = {}
    for e in pending:
        elapsed = time.perf_counter() - prog.started
        if elapsed + last.get(e.execution, 0.0) > cfg.budget_s:  # the last run of this mode as the estimate
            prog.statuses[e.key].update(status="pending", note=f"budget: {elapsed:.0f} s of {cfg.budget_s:.0f} s used")
            log(f"{e.key}: left for the next call (budget)")
            continue
        t0 = time.perf_counter()
        try:
            _run_entry(cfg, e, session)
            prog.statuses[e.key].update(status="done")
        except UserError as exc:
            prog.statuses[e.key].update(status="failed", error=str(exc))
        except Exception as exc:
            prog.statuses[e.key].update(status="failed", error=describe_error(exc))
        seconds = time.perf_counter() - t0
        last[e.execution] = seconds
        prog.statuses[e.key]["seconds"] = seconds
        log(f"{e.key}: {prog.statuses[e.key]['status']} in {seconds:.1f} s"
            + (f" ({prog.statuses[e.key]['error']})" if "error" in prog.statuses[e.key] else ""))
        _write_plan(cfg, prog)
    return _write_plan(cfg, prog)


def _write_plan(cfg: ValidateConfig, prog: _Progress) -> dict[str, Any]:
    data = {
        "schema": "llm-perf-opt.validate-plan/1",
        "config": attrs.asdict(cfg, value_serializer=lambda _i, _a, v: str(v) if isinstance(v, Path) else v),
        "seconds": time.perf_counter() - prog.started,
        "entries": list(prog.statuses.values()),
    }
    write_json(cfg.out / PLAN_FILE, data)
    return data


def _load(cfg: ValidateConfig, log: Log) -> Any:
    from llm_perf_opt.profiling.env import resolve_device, resolve_dtype
    from llm_perf_opt.profiling.session import ProfileSession

    device = resolve_device(cfg.device)
    dtype = resolve_dtype(cfg.dtype, device)
    session = ProfileSession.load(model=cfg.model, weights="random", device=device, dtype=dtype, seed=cfg.seed)
    log(f"loaded {cfg.model} ({dtype}, random weights) on {device} in {session.load_seconds:.1f} s")
    return session


def _pages(cfg: ValidateConfig, entry: Entry) -> tuple[str, ...]:
    """Page files: none for batch 1 on A4 (the runner's built-in pages); else B (or 3) of the size."""
    from llm_perf_opt.profiling.synthetic import SYNTHETIC_KINDS, write_synthetic_pages

    if entry.batch == 1 and entry.page_size == A4_200DPI:
        return ()
    w, h = entry.page_size
    count = max(entry.batch, 3)
    paths: list[Path] = []
    seed = 0
    while len(paths) < count:
        folder = cfg.out / "pages" / f"{w}x{h}" / f"seed{seed}"
        files = [folder / f"synthetic_{kind}.png" for kind in SYNTHETIC_KINDS]  # drawn once, reused by later runs
        if not all(f.is_file() for f in files):
            files = [p for p, _ in write_synthetic_pages(folder, size=(w, h), seed=cfg.seed + seed)]
        paths += files
        seed += 1
    return tuple(str(p) for p in paths[: entry.batch if entry.batch > 1 else count])


def _run_entry(cfg: ValidateConfig, entry: Entry, session: Any) -> None:
    from llm_perf_opt.profiling.runner import run_profile

    config = profile_config(
        session.device.type, model=cfg.model, weights="random", images=_pages(cfg, entry), mode=entry.mode,
        max_crops=cfg.max_crops, repeats=cfg.repeats, warmup=cfg.warmup, max_new_tokens=entry.tokens,
        batch_size=entry.batch, device=str(session.device), dtype=session.dtype, torch_profiler=False,
        output_dir=run_dir(cfg.out, entry), run_id=f"validate-{entry.execution}-{entry.id}", seed=cfg.seed,
        decode_mode=entry.execution,
    )
    run_profile(config, session=session)
