"""The "linear" MlpProjector: one Linear(2048 → 1280) with bias, no activation (deepseek-ocr-architecture.md §5.1)."""

from __future__ import annotations

import torch
from torch import nn


class MlpProjector(nn.Module):
    """``model.projector``; its single linear is named ``layers`` to match ``projector.layers.*``."""

    def __init__(self, input_dim: int, n_embed: int) -> None:
        super().__init__()
        self.layers = nn.Linear(input_dim, n_embed, bias=True)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.layers(features)


def fuse_features(clip_out: torch.Tensor, sam_out: torch.Tensor) -> torch.Tensor:
    """Projector input [B, h·w, C_clip + C_sam]: CLIP tokens (CLS dropped) first, then SAM features."""
    return torch.cat([clip_out[:, 1:], sam_out.flatten(2).transpose(1, 2)], dim=-1)
