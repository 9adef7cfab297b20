"""The official SpookyBench release layout: export our stimuli into it, and read it back.

Layout (as in the paper's repository, TimeBlindness/time-blindness)::

    root/
      metadata.csv         columns Path, Category, Label
      words/hello.mp4      Path is relative to root: "words/hello.mp4"
      shapes/  images/  videos/

* ``Category`` is one of ``words``, ``shapes``, ``images``, ``videos``; the paper's scripts also use
  ``objects`` and ``dynamics``, so the reader accepts those. ``patterns`` is a timeblind-only category:
  we export and read it, but it is not in the official release.
* ``Label`` is a Python list literal of accepted answers, e.g. ``"['cat', 'kitten']"``; it is parsed with
  ``ast.literal_eval`` only. A prediction is correct iff any answer occurs, case-insensitively, as a
  substring of the prediction (:func:`is_correct`).
* Videos are H.264 .mp4. The real ones are 960x540, ~333 frames (~7 s at 45-50 fps), grey-looking.

Export (:func:`export_dataset`). Binary dot noise looks like the worst case for a lossy codec, but the
stimulus is rigid translation by whole pixels, which H.264's motion compensation predicts exactly; only
the first frame of each GOP (an I-frame of pure noise) is expensive. Default crf=18: the motion survives
exactly (tested; sizes and timings in the README, "Measurements") and the file plays everywhere (High
profile). crf=0 is bit-exact but x264 then writes the "High 4:4:4 Predictive" profile, which
ffmpeg/PyAV/OpenCV decode but browsers and hardware players often do not.

Reading (:func:`read_metadata`, :class:`SpookyBenchFolder`) reports each problem per row and keeps the
rest; videos are resampled to a model's input by resample.py.
"""

from __future__ import annotations

import ast
import csv
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pandas as pd

from timeblind.core.io import atomic
from timeblind.io.resample import resample_clip  # noqa: F401 (read with the layout)
from timeblind.io.video import MAX_HELD_BYTES, VideoError, load_video, read_clips

log = logging.getLogger(__name__)

METADATA = "metadata.csv"
COLUMNS = ("Path", "Category", "Label")
OFFICIAL_CATEGORIES = ("words", "shapes", "images", "videos")
EXPORT_CATEGORIES = OFFICIAL_CATEGORIES + ("patterns",)  # patterns: timeblind-only, not in the release
CATEGORIES = EXPORT_CATEGORIES + ("objects", "dynamics")  # read: names the paper's scripts also use


# ---------------------------------------------------------------------------------------------------- export


@dataclass
class VideoItem:
    """One stimulus to export."""

    frames: np.ndarray  # (T, H, W) uint8 grey, or bool (exported as 0/255)
    category: str
    answers: list[str]
    name: str  # file stem: <category>/<name>.mp4


def _check_item(item: VideoItem, index: int) -> np.ndarray:
    """Validate one item; return its frames as (T, H, W) uint8."""
    where = f"item {index} ({item.name!r})"
    if item.category not in EXPORT_CATEGORIES:
        raise ValueError(f"{where}: unknown category {item.category!r}; expected one of {EXPORT_CATEGORIES}")
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


def write_video(frames: np.ndarray, path: str | os.PathLike, *, fps: float = 10.0, crf: int = 18,
                preset: str = "medium") -> Path:
    """Encode (T, H, W) uint8 grey frames as H.264 (libx264, yuv420p) .mp4, atomically (temp file, rename).

    H and W must be even (yuv420p subsamples chroma 2x2). Grey levels go through limited-range luma
    (16-235), so a round trip is exact for 0/255 binary frames at crf 0 and within a few levels otherwise.
    """
    path = Path(path)
    if frames.ndim != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(f"{path.name}: frames {frames.dtype} {frames.shape}; expected (T, H, W) uint8 with T >= 1")
    _, H, W = frames.shape
    if H % 2 or W % 2:
        raise ValueError(f"{path.name}: frame size {W}x{H} (WxH) has an odd side; H.264 yuv420p needs even "
                         f"width and height (crop the frames, or export with an even scale)")
    if not 0 <= crf <= 51:
        raise ValueError(f"crf={crf}: expected an integer in 0..51 (0 = lossless)")
    if not fps > 0:
        raise ValueError(f"fps={fps}: expected a positive frame rate")
    with atomic(path) as tmp:
        # faststart: the index (moov) goes first, so the file streams in browsers; a truncated copy then
        # fails mid-decode (load_video reports it) instead of not opening at all.
        with av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as container:
            stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
            stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
            stream.options = {"crf": str(int(crf)), "preset": preset}
            for frame in frames:
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="gray").reformat(format="yuv420p")
                container.mux(stream.encode(vf))
            container.mux(stream.encode())  # flush the encoder's delayed frames
    return path


