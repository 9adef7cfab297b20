"""Binary shape masks rasterised from vector outlines.

Every shape is a closed polygon in a unit frame centred on the origin (radius ~1),
placed by a similarity transform (scale, rotation, shift) and rasterised at pixel centres.
"""

from __future__ import annotations

import numpy as np
from matplotlib.path import Path


def _regular(n: int, phase: float = 0.0) -> np.ndarray:
    angles = phase + 2 * np.pi * np.arange(n) / n
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _star(points: int = 5, inner: float = 0.45) -> np.ndarray:
    angles = -np.pi / 2 + np.pi * np.arange(2 * points) / points
    radius = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    return np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)


def _cross(arm: float = 0.33) -> np.ndarray:
    a = arm
    return np.array([(-a, -1), (a, -1), (a, -a), (1, -a), (1, a), (a, a),
                     (a, 1), (-a, 1), (-a, a), (-1, a), (-1, -a), (-a, -a)], float)


def _heart(n: int = 64) -> np.ndarray:
    # Classic parametric heart, y grows downwards in image coordinates so the lobes sit on top.
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    outline = np.stack([x, y + 2.5], axis=1)
    return outline / np.abs(outline).max()


# y points down (image rows), so "up" is negative y.
SHAPES: dict[str, np.ndarray] = {
    "circle": _regular(64),
    "square": _regular(4, np.pi / 4) * np.sqrt(2) * 0.85,
    "triangle": _regular(3, -np.pi / 2) * 1.1 + np.array([0.0, 0.15]),
    "star": _star(),
    "cross": _cross(),
    "heart": _heart(),
    "diamond": _regular(4, -np.pi / 2) * np.array([0.8, 1.05]),
    "hexagon": _regular(6),
}


def shape_mask(
    name: str,
    height: int,
    width: int,
    *,
    scale: float = 0.35,
    center: tuple[float, float] = (0.5, 0.5),
    rotation: float = 0.0,
) -> np.ndarray:
    """Rasterise shape `name` into a (height, width) bool mask.

    scale: radius as a fraction of min(height, width); center: (row, col) as fractions of the
    frame; rotation: radians.
    """
    if name not in SHAPES:
        raise ValueError(f"unknown shape {name!r}; expected one of {sorted(SHAPES)}")
    c, s = np.cos(rotation), np.sin(rotation)
    radius = scale * min(height, width)
    xy = SHAPES[name] @ np.array([[c, s], [-s, c]]) * radius
    xy = xy + np.array([center[1] * width, center[0] * height])
    rows, cols = np.mgrid[0:height, 0:width]
    pixel_centres = np.stack([cols.ravel() + 0.5, rows.ravel() + 0.5], axis=1)
    return Path(xy).contains_points(pixel_centres).reshape(height, width)
