"""Figures of the grounding table: metrics per row with intervals, and predicted against true spans."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from timeblind.plots.figures import PALETTE, _save

PANELS = (("r1_iou0.5", "R@1, IoU ≥ 0.5 (%)"), ("miou", "mIoU (%)"), ("answer_acc", "answer accuracy (%)"),
          ("answer_acc_grounded", "answer accuracy | IoU ≥ 0.5 (%)"))


def grounding_figure(summary: pd.DataFrame, per_seed: pd.DataFrame, chance: dict, stem: str | Path,
                     title: str) -> list[Path]:
    """One panel per metric, one bar per table row: mean over seeds, whisker = 95% CI, dots = seeds,
    dashed line = a random span of a true length (localisation panels)."""
    rows = list(summary["row"])
    sns.set_theme(style="whitegrid", context="notebook")
    colours = dict(zip(rows, sns.color_palette(PALETTE, len(rows))))
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
    video, one lane per question and model (bars: frames [start, end))."""
    first = next(iter(predictions.values()))
    frames = first["frames"]
    shown = sorted({r["video"] for r in first["records"] if r["kind"] == "when"})[:videos]
    models = list(predictions)
    colours = dict(zip(models, sns.color_palette(PALETTE, len(models))))
    fig, axes = plt.subplots(len(shown), 1, figsize=(8, 0.6 + 0.9 * len(shown) * (1 + len(models)) / 3),
                             sharex=True, squeeze=False)
    for ax, video in zip(axes[:, 0], shown):
        questions = [i for i, r in enumerate(first["records"]) if r["video"] == video and r["kind"] == "when"]
        lane, labels = 0, []
        for i in questions:
            start, end = first["records"][i]["true_spans"][0]
            ax.barh(lane, end - start, left=start, color="black", height=0.8)
            labels.append(f"truth {i}")
            lane += 1
            for model in models:
                record = predictions[model]["records"][i]
                for s, e in record["pred_spans"][:1]:
                    ax.barh(lane, max(e - s, 0.5), left=s, color=colours[model], height=0.8)
                labels.append(model)
                lane += 1
        ax.set_yticks(range(lane), labels, fontsize=6)
        ax.invert_yaxis()
        ax.set_title(f"test video {video}", fontsize=8, loc="left")
    axes[-1, 0].set_xlim(0, frames)
    axes[-1, 0].set_xlabel("time (frames)")
    fig.tight_layout()
    return _save(fig, Path(stem))


__all__ = ["grounding_figure", "spans_figure"]
