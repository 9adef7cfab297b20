"""A SpookyBench folder's videos, decoded one at a time: :class:`SpookyBenchFolder` holds the rows that
io/metadata.py read and yields whole videos or clips resampled to a model's input (io/video.py); a video
that fails to decode joins the skipped rows.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from timeblind.io.metadata import Entry, Skipped, find_metadata, read_metadata
from timeblind.io.video import MAX_HELD_BYTES, VideoError, load_video, read_clips

log = logging.getLogger(__name__)


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
