"""A faithful copy of the seed document's `create_spooky_benchmark_example`, kept as a reference.

It is NOT used to make data: `timeblind.stimuli.patterns` is the fixed, controllable version.
This module exists only as the speed baseline for `make bench` and as a documented record of
what the seed wrote, bugs included (see the comments), so that the fixes can be compared to it.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

SEED_PATTERN_TYPES = ("biological", "communication", "timeseries")


def seed_reference_example(
    pattern_type: str = "biological",
    length: int = 8,
    rng: np.random.RandomState | None = None,
    *,
    size: int = 224,
) -> tuple[list[Image.Image], np.ndarray | list[int]]:
    """The seed's generator as written: `length` RGB `size`x`size` PIL frames and the bit pattern.

    rng: a legacy np.random.RandomState for reproducibility; None draws from numpy's global
    state exactly like the seed's `np.random.*` calls. `size` is 224 in the seed.
    """
    if pattern_type not in SEED_PATTERN_TYPES:
        # The seed falls through to a NameError here; a clear message is the only change.
        raise ValueError(f"pattern_type={pattern_type!r}: expected one of {SEED_PATTERN_TYPES}")
    r = np.random if rng is None else rng
    if pattern_type == "biological":  # neuron firing spike train
        pattern = r.binomial(n=1, p=0.3, size=length)
    elif pattern_type == "communication":  # "Morse-like encoding"
        # Seed bug kept on purpose: a constant list, not Morse, identical in every sample and
        # silently shorter than `length` when length > 8.
        pattern = [1, 0, 1, 0, 1, 1, 1, 0][:length]
    else:  # timeseries: smooth oscillation with noise
        # Seed quirk kept: one fixed period over linspace(0, 2*pi, length), same phase every sample.
        t = np.linspace(0, 2 * np.pi, length)
        pattern = np.sin(t) + r.normal(0, 0.1, length)
        pattern = (pattern > 0.5).astype(int)
    frames = []
    for bit_value in pattern:
        noise = r.normal(0.5, 0.2, (size, size, 3))  # (H, W, 3)
        noise = np.clip(noise, 0, 1)
        if bit_value == 1:
            noise = noise * 1.05  # 5% brightness increase
        else:
            noise = noise * 0.95
        # Seed bug kept: values above 1/1.05 exceed 255 and wrap around in the uint8 cast,
        # turning the brightest pixels of a "1" frame almost black.
        frames.append(Image.fromarray((noise * 255).astype(np.uint8)))
    return frames, pattern
