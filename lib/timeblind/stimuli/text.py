"""Word masks: English words and two-word phrases rendered with fonts that ship in Python packages.

SpookyBench's `words` category hides a word in the noise; reading it needs the motion. Fonts come from
packages (matplotlib's mpl-data: DejaVu, STIX; and the font-* packages of envs/requirements.txt: Lato,
Source Sans Pro, Roboto, Manrope, Hanken Grotesk), so every install renders the same pixels without
system fonts. Bold faces throughout: thick strokes survive the noise at small sizes, and the release
sets its words in a bold sans-serif.

A text is one or more lines set centred one below the other. Besides the mask, text_mask gives each
character's line and horizontal extent [x0, x1) from the font's advance widths (the width of the
prefix before and after it), which is where a reader looking column by column meets that character.
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


def _package_dir(package: str) -> Path | None:
    """Where an installed package lives, found without importing it (matplotlib is slow to import)."""
    spec = importlib.util.find_spec(package)
    return Path(spec.submodule_search_locations[0]) if spec else None


FONT_DIR = (_package_dir("matplotlib") or Path("matplotlib")) / "mpl-data" / "fonts" / "ttf"

# name -> (import name of the package, pip name, file inside the package)
_FONT_FILES: dict[str, tuple[str, str, str]] = {
    "sans-bold": ("matplotlib", "matplotlib", "mpl-data/fonts/ttf/DejaVuSans-Bold.ttf"),
    "serif-bold": ("matplotlib", "matplotlib", "mpl-data/fonts/ttf/DejaVuSerif-Bold.ttf"),
    "mono-bold": ("matplotlib", "matplotlib", "mpl-data/fonts/ttf/DejaVuSansMono-Bold.ttf"),
    "sans-bold-oblique": ("matplotlib", "matplotlib", "mpl-data/fonts/ttf/DejaVuSans-BoldOblique.ttf"),
    "stix-bold": ("matplotlib", "matplotlib", "mpl-data/fonts/ttf/STIXGeneralBol.ttf"),
    "lato-bold": ("font_lato", "font-lato", "files/Lato-Bold.ttf"),
    "lato-black": ("font_lato", "font-lato", "files/Lato-Black.ttf"),
    "source-sans-bold": ("font_source_sans_pro", "font-source-sans-pro", "files/SourceSansPro-Bold.ttf"),
    "source-sans-black": ("font_source_sans_pro", "font-source-sans-pro", "files/SourceSansPro-Black.ttf"),
    "roboto-bold": ("font_roboto", "font-roboto", "files/Roboto-Bold.ttf"),
    "roboto-black": ("font_roboto", "font-roboto", "files/Roboto-Black.ttf"),
    "manrope-bold": ("font_manrope", "font-manrope", "files/Manrope-Bold.ttf"),
    "manrope-extrabold": ("font_manrope", "font-manrope", "files/Manrope-ExtraBold.ttf"),
    "hanken-grotesk-bold": ("font_hanken_grotesk", "font-hanken-grotesk", "files/HankenGrotesk-Bold.otf"),
}
FONTS: dict[str, str] = {name: str((_package_dir(package) or Path(package)) / file)
                         for name, (package, _, file) in _FONT_FILES.items()}
DEFAULT_FONTS = ("sans-bold", "serif-bold", "mono-bold", "sans-bold-oblique", "stix-bold")  # words.fonts left empty
# Names that stand for several fonts in words.fonts: the release's look, a bold sans-serif (Helvetica/Arial-like).
FONT_GROUPS: dict[str, tuple[str, ...]] = {
    "bold-sans": ("sans-bold", "lato-bold", "lato-black", "source-sans-bold", "source-sans-black", "roboto-bold",
                  "roboto-black", "manrope-bold", "manrope-extrabold", "hanken-grotesk-bold"),
}
CASES = ("upper", "lower", "title")  # words.case may also be "mixed": one of these per sample

MIN_CAP_PX = 3  # below this cap height letters are not legible
_MARGIN = 0.04  # free border kept around the text, fraction of each frame side (at least 1 px)
_WORD = re.compile(r"[A-Z]+")
_LINE = re.compile(r"[A-Za-z]+( [A-Za-z]+)*")


def load_words(min_len: int = 3, max_len: int = 8) -> list[str]:
    """The words of data/words.txt with min_len <= length <= max_len: uppercase A-Z, deduplicated, in file order."""
    return [w for w in _all_words() if min_len <= len(w) <= max_len]


@lru_cache(maxsize=1)
def _all_words() -> tuple[str, ...]:
    text = (files("timeblind.stimuli") / "data" / "words.txt").read_text(encoding="utf-8")
    words = (line.strip().upper() for line in text.splitlines())
    return tuple(dict.fromkeys(w for w in words if _WORD.fullmatch(w)))  # skips blanks and '#' comments


def expand_fonts(names) -> tuple[str, ...]:
    """Font names with groups (FONT_GROUPS) replaced by their members, in order, each once; empty = the defaults."""
    if not names:
        return DEFAULT_FONTS
    return tuple(dict.fromkeys(f for name in names for f in FONT_GROUPS.get(name, (name,))))


def check_fonts(names) -> None:
    """Unknown names, or fonts whose package is missing, named with what to do."""
    unknown = sorted(set(names) - set(FONTS) - set(FONT_GROUPS))
    if unknown:
        raise ValueError(f"unknown fonts {unknown}; expected names from {sorted(FONTS)} or groups {sorted(FONT_GROUPS)}")
    for name in expand_fonts(names):
        _font_file(name)


def _font_file(name: str) -> str:
    """The file of font `name`; a missing one is named with the package that ships it."""
    path = FONTS[name]
    if not Path(path).exists():
        pip = _FONT_FILES[name][1] if name in _FONT_FILES else "?"
        raise ValueError(f"font {name!r} needs the package {pip} (pinned in envs/requirements.txt; "
                         f"pip install -r envs/requirements.txt): {path} is missing")
    return path


def apply_case(word: str, case: str) -> str:
    """A word (any case) in `case`: upper, lower or title."""
    if case not in CASES:
        raise ValueError(f"case={case!r}: expected one of {CASES}")
    return {"upper": word.upper(), "lower": word.lower(), "title": word.capitalize()}[case]


@lru_cache(maxsize=256)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


@cache
def _cap_ratio(path: str) -> float:
    """Cap height (the ink height of 'H') per pixel of font size."""
    _, top, _, bottom = _font(path, 200).getbbox("H", anchor="ls")
    return (bottom - top) / 200


@lru_cache(maxsize=4096)
def _block(lines: tuple[str, ...], path: str, size: int) -> tuple[np.ndarray, tuple]:
    """`lines` at font size `size`, centred one below the other, cropped to their ink: (h, w) bool, and
    each character's (line, char, x0, x1) in the crop's columns. Cached: words repeat across samples."""
    font = _font(path, size)
    ascent, descent = font.getmetrics()
    widths = [font.getlength(line) for line in lines]
    pad = size  # room for glyphs that reach past their advance (italic overhangs, wide serifs)
    image = Image.new("L", (math.ceil(max(widths)) + 2 * pad, len(lines) * (ascent + descent) + 2 * pad))
    draw = ImageDraw.Draw(image)
    glyphs = []
    for i, (line, width) in enumerate(zip(lines, widths)):
        x = pad + round((max(widths) - width) / 2)  # whole-pixel origins: rendering and extents agree exactly
        draw.text((x, pad + ascent + i * (ascent + descent)), line, font=font, fill=255, anchor="ls")
        glyphs += [(i, char, x + font.getlength(line[:j]), x + font.getlength(line[:j + 1]))
                   for j, char in enumerate(line)]
    ink = np.asarray(image) >= 128  # antialiased coverage >= 1/2: pixel centre inside the glyph
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    ink = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    ink.flags.writeable = False  # shared through the cache
    return ink, tuple((i, char, float(x0 - cols[0]), float(x1 - cols[0])) for i, char, x0, x1 in glyphs)


def _check(lines: tuple[str, ...], font: str, size: float) -> str:
    for line in lines:
        if not _LINE.fullmatch(line):
            raise ValueError(f"text line {line!r}: expected letters A-Z or a-z, words separated by single spaces")
    if font not in FONTS:
        raise ValueError(f"unknown font {font!r}; expected one of {sorted(FONTS)}")
    if not 0 < size <= 1:
        raise ValueError(f"size {size}: expected a cap height fraction in (0, 1]")
    return _font_file(font)


def _fitted(lines: tuple[str, ...], path: str, px: int, room_h: int, room_w: int) -> tuple[int, np.ndarray, tuple]:
    """The largest font size <= px whose ink fits room_h x room_w (1 if none does), its ink and extents."""
    ink, glyphs = _block(lines, path, px)
    # Ink extent grows about linearly with the font size: rescale once, then step down past rounding.
    if ink.shape[0] > room_h or ink.shape[1] > room_w:
        px = max(1, int(px * min(room_h / ink.shape[0], room_w / ink.shape[1])))
        ink, glyphs = _block(lines, path, px)
        while px > 1 and (ink.shape[0] > room_h or ink.shape[1] > room_w):
            px -= 1
            ink, glyphs = _block(lines, path, px)
    return px, ink, glyphs


def _room(height: int, width: int) -> tuple[int, int, int, int]:
    margin_r, margin_c = max(1, math.ceil(_MARGIN * height)), max(1, math.ceil(_MARGIN * width))
    return margin_r, margin_c, height - 2 * margin_r, width - 2 * margin_c


def text_mask(
    lines: tuple[str, ...],
    height: int,
    width: int,
    *,
    font: str = "sans-bold",
    size: float = 0.5,
    center: tuple[float, float] = (0.5, 0.5),
    min_cap: float = MIN_CAP_PX,
) -> tuple[np.ndarray, tuple]:
    """Render `lines` (letters, single spaces) into a (height, width) bool mask, and each character's
    (line, char, x0, x1): its line index and horizontal extent in frame columns, from advance widths.

    size: cap height as a fraction of height, reduced when needed so the text fits inside the frame
    with a small margin; center: (row, col) of the ink's bounding box as fractions of the frame,
    moved as little as needed to keep the text inside; min_cap: the least cap height in px.
    """
    path = _check(tuple(lines), font, size)
    margin_r, margin_c, room_h, room_w = _room(height, width)
    px, ink, glyphs = _fitted(tuple(lines), path, max(1, round(size * height / _cap_ratio(path))), room_h, room_w)
    cap = _cap_ratio(path) * px
    if cap < min_cap or ink.shape[0] > room_h or ink.shape[1] > room_w:
        raise ValueError(f"frame {height}x{width} is too small to render {' / '.join(lines)!r} legibly in {font!r}: "
                         f"cap height {cap:.1f} px, expected at least {min_cap:g} px")
    h, w = ink.shape
    row = min(max(round(center[0] * height - h / 2), margin_r), height - margin_r - h)
    col = min(max(round(center[1] * width - w / 2), margin_c), width - margin_c - w)
    mask = np.zeros((height, width), bool)
    mask[row:row + h, col:col + w] = ink
    return mask, tuple((i, char, col + x0, col + x1) for i, char, x0, x1 in glyphs)


def word_mask(
    word: str,
    height: int,
    width: int,
    *,
    font: str = "sans-bold",
    size: float = 0.5,
    center: tuple[float, float] = (0.5, 0.5),
) -> np.ndarray:
    """Render one `word` (letters A-Z, any case) into a (height, width) bool mask; see text_mask."""
    if not re.fullmatch(r"[A-Za-z]+", word):
        raise ValueError(f"word {word!r}: expected letters A-Z only (a phrase goes through text_mask)")
    return text_mask((word,), height, width, font=font, size=size, center=center)[0]


def unfit_texts(texts: list[tuple[str, ...]], fonts: tuple[str, ...], height: int, width: int, size: float,
                min_cap: float = MIN_CAP_PX) -> list[str]:
    """'<text> in <font>' for each text (a tuple of lines) that cannot be drawn legibly at cap height
    `size` in a height x width frame, in order. Only texts whose bounding box (from the font's metrics,
    which contains the ink) exceeds the room are rendered: the others fit as they are."""
    failures = []
    _, _, room_h, room_w = _room(height, width)
    for font in fonts:
        path = FONTS[font]
        px = max(1, round(size * height / _cap_ratio(path)))
        small = _cap_ratio(path) * px < min_cap
        ttf = _font(path, px)
        pitch = sum(ttf.getmetrics())
        for lines in texts:
            boxes = [ttf.getbbox(line, anchor="ls") for line in lines]
            box_h = max(b[3] + i * pitch for i, b in enumerate(boxes)) - min(b[1] + i * pitch for i, b in enumerate(boxes))
            box_w = max(b[2] - b[0] for b in boxes) + 2  # + centring lines on whole pixels
            if not small and box_h <= room_h and box_w <= room_w:
                continue
            try:
                text_mask(lines, height, width, font=font, size=size, min_cap=min_cap)
            except ValueError:
                failures.append(f"{' '.join(lines)} in {font}")
    return failures
