"""The official SpookyBench release layout: export our stimuli into it, and read it back.

Layout (as in the paper's repository, TimeBlindness/time-blindness)::

    root/
      metadata.csv         columns Path, Category, Label
      words/hello.mp4      Path is relative to root: "words/hello.mp4"
      shapes/  images/  videos/

* ``Category`` is one of ``words``, ``shapes``, ``images``, ``videos``; the paper's fine-tune script
  spells images and videos ``objects`` and ``dynamics``, so wherever a category is read those names
  mean images and videos, in any case (:func:`canonical_category`). ``patterns`` is a timeblind-only
  category, not in the release: exported to a folder of its own (``root/patterns/`` with its own
  metadata.csv), so the official tools never meet it, and read like any other category.
* metadata.csv may also sit beside root, as the release's README shows it (:func:`find_metadata`).
* ``Label`` is a Python list literal of accepted answers, e.g. ``"['cat', 'kitten']"``; it is parsed with
  ``ast.literal_eval`` only. A prediction is correct iff any answer occurs, case-insensitively, as a
  substring of the prediction (:func:`is_correct`).
* Videos are H.264 .mp4. The real ones are 960x540, Constrained Baseline, yuv420p, limited range, grey,
  tens to hundreds of frames at a variable frame rate.

Export (:func:`export_dataset`). Binary dot noise looks like the worst case for a lossy codec, but the
stimulus is rigid translation by whole pixels, which H.264's motion compensation predicts exactly; only
the first frame of each GOP (an I-frame of pure noise) is expensive. Default crf=18: the motion survives
exactly (tested; sizes and timings in the README, "Measurements") and the file plays everywhere
(Constrained Baseline, the release's profile). crf=0 is bit-exact but x264 then writes the "High 4:4:4
Predictive" profile, which ffmpeg/PyAV/OpenCV decode but browsers and hardware players often do not.

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
PATTERNS = "patterns"  # timeblind-only: exported to a folder of its own, never into the official metadata.csv
EXPORT_CATEGORIES = OFFICIAL_CATEGORIES + (PATTERNS,)
CATEGORY_ALIASES = {"objects": "images", "dynamics": "videos"}  # the paper's fine-tune script's names
CATEGORIES = EXPORT_CATEGORIES + tuple(CATEGORY_ALIASES)  # every name read, in any case


def canonical_category(name) -> str | None:
    """A Category as written anywhere (any case, surrounding spaces, the paper's aliases) -> its name
    here (one of EXPORT_CATEGORIES); None when it is none of them."""
    key = str(name).strip().lower()
    key = CATEGORY_ALIASES.get(key, key)
    return key if key in EXPORT_CATEGORIES else None


def known_categories() -> str:
    aliases = ", ".join(f"{a} (= {c})" for a, c in CATEGORY_ALIASES.items())
    return f"{', '.join(EXPORT_CATEGORIES)} or {aliases}, in any case"


def parse_categories(names: Iterable[str]) -> list[str]:
    """Category names given by a user -> their names here, in order, without repeats; ValueError naming
    the first unknown one and the names allowed."""
    chosen = []
    for name in names:
        category = canonical_category(name)
        if category is None:
            raise ValueError(f"unknown category {name!r}; expected {known_categories()}")
        if category not in chosen:
            chosen.append(category)
    return chosen


# ---------------------------------------------------------------------------------------------------- export


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


# ------------------------------------------------------------------------------------------------------ read


@dataclass(frozen=True)
class Entry:
    """One readable row of metadata.csv."""

    path: Path  # absolute, resolved, inside the root
    rel: str  # as written in the Path column
    category: str  # its name here: lower-case, objects -> images, dynamics -> videos
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


def find_metadata(root: str | os.PathLike) -> Path:
    """``root/metadata.csv``, else the one beside ``root``: the release's README keeps metadata.csv next to
    SpookyBenchDatasets/, whose category folders its Paths start from."""
    root = Path(root).expanduser().resolve()
    for csv_path in (root / METADATA, root.parent / METADATA):
        if csv_path.is_file():
            return csv_path
        if csv_path.exists():
            raise FileNotFoundError(f"{csv_path} is not a file; expected the metadata CSV (columns "
                                    f"{', '.join(COLUMNS)})")
    children = sorted(p.name for p in root.iterdir())
    if not children:
        raise FileNotFoundError(f"{root} is empty; expected a SpookyBench folder with {METADATA} "
                                f"and category folders {', '.join(OFFICIAL_CATEGORIES)}")
    nested = sorted(str(p.parent) for p in root.glob(f"*/{METADATA}"))
    hint = f"; found one in {nested[0]} - pass that folder as root" if nested else (
        "; if the CSV lives elsewhere, pass it with --csv (csv= in Python)" if any(c in CATEGORIES for c in children)
        else "")
    raise FileNotFoundError(f"{root} has no {METADATA}, nor has the folder beside it (found {children[:8]}"
                            f"{'...' if len(children) > 8 else ''}){hint}")


@dataclass(frozen=True)
class Row:
    """One row of metadata.csv whose fields parse; its video is not looked at."""

    rel: str  # as written in the Path column
    category: str  # its name here (canonical_category)
    answers: list[str]
    row: int  # line number in metadata.csv (header = line 1)


def find_video_root(csv_file: str | os.PathLike, rels: list[str]) -> Path | None:
    """The folder a metadata.csv's Paths start from: the CSV's own folder (an export), or a folder beside
    the CSV (the release's SpookyBenchDatasets/); the first where one of the first Paths is a file."""
    here = Path(csv_file).expanduser().resolve().parent
    for folder in [here, *sorted(p for p in here.iterdir() if p.is_dir())]:
        if any((folder / rel).is_file() for rel in rels[:20]):
            return folder
    return None


def metadata_rows(csv_file: str | os.PathLike) -> tuple[list[Row], list[Skipped]]:
    """Parse a metadata.csv into rows and skipped rows, without touching any video: a malformed row, an
    empty Path, an unknown category or a Label that is not a list literal of strings is skipped. A missing
    or empty file, a header without Path/Category/Label, or a CSV without rows raise."""
    csv_file = Path(csv_file).expanduser()
    if not csv_file.is_file():
        what = "is not a file" if csv_file.exists() else "does not exist"
        raise FileNotFoundError(f"metadata file {csv_file} {what}; expected a CSV with columns {COLUMNS}")
    rows: list[Row] = []
    skipped: list[Skipped] = []
    # utf-8-sig drops a BOM; undecodable bytes become U+FFFD and surface as a missing file for that row only.
    with open(csv_file, newline="", encoding="utf-8-sig", errors="replace") as f:
        reader = csv.reader(f)
        try:
            header = next(reader, None)
        except csv.Error as e:  # e.g. an unterminated quote that swallows the file: no header to read
            raise ValueError(f"{csv_file}: unreadable header ({e}); expected a header {','.join(COLUMNS)}") from None
        if header is None:
            raise ValueError(f"{csv_file} is empty; expected a header {','.join(COLUMNS)} and one row per video")
        names = [h.strip().lower() for h in header]
        missing = [c for c in COLUMNS if c.lower() not in names]
        if missing:
            raise ValueError(f"{csv_file}: header {header} lacks column(s) {missing}; expected {list(COLUMNS)}")
        col = {c: names.index(c.lower()) for c in COLUMNS}
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                break
            except csv.Error as e:  # e.g. a NUL byte or an unterminated quote: lose this row only
                skipped.append(Skipped(reader.line_num, "", f"malformed CSV row: {e}"))
                continue
            line = reader.line_num
            if not any(x.strip() for x in fields):
                continue  # blank line
            if len(fields) != len(header):
                skipped.append(Skipped(line, fields[col["Path"]] if len(fields) > col["Path"] else "",
                                       f"malformed row: {len(fields)} fields, expected {len(header)} ({header})"))
                continue
            rel = fields[col["Path"]].strip()
            category = canonical_category(fields[col["Category"]])
            if not rel:
                skipped.append(Skipped(line, rel, "empty Path"))
                continue
            if category is None:
                skipped.append(Skipped(line, rel, f"unknown Category {fields[col['Category']].strip()!r}; "
                                                  f"expected {known_categories()}"))
                continue
            try:
                rows.append(Row(rel, category, _parse_label(fields[col["Label"]]), line))
            except ValueError as e:
                skipped.append(Skipped(line, rel, str(e)))
    if not rows and not skipped:
        raise ValueError(f"{csv_file} has a header but no rows; expected one row per video")
    return rows, skipped


def read_metadata(root: str | os.PathLike, csv_path: str | os.PathLike | None = None
                  ) -> tuple[list[Entry], list[Skipped]]:
    """Parse ``csv_path``, by default :func:`find_metadata` (``<root>/metadata.csv`` or the one beside root),
    into usable entries and skipped rows; each row's Path is relative to ``root``.

    Per-row problems never abort: a malformed row, a Label that is not a list literal of strings, an
    unknown category, a duplicate, a path resolving outside the root (after ``..`` and symlinks: refused,
    never opened) or a missing file becomes a :class:`Skipped`. A missing folder, an empty folder, a
    missing metadata.csv, a header without Path/Category/Label, or a CSV without rows raise.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"SpookyBench root {root} is not a folder")
    root = root.resolve()
    csv_file = Path(csv_path).expanduser() if csv_path is not None else find_metadata(root)
    rows, skipped = metadata_rows(csv_file)
    entries: list[Entry] = []
    seen: dict[Path, int] = {}
    for r in rows:
        # Release paths are POSIX; a Windows-made CSV may use backslashes. Containment is checked on the
        # resolved path, so "..", absolute paths and symlinks leading out of root are all refused.
        path = (root / r.rel.replace("\\", "/")).resolve()
        if not path.is_relative_to(root):
            skipped.append(Skipped(r.row, r.rel, f"refused: path resolves to {path}, outside the root {root}"))
        elif path in seen:
            skipped.append(Skipped(r.row, r.rel, f"duplicate of the row on line {seen[path]}"))
        elif not path.is_file():
            what = "missing file" if not path.exists() else "not a regular file"
            skipped.append(Skipped(r.row, r.rel, f"{what}: {path}"))
        else:
            seen[path] = r.row
            entries.append(Entry(path, r.rel, r.category, r.answers, r.row))
    skipped.sort(key=lambda s: s.row)  # in the file's order
    if skipped:
        log.info("%s: skipped %d of %d rows", csv_file, len(skipped), len(entries) + len(skipped))
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
        if self.csv_path is None and self.root.is_dir():
            self.csv_path = find_metadata(self.root)  # kept, so callers can say which file was read
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
