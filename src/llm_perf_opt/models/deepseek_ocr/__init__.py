"""Runnable DeepSeek-OCR (v1) in plain PyTorch, built from a :class:`~llm_perf_opt.specs.ModelSpec`.

Public API::

    model = build_model(spec, device="cuda", dtype=torch.bfloat16, weights="random" | ckpt_dir)
    page = prepare_page(load_page("page.png"), resolution_mode("gundam"), max_crops=9)
    inputs = build_inputs(spec, [page], tokenizer=load_tokenizer(ckpt_dir))
    result = generate(model, inputs, max_new_tokens=512, ranges=my_ranges)

``ranges(name)`` is entered as "prefill" ⊃ "vision" ⊃ {"sam", "clip", "projector"}, then "decode".
"""

from llm_perf_opt.models.deepseek_ocr.common import ATTN_IMPLS, Ranges, null_ranges
from llm_perf_opt.models.deepseek_ocr.decoder import MOE_IMPLS
from llm_perf_opt.models.deepseek_ocr.generate import (
    OFFICIAL_NO_REPEAT_NGRAM_SIZE,
    GenerationResult,
    decode_step,
    generate,
    new_cache,
    prefill,
)
from llm_perf_opt.models.deepseek_ocr.kv_cache import KVCache
from llm_perf_opt.models.deepseek_ocr.model import DeepseekOCRForCausalLM
from llm_perf_opt.models.deepseek_ocr.preprocess import (
    DEFAULT_PROMPT,
    ModelInputs,
    PreparedPage,
    build_inputs,
    load_page,
    load_tokenizer,
    placeholder_ids,
    prepare_page,
)
from llm_perf_opt.models.deepseek_ocr.weights import (
    build_model,
    checkpoint_tensors,
    init_random_,
    load_checkpoint_,
    save_checkpoint,
)

__all__ = [
    "ATTN_IMPLS",
    "DEFAULT_PROMPT",
    "MOE_IMPLS",
    "OFFICIAL_NO_REPEAT_NGRAM_SIZE",
    "DeepseekOCRForCausalLM",
    "GenerationResult",
    "KVCache",
    "ModelInputs",
    "PreparedPage",
    "Ranges",
    "build_inputs",
    "build_model",
    "checkpoint_tensors",
    "decode_step",
    "generate",
    "init_random_",
    "load_checkpoint_",
    "load_page",
    "load_tokenizer",
    "new_cache",
    "null_ranges",
    "placeholder_ids",
    "prefill",
    "prepare_page",
    "save_checkpoint",
]
