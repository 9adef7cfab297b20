"""Export stimuli into the SpookyBench release layout (io/spookybench.py): H.264 .mp4 videos plus metadata.csv.

Binary dot noise looks like the worst case for a lossy codec, but the stimulus is rigid translation by
whole pixels, which H.264's motion compensation predicts exactly; only the first frame of each GOP (an
I-frame of pure noise) is expensive. Default crf=18: the motion survives exactly (tested; sizes and
timings in the README, "Measurements") and the file plays everywhere (Constrained Baseline, the release's
profile). crf=0 is bit-exact but x264 then writes the "High 4:4:4 Predictive" profile, which
ffmpeg/PyAV/OpenCV decode but browsers and hardware players often do not.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pandas as pd

from timeblind.core.io import atomic
from timeblind.io.spookybench import COLUMNS, METADATA, PATTERNS, canonical_category, known_categories

log = logging.getLogger(__name__)


@dataclass
class VideoItem:
    """One stimulus to export."""

    frames: np.ndarray  # (T, H, W) uint8 grey, or bool (exported as 0/255)
    category: str
    answers: list[str]
    name: str  # file stem: <category>/<name>.mp4
    timestamps: np.ndarray | list[float] | None = None  # seconds per frame (variable rate); None: 1/fps apart


def _check_item(item: VideoItem, index: int) -> np.ndarray:
    """Validate one item; return its frames as (T, H, W) uint8."""
    where = f"item {index} ({item.name!r})"
    if canonical_category(item.category) is None:
        raise ValueError(f"{where}: unknown category {item.category!r}; expected {known_categories()}")
    name = item.name
    if not isinstance(name, str) or not name.strip() or name in (".", "..") or any(c in name for c in "/\\\0"):
        raise ValueError(f"{where}: name {name!r} must be a non-empty file stem without path separators")
    if isinstance(item.answers, str) or not item.answers or not all(
        isinstance(a, str) and a.strip() for a in item.answers
    ):
        raise ValueError(f"{where}: answers {item.answers!r} must be a non-empty list of non-empty strings")
    frames = np.asarray(item.frames)
    if frames.ndim != 3 or frames.shape[0] < 1:
        raise ValueError(f"{where}: frames of shape {frames.shape}; expected (T, H, W) with T >= 1")
    if frames.dtype == bool:
        return frames.astype(np.uint8) * 255
    if frames.dtype != np.uint8:
        raise ValueError(f"{where}: frames of dtype {frames.dtype}; expected uint8 grey or bool")
    return frames


X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                "placebo")
H264_PROFILES = ("baseline", "main", "high")  # x264's "baseline" is what players call Constrained Baseline
VFR_TIME_BASE = Fraction(1, 90000)  # the MPEG clock: per-frame timestamps to 11 microseconds


def _check_encoding(name: str, crf: int, preset: str, profile: str | None) -> None:
    if not 0 <= crf <= 51:
        raise ValueError(f"crf={crf}: expected an integer in 0..51 (0 = lossless)")
    if preset not in X264_PRESETS:
        raise ValueError(f"preset={preset!r}: expected one of {', '.join(X264_PRESETS)}")
    if profile is not None and profile not in H264_PROFILES:
        raise ValueError(f"profile={profile!r}: expected one of {', '.join(H264_PROFILES)}, or None (x264 picks)")
    if profile is not None and crf == 0:
        raise ValueError(f"{name}: crf=0 (lossless) needs the High 4:4:4 profile, not {profile!r}; "
                         f"use profile=None for lossless, or crf >= 1")


def _frame_pts(timestamps, count: int, name: str) -> list[int]:
    """Seconds per frame -> pts in VFR_TIME_BASE units; strictly increasing, or ValueError."""
    seconds = np.asarray(timestamps, dtype=np.float64)
    if seconds.shape != (count,):
        raise ValueError(f"{name}: {seconds.size} timestamps for {count} frames; expected one per frame")
    if not np.all(np.isfinite(seconds)) or seconds[0] < 0:
        raise ValueError(f"{name}: timestamps must be finite seconds >= 0, got first {float(seconds[0])!r}")
    pts = np.rint(seconds / float(VFR_TIME_BASE)).astype(np.int64)
    if np.any(np.diff(pts) <= 0):
        at = int(np.argmax(np.diff(pts) <= 0))
        raise ValueError(f"{name}: timestamps must increase strictly; frame {at + 1} at {float(seconds[at + 1])!r} "
                         f"s follows {float(seconds[at])!r} s")
    return pts.tolist()


def write_video(frames: np.ndarray, path: str | os.PathLike, *, fps: float = 10.0, timestamps=None, crf: int = 18,
                preset: str = "medium", profile: str | None = None) -> Path:
    """Encode (T, H, W) uint8 grey frames as H.264 (libx264, yuv420p) .mp4, atomically (temp file, rename).

    H and W must be even (yuv420p subsamples chroma 2x2). Grey levels go through limited-range luma
    (16-235, tagged as such), so a round trip is exact for 0/255 binary frames at crf 0 and within a few
    levels otherwise. ``timestamps`` (seconds, one per frame, strictly increasing) give a variable frame
    rate, as in the release; without them frames are 1/fps apart. ``profile="baseline"`` writes
    Constrained Baseline (no B-frames, CAVLC), the release's profile; None lets x264 pick (High).
    ``preset`` trades encoding time for file size at the same crf.
    """
    path = Path(path)
    if frames.ndim != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(f"{path.name}: frames {frames.dtype} {frames.shape}; expected (T, H, W) uint8 with T >= 1")
    _, H, W = frames.shape
    if H % 2 or W % 2:
        raise ValueError(f"{path.name}: frame size {W}x{H} (WxH) has an odd side; H.264 yuv420p needs even "
                         f"width and height (crop the frames, or export with an even scale)")
    _check_encoding(path.name, crf, preset, profile)
    if not fps > 0:
        raise ValueError(f"fps={fps}: expected a positive frame rate")
    pts = _frame_pts(timestamps, len(frames), path.name) if timestamps is not None else None
    if pts is not None and len(pts) > 1:  # the average rate: what players show as the frame rate
        fps = (len(pts) - 1) / float((pts[-1] - pts[0]) * VFR_TIME_BASE)
    options = {"crf": str(int(crf)), "preset": preset,
               "x264-params": "range=tv:colormatrix=bt709"}  # writes the colour tags: limited range, like the release
    if profile is not None:
        options["profile"] = profile
    with atomic(path) as tmp:
        # faststart: the index (moov) goes first, so the file streams in browsers; a truncated copy then
        # fails mid-decode (load_video reports it) instead of not opening at all.
        with av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as container:
            stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
            stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
            if pts is not None:
                stream.codec_context.time_base = stream.time_base = VFR_TIME_BASE
            stream.options = options
            for i, frame in enumerate(frames):
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="gray").reformat(format="yuv420p")
                if pts is not None:
                    vf.pts, vf.time_base = pts[i], VFR_TIME_BASE
                container.mux(stream.encode(vf))
            container.mux(stream.encode())  # flush the encoder's delayed frames
    return path


def export_dataset(items: Iterable[VideoItem], out_dir: str | os.PathLike, *, fps: float = 10.0, scale: int = 1,
                   crf: int = 18, preset: str = "veryfast", profile: str | None = "baseline") -> pd.DataFrame:
    """Write items as ``<out_dir>/<category>/<name>.mp4`` plus ``metadata.csv``; return that metadata table.

    Only the release's four categories go into ``metadata.csv``, so the official tools, whose categories
    are hard-wired, run on the folder unchanged. Patterns go to a folder of their own in the same layout,
    ``<out_dir>/patterns/`` with its own ``metadata.csv`` (Path ``<name>.mp4``): :func:`pattern_folder`.

    Rows follow item order. ``scale`` upsamples by pixel repetition (nearest neighbour: dots stay sharp,
    motion stays whole-pixel) so small clips can be watched. ``crf``: 18 keeps the motion exactly and plays
    everywhere; 0 is lossless but needs ``profile=None`` and a High 4:4:4 decoder (see the module docstring).
    ``preset`` and ``profile`` go to :func:`write_video`: by default the release's Constrained Baseline, and
    veryfast, which keeps every dot at a fraction of medium's encoding time (README, "Measurements"); so
    does each item's ``timestamps`` (a variable frame rate; items without them play at ``fps``). Each
    video and the metadata are written atomically; items are validated one by one as they are consumed, so
    a bad item raises ValueError after earlier videos were written but before metadata.csv is replaced.
    Files from earlier exports that are not overwritten are left in place (metadata.csv does not list them).
    """
    if not isinstance(scale, (int, np.integer)) or isinstance(scale, bool) or scale < 1:
        raise ValueError(f"scale={scale!r}: expected an integer >= 1")
    _check_encoding("export", crf, preset, profile)  # before any video is written
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = {out: [], out / PATTERNS: []}  # folder -> its metadata rows
    seen = set()
    for i, item in enumerate(items):
        frames = _check_item(item, i)  # (T, H, W) uint8
        category = canonical_category(item.category)
        rel = f"{category}/{item.name}.mp4"
        if rel in seen:
            raise ValueError(f"item {i}: duplicate path {rel!r}; names must be unique within a category")
        seen.add(rel)
        if scale > 1:
            frames = np.repeat(np.repeat(frames, scale, axis=1), scale, axis=2)  # (T, H*s, W*s)
        (out / category).mkdir(exist_ok=True)
        write_video(frames, out / rel, fps=fps, timestamps=item.timestamps, crf=crf, preset=preset, profile=profile)
        folder = out / PATTERNS if category == PATTERNS else out
        rows[folder].append({"Path": (out / rel).relative_to(folder).as_posix(), "Category": category,
                             "Label": repr([str(a) for a in item.answers])})
    for folder, folder_rows in rows.items():
        if folder_rows or folder == out:
            _write_metadata(pd.DataFrame(folder_rows, columns=list(COLUMNS)), folder)
    log.info("exported %d videos to %s and %d patterns to %s", len(rows[out]), out, len(rows[out / PATTERNS]),
             out / PATTERNS)
    return pd.DataFrame(rows[out], columns=list(COLUMNS))


def _write_metadata(table: pd.DataFrame, folder: Path) -> None:
    with atomic(folder / METADATA) as tmp:
        table.to_csv(tmp, index=False)


def pattern_folder(out_dir: str | os.PathLike) -> Path | None:
    """The patterns an export wrote beside its official categories, as a folder in the same layout; None
    when it wrote none."""
    folder = Path(out_dir) / PATTERNS
    return folder if (folder / METADATA).is_file() else None
