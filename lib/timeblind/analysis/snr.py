"""Measured SNR of motion-defined stimuli: a vectorised SpookyBench SNR analyzer.

This module measures one clip or video; analysis/snr_batch.py runs it over many and summarises.

What it measures
----------------
In a SpookyBench clip every single frame is noise; a shape only shows through motion (noise inside a
mask moves one way, the rest the other way). The analyzer turns that into four signal-to-noise ratios in
dB, all derived from dense Farnebäck optical flow, plus their weighted combination:

- ``basic_snr``: motion-boundary energy against the pixel variance of a static frame.
- ``perceptual_snr``: the same two quantities compared in the Fourier domain, both weighted by a
  band-pass contrast-sensitivity curve.
- ``temporal_coherence_snr``: contrast of a per-pixel "moves in a consistent direction" map against its local
  (5×5) variance.
- ``motion_contrast_snr``: squared difference between the mean flow inside and outside an estimated shape mask
  against the temporal variance of those means.
- ``combined_snr``: 0.2·basic + 0.3·perceptual + 0.2·coherence + 0.3·contrast.

Source
------
A re-implementation of ``DynamicNoiseSNRAnalyzer`` from TimeBlindness/time-blindness,
``temporal-analysis/dynamic_noise_analyzer.py`` (the SpookyBench paper's temporal analysis). Frame pairs still
go through ``cv2.calcOpticalFlowFarneback`` one at a time; everything after that is numpy on the stacked
``(T', H, W, 2)`` flow. tests/test_snr.py checks the result against a per-frame loop transcription of the
official code.

How the ambiguous points are read
---------------------------------
- Input: grayscale ``(T, H, W)`` frames, which are the video frames after the official code has converted
  them to gray. ``uint8`` is used as it is; ``bool`` becomes 0/255; floats must lie in [0, 1] and become
  ``rint(x * 255)`` as uint8 (the official code only sees uint8 frames); other integer dtypes must lie in
  [0, 255].
- Kept frames are ``frames[::step]``, matching the official ``range(0, frame_count, step)``. At least 2
  kept frames are needed.
- Flow: ``cv2.calcOpticalFlowFarneback(prev, next)`` on consecutive kept uint8 frames with pyr_scale 0.5,
  3 levels, window 15, 3 iterations, poly_n 5, poly_sigma 1.2, flags 0. The flow is float32;
  u = flow[..., 0] (x, along a row) and v = flow[..., 1] (y).
- Motion boundary: B_t = sqrt(u_x² + u_y² + v_x² + v_y²). The derivatives are the 3×3 Sobel (derivative
  [-1, 0, 1] times smoothing [1, 2, 1]) in float64, as the official ``cv2.Sobel(..., cv2.CV_64F, ksize=3)``
  computes them. The border is reflect-101 (cv2's BORDER_DEFAULT). The whole stack is filtered in one go
  with ``scipy.ndimage.correlate1d(mode="mirror")``, which is the same reflect-101 border, over the H and W
  axes only.
- I_0 is the first kept frame as float64 on the 0–255 scale.
- Ā: the time mean of the means of all valid windows of ``window`` consecutive B_t (n - w + 1 windows for
  n flows). This is computed as one weighted time average, where each B_t is weighted by the number of
  windows that contain it divided by w·(n - w + 1). With fewer than ``window`` flows, all flows form a
  single window, so Ā is the plain mean. (The official code would average an empty list there and get
  NaN.)
- Coherence: angle θ and magnitude come from ``cv2.cartToPolar``, giving radians in [0, 2π) as float32.
  cv2's atan approximation differs from ``np.arctan2`` by up to about 2e-4 rad, so cv2 is kept to match
  the official output. θ̄ is the plain arithmetic mean of the angles, not a circular mean, as in the
  official code. The magnitude gate is ``mean |flow| > np.percentile(·, 50)`` (a strict comparison). blur5
  is ``cv2.blur`` with a normalised 5×5 box and border reflect-101. As in the official code, this part
  runs in float32.
- Mask M: ``Ā > np.percentile(Ā, 90)`` (linear interpolation, strict comparison) as a 0/255 uint8 image.
  It is then closed and after that opened by ``cv2.morphologyEx`` with a 5×5 all-ones (rectangular)
  kernel and cv2's default anchor and border.
- Region means m_t and b_t are summed in float64. The official code takes float32 ``np.mean``s, and that
  summation order cannot be reproduced in a vectorised form. The later m_t - m̄ cancellation magnifies the
  official float32 rounding, so ``motion_contrast_snr`` can differ from the official value by up to about 1e-4
  relative. The worst over 80 test clips was 5.6e-5, which is the official code's own rounding noise.
  Everything else follows the official dtypes exactly.
- If M is empty or covers the whole frame, one region has no pixels and the contrast SNR is 0. The
  official code gets NaN means there, and its ``> 0`` guard turns them into 0.
- Every metric is 0 when its signal or noise power is ≤ 0 (or NaN), as in the official guard. The
  combined value is the weighted sum of the four metrics, zeros included.
- Errors are raised rather than logged (the official batch driver logs the error and skips the video).
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage

from timeblind.io.video import VideoReader

FLOWS_IN_MEMORY = 32 << 20  # flow fields held in memory per clip (8 at 960x540); the rest go to a temporary file

METRICS: tuple[str, ...] = (  # the official analyzer's CSV names; every value is in dB
    "basic_snr",
    "perceptual_snr",
    "temporal_coherence_snr",
    "motion_contrast_snr",
    "combined_snr",
)


@dataclass(frozen=True)
class SNRConfig:
    """Analyzer settings; defaults are the official ones (``step`` is the CLI's ``--sample-rate`` default)."""

    step: int = 2
    window: int = 5
    # cv2.calcOpticalFlowFarneback arguments
    pyr_scale: float = 0.5
    levels: int = 3
    winsize: int = 15
    iterations: int = 3
    poly_n: int = 5
    poly_sigma: float = 1.2
    flow_flags: int = 0
    # mask, local-variance and perceptual-weighting constants
    mask_percentile: float = 90.0
    morph_size: int = 5
    blur_size: int = 5
    csf_peak: float = 0.1
    # combined = weights · (basic, perceptual, coherence, contrast)
    weights: tuple[float, float, float, float] = (0.2, 0.3, 0.2, 0.3)

    def __post_init__(self) -> None:
        for name in ("step", "window", "levels", "winsize", "iterations", "poly_n", "morph_size", "blur_size"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"SNRConfig.{name} must be a positive integer, got {value!r}")
        if not 0 < self.pyr_scale < 1:
            raise ValueError(f"SNRConfig.pyr_scale must be in (0, 1), got {self.pyr_scale!r}")
        if not 0 <= self.mask_percentile <= 100:
            raise ValueError(f"SNRConfig.mask_percentile must be in [0, 100], got {self.mask_percentile!r}")
        if self.csf_peak <= 0 or self.poly_sigma <= 0:
            raise ValueError(f"SNRConfig.csf_peak and poly_sigma must be > 0, got {self.csf_peak!r}, "
                             f"{self.poly_sigma!r}")
        if len(self.weights) != 4:
            raise ValueError(f"SNRConfig.weights needs 4 entries, got {self.weights!r}")


def _as_gray_uint8(frames: np.ndarray, step: int) -> np.ndarray:
    """Validate ``(T, H, W)`` frames and return the kept ones as uint8 gray, ``(T', H, W)``."""
    a = np.asarray(frames)
    if a.ndim != 3:
        raise ValueError(f"frames must be grayscale (T, H, W), got shape {a.shape}")
    if a.shape[1] == 0 or a.shape[2] == 0:
        raise ValueError(f"frames must have non-empty H and W, got shape {a.shape}")
    kept = len(range(0, a.shape[0], step))
    if kept < 2:
        raise ValueError(f"need at least 2 kept frames (every {step}-th frame), got {kept} from shape {a.shape}")
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a[::step])
    if a.dtype == np.bool_:
        return a[::step].astype(np.uint8) * np.uint8(255)
    if np.issubdtype(a.dtype, np.floating):
        lo, hi = float(np.min(a)), float(np.max(a))
        if not (np.isfinite(lo) and np.isfinite(hi) and lo >= 0.0 and hi <= 1.0):
            raise ValueError(f"float frames must lie in [0, 1], got min {lo} and max {hi}")
        return np.rint(a[::step] * 255.0).astype(np.uint8)
    if np.issubdtype(a.dtype, np.integer):
        lo, hi = int(np.min(a)), int(np.max(a))
        if lo < 0 or hi > 255:
            raise ValueError(f"integer frames must lie in [0, 255], got min {lo} and max {hi}")
        return a[::step].astype(np.uint8)
    raise ValueError(f"frames must be uint8, bool, float or integer, got dtype {a.dtype}")


