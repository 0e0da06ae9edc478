import json
import shutil
from pathlib import Path

import pytest

from llm_perf_opt.errors import UserError
from llm_perf_opt.specs.loader import load_model_spec
from llm_perf_opt.specs.model_spec import DEEPSEEK_OCR, MODEL_REGISTRY

FIXTURE = Path(__file__).parents[2] / "fixtures" / "deepseek-ocr-config.json"


def test_checkpoint_config_gives_the_builtin_architecture(tmp_path: Path) -> None:
    shutil.copy(FIXTURE, tmp_path / "config.json")
    for ref in (str(tmp_path), str(tmp_path / "config.json")):
        spec = load_model_spec(ref)
        assert spec.decoder == DEEPSEEK_OCR.decoder
        assert spec.sam == DEEPSEEK_OCR.sam
        assert spec.clip == DEEPSEEK_OCR.clip


def test_config_values_flow_into_the_spec(tmp_path: Path) -> None:
    config = json.loads(FIXTURE.read_text())
    config["num_hidden_layers"] = 6
    config["n_routed_experts"] = 32
    (tmp_path / "config.json").write_text(json.dumps(config))
    spec = load_model_spec(str(tmp_path))
    assert (spec.decoder.num_layers, spec.decoder.n_routed_experts) == (6, 32)


def test_unknown_model_id_lists_valid_ids() -> None:
    with pytest.raises(UserError) as err:
        load_model_spec("deepseek-ocr-9000")
    assert all(name in str(err.value) for name in MODEL_REGISTRY)


@pytest.mark.parametrize(
    ("content", "needle"),
    [("{not json", "not valid JSON"), ("[1, 2]", "JSON object"), ('{"hidden_size": -5}', "config")],
)
def test_malformed_config_names_the_file(tmp_path: Path, content: str, needle: str) -> None:
    (tmp_path / "config.json").write_text(content)
    with pytest.raises(UserError) as err:
        load_model_spec(str(tmp_path))
    assert needle in str(err.value) and "config.json" in str(err.value)


def test_directory_without_config(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"no config\.json"):
        load_model_spec(str(tmp_path))


def test_full_spec_written_by_save_checkpoint_wins(tmp_path: Path) -> None:
    from attrs import asdict

    from llm_perf_opt.specs.model_spec import TINY

    config = json.loads(FIXTURE.read_text())
    config["llm_perf_opt_spec"] = json.loads(json.dumps(asdict(TINY)))
    (tmp_path / "config.json").write_text(json.dumps(config))
    spec = load_model_spec(str(tmp_path))
    assert spec.replace(name="tiny") == TINY
