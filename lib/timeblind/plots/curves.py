"""Learning curves: validation accuracy against training clips seen, per encoder and category.

One panel per category, one line per encoder (seeds as separate thin lines), chance dashed: a
reader sees when each encoder takes off, or that it never does."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from timeblind.plots import style
from timeblind.plots.figures import _save, plt

CURVE_KEYS = ("step", "clips_seen")


def read_curves(paths: list[str | Path]) -> pd.DataFrame:
    """The learning_curve.csv files written beside each model, as one long table: encoder, seed,
    step, clips_seen, category, accuracy. A model's folder is .../{encoder}/seed{seed}/."""
    frames = []
    for path in paths:
        path = Path(path)
        try:
            curve = pd.read_csv(path)
        except pd.errors.EmptyDataError:  # a training that never validated writes no column
            continue
        if curve.empty:
            continue
        long = curve.melt(id_vars=[k for k in CURVE_KEYS if k in curve], var_name="category", value_name="accuracy")
        frames.append(long.assign(encoder=path.parent.parent.name, seed=path.parent.name.removeprefix("seed")))
    if not frames:
        raise ValueError(f"no validation point in {len(paths)} learning curve file(s): was val_every larger than "
                         "max_steps?")
    return pd.concat(frames, ignore_index=True).dropna(subset=["accuracy"])


def learning_curve_figure(curves: pd.DataFrame, chance: dict[str, float], stem: str | Path) -> list[Path]:
    """Validation accuracy (%) against clips seen: one panel per category, one colour per encoder."""
    categories = list(dict.fromkeys(curves["category"]))
    encoders = list(dict.fromkeys(curves["encoder"]))
    palette = dict(zip(encoders, style.color_palette(len(encoders))))
    fig, axes = plt.subplots(1, len(categories), figsize=(3.2 * len(categories), 3.0), sharey=True, squeeze=False)
    for ax, category in zip(axes[0], categories):
        panel = curves[curves["category"] == category]
        for (encoder, seed), line in panel.groupby(["encoder", "seed"], sort=False):
            ax.plot(line["clips_seen"], 100 * line["accuracy"], marker="o", ms=3, lw=1.5, color=palette[encoder],
                    label=encoder if seed == panel[panel["encoder"] == encoder]["seed"].iloc[0] else None)
        if category in chance:
            ax.axhline(100 * chance[category], ls="--", lw=1, color="grey")
        ax.set_title(category)
        ax.set_xlabel("training clips seen")
        ax.set_ylim(-2, 102)
    axes[0, 0].set_ylabel("validation accuracy (%)")
    axes[0, -1].legend(fontsize=7, loc="lower right", frameon=False)
    fig.tight_layout()
    return _save(fig, Path(stem))