def farneback_flow(previous: np.ndarray, following: np.ndarray, cfg: SNRConfig = SNRConfig()) -> np.ndarray:
    """Dense flow between two uint8 frames ``(H, W)`` -> ``(H, W, 2)`` float32."""
    args = (cfg.pyr_scale, cfg.levels, cfg.winsize, cfg.iterations, cfg.poly_n, cfg.poly_sigma, cfg.flow_flags)
    return cv2.calcOpticalFlowFarneback(previous, following, None, *args)


def motion_boundaries(flow: np.ndarray) -> np.ndarray:
    """B_t from the 3×3 Sobel of u and v: ``(n, H, W, 2)`` -> ``(n, H, W)`` float64."""
    f = flow.astype(np.float64)  # cv2.Sobel(..., CV_64F) filters in float64
    # Row (W) kernel first, then column (H) kernel, as cv2's separable filter does; "mirror" == reflect-101.
    dx = ndimage.correlate1d(ndimage.correlate1d(f, [-1, 0, 1], axis=2, mode="mirror"), [1, 2, 1], axis=1,
                             mode="mirror")  # (n, H, W, 2)
    dy = ndimage.correlate1d(ndimage.correlate1d(f, [1, 2, 1], axis=2, mode="mirror"), [-1, 0, 1], axis=1,
                             mode="mirror")  # (n, H, W, 2)
    return np.sqrt(dx[..., 0] ** 2 + dy[..., 0] ** 2 + dx[..., 1] ** 2 + dy[..., 1] ** 2)


