"""Video files as a stream of grey frames, and model clips made from them while they decode.

A SpookyBench video is 960x540 and a few hundred frames; a file of any length may come in, and a
few kilobytes of H.264 can decode to gigabytes. So nothing here holds a whole video unless asked
to (:func:`load_video`), and what is held is bounded (``max_bytes``): a file that would need more
is refused with a message naming it, its size on disk and what it decodes to.

:func:`read_clips` makes the clips a model wants from one decode: each frame is area-averaged to
every requested size as it arrives (so a clip's memory is its frames at model size, not at 960x540),
and the few full-size frame pairs the motion estimate correlates are kept on the side. The numbers
are those of resample.resample_clip on the whole decoded video.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import av
import numpy as np

from timeblind.io.resample import (area_average, check_request, displacement_of_pairs, pair_starts, plan_frames,
                                   restore_clip)

MAX_HELD_BYTES = 1 << 30  # frames a reader may hold for one video: with torch and a model, well under 2 GB


class VideoError(Exception):
    """A video file that cannot be used: corrupt, truncated, no frames, too short or too large."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path, self.reason = Path(path), reason
        super().__init__(f"{self.path}: {reason}")


class VideoReader:
    """An open video file: ``declared`` frames (from the container; 0 when unknown), ``height``,
    ``width``, and :meth:`frames`, the grey frames one at a time. Use it as a context manager."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        try:
            self.container = av.open(str(self.path))
        except (av.FFmpegError, OSError) as e:  # strerror: the reason without the path, which the caller names
            raise VideoError(self.path, f"cannot open ({getattr(e, 'strerror', None) or e})") from None
        if not self.container.streams.video:
            self.container.close()
            raise VideoError(self.path, "no video stream")
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        self.declared = max(int(self.stream.frames or 0), 0)
        self.height, self.width = self.stream.codec_context.height, self.stream.codec_context.width

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.container.close()

    def frames(self, max_frames: int | None = None) -> Iterator[np.ndarray]:
        """(H, W) uint8 luma frames (limited range expanded to 0..255), in order. Raises VideoError for a
        decoding failure, a frame size that changes, no frames, or fewer frames than the container declares."""
        n, shape = 0, None
        decoded = self.container.decode(self.stream)
        while max_frames is None or n < max_frames:
            try:
                frame = next(decoded, None)
                if frame is None:
                    break
                grey = frame.to_ndarray(format="gray")
            except (av.error.MemoryError, MemoryError):
                raise VideoError(self.path, f"out of memory decoding frame {n + 1} ({self.width}x{self.height}): "
                                            "the file may be fine; the process has too little memory") from None
            except av.FFmpegError as e:
                raise VideoError(self.path, f"decoding failed after {n} of {self.declared or '?'} frames "
                                            f"(truncated or corrupt?): {getattr(e, 'strerror', None) or e}") from None
            if shape is None:
                shape = grey.shape
            elif grey.shape != shape:
                raise VideoError(self.path, f"frame size changes within the video: {shape} up to frame {n}, "
                                            f"then {grey.shape}")
            n += 1
            yield grey
        if n == 0:
            raise VideoError(self.path, "no decodable frames")
        wanted = self.declared if max_frames is None else min(self.declared, max_frames)
        if self.declared and n < wanted:
            raise VideoError(self.path, f"truncated: decoded {n} of {wanted} frames")

    def count(self) -> int:
        """Frames in the file, by decoding them (containers may not declare it)."""
        return sum(1 for _ in self.frames())


def too_large(path: Path, frames: int, height: int, width: int, needed: int, max_bytes: int) -> VideoError:
    """The refusal of a video whose frames would not fit in ``max_bytes``."""
    size = path.stat().st_size if path.exists() else 0
    return VideoError(path, f"too large to read: {frames} frames of {width}x{height} decode to "
                            f"{_gb(frames * height * width)} (from {_gb(size)} on disk); reading them would hold "
                            f"{_gb(needed)}, over the {_gb(max_bytes)} allowed")


def _gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.0f} KB"


def load_video(path: str | os.PathLike, max_frames: int | None = None, *,
               max_bytes: int = MAX_HELD_BYTES) -> np.ndarray:
    """Decode a video to grey frames (luma): (N, H, W) uint8. Raises VideoError for corrupt or truncated
    files, and before decoding (or as soon as it shows) for one whose frames exceed ``max_bytes``."""
    with VideoReader(path) as video:
        frame_bytes = video.height * video.width
        expected = video.declared if max_frames is None else min(video.declared, max_frames)
        if frame_bytes and expected * frame_bytes > max_bytes:
            raise too_large(video.path, expected, video.height, video.width, expected * frame_bytes, max_bytes)
        frames: list[np.ndarray] = []
        for grey in video.frames(max_frames):
            if (len(frames) + 1) * grey.nbytes > max_bytes:  # more frames than the container declared
                raise too_large(video.path, len(frames) + 1, *grey.shape, (len(frames) + 1) * grey.nbytes, max_bytes)
            frames.append(grey)
    out = np.empty((len(frames), *frames[0].shape), np.uint8)  # filled frame by frame: no second full copy
    for t, grey in enumerate(frames):
        out[t] = grey
        frames[t] = None
    return out


def read_clips(path: str | os.PathLike, shapes: Sequence[tuple[int, int, int]], *, method: str = "motion",
               restore: str = "gray", max_bytes: int = MAX_HELD_BYTES) -> list[np.ndarray]:
    """One (frames, height, width) uint8 clip per requested shape, from a single decode of the video.

    A video that already has a requested shape is returned as it is; otherwise the clip is what
    resample.resample_clip(video, frames, height, width, method=, restore=) gives on the whole video.
    Raises VideoError when the file cannot be decoded, has fewer frames than a shape asks for, or would
    hold more than ``max_bytes`` of frames. A second decode happens only when the container does not
    declare its frame count truly (the motion estimate's frame pairs are spread over the whole length).
    """
    decoded = decode_video(path, shapes, method=method, restore=restore, max_bytes=max_bytes)
    return [decoded.clip(shape, method, restore) for shape in shapes]


def decode_video(path: str | os.PathLike, shapes: Sequence[tuple[int, int, int]], *, method: str = "motion",
                 restore: str = "gray", max_bytes: int = MAX_HELD_BYTES) -> DecodedVideo:
    """What one decode keeps for the requested shapes: read_clips' work, before the clips are cut."""
    for shape in shapes:
        check_request(*shape, method, restore)
    path = Path(path)
    with VideoReader(path) as video:
        declared = video.declared or video.count()
    sizes = list(dict.fromkeys((h, w) for _, h, w in shapes))
    decoded = DecodedVideo.read(path, sizes, _pair_frames(declared, method), max_bytes, declared)
    if decoded.n != declared and method == "motion":
        decoded.pairs = DecodedVideo.read(path, [], _pair_frames(decoded.n, method), max_bytes, decoded.n).pairs
    return decoded


def _pair_frames(n: int, method: str) -> set[int]:
    """The frames the motion estimate correlates, in a video of n frames."""
    if method != "motion" or n < 2:
        return set()
    return {t + i for t in pair_starts(n) for i in (0, 1)}


class DecodedVideo:
    """What one decode keeps of a video: its length and frame size, every frame at each requested size
    (uint8 at the video's own size, area-averaged float32 otherwise) and the full-size pair frames."""

    def __init__(self, path: Path):
        self.path, self.n, self.height, self.width = path, 0, 0, 0
        self.held: dict[tuple[int, int], list[np.ndarray]] = {}
        self.pairs: dict[int, np.ndarray] = {}
        self._displacement: np.ndarray | None = None

    @classmethod
    def read(cls, path: Path, sizes: list[tuple[int, int]], pair_frames: set[int], max_bytes: int,
             expected: int) -> DecodedVideo:
        out = cls(path)
        out.held = {size: [] for size in sizes}
        held_bytes = 0
        with VideoReader(path) as video:
            out.height, out.width = video.height, video.width
            per_frame = sum(h * w * (1 if (h, w) == (video.height, video.width) else 4) for h, w in sizes)
            needed = expected * per_frame + len(pair_frames) * video.height * video.width
            if needed > max_bytes:  # refused before decoding
                raise too_large(path, expected, video.height, video.width, needed, max_bytes)
            for t, grey in enumerate(video.frames()):
                for h, w in sizes:
                    small = grey if (h, w) == grey.shape else area_average(grey, h, w)
                    out.held[h, w].append(small)
                    held_bytes += small.nbytes
                if t in pair_frames:
                    out.pairs[t] = grey
                    held_bytes += grey.nbytes
                if held_bytes > max_bytes:  # the container declared fewer frames than the file holds
                    raise too_large(path, t + 1, *grey.shape, held_bytes, max_bytes)
                out.n = t + 1
            out.height, out.width = grey.shape
        return out

    def clip(self, shape: tuple[int, int, int], method: str, restore: str) -> np.ndarray:
        T, h, w = shape
        self._check_length(T)
        frames = self.held[h, w]
        if (self.n, h, w) == (T, self.height, self.width):  # already the model's input: used as it is
            return np.stack(frames)
        idx, _ = plan_frames(self.n, self.height, self.width, T, h, w, method=method,
                             displacement=self.displacement(method))
        return restore_clip(np.stack([frames[i] for i in idx]).astype(np.float32), method, restore)

    def _check_length(self, frames: int) -> None:
        if self.n < frames:
            raise VideoError(self.path, f"video has {self.n} frames; the model needs at least {frames}")

    def displacement(self, method: str) -> np.ndarray | None:
        """The noise's per-frame displacement that ``method="motion"`` plans its frames by, measured
        once per video (every clip and crop of it plans by the same one)."""
        if method != "motion":
            return None
        if self._displacement is None:
            self._displacement = displacement_of_pairs([(self.pairs[t], self.pairs[t + 1])
                                                        for t in pair_starts(self.n)])
        return self._displacement

    def crop_clips(self, requests: Sequence[tuple[tuple[int, int, int], tuple[float, float, float, float]]],
                   method: str, restore: str) -> list[np.ndarray]:
        """A (frames, height, width) uint8 clip per request (shape, region): the crop ``region`` (top,
        left, bottom, right, as shares of the frame) resampled as a whole video would be, its stride
        chosen for the crop's own scale (the texture moves ~1 output px per kept frame). One more decode
        serves every request, and only their frames are kept: memory stays that of the clips."""
        displacement = self.displacement(method)
        plans, held = [], []
        for (T, h, w), (top, left, bottom, right) in requests:
            self._check_length(T)
            y0, x0 = int(round(top * self.height)), int(round(left * self.width))
            rows = slice(y0, max(y0 + 1, int(round(bottom * self.height))))
            cols = slice(x0, max(x0 + 1, int(round(right * self.width))))
            idx, _ = plan_frames(self.n, rows.stop - rows.start, cols.stop - cols.start, T, h, w, method=method,
                                 displacement=displacement)
            plans.append((rows, cols, h, w, {int(t): k for k, t in enumerate(idx)}))
            held.append([None] * T)
        last = max((max(where) for *_, where in plans), default=-1)
        with VideoReader(self.path) as video:
            for t, grey in enumerate(video.frames()):
                for (rows, cols, h, w, where), frames in zip(plans, held):
                    if t in where:
                        frames[where[t]] = area_average(grey[rows, cols], h, w)
                if t >= last:  # the rest of the video is not needed
                    break
        return [restore_clip(np.stack(frames).astype(np.float32), method, restore) for frames in held]
