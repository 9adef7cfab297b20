"""Resampling a SpookyBench video to a model's input so that its motion survives (resample_clip).

A model wants e.g. 8 frames of 32x32, the release has 333 of 960x540.
Plain resizing destroys the stimulus twice over: area-averaging k x k cells of i.i.d. dots leaves a
near-uniform grey (contrast falls as 1/k), and sampling 8 frames uniformly over 333 puts ~41 frames
between kept frames, so the texture jumps many output pixels and nothing matches frame to frame. The
``"motion"`` method instead

1. estimates the per-frame displacement (dy, dx) of the noise by phase correlation of consecutive frames
   (figure and ground move in opposite directions, so only the magnitude per axis is meaningful);
2. with per-axis factors ky = H/height, kx = W/width, picks the temporal stride s so that the texture
   moves ~1 output pixel between kept frames (s = round(1 / |(dy/ky, dx/kx)|), at least 1), and takes
   a contiguous run of ``frames`` frames at that stride centred in the video (shorter videos force a
   smaller stride; ``info["stride_reduced"]`` says so and a warning is logged);
3. area-averages each kept frame (cv2.INTER_AREA): the dots become a blurred texture that still
   translates rigidly, now by ~1 output pixel per kept frame;
4. restores contrast (area averaging of k^2 dots leaves a std of ~0.5/k): standardises per clip, then
   ``restore="gray"`` (default) maps to mean 127.5, std 63.75 - the statistics of timeblind's Gaussian
   noise (std 0.25 of full range), which a spatially low-passed texture resembles - while
   ``restore="binary"`` re-binarises at the clip median (0/255, like binary-noise training data).
   Binarising discards the sub-threshold levels, so grey keeps slightly more signal (README,
   "Measurements"); pass ``restore="binary"`` for models trained on binary dots only.

The whole frame is resized anisotropically (960x540 -> 32x32 squeezes x by 30, y by 16.9) rather than
centre-cropped: a crop would cut off the sides of words; the per-axis factors enter the stride.
``method="plain"`` (uniform sampling over the whole video + INTER_AREA, no contrast restoration) is the
naive baseline.
"""

from __future__ import annotations

import logging
import math

import cv2
import numpy as np

from timeblind.core.grey import GRAY_STD, restore_grey  # noqa: F401  (GRAY_STD: still importable from here)

log = logging.getLogger(__name__)

METHODS = ("motion", "plain")
RESTORES = ("gray", "binary")


def estimate_displacement(video: np.ndarray, pairs: int = 8) -> np.ndarray:
    """Dominant per-frame displacement of the noise, (dy, dx) in px/frame, by phase correlation.

    Correlates up to ``pairs`` consecutive frame pairs spread over the video (:func:`pair_starts`) and
    returns the per-axis median of the absolute peak offsets (:func:`displacement_of_pairs`).
    """
    N = len(video)
    return displacement_of_pairs([(video[t], video[t + 1]) for t in pair_starts(N, pairs)])


def pair_starts(N: int, pairs: int = 8) -> list[int]:
    """First frames of the consecutive pairs the displacement is estimated from, for a video of N frames."""
    if N < 2:
        raise ValueError(f"video has {N} frame(s); need at least 2 to estimate motion")
    return np.unique(np.linspace(0, N - 2, min(pairs, N - 1)).round().astype(int)).tolist()