def window_weights(n: int, window: int) -> np.ndarray:
    """Ā as a weighted time mean of B_t, ``(n,)``: the mean of the valid ``window``-long sliding means equals
    each B_t weighted by how many windows cover it, over w·(windows)."""
    w = min(window, n)
    n_windows = n - w + 1
    cover = np.convolve(np.ones(n_windows), np.ones(w))  # (n,)
    return cover / (w * n_windows)


def estimate_mask(avg_boundary: np.ndarray, cfg: SNRConfig = SNRConfig()) -> np.ndarray:
    """Shape mask M: the top (100 - percentile)% of Ā, closed then opened; ``(H, W)`` bool."""
    raw = (avg_boundary > np.percentile(avg_boundary, cfg.mask_percentile)).astype(np.uint8) * np.uint8(255)
    kernel = np.ones((cfg.morph_size, cfg.morph_size), np.uint8)
    closed = cv2.morphologyEx(raw, cv2.MORPH_CLOSE, kernel)
    return cv2.morphologyEx(closed, cv2.MORPH_OPEN, kernel) > 0


def _db(signal: float, noise: float) -> float:
    """10·log10(signal / noise), or 0 unless both powers are > 0 (NaN included), as the official guard."""
    if noise > 0 and signal > 0:
        return float(10 * math.log10(signal / noise))
    return 0.0


