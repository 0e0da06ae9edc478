"""``ProfileConfig``: the one declaration of every ``llm-perf-opt profile`` option.

Each option is one attrs field made with :func:`option`: its default, its help text (which is also
the field's documentation, appended to the class docstring below), its CLI flag and any allowed
choices or lower bound. The click options of ``llm-perf-opt profile``
(:func:`llm_perf_opt.cli.options.options_from`) and the ``LLMProfileRequest`` contract
(:mod:`llm_perf_opt.contracts.profile`) are derived from these fields, so adding an option means
adding one field here. The module sits in ``contracts`` (below ``profiling``) and imports no torch
so that both the contract layer and the CLI can read it; ``llm_perf_opt.profiling.state``
re-exports it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal, get_args

import attrs
from attrs import define

from llm_perf_opt.errors import UserError
from llm_perf_opt.specs import limits

Dtype = Literal["bf16", "fp16", "fp32"]
"""Compute dtype of a profiled model."""
ResolutionModeName = Literal["tiny", "small", "base", "large", "gundam"]
"""Official DeepSeek-OCR resolution modes (see ``llm_perf_opt.specs.image_tokens``)."""

DTYPES: tuple[str, ...] = get_args(Dtype)
RESOLUTION_MODE_NAMES: tuple[str, ...] = get_args(ResolutionModeName)


def option(
    default: Any = None,
    *,
    help: str,
    flags: tuple[str, ...] = (),
    metavar: str | None = None,
    choices: tuple[str, ...] | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    positive: bool = False,
    cli: bool = True,
    factory: Any = None,
) -> Any:
    """An attrs field carrying what the CLI and the contract need to derive their declarations.

    ``flags``: CLI flag names (default ``--field-name``; a bool defaulting to True gets
    ``--name/--no-name``). ``minimum``: smallest allowed value; ``positive``: must be > 0.
    ``cli=False`` keeps a library-only option off the command line.
    """
    metadata = {
        "help": help,
        "flags": flags,
        "metavar": metavar,
        "choices": choices,
        "minimum": minimum,
        "maximum": maximum,
        "positive": positive,
        "cli": cli,
    }
    if factory is not None:
        return attrs.field(factory=factory, metadata=metadata)
    return attrs.field(default=default, metadata=metadata)


def flag_name(name: str) -> str:
    """The CLI flag of a config field (``max_new_tokens`` → ``--max-new-tokens``)."""
    fld = getattr(attrs.fields(ProfileConfig), name)
    flags = fld.metadata.get("flags") or ()
    return flags[0].split("/")[0] if flags else "--" + name.replace("_", "-")


@define(kw_only=True)
class ProfileConfig:
    """Everything ``llm-perf-opt profile`` can be asked for (CLI flags map one to one).

    Fields (generated from each field's help text):
    """

    model: str = option(
        "deepseek-ocr",
        metavar="deepseek-ocr|tiny|CHECKPOINT_DIR",
        help="Model spec name, or a checkpoint directory (its config.json).",
    )
    weights: str | None = option(
        None,
        metavar="random|CHECKPOINT_DIR",
        help="Weights: random init, or safetensors from a directory [default: random for spec names, "
        "the checkpoint for --model DIR].",
    )
    images: tuple[str, ...] = option(
        factory=tuple,
        metavar="DIR|FILE|LIST.txt",
        help="Page images: directories, files, or .txt lists (one path per line). Repeatable; without it "
        "the built-in synthetic pages are used.",
    )
    mode: str = option("gundam", choices=RESOLUTION_MODE_NAMES, help="Resolution mode.")
    max_crops: int = option(9, minimum=1, maximum=limits.MAX_CROPS_LIMIT, help="Most tiles per page in crop mode.")
    repeats: int = option(3, minimum=1, maximum=limits.MAX_REPEATS, help="Timed runs per image.")
    warmup: int = option(
        1, minimum=0, maximum=limits.MAX_WARMUP,
        help="Untimed warm-up passes (per distinct batch shape)."
    )
    max_new_tokens: int = option(
        64, minimum=1, maximum=limits.MAX_TOKENS,
        help="Tokens generated per page (1 prefill token + max_new_tokens - 1 decode steps)."
    )
    min_new_tokens: int | None = option(
        None,
        minimum=0,
        maximum=limits.MAX_TOKENS,
        help="Suppress EOS until this many tokens [default: --max-new-tokens, fixed-length runs, so runs compare].",
    )
    no_repeat_ngram_size: int = option(
        0, minimum=0, maximum=limits.MAX_TOKENS,
        help="Ban repeating n-grams of this size while generating (0 = off, as in timing runs)."
    )
    device: str | None = option(
        None, metavar="cuda[:N]|cpu", help="Torch device [default: cuda:0 if present, else cpu]."
    )
    dtype: str | None = option(None, choices=DTYPES, help="Compute dtype [default: bf16 on CUDA, fp32 on CPU].")
    attn_impl: str = option("sdpa", choices=("sdpa", "eager"), help="Attention implementation.")
    batch_size: int = option(
        1, minimum=1, maximum=limits.MAX_BATCH_SIZE,
        help="Pages per generation call (equal token counts grouped)."
    )
    decode_mode: str | None = option(
        None,
        choices=("graph", "eager", "both"),
        help="Decode steps: graph (captured CUDA graphs, replayed: the GPU sets the pace), eager (kernels "
        "issued one by one from Python) or both (timed side by side) [default: graph on CUDA, eager on CPU].",
    )
    top_k: int = option(20, minimum=1, maximum=limits.MAX_TOP_K, help="Operators per table.")
    trace: bool = option(False, help="Write a Chrome/Perfetto trace (trace.json) of the first profiled batch.")
    torch_profiler: bool = option(True, help="Run the separate operator-profiling pass.")
    profile_decode_steps: int = option(
        32,
        minimum=1,
        maximum=limits.MAX_TOKENS,
        help="Decode steps in the operator-profiling window, taken after the first 3; the window also "
        "holds the whole prefill (vision included), once per distinct batch shape.",
    )
    output_dir: Path | None = option(None, help="Artifact directory [default: tmp/profile-output/<run_id>].")
    run_id: str | None = option(None, help="Run id [default: UTC time + random suffix].")
    strict: bool = option(False, help="Fail on any unusable image instead of skipping it.")
    trust_remote_code: bool = option(
        False, help="Load the checkpoint's own Python model code through transformers (local directory, offline)."
    )
    seed: int = option(0, minimum=0, maximum=limits.MAX_SEED, help="Seed for random weights and synthetic pages.")
    peak_tflops: float | None = option(
        None, positive=True, maximum=limits.MAX_TFLOPS,
        help="Dense peak TFLOP/s for MFU (overrides the hardware table)."
    )
    peak_bandwidth_tbs: float | None = option(
        None, positive=True, maximum=limits.MAX_BANDWIDTH_TBS,
        help="Peak DRAM TB/s, 1e12 bytes/s (overrides the hardware table)."
    )

    def validate(self) -> None:
        """Raise :class:`UserError` naming the flag of the first value out of its declared range."""
        for fld in attrs.fields(type(self)):
            value = getattr(self, fld.name)
            if value is None:
                continue
            meta = fld.metadata
            flag = flag_name(fld.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise UserError(f"{flag} must be a finite number, got {value}")  # NaN passes every comparison
            if meta.get("maximum") is not None and value > meta["maximum"]:
                raise UserError(f"{flag} must be at most {meta['maximum']:,}, got {value}")
            if meta.get("choices") and value not in meta["choices"]:
                raise UserError(f"{flag} must be one of {', '.join(meta['choices'])}, got {value!r}")
            if meta.get("minimum") is not None and value < meta["minimum"]:
                least = "at least 1" if meta["minimum"] == 1 else f"{meta['minimum']:g} or more"
                raise UserError(f"{flag} must be {least}, got {value}")
            if meta.get("positive") and value <= 0:
                raise UserError(f"{flag} must be positive, got {value}")
        if self.min_new_tokens is not None and self.min_new_tokens > self.max_new_tokens:
            raise UserError("--min-new-tokens must lie between 0 and --max-new-tokens")
        if self.run_id is not None:
            limits.check_run_id(self.run_id)


def field_default(fld: attrs.Attribute[Any]) -> Any:
    """The default value of an attrs field (calling its factory, if it has one)."""
    default = fld.default
    return default.factory() if isinstance(default, attrs.Factory) else default  # type: ignore[arg-type, union-attr]


def config_field(name: str) -> attrs.Attribute[Any]:
    """The attrs field of one profile option (for declarations derived from it)."""
    return getattr(attrs.fields(ProfileConfig), name)  # type: ignore[no-any-return]


def _document_fields() -> None:
    # The help text is the field documentation; listing it in the class docstring makes
    # ``help(ProfileConfig)`` show every option without a second copy in the source.
    lines = []
    for f in attrs.fields(ProfileConfig):
        default = field_default(f)
        lines.append(f"    ``{f.name}`` (default {default!r}): {f.metadata['help']}")
    ProfileConfig.__doc__ = (ProfileConfig.__doc__ or "").rstrip() + "\n\n" + "\n".join(lines) + "\n"


_document_fields()