def displacement_of_pairs(pairs: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """The per-axis median of |peak offset| over frame pairs (a, b), (dy, dx) in px/frame.

    Figure and ground move in opposite directions, so the peak is +d where the ground dominates and -d
    otherwise: only magnitudes are meaningful. The peak is refined to sub-pixel by a 3-point parabola per
    axis (cv2.phaseCorrelate's 5x5 centroid would average +d and -d together for small d).
    """
    shifts = []
    for first, second in pairs:
        a, b = first.astype(np.float32), second.astype(np.float32)
        fa, fb = np.fft.rfft2(a - a.mean()), np.fft.rfft2(b - b.mean())
        cross = fb * np.conj(fa)
        r = np.fft.irfft2(cross / (np.abs(cross) + 1e-9), s=a.shape)  # (H, W), peak at the shift a -> b
        peak = np.unravel_index(np.argmax(r), r.shape)
        d = []
        for axis, (p, n) in enumerate(zip(peak, r.shape)):
            idx = list(peak)
            vals = []
            for off in (-1, 0, 1):
                idx[axis] = (p + off) % n
                vals.append(r[tuple(idx)])
            lo, mid, hi = vals
            denom = lo - 2 * mid + hi
            sub = 0.5 * (lo - hi) / denom if denom < 0 else 0.0
            shift = p + float(np.clip(sub, -0.5, 0.5))
            d.append(shift - n if shift > n / 2 else shift)  # wrap to a signed offset
        shifts.append(np.abs(d))
    return np.median(np.array(shifts), axis=0)  # (2,) |dy|, |dx|


def area_average(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    """One (H, W) frame -> (height, width) float32 by area averaging (per-axis factors)."""
    return cv2.resize(frame.astype(np.float32), (width, height), interpolation=cv2.INTER_AREA)


def _area_resize(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """(T, H, W) -> (T, height, width) float32 by area averaging (per-axis factors)."""
    return np.stack([area_average(f, height, width) for f in frames])


def check_request(frames: int, height: int, width: int, method: str = "motion", restore: str = "gray") -> None:
    if method not in METHODS:
        raise ValueError(f"method={method!r}; expected one of {METHODS}")
    if restore not in RESTORES:
        raise ValueError(f"restore={restore!r}; expected one of {RESTORES}")
    if frames < 2 or height < 1 or width < 1:
        raise ValueError(f"output {frames}x{height}x{width}; expected frames >= 2, height and width >= 1")


def resample_clip(video: np.ndarray, frames: int, height: int, width: int, *, method: str = "motion",
                  restore: str = "gray", speed: float | tuple[float, float] | None = None,
                  return_info: bool = False) -> np.ndarray | tuple[np.ndarray, dict]:
    """Resample a long, large noise video to (frames, height, width) uint8, keeping its motion visible.

    ``method="motion"``: strided frames so the texture moves ~1 output px per kept frame, area averaging,
    contrast restoration (``restore="gray"``: standardised grey, mean 127.5, std 63.75; ``"binary"``: 0/255
    at the clip median). ``method="plain"``: the naive baseline (uniform sampling, area averaging).
    ``speed`` overrides the estimated displacement: (dy, dx) px/frame, or a magnitude (taken along the axis
    with the smaller factor, the worst case). With ``return_info`` also returns a dict: method, displacement
    (dy, dx), factors (ky, kx), stride, start, indices, out_shift (output px per kept frame), stride_reduced.
    See the module docstring for why; io/video.py does the same while decoding a file.
    """
    video = np.asarray(video)
    if video.ndim != 3:
        raise ValueError(f"video of shape {video.shape}; expected (N, H, W) grey")
    check_request(frames, height, width, method, restore)
    N, H, W = video.shape
    displacement = estimate_displacement(video) if method == "motion" and speed is None and N >= frames else None
    idx, info = plan_frames(N, H, W, frames, height, width, method=method, speed=speed, displacement=displacement)
    clip = restore_clip(_area_resize(video[idx], height, width), method, restore)
    return (clip, info) if return_info else clip


def plan_frames(N: int, H: int, W: int, frames: int, height: int, width: int, *, method: str = "motion",
                speed: float | tuple[float, float] | None = None,
                displacement: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """Which of a video's N frames of H x W make the clip: (indices, info). ``displacement`` is the
    estimate (:func:`estimate_displacement`) that ``method="motion"`` needs unless ``speed`` is given."""
    if N < frames:
        raise ValueError(f"video has {N} frames; need at least frames={frames}")
    ky, kx = H / height, W / width
    info: dict = {"method": method, "factors": (ky, kx), "stride_reduced": False}
    if method == "plain":
        idx = np.linspace(0, N - 1, frames).round().astype(int)
        info.update(indices=idx.tolist(), stride=(N - 1) / (frames - 1), start=0)
        return idx, info

    if speed is None:
        d = np.asarray(displacement, dtype=float)
    elif np.ndim(speed) == 0:  # a magnitude without direction: assume the axis where it moves most output px
        d = np.array([float(speed), 0.0]) if ky <= kx else np.array([0.0, float(speed)])
    else:
        d = np.abs(np.asarray(speed, dtype=float))
    per_frame = math.hypot(d[0] / ky, d[1] / kx)  # output px the texture moves per input frame
    max_stride = (N - 1) // (frames - 1)  # longest stride whose run still fits in the video
    stride = max(1, round(1 / per_frame)) if per_frame > 1e-3 else max_stride
    if stride > max_stride:
        log.warning("video of %d frames is too short for stride %d (x %d frames); using stride %d, so the texture"
                    " moves %.2f instead of ~1 output px per frame", N, stride, frames, max_stride,
                    per_frame * max_stride)
        stride, info["stride_reduced"] = max_stride, True
    out_shift = per_frame * stride
    if out_shift > 1.5:
        log.warning("noise moves %.2f output px per kept frame even at stride 1; fine motion may be lost", out_shift)
    span = (frames - 1) * stride + 1
    start = (N - span) // 2  # centred: avoids fade-ins/outs at the ends of the release videos
    idx = start + stride * np.arange(frames)
    info.update(displacement=(float(d[0]), float(d[1])), stride=stride, start=int(start), indices=idx.tolist(),
                out_shift=out_shift)
    log.debug("resample_clip: %s", info)
    return idx, info


def restore_clip(small: np.ndarray, method: str, restore: str = "gray") -> np.ndarray:
    """Area-averaged frames (frames, height, width) float32 -> the uint8 clip: rounded as they are for
    ``method="plain"``, contrast restored for ``"motion"`` (module docstring, step 4)."""
    if method == "plain":
        return np.clip(small.round(), 0, 255).astype(np.uint8)
    if restore == "binary":
        return np.where(small > np.median(small), 255, 0).astype(np.uint8)
    return restore_grey(small)
