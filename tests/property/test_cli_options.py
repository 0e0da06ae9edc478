"""Any value of any CLI option ends in success or one clean error line (issue 12, "must show").

In-process through click's CliRunner; hypothesis generates hostile numbers and text for every
numeric and path option of ``analyze``, ``what-if`` and ``profile``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from prop_helpers import HOSTILE_TEXT, NUMBERS_AS_TEXT, assert_clean, new_dir

from llm_perf_opt.cli import cli
from llm_perf_opt.whatif.overrides import KEYS

ANALYZE_OPTIONS = {
    "--page-size": st.one_of(HOSTILE_TEXT, st.tuples(NUMBERS_AS_TEXT, NUMBERS_AS_TEXT).map("x".join)),
    "--max-crops": NUMBERS_AS_TEXT,
    "--max-new-tokens": NUMBERS_AS_TEXT,
    "--prompt-tokens": NUMBERS_AS_TEXT,
    "--batch-size": NUMBERS_AS_TEXT,
    "--resolution": st.one_of(st.sampled_from(["tiny", "small", "base", "large", "gundam"]), HOSTILE_TEXT),
    "--dtype": st.one_of(st.sampled_from(["bf16", "fp8", "fp32"]), HOSTILE_TEXT),
    "--model": st.one_of(st.sampled_from(["tiny", "deepseek-ocr"]), HOSTILE_TEXT),
    "--workload": st.one_of(st.sampled_from(["tiny", "gundam", "dsocr-standard-v1"]), HOSTILE_TEXT),
    "--hardware": st.one_of(st.sampled_from(["h100-sxm", "rtx5090"]), HOSTILE_TEXT),
    "--run-id": HOSTILE_TEXT,
    "--calibration": HOSTILE_TEXT,
}


def _args(chosen: dict[str, Any]) -> list[str]:
    return [part for option, value in chosen.items() for part in (option, value)]


@settings(settings.get_profile("issue12"))
@given(st.dictionaries(st.sampled_from(sorted(ANALYZE_OPTIONS)), st.just(None), max_size=4).flatmap(
    lambda keys: st.fixed_dictionaries({k: ANALYZE_OPTIONS[k] for k in keys})))
def test_analyze_options(chosen: dict[str, str]) -> None:
    out = new_dir()
    try:
        result = CliRunner().invoke(cli, ["analyze", *_args(chosen), "--output-dir", str(out / "a")])
        assert_clean(result)
    finally:
        shutil.rmtree(out, ignore_errors=True)


@pytest.fixture(scope="module")
def report_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "analytic"
    result = CliRunner().invoke(cli, ["analyze", "--model", "tiny", "--output-dir", str(out)])
    assert result.exit_code == 0, result.output
    return out / "report.json"


VALUES = st.one_of(HOSTILE_TEXT, st.sampled_from(["h100-sxm", "fp8", "1024x1024", "base", "true", "0.5", "1,2"]))


@settings(settings.get_profile("issue12"))
@given(
    sets=st.lists(st.tuples(st.one_of(st.sampled_from(sorted(KEYS)), HOSTILE_TEXT), VALUES), max_size=3),
    sweeps=st.lists(st.tuples(st.sampled_from(sorted(KEYS)), st.lists(VALUES, min_size=1, max_size=3)), max_size=2),
    fmt=st.sampled_from(["table", "csv", "json"]),
)
def test_what_if_options(report_path: Path, sets: list[tuple[str, str]], sweeps: list[Any], fmt: str) -> None:
    out = new_dir()
    args = ["what-if", "--report", str(report_path), "--format", fmt, "--output-dir", str(out / "w")]
    args += [p for key, value in sets for p in ("--set", f"{key}={value}")]
    args += [p for key, values in sweeps for p in ("--sweep", f"{key}={','.join(values)}")]
    try:
        assert_clean(CliRunner().invoke(cli, args))
    finally:
        shutil.rmtree(out, ignore_errors=True)


PROFILE_OPTIONS = {
    "--max-crops": NUMBERS_AS_TEXT,
    "--repeats": NUMBERS_AS_TEXT,
    "--warmup": NUMBERS_AS_TEXT,
    "--max-new-tokens": NUMBERS_AS_TEXT,
    "--min-new-tokens": NUMBERS_AS_TEXT,
    "--batch-size": NUMBERS_AS_TEXT,
    "--top-k": NUMBERS_AS_TEXT,
    "--seed": NUMBERS_AS_TEXT,
    "--peak-tflops": NUMBERS_AS_TEXT,
    "--peak-bandwidth-tbs": NUMBERS_AS_TEXT,
    "--run-id": HOSTILE_TEXT,
    "--mode": st.one_of(st.sampled_from(["tiny", "gundam"]), HOSTILE_TEXT),
    "--device": st.one_of(st.sampled_from(["cpu", "cuda", "cuda:7"]), HOSTILE_TEXT),
    "--model": st.one_of(st.just("tiny"), HOSTILE_TEXT),
    "--images": HOSTILE_TEXT,
}


@pytest.fixture(scope="module")
def stop_at_load(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small page, and ProfileSession.load replaced by a UserError: options are checked, nothing is run."""
    from PIL import Image

    from llm_perf_opt.errors import UserError
    from llm_perf_opt.profiling import session

    def stop(*args: object, **kwargs: object) -> None:
        raise UserError("stopped at model load (test)")

    mp = pytest.MonkeyPatch()
    mp.setattr(session.ProfileSession, "load", classmethod(stop))
    page = tmp_path_factory.mktemp("page") / "page.png"
    Image.new("RGB", (300, 200), "white").save(page)
    yield page
    mp.undo()


@settings(settings.get_profile("issue12"))
@given(st.dictionaries(st.sampled_from(sorted(PROFILE_OPTIONS)), st.just(None), max_size=4).flatmap(
    lambda keys: st.fixed_dictionaries({k: PROFILE_OPTIONS[k] for k in keys})))
def test_profile_options(stop_at_load: Path, chosen: dict[str, str]) -> None:
    out = new_dir()
    base = {"--model": "tiny", "--device": "cpu", "--images": str(stop_at_load), "--mode": "tiny"}
    try:
        result = CliRunner().invoke(cli, ["profile", *_args({**base, **chosen}), "--output-dir", str(out / "p"), "-q"])
        assert_clean(result)
        assert result.exit_code != 0, "ProfileSession.load is replaced, so no run can succeed"
        assert not (out / "p").exists() or not any((out / "p").iterdir()), "nothing committed for a stopped run"
    finally:
        shutil.rmtree(out, ignore_errors=True)
