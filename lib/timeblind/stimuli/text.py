"""Word masks: uppercase English words rendered with the fonts bundled in matplotlib.

SpookyBench's `words` category hides a word in the noise; reading it needs the motion. Fonts come from
matplotlib's mpl-data (DejaVu, STIX), so every install renders the same pixels without system fonts.
Bold faces are the default: thick strokes survive the noise at small sizes.
"""

from __future__ import annotations

import importlib.util
import math
import re
from functools import cache, lru_cache
from importlib.resources import files
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# Located without importing matplotlib (slow to import; only its data files are needed).
FONT_DIR = Path(importlib.util.find_spec("matplotlib").submodule_search_locations[0]) / "mpl-data" / "fonts" / "ttf"

FONTS: dict[str, str] = {
    "sans-bold": str(FONT_DIR / "DejaVuSans-Bold.ttf"),
    "serif-bold": str(FONT_DIR / "DejaVuSerif-Bold.ttf"),
    "mono-bold": str(FONT_DIR / "DejaVuSansMono-Bold.ttf"),
    "sans-bold-oblique": str(FONT_DIR / "DejaVuSans-BoldOblique.ttf"),
    "stix-bold": str(FONT_DIR / "STIXGeneralBol.ttf"),
}

MIN_CAP_PX = 3  # below this cap height letters are not legible
_MARGIN = 0.04  # free border kept around the word, fraction of each frame side (at least 1 px)
_WORD = re.compile(r"[A-Z]+")


def load_words(min_len: int = 3, max_len: int = 8) -> list[str]:
    """The words of data/words.txt with min_len <= length <= max_len: uppercase A-Z, deduplicated, in file order."""
    return [w for w in _all_words() if min_len <= len(w) <= max_len]


@lru_cache(maxsize=1)
def _all_words() -> tuple[str, ...]:
    text = (files("timeblind.stimuli") / "data" / "words.txt").read_text(encoding="utf-8")
    words = (line.strip().upper() for line in text.splitlines())
    return tuple(dict.fromkeys(w for w in words if _WORD.fullmatch(w)))  # skips blanks and '#' comments


@lru_cache(maxsize=256)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


@cache
def _cap_ratio(path: str) -> float:
    """Cap height (the ink height of 'H') per pixel of font size."""
    _, top, _, bottom = _font(path, 200).getbbox("H", anchor="ls")
    return (bottom - top) / 200


@lru_cache(maxsize=4096)
def _ink(word: str, path: str, size: int) -> np.ndarray:
    """(h, w) bool: `word` at font size `size`, cropped to its ink. Cached: words repeat across samples."""
    font = _font(path, size)
    left, top, right, bottom = font.getbbox(word, anchor="ls")
    image = Image.new("L", (right - left + 2, bottom - top + 2))
    ImageDraw.Draw(image).text((1 - left, 1 - top), word, font=font, fill=255, anchor="ls")
    ink = np.asarray(image) >= 128  # antialiased coverage >= 1/2: pixel centre inside the glyph
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    ink = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    ink.flags.writeable = False  # shared through the cache
    return ink


def word_mask(
    word: str,
    height: int,
    width: int,
    *,
    font: str = "sans-bold",
    size: float = 0.5,
    center: tuple[float, float] = (0.5, 0.5),
) -> np.ndarray:
    """Render `word` (uppercase A-Z) into a (height, width) bool mask.

    size: cap height as a fraction of height, reduced when needed so the word fits inside the frame
    with a small margin; center: (row, col) of the ink's bounding box as fractions of the frame,
    moved as little as needed to keep the word inside.
    """
    if not _WORD.fullmatch(word):
        raise ValueError(f"word {word!r}: expected uppercase letters A-Z only")
    if font not in FONTS:
        raise ValueError(f"unknown font {font!r}; expected one of {sorted(FONTS)}")
    if not 0 < size <= 1:
        raise ValueError(f"size {size}: expected a cap height fraction in (0, 1]")
    path = FONTS[font]
    margin_r, margin_c = max(1, math.ceil(_MARGIN * height)), max(1, math.ceil(_MARGIN * width))
    room_h, room_w = height - 2 * margin_r, width - 2 * margin_c
    px = max(1, round(size * height / _cap_ratio(path)))
    ink = _ink(word, path, px)
    # Ink extent grows about linearly with the font size: rescale once, then step down past rounding.
    if ink.shape[0] > room_h or ink.shape[1] > room_w:
        px = max(1, int(px * min(room_h / ink.shape[0], room_w / ink.shape[1])))
        ink = _ink(word, path, px)
        while px > 1 and (ink.shape[0] > room_h or ink.shape[1] > room_w):
            px -= 1
            ink = _ink(word, path, px)
    cap = _cap_ratio(path) * px
    if cap < MIN_CAP_PX or ink.shape[0] > room_h or ink.shape[1] > room_w:
        raise ValueError(f"frame {height}x{width} is too small to render {word!r} legibly in {font!r}: "
                         f"cap height {cap:.1f} px, expected at least {MIN_CAP_PX} px")
    h, w = ink.shape
    row = min(max(round(center[0] * height - h / 2), margin_r), height - margin_r - h)
    col = min(max(round(center[1] * width - w / 2), margin_c), width - margin_c - w)
    mask = np.zeros((height, width), bool)
    mask[row:row + h, col:col + w] = ink
    return mask
