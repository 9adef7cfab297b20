"""Encoder registry, the classifier wrapper and safe (weights-only) checkpoint files."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import torch
from torch import nn

from timeblind.models.early_temporal import EarlyTemporalConfig, EarlyTemporalEncoder
from timeblind.models.framewise import FramewiseConfig, FramewiseEncoder
from timeblind.models.seed_temporal import SeedTemporalConfig, SeedTemporalEncoder
from timeblind.models.stave import StaveConfig, StaveEncoder

ENCODERS: dict[str, tuple[type, type]] = {
    "framewise": (FramewiseEncoder, FramewiseConfig),
    "seed_temporal": (SeedTemporalEncoder, SeedTemporalConfig),
    "stave": (StaveEncoder, StaveConfig),
    "early_temporal": (EarlyTemporalEncoder, EarlyTemporalConfig),
}
CHECKPOINT_FORMAT = "timeblind.classifier/1"


class VideoClassifier(nn.Module):
    """Encoder + linear head: (B, T, H, W) -> (B, num_classes) logits."""

    def __init__(self, encoder: nn.Module, num_classes: int):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.out_dim, num_classes)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(video))


def build_encoder(encoder: str, **options) -> nn.Module:
    """An encoder by registry name with the options of its config dataclass (unknown ones named)."""
    if encoder not in ENCODERS:
        raise ValueError(f"unknown encoder {encoder!r}; expected one of {sorted(ENCODERS)}")
    module_cls, config_cls = ENCODERS[encoder]
    allowed = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValueError(f"unknown options {unknown} for encoder {encoder!r}; expected some of {sorted(allowed)}")
    return module_cls(config_cls(**options))


def build_classifier(encoder: str, num_classes: int, **options) -> VideoClassifier:
    return VideoClassifier(build_encoder(encoder, **options), num_classes)


def save_model(path: str | Path, model: VideoClassifier, encoder: str, classes: list[str], extra: dict | None = None):
    """Plain tensors and builtins only, so the file loads with torch.load(weights_only=True)."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "encoder": encoder,
        "encoder_config": dataclasses.asdict(model.encoder.cfg),
        "classes": list(classes),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "extra": extra or {},
    }
    path = Path(path)
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_model(path: str | Path) -> tuple[VideoClassifier, dict]:
    """Rebuild a classifier from a file written by save_model; never executes code from it."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as err:  # pickle errors: not a plain-tensor file
        raise ValueError(f"{path} is not a timeblind model file (weights-only load failed: {err})") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(f"{path}: expected a '{CHECKPOINT_FORMAT}' file, found {found!r}")
    model = build_classifier(payload["encoder"], len(payload["classes"]), **payload["encoder_config"])
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as err:  # missing, unexpected or mis-shaped tensors
        raise ValueError(f"{path}: weights do not fit encoder {payload['encoder']!r}: {err}") from None
    return model.eval(), payload
