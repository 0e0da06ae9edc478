"""Bounded reads and the one YAML/JSON reader (issue 12, classes 1, 2 and 4)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from llm_perf_opt.errors import UserError
from llm_perf_opt.hardware.table import load_hardware
from llm_perf_opt.io.documents import MAX_DEPTH, expect_mapping, load_document, parse_json, parse_yaml
from llm_perf_opt.io.files import read_bytes, read_text
from llm_perf_opt.specs.loader import load_model_spec
from llm_perf_opt.specs.workload import load_workload


def _one_line(exc: pytest.ExceptionInfo[UserError]) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


def test_device_files_are_refused_before_reading() -> None:
    # /dev/zero never ends: reading it would take all memory. It is refused by type, not by size.
    with pytest.raises(UserError) as err:
        load_model_spec("/dev/zero")
    assert "/dev/zero" in _one_line(err) and "not a regular file" in str(err.value)


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "config.json"
    os.mkfifo(fifo)  # opening a FIFO for reading blocks until a writer appears, unless O_NONBLOCK
    with pytest.raises(UserError, match="not a regular file"):
        read_text(fifo, "model config")


def test_size_cap_and_directory(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * 2049)
    with pytest.raises(UserError, match="2,049 bytes, over the limit of 2,048"):
        read_bytes(big, "workload file", max_bytes=2048)
    assert read_bytes(big, "workload file", max_bytes=2049) == b"#" * 2049
    with pytest.raises(UserError, match="is a directory"):
        read_text(tmp_path, "hardware file")


def test_not_utf8_names_the_offset(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_bytes(b"mode: gundam\n\xff")
    with pytest.raises(UserError, match=r"w.yaml: cannot read: not UTF-8 text \(bad byte at offset 13\)"):
        load_workload(str(path))


def test_alias_bomb_is_refused_fast() -> None:
    # Nine levels of ten aliases each: 10^9 leaves once expanded. Refused from the node graph.
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    with pytest.raises(UserError, match=r"bomb.yaml: uses a YAML alias \(\*name\) at line 1"):
        parse_yaml("\n".join(lines), "bomb.yaml")


def test_even_a_harmless_alias_is_refused() -> None:
    with pytest.raises(UserError, match=r"w.yaml: uses a YAML alias"):
        parse_yaml("a: &x 1\nb: *x\n", "w.yaml")
    assert parse_yaml("a: &x 1\nb: 2\n", "w.yaml") == {"a": 1, "b": 2}  # an anchor alone is fine


@pytest.mark.parametrize("text", ["NaN", '{"a": Infinity}', '[-Infinity]'])
def test_json_constants_that_are_not_numbers(text: str) -> None:
    with pytest.raises(UserError, match="not a JSON number"):
        parse_json(text, "x.json")


def test_deep_nesting_is_one_error() -> None:
    assert parse_json("[" * MAX_DEPTH + "]" * MAX_DEPTH, "ok.json") is not None
    for text in ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), "[" * 200_000):
        with pytest.raises(UserError, match="deep"):
            parse_json(text, "x.json")
        with pytest.raises(UserError, match=r"deep|not valid YAML"):
            parse_yaml(text, "x.yaml")


def test_shape_errors_name_file_field_and_expectation(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"^f.json: field vision_config must be a mapping, got a list$"):
        expect_mapping([1, 2], "f.json", "vision_config", "a mapping")
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"vision_config": [1, 2]}))
    with pytest.raises(UserError) as err:
        load_model_spec(str(cfg))
    assert "config.json" in _one_line(err) and "vision_config" in str(err.value) and "a list" in str(err.value)
    work = tmp_path / "w.yaml"
    work.write_text("page_size: {1: 2}\n")
    with pytest.raises(UserError, match=r"w.yaml: .*page_size must be WxH or \[width, height\], got a mapping"):
        load_workload(str(work))
    work.write_text("profile_id: [a, b]\n")
    with pytest.raises(UserError, match=r"w.yaml: .*profile_id must be text, got a list"):
        load_workload(str(work))
    hw = tmp_path / "hw.yaml"
    hw.write_text("- 1\n- 2\n")
    expected = r"hw.yaml: field \(top level\) must be a mapping of hardware fields, got a list"
    with pytest.raises(UserError, match=expected):
        load_hardware(str(hw))


def test_load_document_by_suffix(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text('{"a": [1, 2]}')
    assert load_document(path, "file") == {"a": [1, 2]}
    path.write_text("a: 1")  # YAML text in a .json file is parsed as JSON and refused
    with pytest.raises(UserError, match="not valid JSON"):
        load_document(path, "file")
