"""Figures in one style (seaborn's look, plots/style.py): colour-blind-safe palette, units on axes, PNG and SVG."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: no display in pipeline jobs
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from timeblind.core.io import atomic  # noqa: E402
from timeblind.plots import style  # noqa: E402

def _save(fig, stem: Path) -> list[Path]:
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix in (".png", ".svg"):
        final = stem.with_suffix(suffix)
        # SVG ids would be random per process without a hash salt, and the date changes: neither is kept,
        # so the same figure is the same bytes in every run
        with atomic(final) as tmp, plt.rc_context({"svg.hashsalt": "timeblind"}):
            fig.savefig(tmp, dpi=150, bbox_inches="tight", metadata={"Date": None} if suffix == ".svg" else None)
        written.append(final)
    plt.close(fig)
    return written


def accuracy_figure(summary: pd.DataFrame, per_model: pd.DataFrame, stem: str | Path) -> list[Path]:
    """Table 1 as a figure: test accuracy per category (panels side by side) and encoder (bars):
    bar = mean over seeds, whisker = 95% CI, dots = single seeds, dashed line = chance."""
    summary = summary[summary["task"] == "answer"]
    per_model = per_model[per_model["task"] == "answer"]
    encoders = list(dict.fromkeys(summary["encoder"]))
    categories = list(dict.fromkeys(summary["category"]))
    style.set_theme("whitegrid")
    colours = dict(zip(encoders, style.color_palette(len(encoders))))
    fig, axes = plt.subplots(1, len(categories), figsize=(0.6 + (0.9 + 0.45 * len(encoders)) * len(categories), 3.8),
                             sharey=True, squeeze=False)
    for ax, category in zip(axes[0], categories):
        rows = summary[summary["category"] == category].set_index("encoder").reindex(encoders)
        x = range(len(encoders))
        ax.bar(x, 100 * rows["accuracy"], color=[colours[e] for e in encoders], width=0.7)
        ax.errorbar(x, 100 * rows["accuracy"], yerr=[100 * (rows["accuracy"] - rows["ci_low"]),
                                                      100 * (rows["ci_high"] - rows["accuracy"])],
                    fmt="none", ecolor="black", capsize=3, linewidth=1)
        seeds = per_model[per_model["category"] == category]
        ax.scatter([encoders.index(e) for e in seeds["encoder"]], 100 * seeds["accuracy"], color="black", s=8, zorder=3)
        ax.axhline(100 * rows["chance"].iloc[0], color="grey", linestyle="--", linewidth=1)
        ax.set_xticks(list(x), [])
        ax.set_title(category)
        ax.set_ylim(0, 100)
    axes[0, 0].set_ylabel("Test accuracy (%)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[e]) for e in encoders]
    handles += [plt.Line2D([], [], color="grey", linestyle="--"), plt.Line2D([], [], marker="o", color="black",
                                                                            linestyle="", markersize=3)]
    fig.legend(handles, encoders + ["chance", "single seed"], loc="lower center", ncol=min(len(encoders) + 2, 5),
               frameon=False, fontsize="small", bbox_to_anchor=(0.5, -0.12))
    return _save(fig, Path(stem))


def stimulus_preview(clips, titles: list[str], recovered, stem: str | Path) -> list[Path]:
    """One column per sample: a single frame (noise), the mean of all frames (still noise) and
    what an observer recovers from the whole clip (the figure from motion, or a pattern's
    per-frame brightness)."""
    style.set_theme("white")
    n = len(clips)
    fig, axes = plt.subplots(3, n, figsize=(1.6 * n, 5.0), squeeze=False)
    for i in range(n):
        panels = (clips[i][0], clips[i].mean(axis=0), recovered[i])
        for row, (image, label) in enumerate(zip(panels, ("one frame", "mean of frames", "recovered"))):
            ax = axes[row, i]
            ax.imshow(image, cmap="gray", interpolation="nearest", vmin=0 if row < 2 else None,
                      vmax=255 if row < 2 else None)
            ax.set_xticks([]), ax.set_yticks([])
            if i == 0:
                ax.set_ylabel(label)
        axes[0, i].set_title(titles[i], fontsize="small")
    return _save(fig, Path(stem))


def recovered_view(clip, category: str, speed: float):
    """What an observer gets from a whole grey clip (T, H, W): for the brightness-coded patterns
    each frame's mean brightness (one column per frame), otherwise the figure recovered from motion."""
    import numpy as np

    from timeblind.stimuli import motion_energy_mask

    if category == "patterns":
        return np.tile(clip.mean(axis=(1, 2)), (clip.shape[1], 1))  # (H, T)
    return motion_energy_mask(clip, speed)  # (H, W)