def export_dataset(items: Iterable[VideoItem], out_dir: str | os.PathLike, *, fps: float = 10.0, scale: int = 1,
                   crf: int = 18, preset: str = "medium") -> pd.DataFrame:
    """Write items as ``<out_dir>/<category>/<name>.mp4`` plus ``metadata.csv``; return the metadata table.

    Rows follow item order. ``scale`` upsamples by pixel repetition (nearest neighbour: dots stay sharp,
    motion stays whole-pixel) so small clips can be watched. ``crf``: 18 keeps the motion exactly and plays
    everywhere; 0 is lossless but needs a High 4:4:4 decoder (see the module docstring). Each
    video and the metadata are written atomically; items are validated one by one as they are consumed, so
    a bad item raises ValueError after earlier videos were written but before metadata.csv is replaced.
    Files from earlier exports that are not overwritten are left in place (metadata.csv does not list them).
    """
    if not isinstance(scale, (int, np.integer)) or isinstance(scale, bool) or scale < 1:
        raise ValueError(f"scale={scale!r}: expected an integer >= 1")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows, seen = [], set()
    for i, item in enumerate(items):
        frames = _check_item(item, i)  # (T, H, W) uint8
        rel = f"{item.category}/{item.name}.mp4"
        if rel in seen:
            raise ValueError(f"item {i}: duplicate path {rel!r}; names must be unique within a category")
        seen.add(rel)
        if scale > 1:
            frames = np.repeat(np.repeat(frames, scale, axis=1), scale, axis=2)  # (T, H*s, W*s)
        (out / item.category).mkdir(exist_ok=True)
        write_video(frames, out / rel, fps=fps, crf=crf, preset=preset)
        rows.append({"Path": rel, "Category": item.category, "Label": repr([str(a) for a in item.answers])})
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    with atomic(out / METADATA) as tmp:
        table.to_csv(tmp, index=False)
    log.info("exported %d videos to %s", len(table), out)
    return table


# ------------------------------------------------------------------------------------------------------ read


@dataclass(frozen=True)
class Entry:
    """One readable row of metadata.csv."""

    path: Path  # absolute, resolved, inside the root
    rel: str  # as written in the Path column
    category: str  # lower-case
    answers: list[str]
    row: int | None = None  # line number in metadata.csv (header = line 1)


@dataclass(frozen=True)
class Skipped:
    """A row or video that could not be used, and why."""

    row: int | None  # line number in metadata.csv, None when not tied to a row
    path: str
    reason: str


def is_correct(prediction: str, answers: Iterable[str]) -> bool:
    """SpookyBench scoring: any accepted answer occurs case-insensitively as a substring of the prediction."""
    pred = prediction.lower()
    return any(a.strip().lower() in pred for a in answers if a.strip())


def _parse_label(text: str) -> list[str]:
    """Label column -> answers. Raises ValueError with the reason."""
    try:
        value = ast.literal_eval(text.strip())  # literals only: never executes code
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as e:
        raise ValueError(f"Label {text!r} is not a Python literal ({type(e).__name__}); "
                         f"expected a list of strings like \"['cat']\"") from None
    if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
        raise ValueError(f"Label {text!r} is a {type(value).__name__}; expected a list of strings like \"['cat']\"")
    answers = [a.strip() for a in value if a.strip()]
    if not answers:
        raise ValueError(f"Label {text!r} has no non-empty answer")
    return answers


