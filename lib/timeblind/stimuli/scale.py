"""Rendering at k times the clip size, then area-averaging k x k: clips as the reader makes them.

External SpookyBench videos reach a model through io/resample.py: single-pixel dots at 960x540 are
area-averaged down to the model's size, so the model sees a blurred texture moving about one pixel
per kept frame, grey-restored per clip. A generator that renders dots at the clip size makes
another picture (binary dots, sharp edges). With render_scale k > 1 each clip is instead rendered at
k x its height and width (whole-pixel motion there), only its kept frames, then every k x k cell is
averaged and the clip grey-restored by the reader's own formula (core/grey.py).

Figure masks are drawn at the rendered scale too, so the share of figure in each clip pixel (the
soft mask a model may be trained to recover) is exact.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from timeblind.core.grey import restore_grey
from timeblind.stimuli.motion import ClipMotion, MotionConfig, clip_config, render_bits, render_clip


def area_average(x: np.ndarray, k: int) -> np.ndarray:
    """(..., k*H, k*W) -> (..., H, W) float32: the mean of each k x k cell."""
    *lead, height, width = x.shape
    if height % k or width % k:
        raise ValueError(f"a {height}x{width} frame does not split into {k}x{k} cells")
    return x.reshape(*lead, height // k, k, width // k, k).mean(axis=(-3, -1), dtype=np.float32)


@cache
def _group_counts(k: int) -> np.ndarray:
    """(256, 8 // k) uint8: set bits of each k-bit group of a byte, most significant group first
    (np.packbits order)."""
    bits = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1)  # (256, 8)
    table = bits.reshape(256, 8 // k, k).sum(axis=2).astype(np.uint8)
    table.flags.writeable = False  # shared through the cache
    return table


def packed_cell_counts(packed: np.ndarray, k: int, width: int) -> np.ndarray:
    """Bright dots per k x k cell of a bit-packed clip: (T, k*H, ceil(k*W/8)) uint8 -> (T, H, W) uint16.

    Counted from the packed bytes by table look-up where a cell's row is a whole number of bits of
    one byte or a whole number of bytes, so the k*k-times larger grey clip is never unpacked.
    """
    frames, rows, nbytes = packed.shape
    if 8 % k == 0:
        row_counts = _group_counts(k)[packed].reshape(frames, rows, nbytes * (8 // k))[..., :width]
    elif k % 8 == 0:
        row_counts = _group_counts(8)[packed][..., 0].reshape(frames, rows, width, k // 8).sum(axis=-1, dtype=np.uint16)
    else:
        row_counts = np.unpackbits(packed, axis=-1, count=k * width).reshape(frames, rows, width, k).sum(
            axis=-1, dtype=np.uint16)
    return row_counts.reshape(frames, rows // k, k, width).sum(axis=2, dtype=np.uint16)


def render_scaled(mask: np.ndarray, cfg: MotionConfig, k: int, rng: np.random.Generator, angle: float) -> np.ndarray:
    """A clip rendered at k x its size and brought back: mask (k*H, k*W) or (T, k*H, k*W) bool at the
    rendered scale, cfg one clip's concrete config there (motion.clip_config) -> (T, H, W) uint8 grey,
    area-averaged and grey-restored as io/resample.py restores external videos."""
    height, width = mask.shape[-2] // k, mask.shape[-1] // k
    if cfg.noise == "binary":
        low, high = cfg.binary_levels
        counts = packed_cell_counts(render_bits(mask, cfg, rng, angle), k, width)
        grey = low + counts.astype(np.float32) * np.float32((high - low) / (k * k))  # what area-averaging grey gives
    else:
        grey = area_average(render_clip(mask, cfg, rng, angle), k)
    if grey.shape[1:] != (height, width):
        raise ValueError(f"mask of {mask.shape[-2]}x{mask.shape[-1]} px: expected a multiple of k={k} on each side")
    return restore_grey(grey)


def render_drawn(mask: np.ndarray, cfg: MotionConfig, clip: ClipMotion, rng: np.random.Generator) -> np.ndarray:
    """Grey frames (T, H, W) uint8 of a mask drawn at cfg.render_scale x the clip size, with one clip's
    motion draws (motion.draw_motion): at the clip size as it is, else rendered at scale and brought back."""
    concrete = clip_config(cfg, clip)
    if cfg.render_scale == 1:
        return render_clip(mask, concrete, rng, clip.angle)
    return render_scaled(mask, concrete, cfg.render_scale, rng, clip.angle)


def soft_mask(mask: np.ndarray, frames: int, k: int) -> np.ndarray:
    """Share of figure in each clip pixel, x 255 rounded: mask (k*H, k*W) or (T, k*H, k*W) bool at the
    rendered scale -> (T, H, W) uint8. A static mask is averaged once and repeated over the frames."""
    mask = np.asarray(mask, bool)
    *lead, rows, cols = mask.shape
    counts = mask.reshape(*lead, rows // k, k, cols // k, k).sum(axis=(-3, -1), dtype=np.uint32)
    cells = k * k
    share = ((counts * 255 + cells // 2) // cells).astype(np.uint8)  # exact integer rounding, half up
    return np.broadcast_to(share, (frames, *share.shape[-2:])) if share.ndim == 2 else share
