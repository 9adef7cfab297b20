"""Looking closer: where a recovered figure lies, how large it is, and the crop of the video that
shows it at the size the model was trained on.

A model reads a figure best at the size its training figures had. The release's shapes fill about
40% of the frame's height and its words are smaller than most of training's; resampled to a model's
small input, their outlines fall to a few pixels, which no reader makes out, though the motion that
draws them survives. So an external video is read twice (evaluation/spookybench.py): once whole,
which finds the figure on the recovered figure map, and, when that figure is smaller than the
median training figure of its category, once more from a crop of the video around it that makes it
as large as that median figure. A moving figure is always read whole: a crop
could cut its path, which is the answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from timeblind.core.lines import find_lines

ZOOMED = ("words", "shapes", "images")  # static figures; a moving figure's path is its answer
MAX_ZOOM = 4.0  # a crop keeps at least a quarter of the frame's side: the figure's surroundings stay in view
FILL = 0.9  # a closer look never makes the figure's box more than this share of the crop
MASS_QUANTILE = 0.02  # the box leaves out this share of the figure's mass on each side: stray pixels move it little


@dataclass(frozen=True)
class FigureBox:
    """Where a figure lies in a map: its box's centre (y, x) as shares of the frame's height and width,
    and its larger side as a share of the frame's (height for height, width for width)."""
    y: float
    x: float
    share: float


def figure_box(figure: np.ndarray, threshold: float = 0.5) -> FigureBox | None:
    """The box holding a figure map's (H, W) mass above `threshold`, MASS_QUANTILE trimmed on each side
    per axis; None when less than two pixels' worth of mass is there (nothing recovered)."""
    weight = np.clip(np.asarray(figure, dtype=np.float64) - threshold, 0.0, None)
    if weight.sum() < 2 * (1 - threshold):
        return None
    H, W = weight.shape

    def span(marginal: np.ndarray) -> tuple[int, int]:
        cumulative = np.cumsum(marginal) / marginal.sum()
        return int(np.searchsorted(cumulative, MASS_QUANTILE)), int(np.searchsorted(cumulative, 1 - MASS_QUANTILE)) + 1

    (top, bottom), (left, right) = span(weight.sum(axis=1)), span(weight.sum(axis=0))
    return FigureBox(y=(top + bottom) / 2 / H, x=(left + right) / 2 / W,
                     share=max((bottom - top) / H, (right - left) / W))


def figure_size(figure: np.ndarray, category: str, box: FigureBox | None) -> float | None:
    """How large a figure is for its reader, as a share of the frame: a text's mean line height (the
    line reader scales each line to one height and keeps its width, so the letters' shapes follow the
    line height), otherwise the box's larger side."""
    if box is None:
        return None
    if category == "words":
        bands = find_lines(np.clip(figure - 0.5, 0.0, None))
        return float(np.mean([b.bottom - b.top for b in bands])) / figure.shape[0] if bands else None
    return box.share


def figure_sizes(sizes: dict[str, list[float]]) -> dict[str, float]:
    """Per category, the median of its figures' sizes: the typical size."""
    return {category: float(np.median(v)) for category, v in sizes.items() if v}


def zoom_region(figure: np.ndarray, category: str, sizes: dict[str, float],
                max_zoom: float = MAX_ZOOM) -> tuple[float, float, float, float] | None:
    """The crop (top, left, bottom, right, as shares of the frame) that shows a figure map's (H, W)
    figure as large as the category's typical training figure, or None when it needs no closer look
    (no figure, a moving one, one as large as the typical one, or no sizes known)."""
    if category not in ZOOMED or category not in sizes:
        return None
    box = figure_box(figure)
    size = figure_size(figure, category, box)
    if size is None:
        return None
    zoom = min(max_zoom, sizes[category] / size, FILL / box.share)  # the whole figure stays in the crop
    if zoom <= 1.0:
        return None
    side = 1.0 / zoom  # the crop's side, a share of the frame's (aspect kept)
    top = float(np.clip(box.y - side / 2, 0.0, 1.0 - side))
    left = float(np.clip(box.x - side / 2, 0.0, 1.0 - side))
    return top, left, top + side, left + side
