"""The scenario grid: cartesian product, order, and the checks done before anything is computed."""

from __future__ import annotations

import pytest

from llm_perf_opt.errors import UserError
from llm_perf_opt.whatif import MAX_SCENARIOS, build_grid
from llm_perf_opt.whatif.scenarios import parse_cli_sets, parse_cli_sweeps


def test_no_sweep_is_one_scenario() -> None:
    grid = build_grid()
    assert len(grid) == 1 and grid[0].values == {} and grid[0].label() == "report"


def test_grid_is_the_cartesian_product_first_key_slowest() -> None:
    grid = build_grid({"dtype": "fp8"}, {"hardware": "h100-sxm,h200", "batch_size": [1, 8, 32]})
    assert len(grid) == 6
    shown = [(s.display()["hardware"], s.display()["batch_size"]) for s in grid]
    assert shown == [("h100-sxm", 1), ("h100-sxm", 8), ("h100-sxm", 32), ("h200", 1), ("h200", 8), ("h200", 32)]
    assert all(s.values["dtype"] == "fp8" for s in grid)
    assert [s.index for s in grid] == list(range(6))
    assert list(grid[0].display()) == ["dtype", "hardware", "batch_size"]


def test_cli_options_parse() -> None:
    assert parse_cli_sets(["dtype=fp8", "batch_size=4"]) == {"dtype": "fp8", "batch_size": "4"}
    assert parse_cli_sweeps(["page_size=640x640, 1024x1024"]) == {"page_size": ["640x640", "1024x1024"]}


def test_key_both_set_and_swept() -> None:
    with pytest.raises(UserError, match="batch_size is both set and swept"):
        build_grid({"batch_size": 2}, {"batch_size": [1, 2]})


@pytest.mark.parametrize(
    ("texts", "needle"),
    [(["batch_size=1,2", "batch_size=4"], "given twice"), (["batch_size=1,,2"], "comma-separated"),
     (["batch_size="], "comma-separated"), (["batch_size"], "must be KEY=VALUE")],
)
def test_bad_sweep_options(texts: list[str], needle: str) -> None:
    with pytest.raises(UserError, match=needle):
        parse_cli_sweeps(texts)


def test_repeated_set() -> None:
    with pytest.raises(UserError, match="given twice"):
        parse_cli_sets(["dtype=fp8", "dtype=bf16"])


def test_every_value_is_checked_before_work() -> None:
    with pytest.raises(UserError, match="invalid value 'x' for batch_size"):
        build_grid(sweeps={"batch_size": "1,2,x"})
    with pytest.raises(UserError, match="unknown what-if key 'bogus'"):
        build_grid(sweeps={"bogus": "1,2"})
    with pytest.raises(UserError, match="sweep batch_size has no values"):
        build_grid(sweeps={"batch_size": []})


def test_oversized_grid_fails_fast() -> None:
    values = list(range(1, 400))
    with pytest.raises(UserError, match=f"at most {MAX_SCENARIOS}"):
        build_grid(sweeps={"batch_size": values, "max_new_tokens": values})
