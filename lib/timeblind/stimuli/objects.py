"""Object silhouettes: symbol glyphs from matplotlib's bundled fonts, labelled with what they depict.

SpookyBench's `objects` category hides a recognisable thing (airplane, anchor, ...) in the noise. The
DejaVu and STIX fonts that ship with matplotlib carry many pictographs (U+2600 Miscellaneous Symbols,
U+2700 Dingbats, chess pieces, card suits); each is rendered once at high resolution, its holes filled
and specks (stray snowflakes, steam) dropped, so the mask is a solid silhouette. Placement matches
shape_mask: scale, centre and rotation of the ink's bounding box, sampled at pixel centres.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from timeblind.stimuli.text import FONT_DIR

# name -> (font file in matplotlib's mpl-data/fonts/ttf, codepoint). Shapes that SHAPES already has
# (heart, diamond, star, cross, crescent) are left out so that a name means one picture.
OBJECTS: dict[str, tuple[str, int]] = {
    "airplane": ("DejaVuSans-Bold.ttf", 0x2708),
    "umbrella": ("DejaVuSans-Bold.ttf", 0x2602),
    "scissors": ("DejaVuSans-Bold.ttf", 0x2702),
    "anchor": ("DejaVuSans-Bold.ttf", 0x2693),
    "spade": ("DejaVuSans-Bold.ttf", 0x2660),
    "club": ("DejaVuSans-Bold.ttf", 0x2663),
    "cloud": ("DejaVuSans-Bold.ttf", 0x2601),
    "sun": ("STIXGeneral.ttf", 0x263C),
    "lightning": ("DejaVuSans-Bold.ttf", 0x26A1),
    "telephone": ("DejaVuSans-Bold.ttf", 0x260E),
    "flag": ("DejaVuSans-Bold.ttf", 0x2691),
    "hammer and pick": ("DejaVuSans-Bold.ttf", 0x2692),
    "check mark": ("DejaVuSans-Bold.ttf", 0x2714),
    "chess king": ("DejaVuSans-Bold.ttf", 0x265A),
    "chess queen": ("DejaVuSans-Bold.ttf", 0x265B),
    "chess rook": ("DejaVuSans-Bold.ttf", 0x265C),
    "chess bishop": ("DejaVuSans-Bold.ttf", 0x265D),
    "chess knight": ("DejaVuSans-Bold.ttf", 0x265E),
    "chess pawn": ("DejaVuSans-Bold.ttf", 0x265F),
    "music notes": ("DejaVuSans-Bold.ttf", 0x266B),
    "pointing hand": ("DejaVuSans-Bold.ttf", 0x261B),
    "wheelchair": ("DejaVuSans-Bold.ttf", 0x267F),
    "recycling symbol": ("DejaVuSans-Bold.ttf", 0x267B),
    "snowflake": ("DejaVuSans-Bold.ttf", 0x2744),
    "pen nib": ("DejaVuSans-Bold.ttf", 0x2712),
    "crossed swords": ("DejaVuSans-Bold.ttf", 0x2694),
    "coffee cup": ("DejaVuSans-Bold.ttf", 0x2615),
    "skull": ("DejaVuSans-Bold.ttf", 0x2620),
    "gear": ("DejaVuSans-Bold.ttf", 0x2699),
    "cat": ("DejaVuSans-Bold.ttf", 0x1F431),
    "mouse": ("DejaVuSans-Bold.ttf", 0x1F42D),
    "house": ("DejaVuSans-Bold.ttf", 0x2302),
}

_GLYPH_PX = 512  # larger ink extent of the cached silhouette; sampled down, so edges stay sharp to 1/512
_SPECK = 0.05  # components smaller than this share of the ink are decoration (steam), not silhouette


def _unknown(name: str) -> ValueError:
    return ValueError(f"unknown object {name!r}; expected one of {sorted(OBJECTS)}")


@cache
def silhouette(name: str) -> Image.Image:
    """The object's filled silhouette as an 'L' image (0 or 255) cropped to its ink, larger side ~512 px.

    Rendered once per process and shared through the cache: treat it as read-only.
    """
    if name not in OBJECTS:
        raise _unknown(name)
    font_file, codepoint = OBJECTS[name]
    char = chr(codepoint)
    font = ImageFont.truetype(str(FONT_DIR / font_file), _GLYPH_PX)
    left, top, right, bottom = font.getbbox(char)
    # Re-render at the size that makes the larger ink side _GLYPH_PX.
    font = ImageFont.truetype(str(FONT_DIR / font_file), round(_GLYPH_PX**2 / max(right - left, bottom - top)))
    left, top, right, bottom = font.getbbox(char)
    image = Image.new("L", (right - left + 2, bottom - top + 2))
    ImageDraw.Draw(image).text((1 - left, 1 - top), char, font=font, fill=255)
    from scipy import ndimage  # imported here: planning reads OBJECTS without loading scipy

    ink = ndimage.binary_fill_holes(np.asarray(image) >= 128)  # (h, w) a silhouette has no holes
    labels, count = ndimage.label(ink)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    ink = np.isin(labels, 1 + np.flatnonzero(sizes >= _SPECK * sizes.sum()))
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    ink = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    return Image.fromarray(ink.astype(np.uint8) * 255)


@cache
def object_hull(name: str) -> np.ndarray:
    """(N, 2) convex hull of the silhouette in SHAPES' unit frame: x right, y down, centred on the ink's
    bounding box, larger half-extent 1. Bounds the figure under any rotation (used to keep it in frame)."""
    from scipy.spatial import ConvexHull

    image = silhouette(name)
    ink = np.asarray(image) > 0
    rows, cols = np.nonzero(ink)
    corners = np.concatenate([np.stack([cols + dx, rows + dy], axis=1) for dx in (0, 1) for dy in (0, 1)])
    hull = corners[ConvexHull(corners).vertices].astype(float)
    hull = (hull - np.array(image.size) / 2) / (max(image.size) / 2)
    hull.flags.writeable = False  # shared through the cache
    return hull


def object_mask(
    name: str,
    height: int,
    width: int,
    *,
    scale: float = 0.35,
    center: tuple[float, float] = (0.5, 0.5),
    rotation: float = 0.0,
    aspect: float = 1.0,
) -> np.ndarray:
    """Rasterise object `name` into a (height, width) bool mask.

    Same placement as shape_mask: the larger half-extent of the ink's bounding box is scale * min(height,
    width); center: (row, col) of that box as fractions of the frame; rotation: radians, positive turns
    clockwise on screen; aspect: the rotated figure stretched horizontally by this factor.
    """
    if name not in OBJECTS:
        raise _unknown(name)
    image = silhouette(name)
    k = scale * min(height, width) / (max(image.size) / 2)  # output pixels per silhouette pixel
    c, s = np.cos(rotation), np.sin(rotation)
    cx, cy = center[1] * width, center[0] * height
    # Only the figure's bounding box is sampled: the rotated silhouette rectangle, clipped to the frame.
    half_w, half_h = image.width / 2 * k, image.height / 2 * k
    reach_x, reach_y = (abs(c) * half_w + abs(s) * half_h) * aspect, abs(s) * half_w + abs(c) * half_h
    left, right = max(int(cx - reach_x) - 1, 0), min(int(cx + reach_x) + 2, width)
    top, bottom = max(int(cy - reach_y) - 1, 0), min(int(cy + reach_y) + 2, height)
    mask = np.zeros((height, width), bool)
    if right <= left or bottom <= top:
        return mask
    # PIL's affine transform maps each output point (x, y) to the input point (a x + b y + c, d x + e y + f),
    # both in continuous coordinates with pixel centres at +0.5: the inverse of rotate-scale-shift.
    # Nearest sampling of the 512 px silhouette is the pixel-centre test, to within 1/512 of the figure.
    a, b, d, e = c / (k * aspect), s / k, -s / (k * aspect), c / k  # x / aspect undoes the stretch
    x0, y0 = left - cx, top - cy  # box origin relative to the figure centre
    data = (a, b, image.width / 2 + a * x0 + b * y0, d, e, image.height / 2 + d * x0 + e * y0)
    box = image.transform((right - left, bottom - top), Image.Transform.AFFINE, data, Image.Resampling.NEAREST)
    mask[top:bottom, left:right] = np.asarray(box) > 0
    return mask
