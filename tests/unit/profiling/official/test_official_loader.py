"""Building the official-structure code through transformers: random init, safetensors, bad directories."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from llm_perf_opt.errors import UserError
from llm_perf_opt.profiling.official import load_official_model

CPU = torch.device("cpu")


def test_random_weights_build_the_checkpoint_class_in_the_dtype(official_dir: Path) -> None:
    model = load_official_model(official_dir, weights=None, device=CPU, dtype=torch.float32)
    assert type(model).__name__ == "DeepseekOCRForCausalLM"
    assert not model.training
    names = dict(model.named_modules())
    for name in ("model.sam_model", "model.vision_model", "model.projector", "lm_head", "model.layers.1.mlp.gate"):
        assert name in names
    assert {p.dtype for p in model.parameters()} == {torch.float32}


def test_weights_come_from_the_safetensors_file(official_dir: Path, tmp_path: Path) -> None:
    model = load_official_model(official_dir, weights=None, device=CPU, dtype=torch.float32)
    ckpt = tmp_path / "ckpt"
    shutil.copytree(official_dir, ckpt)
    state = {k: v.clone().contiguous() for k, v in model.state_dict().items()}
    state["lm_head.weight"] = torch.full_like(state["lm_head.weight"], 0.25)
    save_file(state, str(ckpt / "model.safetensors"), metadata={"format": "pt"})  # as HF checkpoints store it
    loaded = load_official_model(ckpt, weights=ckpt, device=CPU, dtype=torch.float32)
    assert torch.equal(loaded.lm_head.weight, state["lm_head.weight"])
    assert torch.equal(loaded.model.projector.layers.weight, state["model.projector.layers.weight"])


def test_weights_dir_without_safetensors_is_one_clear_error(official_dir: Path) -> None:
    with pytest.raises(UserError, match=r"no \*\.safetensors"):
        load_official_model(official_dir, weights=official_dir, device=CPU, dtype=torch.float32)


def test_broken_checkpoint_code_is_one_clear_error(official_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(official_dir, broken)
    path = broken / "modeling_deepseekocr.py"
    path.write_text(path.read_text().replace("self.projector = MlpProjector(", "self.projector = MissingName("))
    with pytest.raises(UserError, match=r"building the official model from .* failed: .*MissingName"):
        load_official_model(broken, weights=None, device=CPU, dtype=torch.float32)


def test_a_tokenizer_in_the_checkpoint_encodes_the_prompt(official_dir: Path, tmp_path: Path) -> None:
    from PIL import Image
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from llm_perf_opt.profiling.inputs import PageImage
    from llm_perf_opt.profiling.official import OfficialSession
    from llm_perf_opt.profiling.session import group_batches
    from llm_perf_opt.specs.loader import load_model_spec

    ckpt = tmp_path / "with-tokenizer"
    shutil.copytree(official_dir, ckpt)
    words = ["<unk>", "<|grounding|>Convert", "the", "document", "to", "markdown."]
    tok = Tokenizer(models.WordLevel({w: i + 3 for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>").save_pretrained(str(ckpt))
    session = OfficialSession.load_official(
        spec=load_model_spec(str(ckpt)), code_dir=ckpt, weights=None, device=CPU, dtype="fp32", attn_impl="eager"
    )
    assert session.tokenizer is not None
    image = Image.new("RGB", (500, 400), (200, 180, 160))
    page = PageImage(
        path=Path("p.png"), image=image, width=500, height=400, category="t", sha256="0", source_mode="RGB",
        file_bytes=0,
    )  # fmt: skip
    batch = group_batches([session.prepare(page, "tiny", 9)], 1)[0]
    session.build_inputs(batch)
    ids = batch.inputs.input_ids[0].tolist()
    slots = int(batch.inputs.images_seq_mask.sum())
    # "<image>\n<|grounding|>Convert the document to markdown.": nothing before <image>, 5 words after it.
    assert ids[0] == 0 and len(ids) == 1 + slots + 5
    assert ids[1 + slots :] == [4, 5, 6, 7, 8]
