"""The one Markdown table and the number formatters, against strings written by hand."""

from __future__ import annotations

from llm_perf_opt.reporting.text import MISSING, cell, compact, ms, num, pct, sig, table


def test_table_formats_cells_escapes_pipes_and_aligns() -> None:
    text = table(["a", "b", "c", "d"], [[1234567, 0.5, 1234.5678, "x|y"], [None, True, 0.0, 2e-5]])
    assert text.splitlines() == [
        "| a | b | c | d |",
        "| :--- | ---: | ---: | ---: |",
        "| 1,234,567 | 0.5 | 1,234.6 | x\\|y |",
        "| — | yes | 0 | 2e-05 |",
    ]
    assert table(["k", "v"], [["1.50", "x"]], align="rl").splitlines()[1:] == ["| ---: | :--- |", "| 1.50 | x |"]


def test_number_formatters() -> None:
    assert [num(v) for v in (1234.5, 123.45, 1.234, None)] == ["1,234", "123.5", "1.23", MISSING]
    assert num(0.12345, 4) == "0.1235"
    assert [ms(v) for v in (1.23456, 12.345, 12345.67)] == ["1.235", "12.3", "12,345.7"]
    assert [sig(v) for v in (123456.0, 1.2345, 0.0012345, 0.0)] == ["123,456", "1.23", "0.00123", "0"]
    assert sig(0.00012345) == "1.23e-04"
    assert [compact(v) for v in (1321.6, 17.54, 5.478, 0.09010)] == ["1,322", "17.5", "5.48", "0.0901"]
    assert compact(float("nan")) == "nan"
    assert [pct(0.1234), pct(0.031, signed=True), pct(-0.2, 0, signed=True)] == ["12.3%", "+3.1%", "-20%"]
    assert cell(False) == "no" and cell(12.345) == "12.35" and cell(-3) == "-3"
