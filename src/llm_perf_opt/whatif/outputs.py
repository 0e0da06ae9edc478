"""What-if outputs: ``whatif.csv`` and ``whatif.json`` (written atomically) and the terminal table.

Library code: nothing here prints. :func:`render_table` returns a rich renderable; the CLI prints it.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llm_perf_opt.data.analytic_report import AnalyticModelReport
from llm_perf_opt.io.artifact_set import ArtifactSet
from llm_perf_opt.io.atomic import atomic_write_text
from llm_perf_opt.reporting.text import compact
from llm_perf_opt.whatif.evaluate import WhatIfRow
from llm_perf_opt.whatif.overrides import display_value, parse_value
from llm_perf_opt.whatif.scenarios import sweep_values

if TYPE_CHECKING:
    from rich.table import Table

WHATIF_SCHEMA = "llm-perf-opt.whatif/1"
CSV_NAME, JSON_NAME = "whatif.csv", "whatif.json"
SEMANTICS = {
    "latency_ms": "one generate() call of batch_size pages (vision + projector + prefill + decode); every "
                  "page of the batch finishes with the call, so this is each page's latency",
    "ms_per_page": "latency_ms / batch_size: device time per page, amortised over the batch",
    "pages_per_s": "batch_size / latency",
    "tokens_per_s": "batch_size * max_new_tokens / latency (generated tokens)",
    "job_ms": "ceil(num_pages / batch_size) calls; a last partial batch is costed as a full one",
    "memory_gb": "weights + KV cache at the final context + largest single-operator working set (10^9 B)",
    "fits": "memory_gb <= device_memory_gb",
    "max_batch": "largest batch_size whose memory fits the device (0: not even one page)",
    "<stage>_bound": "compute, memory, launch (kernel-launch overhead dominates) or none",
}


def csv_text(rows: Sequence[WhatIfRow]) -> str:
    """All rows as CSV: scenario keys first, then the results, then ``<stage>_ms`` and ``<stage>_bound``."""
    records = [row.to_flat() for row in rows]
    columns: list[str] = []
    for record in records[:1] or [{}]:
        columns = list(record)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return buf.getvalue()


def _display_map(values: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: display_value(parse_value(k, v)) for k, v in (values or {}).items()}


def json_document(
    rows: Sequence[WhatIfRow],
    report: AnalyticModelReport,
    *,
    report_path: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    sweeps: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``whatif.json`` document: where the numbers come from, what they mean, and the rows."""
    inp = report.inputs
    return {
        "schema_version": WHATIF_SCHEMA,
        "report": str(report_path) if report_path is not None else None,
        "report_id": report.report_id,
        "base": {
            "model": inp.model_spec.name,
            "workload": inp.workload_spec.profile_id,
            "hardware": inp.hardware.id,
            "precision": {
                "weight_dtype": inp.precision.weight_dtype,
                "activation_dtype": inp.precision.activation_dtype,
                "kv_dtype": inp.precision.kv_dtype,
                "compute_dtype": inp.precision.compute_dtype,
            },
        },
        "overrides": _display_map(overrides),
        "sweeps": {
            k: [display_value(parse_value(k, v)) for v in sweep_values(k, vals)] for k, vals in (sweeps or {}).items()
        },
        "semantics": SEMANTICS,
        "rows": [row.to_dict() for row in rows],
    }


def json_text(document: Mapping[str, Any]) -> str:
    """Indented JSON with one row per line (json's C encoder only runs without indent: ~10x faster)."""
    parts = []
    for key, value in document.items():
        if key == "rows":
            rows = ",\n    ".join(json.dumps(r, allow_nan=False, ensure_ascii=False) for r in value)
            text = f"[\n    {rows}\n  ]" if rows else "[]"
        else:
            text = json.dumps(value, indent=2, allow_nan=False, ensure_ascii=False).replace("\n", "\n  ")
        parts.append(f"  {json.dumps(key)}: {text}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def write_outputs(
    rows: Sequence[WhatIfRow],
    document: Mapping[str, Any],
    out_dir: str | Path,
    *,
    extra: Callable[[Path], list[Path]] | None = None,
) -> list[Path]:
    """Write ``whatif.csv``, ``whatif.json`` and whatever ``extra(directory)`` writes (the plots) as one
    artifact set: staged beside ``out_dir`` and renamed onto it together, so a CSV is never beside the
    JSON of another run. Returns the final paths."""
    with ArtifactSet(out_dir, kind="what-if", run_id=str(document.get("report_id") or "what-if")) as artifacts:
        stage = artifacts.work_dir
        staged = [
            atomic_write_text(stage / CSV_NAME, csv_text(rows)),
            atomic_write_text(stage / JSON_NAME, json_text(document)),
        ]
        if extra is not None:
            staged += extra(stage)
        names = [p.relative_to(stage) for p in staged]
        target = artifacts.commit()
    return [target / name for name in names]


_BOUND_TAG = {"compute": "C", "memory": "M", "launch": "L", "none": "-", "n/a": "?"}


def render_table(rows: Sequence[WhatIfRow], *, title: str, max_rows: int = 50) -> Table:
    """A rich table: scenario keys, per-stage ms with bound (C/M/L), latency, throughput, memory."""
    from rich.table import Table

    table = Table(title=title, title_justify="left", header_style="bold")
    keys = list(rows[0].scenario) if rows else []
    for key in keys or ["scenario"]:
        table.add_column(key, no_wrap=True)
    stage_names = list(rows[0].stages) if rows else []
    for name in stage_names:
        table.add_column(f"{name} ms", justify="right")
    for col in ("latency ms", "ms/page", "pages/s", "tok/s", "mem GB", "fits", "max B"):
        table.add_column(col, justify="right")
    shown = rows if max_rows <= 0 or len(rows) <= max_rows else rows[:max_rows]
    for row in shown:
        cells = [str(v) for v in row.scenario.values()] if keys else ["report"]
        cells += [f"{compact(s.predicted_ms)} {_BOUND_TAG.get(s.bound, '?')}" for s in row.stages.values()]
        cells += [
            compact(row.latency_ms),
            compact(row.ms_per_page),
            compact(row.pages_per_s),
            compact(row.tokens_per_s),
            f"{row.memory_gb:.1f}/{row.device_memory_gb:g}",
            "yes" if row.fits else "[red]no[/red]",
            str(row.max_batch),
        ]
        table.add_row(*cells)
    hidden = len(rows) - len(shown)
    more = f"showing {len(shown)} of {len(rows)} rows (all in whatif.csv / whatif.json; --max-rows 0 shows all). "
    table.caption = (
        (more if hidden else "")
        + "Stage bound: C compute, M memory, L launch overhead. latency = one call of batch_size pages (each page's "
        "wait); ms/page = latency / batch_size; pages/s and tok/s at that batch; mem = weights + KV + activations "
        "vs device memory."
    )
    table.caption_justify = "left"
    return table
