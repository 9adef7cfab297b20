"""What `timeblind score` draws beside analysis.json: the official scorer's accuracy.png, and a review
page, since the paper's README asks users to check answers by hand.

The page (one self-contained HTML file, images inlined as PNG) shows for each scored video one decoded
frame (noise, as a frame-wise model sees it), the figure a motion-energy observer recovers from a
short resampled clip (what a person sees), the accepted labels, the answer and whether it was right.
Videos are decoded one at a time and only their first frames, so memory stays bounded on the release.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

from timeblind.core.io import atomic
from timeblind.io.resample import resample_clip
from timeblind.io.video import VideoError, load_video
from timeblind.plots import style
from timeblind.plots.figures import plt, recovered_view

ACCURACY_PNG = "accuracy.png"
REVIEW_HTML = "review.html"
FRAME_LIMIT = 96  # frames decoded per video: enough for a resampled clip, bounded memory
CLIP_FRAMES = 12  # the resampled clip the figure is recovered from
CLIP_HEIGHT = 72
SHOWN_WIDTH = 240  # px of each picture on the page


def accuracy_chart(analysis: dict, path: str | Path, title: str = "SpookyBench accuracy") -> Path:
    """Accuracy per category as bars with correct/scored above each, the overall accuracy as a line:
    the official scorer's accuracy.png."""
    results = analysis["category_results"]
    categories = list(results)
    accuracy = [results[c]["accuracy"] for c in categories]
    style.set_theme("whitegrid")
    fig, ax = plt.subplots(figsize=(1.4 + 1.3 * len(categories), 4.0))
    ax.bar(categories, accuracy, color=style.color_palette(1)[0], width=0.6)
    overall = analysis["overall_accuracy"]
    ax.axhline(overall, color="black", linestyle="--", linewidth=1, label=f"overall {overall:.3f}")
    for i, c in enumerate(categories):
        counts = f"({results[c]['correct_count']}/{results[c]['total_count']})"
        ax.text(i, accuracy[i] + 0.02, f"{accuracy[i]:.3f}\n{counts}", ha="center", va="bottom", fontsize="small",
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})
    ax.set_ylim(0, 1.2)  # room for the labels above a full bar
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel("Accuracy (correct / scored)")
    ax.set_xlabel("Category")
    ax.set_title(title, fontsize="medium")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), frameon=False)
    path = Path(path)
    with atomic(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


# ------------------------------------------------------------------------------------------------ the page


def _png(image: np.ndarray) -> str:
    """(H, W) array -> an <img> tag with the picture inlined, scaled (nearest) to SHOWN_WIDTH."""
    x = np.asarray(image, dtype=np.float32)
    low, high = float(x.min()), float(x.max())
    grey = np.zeros_like(x) if high <= low else (x - low) / (high - low) * 255
    picture = Image.fromarray(grey.round().astype(np.uint8))
    height = max(1, round(picture.height * SHOWN_WIDTH / picture.width))
    buffer = io.BytesIO()
    picture.resize((SHOWN_WIDTH, height), Image.NEAREST).save(buffer, format="PNG")
    return f'<img alt="" src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


@contextmanager
def _quiet(logger: str) -> Iterator[None]:
    """Short videos make resampling warn that its stride was cut: true, but not news on this page."""
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def video_views(path: Path, category: str) -> tuple[str, str]:
    """(one frame, the recovered figure) as <img> tags; a line saying why where the video cannot show them."""
    try:
        video = load_video(path, max_frames=FRAME_LIMIT)  # (N, H, W) uint8
    except VideoError as err:
        return f"video not readable: {html.escape(err.reason)}", ""
    frame = _png(video[0])
    N, H, W = video.shape
    if N < 2:
        return frame, "one frame: no motion to recover"
    height = min(CLIP_HEIGHT, H)
    width = max(1, round(height * W / H))
    try:
        with _quiet("timeblind.io.resample"):
            clip = resample_clip(video, min(CLIP_FRAMES, N), height, width)  # moves ~1 px per frame
    except ValueError as err:
        return frame, f"no motion recovered: {html.escape(str(err))}"
    return frame, _png(recovered_view(clip, category, speed=1.0))


def _video_path(root: Path | None, rel: str) -> Path | None:
    """The video of a metadata Path under root; None when there is no root or it leads outside it."""
    if root is None:
        return None
    path = (root / rel.replace("\\", "/")).resolve()
    return path if path.is_relative_to(root.resolve()) else None


PAGE_HEAD = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }}
table {{ border-collapse: collapse; }}
td, th {{ border-bottom: 1px solid #ddd; padding: 6px 10px; text-align: left; vertical-align: middle; }}
img {{ image-rendering: pixelated; display: block; }}
.right {{ color: #1a7f37; font-weight: bold; }} .wrong {{ color: #cf222e; font-weight: bold; }}
body.only-wrong tr.right-row {{ display: none; }}
.note {{ color: #555; }}
</style></head><body>
<h1>{title}</h1>
<p class="note">Each video: one decoded frame (noise: what a frame-wise model sees), the figure a motion-energy
observer recovers from a short resampled clip (what a person sees), the accepted labels, the model's answer, and
the official rule's verdict (right when any label occurs in the answer, case-insensitively).</p>
"""


def _summary(analysis: dict, notes: list[str]) -> str:
    rows = "".join(f"<tr><td>{html.escape(c)}</td><td>{r['accuracy']:.4f}</td>"
                   f"<td>{r['correct_count']} / {r['total_count']}</td></tr>"
                   for c, r in analysis["category_results"].items())
    scored = sum(r["total_count"] for r in analysis["category_results"].values())
    correct = sum(r["correct_count"] for r in analysis["category_results"].values())
    rows += f"<tr><th>overall</th><th>{analysis['overall_accuracy']:.4f}</th><th>{correct} / {scored}</th></tr>"
    listed = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    return (f"<table><tr><th>category</th><th>accuracy</th><th>correct / scored</th></tr>{rows}</table>"
            + (f"<ul class='note'>{listed}</ul>" if listed else "")
            + "<p><label><input type='checkbox' onchange=\"document.body.classList.toggle('only-wrong', "
              "this.checked)\"> show wrong answers only</label></p>")


def _row(number: int, category: str, record: dict, views: tuple[str, str]) -> str:
    verdict = "right" if record["correct"] else "wrong"
    labels = ", ".join(html.escape(label) for label in record["ground_truth"])
    return (f"<tr class='{verdict}-row'><td>{number}</td><td>{html.escape(record['video_path'])}<br>"
            f"<span class='note'>{html.escape(category)}</span></td><td>{views[0]}</td><td>{views[1]}</td>"
            f"<td>{labels}</td><td>{html.escape(record['prediction'])}</td>"
            f"<td class='{verdict}'>{verdict}</td></tr>\n")


def review_page(analysis: dict, video_root: str | os.PathLike | None, path: str | Path, *,
                title: str = "SpookyBench answers for review", notes: list[str] = ()) -> Path:
    """Write the review page for an analysis.json payload; videos are found under `video_root` by their
    metadata Path (None: the page shows the answers without pictures). Written atomically, row by row."""
    root = Path(video_root) if video_root is not None else None
    path = Path(path)
    with atomic(path) as tmp, open(tmp, "w", encoding="utf-8") as page:
        page.write(PAGE_HEAD.format(title=html.escape(title)))
        page.write(_summary(analysis, list(notes)))
        page.write("<table><tr><th>#</th><th>video</th><th>one frame</th><th>recovered from motion</th>"
                   "<th>accepted labels</th><th>answer</th><th>verdict</th></tr>\n")
        number = 0
        for category, result in analysis["category_results"].items():
            for record in result["results"]:
                number += 1
                video = _video_path(root, record["video_path"])
                if video is None:
                    views = ("no video folder" if root is None else "refused: path outside the video folder", "")
                else:
                    views = video_views(video, category)
                page.write(_row(number, category, record, views))
        page.write("</table></body></html>\n")
    return path


__all__ = ["ACCURACY_PNG", "REVIEW_HTML", "accuracy_chart", "review_page", "video_views"]
