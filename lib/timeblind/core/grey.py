"""Grey restoration: one definition of how a low-contrast clip is brought back to full grey range.

Area-averaging k x k cells of single-pixel dots leaves a texture with a std of about 0.5/k of the
range; the reader of external videos (io/resample.py) and the generator's rendering at k times
the clip size (stimuli/motion.py) both standardise each clip to the statistics of timeblind's
Gaussian noise, so a model sees the same grey levels from either source.
"""

from __future__ import annotations

import numpy as np

GRAY_MEAN = 127.5
GRAY_STD = 63.75  # grey-level std of restored clips: timeblind's Gaussian noise, 0.25 of the 0-255 range


def restore_grey(clip: np.ndarray) -> np.ndarray:
    """(T, H, W) float32 -> uint8, standardised over the whole clip to mean 127.5, std 63.75."""
    z = (clip - clip.mean()) / (clip.std() + 1e-6)
    return np.clip(GRAY_MEAN + GRAY_STD * z, 0, 255).round().astype(np.uint8)
