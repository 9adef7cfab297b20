"""The encoders by name, and the model: an encoder with the heads of its tasks."""

from __future__ import annotations

import torch
from torch import nn

from timeblind.core.lexicon import Lexicon
from timeblind.core.tasks import TaskSpec
from timeblind.models.config import encoder_config
from timeblind.models.early_temporal import EarlyTemporalEncoder
from timeblind.models.framewise import FramewiseEncoder
from timeblind.models.heads import TaskHeads
from timeblind.models.motion_energy import MotionEnergyEncoder
from timeblind.models.seed_temporal import SeedTemporalEncoder
from timeblind.models.stave import StaveEncoder
from timeblind.models.two_stream import TwoStreamEncoder

# by the names of config.ENCODER_CONFIGS, in the same order
ENCODERS: dict[str, type[nn.Module]] = {
    "framewise": FramewiseEncoder,
    "seed_temporal": SeedTemporalEncoder,
    "stave": StaveEncoder,
    "early_temporal": EarlyTemporalEncoder,
    "two_stream": TwoStreamEncoder,
    "motion_energy": MotionEnergyEncoder,
}


class VideoModel(nn.Module):
    """An encoder and the heads of its tasks: (B, T, H, W) -> {task: output} (models/heads.py)."""

    def __init__(self, encoder: nn.Module, tasks: TaskSpec):
        super().__init__()
        self.encoder = encoder
        self.heads = TaskHeads(encoder.out_dim, tasks)

    def forward(self, video: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.heads(self.encoder(video), video.shape[-2:])  # the encoder's map (B, D, h, w) -> answers

    @torch.no_grad()
    def answer(self, video: torch.Tensor, category: torch.Tensor, lexicon: Lexicon | None = None) -> list[str]:
        """Text answers for clips whose category ids (B,) index tasks.categories (-1: unknown); words
        read against `lexicon` (core/lexicon.py), if given, else letter by letter."""
        return self.heads.answers(self(video), category, lexicon)


def build_encoder(encoder: str, **options) -> nn.Module:
    """An encoder by registry name with the options of its config dataclass (an unknown encoder or
    option is named)."""
    cfg = encoder_config(encoder, **options)
    return ENCODERS[encoder](cfg)


def build_model(encoder: str, tasks: TaskSpec, **options) -> VideoModel:
    return VideoModel(build_encoder(encoder, **options), tasks)
