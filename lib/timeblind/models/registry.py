"""Encoder registry, the model (encoder + task heads) and safe (weights-only) model files."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import torch
from torch import nn

from timeblind.models.heads import TaskHeads
from timeblind.tasks import TaskSpec

from timeblind.models.early_temporal import EarlyTemporalConfig, EarlyTemporalEncoder
from timeblind.models.framewise import FramewiseConfig, FramewiseEncoder
from timeblind.models.motion_energy import MotionEnergyConfig, MotionEnergyEncoder
from timeblind.models.seed_temporal import SeedTemporalConfig, SeedTemporalEncoder
from timeblind.models.stave import StaveConfig, StaveEncoder
from timeblind.models.two_stream import TwoStreamConfig, TwoStreamEncoder

ENCODERS: dict[str, tuple[type, type]] = {
    "framewise": (FramewiseEncoder, FramewiseConfig),
    "seed_temporal": (SeedTemporalEncoder, SeedTemporalConfig),
    "stave": (StaveEncoder, StaveConfig),
    "early_temporal": (EarlyTemporalEncoder, EarlyTemporalConfig),
    "two_stream": (TwoStreamEncoder, TwoStreamConfig),
    "motion_energy": (MotionEnergyEncoder, MotionEnergyConfig),
}
MODEL_FORMAT = "timeblind.model/2"


class VideoModel(nn.Module):
    """An encoder and the heads of its tasks: (B, T, H, W) -> {task: output} (models/heads.py)."""

    def __init__(self, encoder: nn.Module, tasks: TaskSpec):
        super().__init__()
        self.encoder = encoder
        self.heads = TaskHeads(encoder.out_dim, tasks)

    def forward(self, video: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.heads(self.encoder(video))  # the encoder's map (B, D, h, w) -> answers

    def from_masks(self, masks: torch.Tensor) -> dict[str, torch.Tensor]:
        """For encoders that read clean figure masks (B, T, H, W) (the motion-energy observer)."""
        return self.heads(self.encoder.read_masks(masks.float()))

    @torch.no_grad()
    def answer(self, video: torch.Tensor, category: torch.Tensor) -> list[str]:
        """Text answers for clips whose category ids (B,) index tasks.categories (-1: unknown)."""
        return self.heads.answers(self(video), category)


def encoder_config(encoder: str, **options):
    """The config dataclass of an encoder, validated (unknown encoders and options named)."""
    if encoder not in ENCODERS:
        raise ValueError(f"unknown encoder {encoder!r}; expected one of {sorted(ENCODERS)}")
    config_cls = ENCODERS[encoder][1]
    allowed = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValueError(f"unknown options {unknown} for encoder {encoder!r}; expected some of {sorted(allowed)}")
    return config_cls(**options)


def build_encoder(encoder: str, **options) -> nn.Module:
    """An encoder by registry name with the options of its config dataclass."""
    cfg = encoder_config(encoder, **options)
    return ENCODERS[encoder][0](cfg)


def build_model(encoder: str, tasks: TaskSpec, **options) -> VideoModel:
    return VideoModel(build_encoder(encoder, **options), tasks)


def save_model(path: str | Path, model: VideoModel, encoder: str, extra: dict | None = None):
    """Plain tensors and builtins only, so the file loads with torch.load(weights_only=True)."""
    payload = {
        "format": MODEL_FORMAT,
        "encoder": encoder,
        "encoder_config": dataclasses.asdict(model.encoder.cfg),
        "tasks": model.heads.spec.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "extra": extra or {},
    }
    path = Path(path)
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_model(path: str | Path) -> tuple[VideoModel, dict]:
    """Rebuild a model from a file written by save_model; never executes code from it."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as err:  # pickle errors: not a plain-tensor file
        raise ValueError(f"{path} is not a timeblind model file (weights-only load failed: {err})") from None
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(f"{path}: expected a '{MODEL_FORMAT}' file, found {found!r}")
    model = build_model(payload["encoder"], TaskSpec.from_dict(payload["tasks"]), **payload["encoder_config"])
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as err:  # missing, unexpected or mis-shaped tensors
        raise ValueError(f"{path}: weights do not fit encoder {payload['encoder']!r}: {err}") from None
    return model.eval(), payload
