"""Model files: plain tensors and builtins only, so they load with torch.load(weights_only=True)
and loading never executes code from a file. Each names its format and the config that rebuilds it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from timeblind.core.io import atomic
from timeblind.core.tasks import TaskSpec
from timeblind.models.config import GroundedDecoderConfig
from timeblind.models.grounded_decoder import GroundedDecoder
from timeblind.models.heads import TaskHeads
from timeblind.models.registry import VideoModel, build_model

MODEL_FORMAT = "timeblind.model/3"
DECODER_FORMAT = "timeblind.grounded_decoder/1"
READER_FORMAT = "timeblind.reader/1"


def _save(path: str | Path, payload: dict) -> None:
    with atomic(path) as tmp:
        torch.save(payload, tmp)


def _load(path: str | Path, expected: str, what: str) -> dict:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as err:  # pickle errors: not a plain-tensor file
        raise ValueError(f"{path} is not a {what} file (weights-only load failed: {err})") from None
    if not isinstance(payload, dict) or payload.get("format") != expected:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(f"{path}: expected a '{expected}' file, found {found!r}")
    return payload


def save_model(path: str | Path, model: VideoModel, encoder: str, extra: dict | None = None) -> None:
    _save(path, {
        "format": MODEL_FORMAT,
        "encoder": encoder,
        "encoder_config": dataclasses.asdict(model.encoder.cfg),
        "tasks": model.heads.spec.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "extra": extra or {},
    })


def load_model(path: str | Path) -> tuple[VideoModel, dict]:
    """A model written by save_model (in eval mode) and the file's contents."""
    payload = _load(path, MODEL_FORMAT, "timeblind model")
    model = build_model(payload["encoder"], TaskSpec.from_dict(payload["tasks"]), **payload["encoder_config"])
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as err:  # missing, unexpected or mis-shaped tensors
        raise ValueError(f"{path}: weights do not fit encoder {payload['encoder']!r}: {err}") from None
    return model.eval(), payload


def save_decoder(path: str | Path, net: GroundedDecoder, extra: dict) -> None:
    _save(path, {"format": DECODER_FORMAT, "config": dataclasses.asdict(net.cfg), "state_dict": net.state_dict(),
                 **extra})


def load_decoder(path: str | Path) -> tuple[GroundedDecoder, dict]:
    """A decoder written by save_decoder (in eval mode) and its extras."""
    payload = _load(path, DECODER_FORMAT, "grounded decoder")
    net = GroundedDecoder(GroundedDecoderConfig(**payload["config"]))
    net.load_state_dict(payload["state_dict"])
    return net.eval(), payload


def save_reader(path: str | Path, weights: dict, tasks: TaskSpec, extra: dict | None = None) -> None:
    """The pretrained figure reader: the heads' reader weights and the tasks they answer."""
    _save(path, {"format": READER_FORMAT, "tasks": tasks.to_dict(), "state_dict": weights, "extra": extra or {}})


def load_reader(path: str | Path, heads: TaskHeads) -> dict:
    """Put a pretrained reader into `heads`, which must answer the same tasks; returns the file's extras."""
    payload = _load(path, READER_FORMAT, "timeblind reader")
    if TaskSpec.from_dict(payload["tasks"]) != heads.spec:
        raise ValueError(f"{path}: the reader was trained for other tasks than this model's "
                         "(another data set's classes, categories or windows)")
    missing = sorted(set(payload["state_dict"]) - set(heads.state_dict()))
    if missing:
        raise ValueError(f"{path}: reader weights {missing[:3]} have no place in these heads")
    heads.load_state_dict(payload["state_dict"], strict=False)
    return payload["extra"]
