"""Profile options are declared once (ProfileConfig) and the CLI and the contract follow it."""

from __future__ import annotations

import attrs
import click
import pytest

from llm_perf_opt.cli.profile import profile
from llm_perf_opt.contracts.profile import LLMProfileRequest
from llm_perf_opt.contracts.profile_config import ProfileConfig
from llm_perf_opt.errors import UserError

# Every flag the command accepted before the options were derived (README, scripts, users' habits).
OLD_FLAGS = [
    "--model",
    "--weights",
    "--images",
    "--mode",
    "--max-crops",
    "--repeats",
    "--warmup",
    "--max-new-tokens",
    "--min-new-tokens",
    "--device",
    "--dtype",
    "--attn-impl",
    "--batch-size",
    "--top-k",
    "--trace",
    "--torch-profiler",
    "--no-torch-profiler",
    "--output-dir",
    "--run-id",
    "--strict",
    "--quiet",
    "-q",
    "--trust-remote-code",
    "--peak-tflops",
    "--peak-bandwidth-tbs",
    "--seed",
]


def _params() -> dict[str, click.Parameter]:
    return {p.name: p for p in profile.params if p.name}


def test_every_old_flag_still_exists() -> None:
    flags = {opt for p in profile.params for opt in (*p.opts, *p.secondary_opts)}
    assert set(OLD_FLAGS) <= flags, set(OLD_FLAGS) - flags


def test_cli_defaults_and_help_come_from_the_config() -> None:
    params = _params()
    for fld in attrs.fields(ProfileConfig):
        param = params[fld.name]
        default = fld.default.factory() if isinstance(fld.default, attrs.Factory) else fld.default  # type: ignore[arg-type]
        assert param.default == default or (default == () and not param.default), fld.name
        assert isinstance(param, click.Option) and param.help == fld.metadata["help"]


def test_contract_defaults_follow_the_config() -> None:
    # The seed contract once said 512 new tokens while the CLI said 64; now both read one field.
    request = {f.name: f for f in attrs.fields(LLMProfileRequest)}
    for name in ("mode", "max_crops", "repeats", "warmup", "max_new_tokens", "device", "dtype", "batch_size", "top_k"):
        assert request[name].default == getattr(attrs.fields(ProfileConfig), name).default, name
    assert request["max_new_tokens"].default == 64


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"repeats": 0}, "--repeats must be at least 1, got 0"),
        ({"warmup": -1}, "--warmup must be 0 or more, got -1"),
        ({"mode": "huge"}, "--mode must be one of tiny, small, base, large, gundam, got 'huge'"),
        ({"peak_tflops": 0.0}, "--peak-tflops must be positive, got 0.0"),
        ({"min_new_tokens": 9, "max_new_tokens": 8}, "--min-new-tokens must lie between 0 and --max-new-tokens"),
    ],
)
def test_validate_names_the_flag(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(UserError) as info:
        ProfileConfig(**kwargs).validate()  # type: ignore[arg-type]
    assert str(info.value) == message
