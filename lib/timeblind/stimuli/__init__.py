"""Stimuli: masks, categories and the opposing-motion noise renderers. Knows nothing of training or tracking."""

from timeblind.stimuli.masks import SHAPES, shape_mask
from timeblind.stimuli.motion import (NOISE_KINDS, MotionConfig, motion_energy_mask, opponent_energy, render_bits,
                                      render_clip)

__all__ = ["SHAPES", "shape_mask", "NOISE_KINDS", "MotionConfig", "render_clip", "render_bits", "motion_energy_mask",
           "opponent_energy"]
