"""The figures' one look: seaborn's themes (`whitegrid`, `white`, at the `notebook` scale) and its
colour-blind-safe palette, set through matplotlib alone.

Importing seaborn loads scipy.stats, about a second of every step that draws a figure, for two
calls: these are their values (seaborn 0.13; tests/test_plot_style.py compares them with
seaborn's own). One difference: the default colour map stays matplotlib's (seaborn's `rocket` is
registered only by importing seaborn), and every image here names its colour map anyway.
"""

from __future__ import annotations

import matplotlib as mpl
from cycler import cycler
from matplotlib.colors import to_rgb

# seaborn.color_palette("colorblind")
COLORBLIND = ("#0173b2", "#de8f05", "#029e73", "#d55e00", "#cc78bc", "#ca9161", "#fbafe4", "#949494", "#ece133",
              "#56b4e9")
# seaborn.color_palette("deep"): the colour cycle set_theme sets
DEEP = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c", "#ccb974", "#64b5cd")

_AXES = {  # seaborn.axes_style(...), the keys both styles share
    "figure.facecolor": "white", "axes.labelcolor": ".15", "xtick.direction": "out", "ytick.direction": "out",
    "xtick.color": ".15", "ytick.color": ".15", "axes.axisbelow": True, "grid.linestyle": "-", "text.color": ".15",
    "font.family": ["sans-serif"], "font.sans-serif": ["Arial", "DejaVu Sans", "Liberation Sans",
                                                      "Bitstream Vera Sans", "sans-serif"],
    "lines.solid_capstyle": "round", "patch.edgecolor": "w", "patch.force_edgecolor": True, "xtick.top": False,
    "ytick.right": False, "axes.facecolor": "white", "grid.color": ".8", "axes.spines.left": True,
    "axes.spines.bottom": True, "axes.spines.right": True, "axes.spines.top": True, "xtick.bottom": False,
    "ytick.left": False,
}
STYLES = {
    "whitegrid": {**_AXES, "axes.grid": True, "axes.edgecolor": ".8"},
    "white": {**_AXES, "axes.grid": False, "axes.edgecolor": ".15"},
}
# seaborn.plotting_context("notebook")
NOTEBOOK = {
    "axes.linewidth": 1.25, "grid.linewidth": 1, "lines.linewidth": 1.5, "lines.markersize": 6, "patch.linewidth": 1,
    "xtick.major.width": 1.25, "ytick.major.width": 1.25, "xtick.minor.width": 1, "ytick.minor.width": 1,
    "xtick.major.size": 6, "ytick.major.size": 6, "xtick.minor.size": 4, "ytick.minor.size": 4, "font.size": 12,
    "axes.labelsize": 12, "axes.titlesize": 12, "xtick.labelsize": 11, "ytick.labelsize": 11, "legend.fontsize": 11,
    "legend.title_fontsize": 12,
}


def set_theme(style: str = "whitegrid") -> None:
    """What seaborn.set_theme(style=style, context="notebook") sets, but the colour map."""
    mpl.rcParams.update({**STYLES[style], **NOTEBOOK, "axes.prop_cycle": cycler(color=[to_rgb(c) for c in DEEP])})


def color_palette(n: int) -> list[tuple[float, float, float]]:
    """seaborn.color_palette("colorblind", n): n RGB colours, cycling after ten."""
    return [to_rgb(COLORBLIND[i % len(COLORBLIND)]) for i in range(n)]
