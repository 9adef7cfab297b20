"""Encoders (plain nn.Modules) and the registry that builds them by name from config."""

from timeblind.models.registry import (ENCODERS, VideoClassifier, build_classifier, build_encoder, load_model,
                                       save_model)

__all__ = ["ENCODERS", "VideoClassifier", "build_classifier", "build_encoder", "load_model", "save_model"]