def _find_metadata(root: Path) -> Path:
    csv_path = root / METADATA
    if csv_path.is_file():
        return csv_path
    if csv_path.exists():
        raise FileNotFoundError(f"{csv_path} is not a file; expected the metadata CSV (columns {', '.join(COLUMNS)})")
    children = sorted(p.name for p in root.iterdir())
    if not children:
        raise FileNotFoundError(f"{root} is empty; expected a SpookyBench folder with {METADATA} "
                                f"and category folders {', '.join(OFFICIAL_CATEGORIES)}")
    nested = sorted(str(p.parent) for p in root.glob(f"*/{METADATA}"))
    hint = f"; found one in {nested[0]} - pass that folder as root" if nested else (
        "; if the CSV lives elsewhere, pass it with --csv (csv= in Python)" if any(c in CATEGORIES for c in children) else "")
    raise FileNotFoundError(f"{root} has no {METADATA} (found {children[:8]}{'...' if len(children) > 8 else ''})"
                            f"{hint}")


def read_metadata(root: str | os.PathLike, csv_path: str | os.PathLike | None = None
                  ) -> tuple[list[Entry], list[Skipped]]:
    """Parse ``<root>/metadata.csv`` (or ``csv_path``) into usable entries and skipped rows.

    Per-row problems never abort: a malformed row, a Label that is not a list literal of strings, an
    unknown category, a duplicate, a path resolving outside the root (after ``..`` and symlinks: refused,
    never opened) or a missing file becomes a :class:`Skipped`. A missing folder, an empty folder, a
    missing metadata.csv, a header without Path/Category/Label, or a CSV without rows raise.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"SpookyBench root {root} is not a folder")
    root = root.resolve()
    csv_file = Path(csv_path).expanduser() if csv_path is not None else _find_metadata(root)
    if not csv_file.is_file():
        raise FileNotFoundError(f"metadata file {csv_file} does not exist; expected a CSV with columns {COLUMNS}")
    entries: list[Entry] = []
    skipped: list[Skipped] = []
    seen: dict[Path, int] = {}
    # utf-8-sig drops a BOM; undecodable bytes become U+FFFD and surface as a missing file for that row only.
    with open(csv_file, newline="", encoding="utf-8-sig", errors="replace") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{csv_file} is empty; expected a header {','.join(COLUMNS)} and one row per video")
        names = [h.strip().lower() for h in header]
        missing = [c for c in COLUMNS if c.lower() not in names]
        if missing:
            raise ValueError(f"{csv_file}: header {header} lacks column(s) {missing}; expected {list(COLUMNS)}")
        col = {c: names.index(c.lower()) for c in COLUMNS}
        n_rows = 0
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                break
            except csv.Error as e:  # e.g. a NUL byte or an unterminated quote: lose this row only
                n_rows += 1
                skipped.append(Skipped(reader.line_num, "", f"malformed CSV row: {e}"))
                continue
            line = reader.line_num
            if not any(x.strip() for x in fields):
                continue  # blank line
            n_rows += 1
            if len(fields) != len(header):
                skipped.append(Skipped(line, fields[col["Path"]] if len(fields) > col["Path"] else "",
                                       f"malformed row: {len(fields)} fields, expected {len(header)} ({header})"))
                continue
            rel = fields[col["Path"]].strip()
            category = fields[col["Category"]].strip().lower()
            if not rel:
                skipped.append(Skipped(line, rel, "empty Path"))
                continue
            if category not in CATEGORIES:
                skipped.append(Skipped(line, rel, f"unknown Category {category!r}; expected one of {CATEGORIES}"))
                continue
            try:
                answers = _parse_label(fields[col["Label"]])
            except ValueError as e:
                skipped.append(Skipped(line, rel, str(e)))
                continue
            # Release paths are POSIX; a Windows-made CSV may use backslashes. Containment is checked on the
            # resolved path, so "..", absolute paths and symlinks leading out of root are all refused.
            path = (root / rel.replace("\\", "/")).resolve()
            if not path.is_relative_to(root):
                skipped.append(Skipped(line, rel, f"refused: path resolves to {path}, outside the root {root}"))
                continue
            if path in seen:
                skipped.append(Skipped(line, rel, f"duplicate of the row on line {seen[path]}"))
                continue
            if not path.is_file():
                what = "missing file" if not path.exists() else "not a regular file"
                skipped.append(Skipped(line, rel, f"{what}: {path}"))
                continue
            seen[path] = line
            entries.append(Entry(path, rel, category, answers, line))
    if n_rows == 0:
        raise ValueError(f"{csv_file} has a header but no rows; expected one row per video")
    if skipped:
        log.info("%s: skipped %d of %d rows", csv_file, len(skipped), n_rows)
    return entries, skipped


# ---------------------------------------------------------------------------------------------------- folder


@dataclass
class SpookyBenchFolder:
    """A SpookyBench release on disk: ``entries`` to use, ``skipped`` rows (grows as videos fail to decode).

    >>> folder = SpookyBenchFolder("spooky_bench")                           # doctest: +SKIP
    >>> for entry, clip in folder.clips(frames=8, height=32, width=32): ...  # doctest: +SKIP
    >>> folder.skipped                                                       # doctest: +SKIP
    """

    root: Path
    csv_path: Path | None = None
    entries: list[Entry] = field(init=False)
    skipped: list[Skipped] = field(init=False)

    def __post_init__(self):
        self.root = Path(self.root)
        self.entries, self.skipped = read_metadata(self.root, self.csv_path)

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[tuple[Entry, np.ndarray]]:
        return self.videos()

    def _skip(self, entry: Entry, reason: str) -> None:
        self.skipped.append(Skipped(entry.row, entry.rel, reason))
        log.debug("skipped %s: %s", entry.rel, reason)  # recorded once; the caller reports skipped items

    def videos(self, max_frames: int | None = None, *,
               max_bytes: int = MAX_HELD_BYTES) -> Iterator[tuple[Entry, np.ndarray]]:
        """(entry, (N, H, W) uint8 video) for every decodable entry, one whole video at a time (at most
        ``max_bytes`` of frames each); failures go to ``skipped``."""
        for entry in self.entries:
            try:
                yield entry, load_video(entry.path, max_frames, max_bytes=max_bytes)
            except VideoError as e:
                self._skip(entry, f"unreadable video: {e.reason}")

    def clips(self, frames: int, height: int, width: int, method: str = "motion",
              restore: str = "gray") -> Iterator[tuple[Entry, np.ndarray]]:
        """(entry, (frames, height, width) uint8 clip) as resample_clip makes it, each video decoded as a
        stream (io/video.py); failures go to ``skipped``."""
        for entry, (clip,) in self.read(((frames, height, width),), method=method, restore=restore):
            yield entry, clip

    def read(self, shapes, *, method: str = "motion", restore: str = "gray",
             max_bytes: int = MAX_HELD_BYTES) -> Iterator[tuple[Entry, list[np.ndarray]]]:
        """(entry, one clip per (frames, height, width) in ``shapes``) from one decode of each video
        (io.video.read_clips); failures go to ``skipped``."""
        for entry in self.entries:
            try:
                yield entry, read_clips(entry.path, shapes, method=method, restore=restore, max_bytes=max_bytes)
            except VideoError as e:
                self._skip(entry, f"unreadable video: {e.reason}" if "needs at least" not in e.reason else e.reason)


def iter_clips(root: str | os.PathLike, *, frames: int, height: int, width: int, method: str = "motion",
               skipped: list[Skipped] | None = None, **kwargs) -> Iterator[tuple[Entry, np.ndarray]]:
    """Yield (entry, clip) for every usable video under ``root``; rows or videos that fail are appended to
    ``skipped`` (pass a list to see them; or use :class:`SpookyBenchFolder`, whose ``.skipped`` is the same).
    Errors that concern the whole folder (missing, empty, no metadata.csv) raise before the first clip.
    """
    folder = SpookyBenchFolder(Path(root))
    try:
        yield from folder.clips(frames, height, width, method, **kwargs)
    finally:
        if skipped is not None:
            skipped.extend(folder.skipped)
