from pathlib import Path

import pytest

from llm_perf_opt.errors import UserError
from llm_perf_opt.specs.workload import WORKLOAD_PROFILES, load_workload, parse_page_size


def test_builtin_profiles_cover_modes_and_standard() -> None:
    assert set(WORKLOAD_PROFILES) == {"tiny", "small", "base", "large", "gundam", "dsocr-standard-v1"}
    std = WORKLOAD_PROFILES["dsocr-standard-v1"]
    assert (std.mode, std.page_size, std.max_new_tokens) == ("gundam", (1654, 2339), 512)
    # 10 prompt text tokens + 903 image slots (2×3 tiles).
    assert std.prefill_tokens == 913
    assert std.final_context == 913 + 511


def test_page_size_parsing() -> None:
    assert parse_page_size("1654x2339") == (1654, 2339)
    assert parse_page_size(" 800 X 600 ") == (800, 600)
    for bad in ("0x0", "10", "axb", "-5x10"):
        with pytest.raises(UserError, match="page size"):
            parse_page_size(bad)


def test_negative_tokens_rejected() -> None:
    with pytest.raises(UserError, match="max_new_tokens"):
        WORKLOAD_PROFILES["base"].replace(max_new_tokens=-1)
    with pytest.raises(UserError, match="batch_size"):
        WORKLOAD_PROFILES["base"].replace(batch_size=0)


def test_unknown_workload_lists_valid_ids() -> None:
    with pytest.raises(UserError) as err:
        load_workload("gundam-xl")
    assert "dsocr-standard-v1" in str(err.value) and "gundam-xl" in str(err.value)


def test_user_yaml(tmp_path: Path) -> None:
    path = tmp_path / "letter.yaml"
    path.write_text("mode: gundam\npage_size: 1700x2200\nmax_new_tokens: 64\nmax_crops: 6\n")
    work = load_workload(str(path))
    assert work.profile_id == "letter" and work.page_size == (1700, 2200) and work.image_tokens == 903


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("mode: [unclosed\n", "not valid YAML"),
        ("- just\n- a list\n", "mapping"),
        ("mode: gundam\ncolour: red\n", "unknown workload field"),
        ("mode: huge\n", "resolution mode"),
        ("max_new_tokens: many\n", "max_new_tokens"),
    ],
)
def test_bad_yaml_names_file_and_problem(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as err:
        load_workload(str(path))
    assert needle in str(err.value)
    assert "w.yaml" in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_yaml_file() -> None:
    with pytest.raises(UserError, match="does not exist"):
        load_workload("/nonexistent/work.yaml")
