"""Binary shape masks rasterised from vector outlines.

Every shape is a closed polygon in a unit frame centred on the origin (radius ~1, x right, y down),
placed by a similarity transform (scale, rotation, shift) and filled at pixel centres by a vectorised
scanline fill: a mask is drawn once per generated video at up to 960x540, and testing every pixel
centre against the path (matplotlib's contains_points) was the slowest step of a sample.
"""

from __future__ import annotations

import numpy as np


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


def _ring(inner: float = 0.5, n: int = 64) -> np.ndarray:
    # One polygon with a zero-width slit: out along the outer circle, back along the inner one in the
    # opposite direction. The slit's two edges coincide and cancel, leaving the hole.
    t = 2 * np.pi * np.arange(n + 1) / n  # (n+1,), closes the circle
    outer = np.stack([np.cos(t), np.sin(t)], axis=1)
    return np.concatenate([outer, inner * outer[::-1]])


def _crescent(offset: float = 0.5, cut: float = 0.85, n: int = 48) -> np.ndarray:
    # Unit disc minus a disc of radius `cut` shifted right by `offset`; horns point right.
    x = (offset**2 + 1 - cut**2) / (2 * offset)  # where the two circles cross
    y = np.sqrt(1 - x**2)
    phi, psi = np.arctan2(y, x), np.arctan2(y, x - offset)
    t_outer = np.linspace(phi, 2 * np.pi - phi, n)
    t_inner = np.linspace(2 * np.pi - psi, psi, n)
    outline = np.concatenate([np.stack([np.cos(t_outer), np.sin(t_outer)], axis=1),
                              np.stack([offset + cut * np.cos(t_inner), cut * np.sin(t_inner)], axis=1)])
    return outline - np.array([(x - 1) / 2, 0.0])  # centre the bounding box


def _semicircle(n: int = 48) -> np.ndarray:
    t = np.linspace(np.pi, 2 * np.pi, n)  # upper half (y < 0), flat side down
    return np.stack([np.cos(t), np.sin(t) + 0.5], axis=1)


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
    "pentagon": _regular(5, -np.pi / 2) + np.array([0.0, 0.1]),
    "ring": _ring(),
    "crescent": _crescent(),
    "semicircle": _semicircle(),
    "arrow": np.array([(-1, -0.28), (0.1, -0.28), (0.1, -0.65), (1, 0),
                       (0.1, 0.65), (0.1, 0.28), (-1, 0.28)], float),
    "trapezoid": np.array([(-0.5, -0.6), (0.5, -0.6), (1, 0.6), (-1, 0.6)], float),
    # Shapes the release shows or that are common names. Elongated on purpose (2:1 rectangle, 0.6 oval, a
    # strong slant) so that no rotation turns one into a square, a circle or a rectangle.
    "parallelogram": np.array([(-0.45, -0.36), (1, -0.36), (0.45, 0.36), (-1, 0.36)], float),  # sides 1.6 : 1
    "octagon": _regular(8, np.pi / 8),  # flat top; at small sizes it differs from the circle only at its corners
    "rectangle": np.array([(-1, -0.5), (1, -0.5), (1, 0.5), (-1, 0.5)], float),
    "oval": _regular(64) * np.array([1.0, 0.6]),
    "kite": np.array([(0, -1), (0.62, -0.4), (0, 1), (-0.62, -0.4)], float),
}


# Pairs of names that become one picture when figures may turn freely (placement.rotation "any") or be
# stretched horizontally (placement.aspect, whose high / low ratio is the largest stretch between two
# samples): a square turned 45 degrees and stretched a little is the diamond, a circle (or a near-circle)
# stretched to about 1.67 : 1 is the oval, a square stretched 2 : 1 the rectangle, and a turned, stretched
# diamond the parallelogram. (a, b, needs any rotation, the least stretch ratio that merges them; the
# ratios are each shape's proportions with 20% to spare: equal-area overlaps reach 0.9 there.)
MERGERS: tuple[tuple[str, str, bool, float], ...] = (
    ("square", "diamond", True, 1.0),
    ("circle", "oval", False, 1 / 0.6 / 1.2),
    ("octagon", "oval", False, 1 / 0.6 / 1.2),
    ("hexagon", "oval", False, 1 / 0.6 / 1.2),
    ("square", "rectangle", False, 2 / 1.2),
    ("diamond", "parallelogram", True, 1.8 / 1.2),
)


