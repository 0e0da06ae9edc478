"""The GEMM-table benchmarks read the table they add to through the package's parser and write it whole."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))

from bench_gemm_table import read_table, write_table

PACKAGED = Path(__file__).resolve().parents[3] / "src/llm_perf_opt/hardware/gemm_tables/h200-bf16.json"


@pytest.mark.parametrize(
    ("content", "why"),
    [(None, "No such file"), ("{not json", "Expecting"), ('{"schema": "other"}', "not a GEMM table"),
     ('{"schema": "llm-perf-opt.gemm-table/1", "shapes": [{"n": 1}]}', "malformed GEMM table")],
)  # fmt: skip
def test_a_table_that_cannot_be_used_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, why: str
) -> None:
    path = tmp_path / "table.json"
    if content is not None:
        path.write_text(content)
    assert read_table(path, "bench_x") is None
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith(f"bench_x: {path}: no usable GEMM table") and why in out


def test_the_packaged_table_round_trips_whole(tmp_path: Path) -> None:
    table = read_table(PACKAGED, "bench_x")
    assert table is not None and table["convs"] and table["grouped"]
    out = tmp_path / "sub" / "t.json"
    write_table(table, out, "everything", 0.0)
    assert json.loads(out.read_text()) == table
    assert [p.name for p in out.parent.iterdir()] == ["t.json"]  # no temporary file left behind