def write_animation(clip, path: str | Path, *, fps: float, scale: int = 4) -> Path:
    """Grey clip (T, H, W) uint8 -> looping GIF, upscaled by pixel repetition so dots stay sharp."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = [Image.fromarray(frame.repeat(scale, axis=0).repeat(scale, axis=1)) for frame in clip]
    with atomic(path) as tmp:
        frames[0].save(tmp, save_all=True, append_images=frames[1:], duration=round(1000 / fps), loop=0)
    return path


def gallery_html(images: list[str | Path], titles: list[str], width: int = 128) -> str:
    """Inline HTML grid of images (GIFs play in place), embedded as data URIs so an exported
    notebook carries them."""
    import base64
    import html

    cells = []
    for path, title in zip(images, titles):
        data = base64.b64encode(Path(path).read_bytes()).decode()
        cells.append(f'<figure style="margin:4px;text-align:center"><img src="data:image/gif;base64,{data}" '
                     f'width="{width}" style="image-rendering:pixelated"/><figcaption style="font-size:small">'
                     f'{html.escape(title)}</figcaption></figure>')
    return '<div style="display:flex;flex-wrap:wrap">' + "".join(cells) + "</div>"


# Units of the axes a study may vary, for axis labels.
AXIS_UNITS = {"speed": "px/frame", "frames": "frames", "frame_stride": "frames", "coherence": "share of dots",
              "density": "share of white dots", "contrast": "of full contrast", "blur": "px", "height": "px",
              "width": "px", "head_scale": "× spatial heads", "temporal_blocks": "blocks"}


def _as_number(values: list[str]) -> list[float] | None:
    try:
        return [float(v) for v in values]
    except ValueError:
        return None


def study_figure(summary: pd.DataFrame, stem: str | Path, *, title: str, snr_x: bool = False) -> list[Path]:
    """One study: a panel per varied axis (columns) and category (rows), accuracy against the
    axis value (or the test set's measured SNR in dB), one line per series, 95% intervals as
    error bars, chance dashed. Numeric axes are drawn to scale, others in config order."""
    panels = list(dict.fromkeys(summary["panel"]))
    categories = list(dict.fromkeys(summary["category"]))
    series = list(dict.fromkeys(summary["series"]))
    style.set_theme("whitegrid")
    colours = dict(zip(series, style.color_palette(len(series))))
    fig, axes = plt.subplots(len(categories), len(panels), figsize=(0.8 + 3.2 * len(panels), 0.6 + 2.6 * len(categories)),
                             sharey=True, squeeze=False)
    for row, category in enumerate(categories):
        for col, panel in enumerate(panels):
            ax = axes[row, col]
            here = summary[(summary["panel"] == panel) & (summary["category"] == category)]
            order = list(dict.fromkeys(here["x"]))
            numeric = _as_number(order)
            use_snr = snr_x and here["snr_db"].notna().all()
            shown = [name for name in series if (here["series"] == name).any()]
            if use_snr:
                span = np.ptp(here["snr_db"]) or 1.0
            else:
                span = (max(numeric) - min(numeric) or 1.0) if numeric is not None else len(order)
            for k, name in enumerate(shown):
                points = here[here["series"] == name]
                if use_snr:
                    x = points["snr_db"].to_numpy()
                elif numeric is not None:
                    x = np.array([float(v) for v in points["x"]])
                else:
                    x = np.array([order.index(v) for v in points["x"]], float)
                x = x + (k - (len(shown) - 1) / 2) * 0.015 * span  # dodge, so equal scores stay visible
                sort = np.argsort(x)
                y, low, high = (100 * points[c].to_numpy()[sort] for c in ("accuracy", "ci_low", "ci_high"))
                ax.errorbar(x[sort], y, yerr=[y - low, high - y], color=colours[name], marker="o", markersize=4,
                            capsize=3, linewidth=1.2, label=name)
                if use_snr:  # the axis value beside each point, since the x axis is measured SNR
                    for xi, yi, v in zip(x[sort], y, points["x"].to_numpy()[sort]):
                        ax.annotate(v, (xi, yi), textcoords="offset points", xytext=(3, 3), fontsize="x-small")
            ax.axhline(100 * here["chance"].iloc[0], color="grey", linestyle="--", linewidth=1)
            if not use_snr and numeric is None:
                ax.set_xticks(range(len(order)), order, rotation=30 if max(map(len, order)) > 6 else 0)
                ax.set_xlim(-0.5, len(order) - 0.5)
            unit = AXIS_UNITS.get(panel.split(".")[-1])
            ax.set_xlabel("measured SNR (dB)" if use_snr else f"{panel} ({unit})" if unit else panel)
            if row == 0:
                ax.set_title(f"varying {panel}", fontsize="medium")
            ax.set_ylim(0, 100)
            if col == 0:
                ax.set_ylabel(f"{category}\naccuracy (%)")
    fig.suptitle(title, fontsize="medium")
    handles = [plt.Line2D([], [], color=colours[s], marker="o") for s in series]
    handles.append(plt.Line2D([], [], color="grey", linestyle="--"))
    fig.legend(handles, series + ["chance"], loc="lower center", ncol=min(len(series) + 1, 4), frameon=False,
               fontsize="small", bbox_to_anchor=(0.5, -0.06 - 0.05 * math.ceil((len(series) + 1) / 4)))
    fig.tight_layout()
    return _save(fig, Path(stem))


def preview_jpeg(path: str | Path, longest: int = 1200) -> bytes:
    """A figure scaled down to at most `longest` px a side, as JPEG bytes: what a notebook shows, so its
    HTML stays small enough for the report to embed (noise panels make PNGs large; the full-size
    figure is a report item itself)."""
    import io

    from PIL import Image

    image = Image.open(path).convert("RGB")
    image.thumbnail((longest, longest))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()
