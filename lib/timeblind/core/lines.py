"""Text lines on a figure map: where the lines are, and what each column of a line says.

Words are read line by line, as OCR does: the rows the figure covers are grouped into lines,
each line is cut out with a margin and scaled to a fixed height, so one line reader serves every
font size, and a phrase set on two lines is read top line first. The same geometry serves the
targets (on the true mask) and the answers (on the figure a model recovered), so what the reader
learns is what it is later shown.

Training targets are per column: a column is labelled with the character whose glyph core (its
middle, without the edges it shares with its neighbours) covers the column's centre, or blank.
Two equal letters in a row are thus always split by a blank, so reading a line is taking the
best label of each column, merging repeats and dropping blanks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ALPHABET = " abcdefghijklmnopqrstuvwxyz"  # reading classes: 0 is blank, ALPHABET[k - 1] is class k
BAND_HEIGHT = 16  # px: every line is scaled to this height before it is read
BAND_WIDTH = 128  # px: lines longer than this after scaling are squeezed to fit
COLUMN_STRIDE = 2  # px of the scaled band per label column
COLUMNS = BAND_WIDTH // COLUMN_STRIDE
MAX_LINES = 2  # a phrase is set on at most two lines
LINE_THRESHOLD = 0.3  # a row belongs to a line where it holds this share of the fullest row's figure
MARGIN = 0.2  # a line is cut out with this share of its height added above, below and at the ends
GLYPH_CORE = 0.2  # share of a glyph's advance at each edge left blank in the column labels


@dataclass(frozen=True)
class Band:
    """A text line on the figure map: rows [top, bottom), columns [left, right)."""

    top: int
    bottom: int
    left: int
    right: int

    @property
    def scale(self) -> float:
        """Scaled band px per figure-map px."""
        return BAND_HEIGHT / (self.bottom - self.top)

    @property
    def width(self) -> int:
        """Width of the line once scaled to BAND_HEIGHT, at most BAND_WIDTH."""
        return max(1, min(BAND_WIDTH, round((self.right - self.left) * self.scale)))

    def as_array(self) -> np.ndarray:
        return np.array([self.top, self.bottom, self.left, self.right], np.int64)


def _runs(on: np.ndarray) -> list[list[int]]:
    """[start, stop) of every run of True in a 1-D bool array."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], on.astype(np.int8), [0]])))
    return [[int(a), int(b)] for a, b in zip(edges[::2], edges[1::2])]


def find_lines(figure: np.ndarray, max_lines: int = MAX_LINES) -> list[Band]:
    """The text lines of a figure map (H, W) with values in [0, 1], top to bottom: rows holding at
    least LINE_THRESHOLD of the fullest row's figure, runs one row apart merged, the max_lines runs
    holding the most figure kept, each widened by MARGIN and cut to the columns the figure covers."""
    figure = np.asarray(figure, np.float64)
    H, W = figure.shape
    rows = figure.sum(axis=1)
    if rows.max(initial=0.0) <= 0:
        return []
    runs = []
    for run in _runs(rows > LINE_THRESHOLD * rows.max()):
        if runs and run[0] - runs[-1][1] <= 1:  # a thin gap inside a letter (the bar of an e) is no line break
            runs[-1][1] = run[1]
        else:
            runs.append(run)
    runs = sorted(sorted(runs, key=lambda r: -rows[r[0]:r[1]].sum())[:max_lines])
    bands = []
    for top, bottom in runs:
        pad = max(1, round(MARGIN * (bottom - top)))
        top, bottom = max(0, top - pad), min(H, bottom + pad)
        columns = figure[top:bottom].sum(axis=0)
        inked = np.flatnonzero(columns > 0.1 * columns.max())
        bands.append(Band(top, bottom, max(0, int(inked[0]) - pad), min(W, int(inked[-1]) + 1 + pad)))
    return bands


def line_targets(figure: np.ndarray, glyphs: list[tuple[int, str, float, float]]
                 ) -> list[tuple[Band, np.ndarray, str]]:
    """What a reader should find on each line of a true figure map: (band, column labels, text)
    per line, top to bottom. glyphs: (line, char, x0, x1) in figure-map px, as the generator drew
    them. Empty when the map does not show as many lines as the text has (lines run together):
    such a clip teaches nothing about reading."""
    bands = find_lines(figure)
    lines = sorted({g[0] for g in glyphs})
    if not bands or len(lines) != len(bands):
        return []
    targets = []
    for band, line in zip(bands, lines):
        chars = [(c, x0, x1) for k, c, x0, x1 in glyphs if k == line]
        targets.append((band, column_labels(band, chars), "".join(c for c, _, _ in chars)))
    return targets


def column_labels(band: Band, glyphs: list[tuple[str, float, float]]) -> np.ndarray:
    """(COLUMNS,) reading class of each label column of the scaled band: the glyph whose core
    covers the column's centre, 0 (blank) elsewhere. glyphs: (char, x0, x1) in figure-map px."""
    labels = np.zeros(COLUMNS, np.int64)
    centres = (np.arange(COLUMNS) + 0.5) * COLUMN_STRIDE / band.scale + band.left  # in figure-map px
    for char, x0, x1 in glyphs:
        core = GLYPH_CORE * (x1 - x0)
        labels[(centres >= x0 + core) & (centres < x1 - core)] = ALPHABET.index(char.lower()) + 1
    return labels


def encode_text(text: str) -> list[int]:
    """A line's text as reading classes; unknown characters are refused with the text named."""
    unknown = sorted(set(text.lower()) - set(ALPHABET))
    if unknown:
        raise ValueError(f"text {text!r} has characters {unknown}; the reader knows {ALPHABET.strip()!r} and space")
    return [ALPHABET.index(c) + 1 for c in text.lower()]


def decode_columns(classes) -> str:
    """Best label per column -> text: repeats merged, blanks dropped, spaces tidied."""
    letters, previous = [], 0
    for k in classes:
        if k != previous and k != 0:
            letters.append(ALPHABET[k - 1])
        previous = k
    return " ".join("".join(letters).split())
