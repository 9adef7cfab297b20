"""Measured SNR of motion-defined stimuli: a vectorised SpookyBench SNR analyzer.

What it measures
----------------
In a SpookyBench clip every single frame is noise; a shape only shows through motion (noise inside a
mask moves one way, the rest the other way). The analyzer turns that into four signal-to-noise ratios in
dB, all derived from dense Farnebäck optical flow, plus their weighted combination:

- ``basic_snr_db``: motion-boundary energy against the pixel variance of a static frame.
- ``perceptual_snr_db``: the same two quantities compared in the Fourier domain, both weighted by a
  band-pass contrast-sensitivity curve.
- ``coherence_snr_db``: contrast of a per-pixel "moves in a consistent direction" map against its local
  (5×5) variance.
- ``contrast_snr_db``: squared difference between the mean flow inside and outside an estimated shape mask
  against the temporal variance of those means.
- ``combined_snr_db``: 0.2·basic + 0.3·perceptual + 0.2·coherence + 0.3·contrast.

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
  official float32 rounding, so ``contrast_snr_db`` can differ from the official value by up to about 1e-4
  relative. The worst over 80 test clips was 5.6e-5, which is the official code's own rounding noise.
  Everything else follows the official dtypes exactly.
- If M is empty or covers the whole frame, one region has no pixels and the contrast SNR is 0. The
  official code gets NaN means there, and its ``> 0`` guard turns them into 0.
- Every metric is 0 when its signal or noise power is ≤ 0 (or NaN), as in the official guard. The
  combined value is the weighted sum of the four metrics, zeros included.
- Errors are raised rather than logged (the official batch driver logs the error and skips the video).
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from scipy import ndimage

from timeblind.core.stats import t_interval

METRICS: tuple[str, ...] = (
    "basic_snr_db",
    "perceptual_snr_db",
    "coherence_snr_db",
    "contrast_snr_db",
    "combined_snr_db",
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


def farneback_flows(gray: np.ndarray, cfg: SNRConfig = SNRConfig()) -> np.ndarray:
    """Dense flow between consecutive uint8 frames ``(T', H, W)`` -> ``(T'-1, H, W, 2)`` float32."""
    args = (cfg.pyr_scale, cfg.levels, cfg.winsize, cfg.iterations, cfg.poly_n, cfg.poly_sigma, cfg.flow_flags)
    return np.stack([cv2.calcOpticalFlowFarneback(p, n, None, *args) for p, n in itertools.pairwise(gray)])


def motion_boundaries(flow: np.ndarray) -> np.ndarray:
    """B_t from the 3×3 Sobel of u and v: ``(n, H, W, 2)`` -> ``(n, H, W)`` float64."""
    f = flow.astype(np.float64)  # cv2.Sobel(..., CV_64F) filters in float64
    # Row (W) kernel first, then column (H) kernel, as cv2's separable filter does; "mirror" == reflect-101.
    dx = ndimage.correlate1d(ndimage.correlate1d(f, [-1, 0, 1], axis=2, mode="mirror"), [1, 2, 1], axis=1,
                             mode="mirror")  # (n, H, W, 2)
    dy = ndimage.correlate1d(ndimage.correlate1d(f, [1, 2, 1], axis=2, mode="mirror"), [-1, 0, 1], axis=1,
                             mode="mirror")  # (n, H, W, 2)
    return np.sqrt(dx[..., 0] ** 2 + dy[..., 0] ** 2 + dx[..., 1] ** 2 + dy[..., 1] ** 2)


def integrated_boundary(boundaries: np.ndarray, window: int) -> np.ndarray:
    """Ā: time mean of the valid ``window``-long sliding means of B_t, ``(n, H, W)`` -> ``(H, W)``."""
    n = boundaries.shape[0]
    w = min(window, n)
    n_windows = n - w + 1
    # Mean of window means == weighted mean, each B_t weighted by how many windows cover it.
    cover = np.convolve(np.ones(n_windows), np.ones(w))  # (n,)
    return np.tensordot(cover / (w * n_windows), boundaries, axes=1)


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


def basic_snr(boundaries: np.ndarray, first: np.ndarray) -> float:
    """mean_t mean(B_t²) over var(I_0); ``boundaries`` (n, H, W), ``first`` (H, W) on the 0–255 scale."""
    signal = np.mean(np.mean(boundaries**2, axis=(1, 2)))
    return _db(signal, np.var(first.astype(np.float64)))


def perceptual_snr(avg_boundary: np.ndarray, first: np.ndarray, csf_peak: float = 0.1) -> float:
    """Band-pass (f·exp(-f/peak)) weighted spectral power of Ā over that of I_0; both ``(H, W)``."""
    h, w = first.shape
    fx, fy = np.meshgrid(np.fft.fftfreq(w), np.fft.fftfreq(h))  # (H, W) cycles/pixel
    freq = np.sqrt(fx**2 + fy**2)
    weight = freq * np.exp(-freq / csf_peak)
    signal = np.mean(np.abs(np.fft.fft2(avg_boundary) * weight) ** 2)
    noise = np.mean(np.abs(np.fft.fft2(first.astype(np.float64)) * weight) ** 2)
    return _db(signal, noise)


def direction_coherence(flow: np.ndarray) -> np.ndarray:
    """C = exp(-V)·[mean |flow| > its median], V the per-pixel angular variance; ``(n, H, W, 2)`` -> ``(H, W)``.

    Float32 throughout, like the official code (cv2.cartToPolar returns float32).
    """
    n, h, w, _ = flow.shape
    # cartToPolar is elementwise, so one call on the stack seen as a (n·H, W) image equals n per-frame calls.
    mag, ang = cv2.cartToPolar(np.ascontiguousarray(flow[..., 0]).reshape(n * h, w),
                               np.ascontiguousarray(flow[..., 1]).reshape(n * h, w))
    mag, ang = mag.reshape(n, h, w), ang.reshape(n, h, w)  # (n, H, W) float32, angle in [0, 2π)
    dev = np.abs(ang - ang.mean(axis=0))  # arithmetic, not circular, mean angle (official)
    var = np.mean(np.minimum(dev, 2 * np.pi - dev) ** 2, axis=0)  # (H, W)
    mean_mag = mag.mean(axis=0)  # (H, W)
    return np.exp(-var) * (mean_mag > np.percentile(mean_mag, 50))


def coherence_snr(coherence: np.ndarray, blur_size: int = 5) -> float:
    """var(C) over the mean local variance blur(C²) - blur(C)² (normalised box, reflect-101 border)."""
    k = (blur_size, blur_size)
    local_var = cv2.blur(coherence**2, k) - cv2.blur(coherence, k) ** 2
    return _db(np.var(coherence), np.mean(local_var))


def _region_means(flow: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Per-frame mean flow vector over a region: ``(n, H, W, 2)``, ``(H, W)`` bool -> ``(n, 2)`` float64."""
    pixels = flow.reshape(flow.shape[0], -1, 2).astype(np.float64)  # (n, H·W, 2)
    return pixels[:, region.ravel()].mean(axis=1)


