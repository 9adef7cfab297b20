"""Stimuli: masks and the opposing-motion noise renderer. Knows nothing of training or tracking."""

from timeblind.stimuli.masks import SHAPES, shape_mask
from timeblind.stimuli.motion import MotionConfig, render_clip, motion_energy_mask

__all__ = ["SHAPES", "shape_mask", "MotionConfig", "render_clip", "motion_energy_mask"]
