"""Figures of the grounding table: metrics per row with intervals, and predicted against true spans."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from timeblind.plots import style
from timeblind.plots.figures import _save

PANELS = (("r1_iou0.5", "R@1, IoU ≥ 0.5 (%)"), ("miou", "mIoU (%)"), ("answer_acc", "answers right (%)"),
          ("answer_acc_grounded", "right when grounded (%)"))


def grounding_figure(summary: pd.DataFrame, per_seed: pd.DataFrame, chance: dict, stem: str | Path,
                     title: str) -> list[Path]:
    """One panel per metric, one bar per table row: mean over seeds, whisker = 95% CI, dots = seeds,
    dashed line = a random span of a true length (localisation panels)."""
    rows = list(summary["row"])
    style.set_theme("whitegrid")
    colours = dict(zip(rows, style.color_palette(len(rows))))
    fig, axes = plt.subplots(1, len(PANELS), figsize=(3.2 * len(PANELS), 0.9 + 0.38 * len(rows)), sharey=True)
    for ax, (key, label) in zip(axes, PANELS):
        y = range(len(rows))
        mean = 100 * summary[key]
        ax.barh(list(y), mean, color=[colours[r] for r in rows], height=0.7)
        ax.errorbar(mean, list(y), xerr=[(mean - 100 * summary[f"{key}_lo"]).clip(lower=0),
                                         (100 * summary[f"{key}_hi"] - mean).clip(lower=0)],
                    fmt="none", ecolor="black", capsize=3, linewidth=1)
        dots = per_seed.assign(y=per_seed["row"].map({r: i for i, r in enumerate(rows)}))
        ax.scatter(100 * dots[key], dots["y"], color="black", s=8, zorder=3)
        if key in chance:
            ax.axvline(100 * chance[key], color="grey", linestyle="--", linewidth=1)
        ax.set_xlim(0, 100)
        ax.set_xlabel(label)
    axes[0].set_yticks(list(range(len(rows))), rows)
    axes[0].invert_yaxis()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, Path(stem))


def spans_figure(predictions: dict[str, dict], stem: str | Path, videos: int = 6) -> list[Path]:
    """Predicted against true spans of `when` questions on the first test videos: one panel per
    video, per question the true span (black) and each model's predicted span (colours)."""
    first = next(iter(predictions.values()))
    frames = first["frames"]
    shown = sorted({r["video"] for r in first["records"] if r["kind"] == "when"})[:videos]
    models = list(predictions)
    colours = dict(zip(models, style.color_palette(len(models))))
    lanes = 1 + len(models)
    sizes = [sum(r["video"] == v and r["kind"] == "when" for r in first["records"]) * lanes for v in shown]
    fig, axes = plt.subplots(len(shown), 1, figsize=(8, 1.2 + 0.16 * sum(sizes)), sharex=True, squeeze=False,
                             gridspec_kw={"height_ratios": sizes})
    for ax, video in zip(axes[:, 0], shown):
        questions = [i for i, r in enumerate(first["records"]) if r["video"] == video and r["kind"] == "when"]
        for q, i in enumerate(questions):
            top = q * lanes
            start, end = first["records"][i]["true_spans"][0]
            ax.barh(top, end - start, left=start, color="black", height=0.8)
            for m, model in enumerate(models):
                for s, e in predictions[model]["records"][i]["pred_spans"][:1]:
                    ax.barh(top + 1 + m, max(e - s, 0.5), left=s, color=colours[model], height=0.8)
        ax.set_yticks([q * lanes for q in range(len(questions))],
                      [f"when {first['records'][i].get('asked', '?')}?" for i in questions], fontsize=7)
        ax.set_ylim(len(questions) * lanes - 0.5, -0.5)
        ax.set_title(f"test video {video}", fontsize=8, loc="left")
    axes[-1, 0].set_xlim(0, frames)
    axes[-1, 0].set_xlabel("time (frames)")
    handles = [plt.Rectangle((0, 0), 1, 1, color="black")] + [plt.Rectangle((0, 0), 1, 1, color=colours[m])
                                                              for m in models]
    fig.legend(handles, ["true span", *models], loc="upper center", ncol=1, fontsize=7, frameon=False,
               bbox_to_anchor=(0.5, 1.0 + 0.02 * len(models)))
    fig.tight_layout()
    return _save(fig, Path(stem))


__all__ = ["grounding_figure", "spans_figure"]