def contrast_snr(flow: np.ndarray, mask: np.ndarray) -> float:
    """‖m̄ - b̄‖² over ½(mean_t ‖m_t - m̄‖² + mean_t ‖b_t - b̄‖²).

    Returns 0 when M is empty or covers the whole frame.
    """
    if not mask.any() or mask.all():
        return 0.0
    inside, outside = _region_means(flow, mask), _region_means(flow, ~mask)  # (n, 2) each
    in_bar, out_bar = inside.mean(axis=0), outside.mean(axis=0)  # (2,)
    contrast = np.sqrt(np.sum((in_bar - out_bar) ** 2))
    in_var = np.mean(np.sum((inside - in_bar) ** 2, axis=1))
    out_var = np.mean(np.sum((outside - out_bar) ** 2, axis=1))
    return _db(contrast**2, (in_var + out_var) / 2)


def snr_metrics(frames: np.ndarray, cfg: SNRConfig = SNRConfig()) -> dict[str, float]:
    """The five SNRs (dB) of one clip; ``frames`` (T, H, W) as uint8, bool or float in [0, 1]."""
    gray = _as_gray_uint8(frames, cfg.step)  # (T', H, W) uint8
    flow = farneback_flows(gray, cfg)  # (T'-1, H, W, 2) float32
    boundaries = motion_boundaries(flow)  # (T'-1, H, W)
    avg_boundary = integrated_boundary(boundaries, cfg.window)  # (H, W)
    first = gray[0].astype(np.float64)  # I_0, (H, W)
    parts = (
        basic_snr(boundaries, first),
        perceptual_snr(avg_boundary, first, cfg.csf_peak),
        coherence_snr(direction_coherence(flow), cfg.blur_size),
        contrast_snr(flow, estimate_mask(avg_boundary, cfg)),
    )
    combined = float(sum(w * p for w, p in zip(cfg.weights, parts, strict=True)))
    return dict(zip(METRICS, (*parts, combined), strict=True))


