"""Encoders (plain nn.Modules), task heads and the registry that builds them by name from config."""

from timeblind.models.registry import ENCODERS, VideoModel, build_encoder, build_model, load_model, save_model
from timeblind.tasks import TaskSpec

__all__ = ["ENCODERS", "TaskSpec", "VideoModel", "build_encoder", "build_model", "load_model", "save_model"]
