"""seaborn figures in one style: colour-blind-safe palette, units on axes, PNG and SVG."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: no display in pipeline jobs
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

PALETTE = "colorblind"


def _save(fig, stem: Path) -> list[Path]:
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix in (".png", ".svg"):
        final = stem.with_suffix(suffix)
        tmp = final.with_name(final.stem + ".tmp" + suffix)
        fig.savefig(tmp, dpi=150, bbox_inches="tight", metadata={"Date": None} if suffix == ".svg" else None)
        os.replace(tmp, final)
        written.append(final)
    plt.close(fig)
    return written


def accuracy_figure(summary: pd.DataFrame, per_model: pd.DataFrame, stem: str | Path) -> list[Path]:
    """Test accuracy per encoder: bar = mean over seeds, whisker = 95% CI, dots = single seeds,
    dashed line = chance."""
    sns.set_theme(style="whitegrid", context="notebook")
    colours = dict(zip(summary["encoder"], sns.color_palette(PALETTE, len(summary))))
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(summary), 3.6))
    x = range(len(summary))
    ax.bar(x, 100 * summary["accuracy"], color=[colours[e] for e in summary["encoder"]], width=0.6)
    ax.errorbar(x, 100 * summary["accuracy"],
                yerr=[100 * (summary["accuracy"] - summary["ci_low"]), 100 * (summary["ci_high"] - summary["accuracy"])],
                fmt="none", ecolor="black", capsize=5, linewidth=1.2)
    position = {e: i for i, e in enumerate(summary["encoder"])}
    ax.scatter([position[e] for e in per_model["encoder"]], 100 * per_model["accuracy"], color="black", s=12, zorder=3,
               label="single seed")
    ax.axhline(100 * summary["chance"].iloc[0], color="grey", linestyle="--", linewidth=1, label="chance")
    ax.set_xticks(list(x), summary["encoder"])
    ax.set_ylim(0, 100)
    ax.set_ylabel("Test accuracy (%)")
    ax.set_xlabel("Encoder")
    ax.set_title("Shapes in opposing-motion noise")
    ax.legend(loc="upper left", frameon=False, fontsize="small")
    return _save(fig, Path(stem))


def stimulus_preview(clips, labels, classes: list[str], energy_masks, stem: str | Path) -> list[Path]:
    """One column per sample: a single frame (noise), the mean of all frames (still noise) and
    the mask recovered from motion energy (the shape)."""
    sns.set_theme(style="white")
    n = len(clips)
    fig, axes = plt.subplots(3, n, figsize=(1.6 * n, 5.0), squeeze=False)
    for i in range(n):
        panels = (clips[i][0], clips[i].mean(axis=0), energy_masks[i])
        for row, (image, title) in enumerate(zip(panels, ("one frame", "mean of frames", "motion energy"))):
            ax = axes[row, i]
            ax.imshow(image, cmap="gray", interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            if i == 0:
                ax.set_ylabel(title)
        axes[0, i].set_title(classes[labels[i]])
    return _save(fig, Path(stem))
