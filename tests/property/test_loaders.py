"""Any file content given to a YAML/JSON loader ends in a value or one UserError line (issue 12)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from prop_helpers import HOSTILE_TEXT, new_dir

from llm_perf_opt.analytic.report_io import load_report
from llm_perf_opt.errors import UserError
from llm_perf_opt.hardware.table import HARDWARE_FIELDS, load_hardware
from llm_perf_opt.specs.loader import load_model_spec
from llm_perf_opt.specs.workload import WORKLOAD_FIELDS, load_workload

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True), HOSTILE_TEXT,
)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.one_of(HOSTILE_TEXT, st.integers()), inner,
                                                                       max_size=4)), max_leaves=12)


def _outcome(load: Any, path: Path) -> None:
    try:
        load(str(path))
    except UserError as exc:
        assert "\n" not in str(exc) and str(exc), repr(exc)


def _dump(data: Any, path: Path) -> None:
    if path.suffix == ".json":
        path.write_text(json.dumps(data, default=str))
    else:
        path.write_text(yaml.safe_dump(data, allow_unicode=True))


@settings(settings.get_profile("issue12"), max_examples=40)
@given(
    text=st.one_of(st.text(max_size=300), st.binary(max_size=200).map(lambda b: b.decode("latin-1"))),
    kind=st.sampled_from(["workload", "hardware"]),
)
def test_any_text_as_a_workload_or_hardware_file(text: str, kind: str) -> None:
    out = new_dir()
    try:
        path = out / f"{kind}.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogateescape")
        _outcome(load_workload if kind == "workload" else load_hardware, path)
    finally:
        shutil.rmtree(out, ignore_errors=True)


@settings(settings.get_profile("issue12"), max_examples=40)
@given(
    fields=st.dictionaries(st.one_of(st.sampled_from(WORKLOAD_FIELDS + HARDWARE_FIELDS), HOSTILE_TEXT), VALUES,
                           max_size=6),
    kind=st.sampled_from(["workload", "hardware"]),
)
def test_any_fields_in_a_workload_or_hardware_file(fields: dict[str, Any], kind: str) -> None:
    out = new_dir()
    try:
        path = out / f"{kind}.yaml"
        _dump(fields, path)
        _outcome(load_workload if kind == "workload" else load_hardware, path)
    finally:
        shutil.rmtree(out, ignore_errors=True)


CONFIG_KEYS = ["hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "n_routed_experts",
               "num_experts_per_tok", "first_k_dense_replace", "vocab_size", "rms_norm_eps", "rope_theta",
               "vision_config", "language_config", "llm_perf_opt_spec", "bos_token_id", "use_mla"]


@settings(settings.get_profile("issue12"), max_examples=40)
@given(config=st.one_of(VALUES, st.dictionaries(st.sampled_from(CONFIG_KEYS), VALUES, max_size=5)))
def test_any_model_config_json(config: Any) -> None:
    out = new_dir()
    try:
        path = out / "config.json"
        _dump(config, path)
        _outcome(load_model_spec, path)
    finally:
        shutil.rmtree(out, ignore_errors=True)


@pytest.fixture(scope="module")
def report_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from llm_perf_opt.analytic import api
    from llm_perf_opt.hardware.table import HARDWARE_TABLE
    from llm_perf_opt.specs.model_spec import TINY
    from llm_perf_opt.specs.workload import WORKLOAD_PROFILES

    out = tmp_path_factory.mktemp("r") / "a"
    api.write_report(api.build_report(TINY, WORKLOAD_PROFILES["base"], HARDWARE_TABLE["h100-sxm"]), out)
    data: dict[str, Any] = json.loads((out / "report.json").read_text())
    return data


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path into ``data`` (the inputs section, which a user would most likely edit)."""
    out = [prefix] if prefix else []
    if isinstance(data, dict):
        for key, value in data.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data[:2]):
            out += _paths(value, (*prefix, i))
    return out


@settings(settings.get_profile("issue12"), max_examples=20)
@given(data=st.data(), suffix=st.sampled_from([".json", ".yaml"]))
def test_a_report_with_any_one_field_changed(report_data: dict[str, Any], data: st.DataObject, suffix: str) -> None:
    doc = json.loads(json.dumps(report_data))
    path = data.draw(st.sampled_from(_paths(doc["inputs"])))
    target: Any = doc["inputs"]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = data.draw(VALUES)
    out = new_dir()
    try:
        file = out / f"report{suffix}"
        _dump(doc, file)
        _outcome(load_report, file)
    finally:
        shutil.rmtree(out, ignore_errors=True)