def perceptual_snr(avg_boundary: np.ndarray, first: np.ndarray, csf_peak: float = 0.1) -> float:
    """Band-pass (f·exp(-f/peak)) weighted spectral power of Ā over that of I_0; both ``(H, W)``."""
    h, w = first.shape
    fx, fy = np.meshgrid(np.fft.fftfreq(w), np.fft.fftfreq(h))  # (H, W) cycles/pixel
    freq = np.sqrt(fx**2 + fy**2)
    weight = freq * np.exp(-freq / csf_peak)
    signal = np.mean(np.abs(np.fft.fft2(avg_boundary) * weight) ** 2)
    noise = np.mean(np.abs(np.fft.fft2(first.astype(np.float64)) * weight) ** 2)
    return _db(signal, noise)


def polar(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Magnitude and angle (radians in [0, 2π)) of a ``(H, W, 2)`` flow, float32 as cv2.cartToPolar gives them."""
    return cv2.cartToPolar(np.ascontiguousarray(flow[..., 0]), np.ascontiguousarray(flow[..., 1]))


def coherence_snr(coherence: np.ndarray, blur_size: int = 5) -> float:
    """var(C) over the mean local variance blur(C²) - blur(C)² (normalised box, reflect-101 border)."""
    k = (blur_size, blur_size)
    local_var = cv2.blur(coherence**2, k) - cv2.blur(coherence, k) ** 2
    return _db(np.var(coherence), np.mean(local_var))


def _region_mean(flow: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Mean flow vector over a region: ``(H, W, 2)``, ``(H, W)`` bool -> ``(2,)`` float64."""
    return flow.reshape(-1, 2).astype(np.float64)[region.ravel()].mean(axis=0)


def contrast_snr(flow: np.ndarray, mask: np.ndarray) -> float:
    """‖m̄ - b̄‖² over ½(mean_t ‖m_t - m̄‖² + mean_t ‖b_t - b̄‖²) of flows ``(n, H, W, 2)``.

    Returns 0 when M is empty or covers the whole frame.
    """
    if not mask.any() or mask.all():
        return 0.0
    return _contrast([_region_mean(f, mask) for f in flow], [_region_mean(f, ~mask) for f in flow])


def _contrast(inside: list[np.ndarray], outside: list[np.ndarray]) -> float:
    inside, outside = np.array(inside), np.array(outside)  # (n, 2) each
    in_bar, out_bar = inside.mean(axis=0), outside.mean(axis=0)  # (2,)
    contrast = np.sqrt(np.sum((in_bar - out_bar) ** 2))
    in_var = np.mean(np.sum((inside - in_bar) ** 2, axis=1))
    out_var = np.mean(np.sum((outside - out_bar) ** 2, axis=1))
    return _db(contrast**2, (in_var + out_var) / 2)


def snr_metrics(frames: np.ndarray, cfg: SNRConfig = SNRConfig()) -> dict[str, float]:
    """The five SNRs (dB) of one clip; ``frames`` (T, H, W) as uint8, bool or float in [0, 1]."""
    return snr_of_kept_frames(_as_gray_uint8(frames, cfg.step), cfg)


def snr_of_video(path: str | Path, cfg: SNRConfig = SNRConfig()) -> dict[str, float]:
    """The five SNRs (dB) of a video file, decoded as a stream (io/video.py): every ``cfg.step``-th frame
    is kept, as the official ``range(0, frame_count, step)``. Raises VideoError or ValueError (too short)."""
    with VideoReader(path) as video:
        kept = (frame for t, frame in enumerate(video.frames()) if t % cfg.step == 0)
        return snr_of_kept_frames(kept, cfg, what=f"video (every {cfg.step}-th frame)")


def snr_of_kept_frames(kept: Iterable[np.ndarray], cfg: SNRConfig = SNRConfig(), *,
                       flows_in_memory: int = FLOWS_IN_MEMORY, what: str = "clip") -> dict[str, float]:
    """The five SNRs (dB) of the kept uint8 frames ``(H, W)``, given one at a time.

    Memory does not grow with the length: the flow fields are computed once, kept in memory up to
    ``flows_in_memory`` bytes and in a temporary file beyond, and read twice, first for Ā (hence the mask M) and
    the angle and magnitude means, then for the angular variance and the region means.
    """
    with FlowStore(flows_in_memory) as flows:
        previous = first = None
        for frame in kept:
            if previous is None:
                first = frame.astype(np.float64)  # I_0
            else:
                flows.append(farneback_flow(previous, frame, cfg))
            previous = frame
        if len(flows) < 1:
            raise ValueError(f"{what}: need at least 2 kept frames, got {0 if first is None else 1}")
        n = len(flows)
        # First read: B_t -> basic energy and Ā; the time means of the flow's angle and magnitude.
        weights = window_weights(n, cfg.window)
        avg_boundary = np.zeros(first.shape)
        energy, angle_sum, magnitude_sum = [], None, None
        for t, flow in enumerate(flows):
            boundary = motion_boundaries(flow[None])[0]  # (H, W)
            energy.append(np.mean(boundary**2))
            avg_boundary += weights[t] * boundary
            magnitude, angle = polar(flow)
            # float32 running sums in time order: what the official np.mean(axis=0) computes
            angle_sum = angle if angle_sum is None else angle_sum + angle
            magnitude_sum = magnitude if magnitude_sum is None else magnitude_sum + magnitude
        mean_angle, mean_magnitude = angle_sum / n, magnitude_sum / n
        mask = estimate_mask(avg_boundary, cfg)
        regions = mask.any() and not mask.all()
        # Second read: per-pixel angular variance about the mean angle; mean flow inside and outside M.
        variance, inside, outside = None, [], []
        for flow in flows:
            dev = np.abs(polar(flow)[1] - mean_angle)  # arithmetic, not circular, mean angle (official)
            squared = np.minimum(dev, 2 * np.pi - dev) ** 2
            variance = squared if variance is None else variance + squared
            if regions:
                inside.append(_region_mean(flow, mask))
                outside.append(_region_mean(flow, ~mask))
    coherence = np.exp(-(variance / n)) * (mean_magnitude > np.percentile(mean_magnitude, 50))
    parts = (
        _db(float(np.mean(energy)), np.var(first)),
        perceptual_snr(avg_boundary, first, cfg.csf_peak),
        coherence_snr(coherence, cfg.blur_size),
        _contrast(inside, outside) if regions else 0.0,
    )
    combined = float(sum(w * p for w, p in zip(cfg.weights, parts, strict=True)))
    return dict(zip(METRICS, (*parts, combined), strict=True))


class FlowStore:
    """The flow fields of one clip in time order: in memory up to ``max_bytes``, then all of them in an
    unnamed temporary file, read back one at a time (so resident memory holds one field)."""

    def __init__(self, max_bytes: int):
        self.max_bytes, self.fields, self.file, self.shape, self.count = max_bytes, [], None, None, 0

    def __enter__(self) -> FlowStore:
        return self

    def __exit__(self, *exc) -> None:
        self.fields.clear()
        if self.file is not None:
            self.file.close()

    def __len__(self) -> int:
        return self.count

    def append(self, flow: np.ndarray) -> None:
        self.shape = flow.shape
        if self.file is None and (self.count + 1) * flow.nbytes > self.max_bytes:
            self.file = tempfile.TemporaryFile(prefix="timeblind-flow-")
            for kept in self.fields:
                kept.tofile(self.file)
            self.fields.clear()
        if self.file is None:
            self.fields.append(flow)
        else:
            np.ascontiguousarray(flow, np.float32).tofile(self.file)
        self.count += 1

    def __iter__(self) -> Iterator[np.ndarray]:
        if self.file is None:
            yield from self.fields
            return
        self.file.flush()
        self.file.seek(0)
        size = int(np.prod(self.shape))
        for _ in range(self.count):
            yield np.fromfile(self.file, np.float32, size).reshape(self.shape)