def merged_shapes(names, any_rotation: bool, stretch: float) -> list[str]:
    """'a and b (why)' for each pair of `names` that the allowed rotations and stretches make one picture."""
    found = []
    for a, b, rotation, ratio in MERGERS:
        if a in names and b in names and (any_rotation or not rotation) and stretch >= ratio:
            why = "turned" if stretch == 1.0 or ratio == 1.0 else f"stretched {ratio:.2f}:1" + (
                " and turned" if rotation else "")
            found.append(f"{a} and {b} ({why})")
    return found


def shape_mask(
    name: str,
    height: int,
    width: int,
    *,
    scale: float = 0.35,
    center: tuple[float, float] = (0.5, 0.5),
    rotation: float = 0.0,
    aspect: float = 1.0,
) -> np.ndarray:
    """Rasterise shape `name` into a (height, width) bool mask.

    scale: radius as a fraction of min(height, width); center: (row, col) as fractions of the
    frame; rotation: radians, positive turns clockwise on screen (y points down); aspect: the
    rotated figure stretched horizontally by this factor (a video of another aspect ratio squeezed
    to the frame).
    """
    if name not in SHAPES:
        raise ValueError(f"unknown shape {name!r}; expected one of {sorted(SHAPES)}")
    c, s = np.cos(rotation), np.sin(rotation)
    radius = scale * min(height, width)
    xy = SHAPES[name] @ np.array([[c, s], [-s, c]]) * radius  # (N, 2) x, y in pixels
    if aspect != 1.0:
        xy = xy * np.array([aspect, 1.0])
    return fill_polygon(xy + np.array([center[1] * width, center[0] * height]), height, width)


def fill_polygon(xy: np.ndarray, height: int, width: int) -> np.ndarray:
    """(height, width) bool mask of the pixels whose centres lie inside the polygon `xy` (N, 2).

    xy holds (x, y) = (col, row) in continuous pixel coordinates (pixel (i, j) spans [j, j+1) x [i, i+1));
    even-odd rule, so a polygon may carve a hole with a zero-width slit. A numpy scanline fill:
    PIL's polygon rounds vertices to whole pixels and adds the outline, which biases small shapes.
    """
    mask = np.zeros((height, width), bool)
    x0, y0 = xy[:, 0], xy[:, 1]  # edge starts, (N,)
    x1, y1 = np.concatenate([x0[1:], x0[:1]]), np.concatenate([y0[1:], y0[:1]])  # edge ends
    # Work only inside the bounding box. Row i is sampled at its centre i + 0.5, and an edge covers the
    # rows with centres in [min y, max y): half-open, so a scanline through a vertex counts one edge.
    top, bottom = np.minimum(y0, y1), np.maximum(y0, y1)
    first = np.clip(np.ceil(top - 0.5), 0, height).astype(np.int64)
    stop = np.clip(np.ceil(bottom - 0.5), 0, height).astype(np.int64)
    counts = stop - first  # rows crossed by each edge, (N,)
    total = int(counts.sum())
    left, right = max(int(np.floor(x0.min())), 0), min(int(np.ceil(x0.max())) + 1, width)
    if total == 0 or right <= left:
        return mask
    edges = np.repeat(np.arange(len(x0)), counts)  # (K,) one entry per edge-row crossing
    rows = np.arange(total) - np.repeat(np.cumsum(counts) - counts - first, counts)
    t = (rows + 0.5 - y0[edges]) / (y1[edges] - y0[edges])
    xs = x0[edges] + t * (x1[edges] - x0[edges])
    # Sorted along each row, crossings pair up into spans (even-odd rule); a span from xa to xb covers
    # the pixels whose centres j + 0.5 lie in [xa, xb): floor(xa + 0.5) <= j < floor(xb + 0.5).
    cols = np.clip(np.floor(xs + 0.5).astype(np.int64), left, right)
    keys = np.sort(rows * (width + 1) + cols)  # row-major order of the crossings
    rows, cols = (keys // (width + 1)).tolist(), (keys % (width + 1)).tolist()
    # Each row holds an even number of crossings (the polygon is closed), so entries 2k and 2k + 1
    # bound a span. Writing spans in place needs no frame-sized temporaries, which made a dense
    # parity (cumulative-sum) fill slow and erratic at 960x540.
    for row, begin, end in zip(rows[::2], cols[::2], cols[1::2]):
        mask[row, begin:end] = True
    return mask
