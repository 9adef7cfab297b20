"""The STAVE probe as a figure: figure-vs-ground separability at each stage of the model
(evaluation/stave_probe.py), so a reader sees where the signal is lost."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from timeblind.plots.figures import _save, plt


def stave_probe_figure(table: pd.DataFrame, stem: str | Path, title: str = "") -> list[Path]:
    """Within-clip AUC (figure vs ground tokens) per stage, in the order the signal passes them."""
    table = table.sort_values("order")
    fig, ax = plt.subplots(figsize=(max(5.0, 0.7 * len(table)), 3.2))
    ax.plot(range(len(table)), table["auc"], marker="o", color="C0")
    ax.axhline(0.5, ls="--", lw=1, color="grey")
    ax.set_xticks(range(len(table)), table["stage"], rotation=30, ha="right")
    ax.set_ylim(0.4, 1.02)
    ax.set_ylabel("figure vs ground AUC\n(within clip; 0.5 = chance)")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, Path(stem))
