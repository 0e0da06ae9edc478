"""The committed openapi.yaml and the attrs contract classes must describe the same schemas.

A change to either side alone fails here, and the failure says which side has what.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs
import pytest
import yaml
from contract_samples import make_samples

from llm_perf_opt.contracts.models import CONTRACT_CLASSES
from llm_perf_opt.contracts.openapi import OPENAPI_RELPATH, build_openapi, build_schemas, type_schema
from llm_perf_opt.io.convert import unstructure

REPO_ROOT = Path(__file__).resolve().parents[3]
COMMITTED = REPO_ROOT / OPENAPI_RELPATH
REGENERATE = "regenerate with: python scripts/export_openapi.py"


@pytest.fixture(scope="module")
def committed() -> dict[str, Any]:
    assert COMMITTED.is_file(), f"{COMMITTED} is missing; {REGENERATE}"
    data = yaml.safe_load(COMMITTED.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _diff(committed: dict[str, Any], generated: dict[str, Any]) -> list[str]:
    lines = []
    for name in sorted(set(committed) | set(generated)):
        if name not in generated:
            lines.append(f"{name}: only in the committed openapi.yaml (no such contract class)")
        elif name not in committed:
            lines.append(f"{name}: only in the code (missing from openapi.yaml)")
        elif committed[name] != generated[name]:
            a, b = committed[name].get("properties", {}), generated[name].get("properties", {})
            for prop in sorted(set(a) | set(b)):
                if a.get(prop) != b.get(prop):
                    side = "yaml only" if prop not in b else "code only" if prop not in a else "differs"
                    lines.append(f"{name}.{prop}: {side}: yaml={a.get(prop)!r} code={b.get(prop)!r}")
            for key in sorted((set(committed[name]) | set(generated[name])) - {"properties"}):
                if committed[name].get(key) != generated[name].get(key):
                    lines.append(f"{name}[{key}]: yaml={committed[name].get(key)!r} code={generated[name].get(key)!r}")
    return lines


def test_schema_names_equal_contract_classes(committed: dict[str, Any]) -> None:
    in_yaml = set(committed["components"]["schemas"])
    in_code = {cls.__name__ for cls in CONTRACT_CLASSES}
    assert in_yaml == in_code, (
        f"only in openapi.yaml: {sorted(in_yaml - in_code)}; only in code: {sorted(in_code - in_yaml)}; {REGENERATE}"
    )


def test_committed_schemas_equal_generated(committed: dict[str, Any]) -> None:
    differences = _diff(committed["components"]["schemas"], build_schemas())
    assert not differences, "openapi.yaml and contracts disagree:\n" + "\n".join(differences) + f"\n{REGENERATE}"


def test_committed_document_equals_generated(committed: dict[str, Any]) -> None:
    generated = build_openapi()
    for key in ("openapi", "info", "paths"):
        assert committed[key] == generated[key], f"openapi.yaml [{key}] is stale; {REGENERATE}"


def test_diff_reports_each_side() -> None:
    generated = build_schemas()
    stale = json.loads(json.dumps(generated))
    del stale["Stats"]["properties"]["p95"]
    stale["Ghost"] = {"type": "object"}
    lines = _diff(stale, generated)
    assert "Ghost: only in the committed openapi.yaml (no such contract class)" in lines
    assert any(line.startswith("Stats.p95: code only") for line in lines)


def test_paths_reference_existing_schemas() -> None:
    doc = build_openapi()
    text = json.dumps(doc["paths"])
    for name in ("DeepSeekOCRAnalyticRequest", "DeepSeekOCRAnalyticAccepted", "DeepSeekOCRAnalyticReportSummary",
                 "LLMProfileRequest", "LLMProfileAccepted", "LLMProfileReportSummary"):  # fmt: skip
        assert f"#/components/schemas/{name}" in text
    assert set(doc["paths"]) >= {"/analytic", "/analytic/{report_id}/summary", "/profile", "/profile/{run_id}/summary"}


def test_required_and_descriptions_follow_attrs_fields() -> None:
    schemas = build_schemas()
    for cls in CONTRACT_CLASSES:
        schema = schemas[cls.__name__]
        required = [a.name for a in attrs.fields(cls) if a.default is attrs.NOTHING]
        assert schema.get("required", []) == required
        assert list(schema["properties"]) == [a.name for a in attrs.fields(cls)]
        for a in attrs.fields(cls):
            assert schema["properties"][a.name]["description"] == a.metadata["help"], f"{cls.__name__}.{a.name}"


def test_type_mapping() -> None:
    from typing import Literal

    assert type_schema(int | None, set()) == {"type": ["integer", "null"]}
    assert type_schema(Literal["a", "b"] | None, set()) == {"type": ["string", "null"], "enum": ["a", "b", None]}
    assert type_schema(dict[str, list[float]], set()) == {
        "type": "object",
        "additionalProperties": {"type": "array", "items": {"type": "number"}},
    }
    assert type_schema(tuple[int, int], set())["prefixItems"] == [{"type": "integer"}] * 2
    with pytest.raises(TypeError, match="not a contract class"):
        type_schema(list[CONTRACT_CLASSES[0]], set())  # type: ignore[valid-type]


def test_samples_validate_against_the_published_schemas() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    doc = build_openapi()
    for cls, obj in make_samples().items():
        schema = {"$ref": f"#/components/schemas/{cls.__name__}", "components": doc["components"]}
        jsonschema.Draft202012Validator(schema).validate(unstructure(obj))
    bad = unstructure(make_samples()[CONTRACT_CLASSES[2]]) | {"share_of_model_time": 2.0}
    schema = {"$ref": f"#/components/schemas/{CONTRACT_CLASSES[2].__name__}", "components": doc["components"]}
    assert not jsonschema.Draft202012Validator(schema).is_valid(bad)


def test_document_is_valid_openapi_31() -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(build_openapi())


def test_export_script_check_mode() -> None:
    script = REPO_ROOT / "scripts" / "export_openapi.py"
    done = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
