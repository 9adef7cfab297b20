"""Opposing-motion noise: the SpookyBench principle.

Pixels inside the mask show a noise field translating one way, pixels outside show an
independent field translating the opposite way. Every single frame is i.i.d. noise
everywhere, so the mask exists only in how pixels move from frame to frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import uniform_filter


@dataclass(frozen=True)
class MotionConfig:
    frames: int = 8  # clip length T
    speed: int = 1  # displacement of each noise field in px/frame
    density: float = 0.5  # share of white dots in the binary noise
    coherence: float = 1.0  # share of pixels that follow their field each frame; the rest refresh

    def __post_init__(self):
        if self.frames < 2:
            raise ValueError(f"frames={self.frames}: need at least 2 frames for motion")
        if self.speed < 1:
            raise ValueError(f"speed={self.speed}: expected an integer >= 1 px/frame")
        if not 0.0 < self.density < 1.0:
            raise ValueError(f"density={self.density}: expected a value in (0, 1)")
        if not 0.0 <= self.coherence <= 1.0:
            raise ValueError(f"coherence={self.coherence}: expected a value in [0, 1]")


def render_clip(
    mask: np.ndarray, cfg: MotionConfig, rng: np.random.Generator, *, axis: int = 0, sign: int = 1
) -> np.ndarray:
    """Render one clip: (H, W) bool mask -> (T, H, W) bool frames of binary dot noise.

    axis 0 moves along rows (vertical), axis 1 along columns (horizontal); sign picks which
    way the figure moves (the background always moves the other way).
    """
    if axis == 1:  # render vertically on the transposed mask, then transpose back
        return render_clip(mask.T, cfg, rng, axis=0, sign=sign).transpose(0, 2, 1)
    H, W = mask.shape
    T, v = cfg.frames, cfg.speed
    travel = v * (T - 1)
    figure_field = rng.random((H + travel, W)) < cfg.density  # (H + travel, W)
    ground_field = rng.random((H + travel, W)) < cfg.density
    # Window offsets: the figure window slides one way, the ground window the other.
    t = np.arange(T)
    fig_off = v * t if sign > 0 else travel - v * t
    gnd_off = travel - fig_off
    rows = np.arange(H)
    figure = figure_field[fig_off[:, None] + rows[None, :]]  # (T, H, W)
    ground = ground_field[gnd_off[:, None] + rows[None, :]]  # (T, H, W)
    frames = np.where(mask[None], figure, ground)
    if cfg.coherence < 1.0:
        refresh = rng.random(frames.shape) >= cfg.coherence
        frames = np.where(refresh, rng.random(frames.shape) < cfg.density, frames)
    return frames


def motion_energy(frames: np.ndarray, speed: int = 1, smooth: int = 3) -> np.ndarray:
    """Signed motion energy per pixel and axis: (T, H, W) -> (2, H, W).

    For each axis, counts how often a pixel matches its neighbour `speed` px ahead in the
    previous frame minus how often it matches the neighbour behind (a Reichardt-style
    correlator), averaged over frame pairs and box-smoothed over `smooth` px.
    """
    x = frames.astype(np.float32) * 2 - 1  # (T, H, W) in {-1, +1}
    prev, nxt = x[:-1], x[1:]
    energy = []
    for axis in (1, 2):  # rows, columns of the (T, H, W) array
        ahead = np.roll(prev, -speed, axis=axis)
        behind = np.roll(prev, speed, axis=axis)
        e = (nxt * ahead - nxt * behind).mean(axis=0)  # (H, W)
        energy.append(uniform_filter(e, size=smooth, mode="nearest"))
    return np.stack(energy)


def motion_energy_mask(frames: np.ndarray, speed: int = 1, smooth: int = 3) -> np.ndarray:
    """Recover the figure mask from motion alone: (T, H, W) -> (H, W) bool.

    Takes the axis with the stronger energy and calls 'figure' every pixel that moves
    against the frame border's majority direction (the border is background).
    """
    energy = motion_energy(frames, speed, smooth)  # (2, H, W)
    e = energy[np.argmax(np.abs(energy).mean(axis=(1, 2)))]
    border = np.concatenate([e[0], e[-1], e[:, 0], e[:, -1]])
    background_sign = np.sign(np.median(border)) or 1.0
    return np.sign(e) == -background_sign