def _analyze_one(item: tuple[str, np.ndarray], cfg: SNRConfig) -> dict[str, object]:
    name, frames = item
    return {"name": name, **snr_metrics(frames, cfg)}


def analyze_clips(
    clips: Iterable[tuple[str, np.ndarray]], cfg: SNRConfig = SNRConfig(), workers: int = 1
) -> pd.DataFrame:
    """One row per ``(name, frames)`` clip: ``name`` plus the five metrics, in input order.

    ``workers > 1`` runs the clips in a spawn-started process pool, so a calling script needs the usual
    ``if __name__ == "__main__":`` guard. Results are identical to a serial run.
    """
    if not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    items = list(clips)
    if workers == 1 or len(items) < 2:
        rows = [_analyze_one(item, cfg) for item in items]
    else:
        # spawn: fresh children instead of forks of a parent whose cv2/BLAS threads may already run.
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(workers, len(items)), mp_context=ctx) as pool:
            rows = list(pool.map(_analyze_one, items, itertools.repeat(cfg)))  # map keeps input order
    return pd.DataFrame(rows, columns=["name", *METRICS])


def summarize_snr(df: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Per metric: n, mean, std (ddof 1) and the two-sided Student-t interval of the mean, indexed by metric.

    NaN entries are dropped; with n < 2 the std and the interval are NaN.
    """
    present = [m for m in METRICS if m in df.columns]
    if not present:
        raise ValueError(f"df has none of the metric columns {METRICS}; got {list(df.columns)}")
    rows = []
    for metric in present:
        x = df[metric].dropna().to_numpy(dtype=np.float64)
        n = int(x.size)
        mean = float(x.mean()) if n else math.nan
        std = float(x.std(ddof=1)) if n > 1 else math.nan
        low, high = t_interval(x, confidence) if n > 1 else (math.nan, math.nan)  # scipy.stats.t
        rows.append({"metric": metric, "n": n, "mean": mean, "std": std, "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows).set_index("metric")


def snr_clips(source: Path, *, split: str = "val", per_category: int = 32):
    """(name, category, grey clip) to measure: the first `per_category` clips of each category of a
    stored split, or every video of a SpookyBench folder at its own size, with the folder's skipped
    items. Patterns are brightness-coded, not motion-coded: left out."""
    from timeblind.data.dataset import StimulusDataset

    if (source / "manifest.json").exists():
        data = StimulusDataset(source, split)
        wanted = [i for c in data.manifest["categories"] if c != "patterns"
                  for i in data.samples.index[data.samples.category == c][:per_category]]
        return [(f"{split}/{i}", data.samples.category[i], data.clip(int(i))) for i in wanted], []
    from timeblind.io.spookybench import SpookyBenchFolder

    folder = SpookyBenchFolder(source)
    clips = [(entry.rel, entry.category, clip) for entry, clip in folder.videos()]
    return clips, folder.skipped
