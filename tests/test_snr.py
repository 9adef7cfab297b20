"""Vectorised SpookyBench SNR analyzer: exactness against a loop transcription, behaviour, guards."""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from timeblind.analysis import SNRConfig, analyze_clips, snr_metrics, summarize_snr
from timeblind.analysis.snr import METRICS, _db, contrast_snr

SEEDS = range(16)  # single clips are noisy (Farnebäck on binary noise), so behaviour is judged on seed means


def stimulus(coherence: float = 1.0, mode: str = "opposite", size: int = 64, frames: int = 16, v: int = 2,
             seed: int = 0) -> np.ndarray:
    """Binary-noise clip (T, H, W) uint8 0/255 with a motion-defined disc.

    ``opposite``: inside the disc a noise field shifted +v·t along the rows, outside a second field shifted -v·t.
    ``same``: both fields shift +v·t (no motion-defined figure). ``random``: fresh noise every frame.
    Each frame a share ``1 - coherence`` of the pixels is replaced by fresh random values.
    """
    rng = np.random.default_rng(seed)
    fig, ground = rng.integers(0, 2, (2, size, size), dtype=np.uint8)  # (H, W) each
    yy, xx = np.mgrid[:size, :size]
    disc = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 4) ** 2
    t = np.arange(frames)
    shifted_fig = np.stack([np.roll(fig, v * k, axis=1) for k in t])  # (T, H, W)
    ground_shift = -v if mode == "opposite" else v
    shifted_ground = np.stack([np.roll(ground, ground_shift * k, axis=1) for k in t])  # (T, H, W)
    clip = np.where(disc, shifted_fig, shifted_ground)
    fresh = rng.integers(0, 2, clip.shape, dtype=np.uint8)
    if mode == "random":
        clip = fresh
    else:
        clip = np.where(rng.random(clip.shape) < coherence, clip, fresh)
    return clip.astype(np.uint8) * np.uint8(255)


def reference_metrics(frames: np.ndarray, step: int = 2, window: int = 5) -> dict[str, float]:
    """Slow per-frame transcription of the official DynamicNoiseSNRAnalyzer (uint8 gray input)."""
    gray = [frames[i] for i in range(0, len(frames), step)]
    flows = [cv2.calcOpticalFlowFarneback(gray[i - 1], gray[i], None, 0.5, 3, 15, 3, 5, 1.2, 0)
             for i in range(1, len(gray))]
    boundaries = []
    for flow in flows:
        fx_x = cv2.Sobel(flow[..., 0], cv2.CV_64F, 1, 0, ksize=3)
        fx_y = cv2.Sobel(flow[..., 0], cv2.CV_64F, 0, 1, ksize=3)
        fy_x = cv2.Sobel(flow[..., 1], cv2.CV_64F, 1, 0, ksize=3)
        fy_y = cv2.Sobel(flow[..., 1], cv2.CV_64F, 0, 1, ksize=3)
        boundaries.append(np.sqrt(fx_x**2 + fx_y**2 + fy_x**2 + fy_y**2))
    w = min(window, len(boundaries))
    integrated = [np.mean(boundaries[i:i + w], axis=0) for i in range(len(boundaries) - w + 1)]
    avg_boundary = np.mean(integrated, axis=0)
    static = gray[0].astype(float)

    def db(signal, noise):
        return 10 * math.log10(signal / noise) if noise > 0 and signal > 0 else 0

    basic = db(np.mean([np.mean(b**2) for b in boundaries]), np.var(static))

    h, wd = static.shape
    fx, fy = np.meshgrid(np.fft.fftfreq(wd), np.fft.fftfreq(h))
    f = np.sqrt(fx**2 + fy**2)
    weight = f * np.exp(-f / 0.1)
    perceptual = db(np.mean(np.abs(np.fft.fft2(avg_boundary) * weight) ** 2),
                    np.mean(np.abs(np.fft.fft2(static) * weight) ** 2))

    directions, magnitudes = [], []
    for flow in flows:
        magnitude, angle = cv2.cartToPolar(flow[..., 0], flow[..., 1])
        directions.append(angle)
        magnitudes.append(magnitude)
    mean_direction = np.mean(directions, axis=0)
    mean_magnitude = np.mean(magnitudes, axis=0)
    direction_var = np.zeros_like(mean_direction)
    for angle in directions:
        diff = np.minimum(np.abs(angle - mean_direction), 2 * np.pi - np.abs(angle - mean_direction))
        direction_var += diff**2
    direction_var /= len(directions)
    coh = np.exp(-direction_var) * (mean_magnitude > np.percentile(mean_magnitude, 50))
    local_var = cv2.blur(coh**2, (5, 5)) - cv2.blur(coh, (5, 5)) ** 2
    coherence = db(np.var(coh), np.mean(local_var))

    raw = (avg_boundary > np.percentile(avg_boundary, 90)).astype(np.uint8) * 255
    kernel = np.ones((5, 5), np.uint8)
    mask = cv2.morphologyEx(cv2.morphologyEx(raw, cv2.MORPH_CLOSE, kernel), cv2.MORPH_OPEN, kernel) > 0
    if mask.any() and not mask.all():
        # float64 region means (official: float32 np.mean; see the module docstring)
        mm = [(np.mean(fl[..., 0][mask], dtype=float), np.mean(fl[..., 1][mask], dtype=float)) for fl in flows]
        bm = [(np.mean(fl[..., 0][~mask], dtype=float), np.mean(fl[..., 1][~mask], dtype=float)) for fl in flows]
        ma, ba = np.mean(mm, axis=0), np.mean(bm, axis=0)
        c = np.sqrt((ma[0] - ba[0]) ** 2 + (ma[1] - ba[1]) ** 2)
        mv = np.mean([(x - ma[0]) ** 2 + (y - ma[1]) ** 2 for x, y in mm])
        bv = np.mean([(x - ba[0]) ** 2 + (y - ba[1]) ** 2 for x, y in bm])
        contrast = db(c**2, (mv + bv) / 2)
    else:
        contrast = 0
    combined = 0.2 * basic + 0.3 * perceptual + 0.2 * coherence + 0.3 * contrast
    return dict(zip(METRICS, (basic, perceptual, coherence, contrast, combined), strict=True))


@functools.cache
def seed_means(coherence: float = 1.0, mode: str = "opposite") -> np.ndarray:
    """Mean of the five metrics over SEEDS, in METRICS order."""
    clips = (stimulus(coherence, mode, seed=s) for s in SEEDS)
    return np.mean([[snr_metrics(clip)[m] for m in METRICS] for clip in clips], axis=0)


# --- exactness ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("kw", "step", "window"),
    [({}, 2, 5), ({"coherence": 0.5, "seed": 3}, 2, 5), ({"mode": "same"}, 1, 3), ({"frames": 4}, 1, 5)],
    ids=["opposite", "coherence0.5", "same-step1-w3", "fewer-flows-than-window"],
)
def test_matches_loop_reference(kw, step, window):
    clip = stimulus(**kw)
    got = snr_metrics(clip, SNRConfig(step=step, window=window))
    want = reference_metrics(clip, step=step, window=window)
    assert list(got) == list(METRICS)
    assert all(isinstance(v, float) for v in got.values())
    np.testing.assert_allclose([got[m] for m in METRICS], [want[m] for m in METRICS], rtol=1e-6, atol=1e-9)


def test_input_dtypes_are_equivalent():
    clip = stimulus(seed=5)
    base = snr_metrics(clip)
    assert snr_metrics(clip > 0) == base
    assert snr_metrics(clip.astype(np.float32) / 255) == base
    assert snr_metrics(clip.astype(np.int32)) == base


# --- behaviour ----------------------------------------------------------------------------------------------

def test_figure_beats_no_figure_and_fresh_noise():
    figure, same, fresh = seed_means(), seed_means(mode="same"), seed_means(mode="random")
    for m in ("motion_contrast_snr", "combined_snr"):
        i = METRICS.index(m)
        assert figure[i] > same[i] + 3 and figure[i] > fresh[i] + 3, (m, figure[i], same[i], fresh[i])


def test_snr_falls_with_coherence():
    high, mid, low = seed_means(coherence=1.0), seed_means(coherence=0.5), seed_means(coherence=0.1)
    # 1.0 -> 0.5 is a large effect (48 seeds, paired: combined -7.6 dB, contrast -17 dB).
    for m in ("motion_contrast_snr", "combined_snr"):
        i = METRICS.index(m)
        assert high[i] > mid[i] + 3, (m, high[i], mid[i])
    # 0.5 -> 0.1 is small at step 2 because the flow is near its noise floor once half the pixels are fresh.
    # Paired over 48 seeds, mean ± SE: combined -0.8 ± 0.5 dB, coherence -1.2 ± 0.4 dB, contrast -1.3 ± 1.6 dB.
    # The contrast change is too noisy to resolve, so it is not asserted here.
    for m in ("temporal_coherence_snr", "combined_snr"):
        i = METRICS.index(m)
        assert mid[i] > low[i], (m, mid[i], low[i])


# --- validation ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("frames", "match"),
    [
        (np.zeros((64, 64), np.uint8), r"\(T, H, W\).*\(64, 64\)"),
        (np.zeros((4, 16, 16, 3), np.uint8), r"\(4, 16, 16, 3\)"),
        (np.zeros((2, 16, 16), np.uint8), r"at least 2 kept frames.*got 1.*\(2, 16, 16\)"),
        (np.zeros((4, 0, 16), np.uint8), r"non-empty"),
        (np.full((4, 16, 16), 1.5), r"\[0, 1\].*max 1.5"),
        (np.full((4, 16, 16), np.nan), r"\[0, 1\]"),
        (np.full((4, 16, 16), 300, np.int16), r"\[0, 255\].*max 300"),
        (np.zeros((4, 16, 16), complex), r"dtype complex"),
    ],
    ids=["2d", "4d", "too-few-kept", "empty", "float-range", "nan", "int-range", "dtype"],
)
def test_validation_errors(frames, match):
    with pytest.raises(ValueError, match=match):
        snr_metrics(frames)


def test_config_and_workers_validation():
    with pytest.raises(ValueError, match="step"):
        SNRConfig(step=0)
    with pytest.raises(ValueError, match="pyr_scale"):
        SNRConfig(pyr_scale=1.5)
    with pytest.raises(ValueError, match="workers"):
        analyze_clips([], workers=0)
    with pytest.raises(ValueError, match="metric columns"):
        summarize_snr(pd.DataFrame({"x": [1.0]}))


# --- zero-power guards --------------------------------------------------------------------------------------

def test_constant_frames_give_zero():
    assert snr_metrics(np.full((8, 32, 32), 128, np.uint8)) == dict.fromkeys(METRICS, 0.0)


def test_static_first_frame_zeroes_basic_and_perceptual():
    clip = stimulus(seed=1)
    clip[0] = 0  # var(I_0) = 0 and F(I_0) is pure DC, where the weight is 0
    got = snr_metrics(clip)
    assert got["basic_snr"] == 0.0 and got["perceptual_snr"] == 0.0
    assert got["motion_contrast_snr"] != 0.0


def test_contrast_zero_for_empty_or_full_mask_and_db_guard():
    flow = np.random.default_rng(0).normal(size=(5, 16, 16, 2)).astype(np.float32)
    assert contrast_snr(flow, np.zeros((16, 16), bool)) == 0.0
    assert contrast_snr(flow, np.ones((16, 16), bool)) == 0.0
    assert _db(1.0, 0.0) == 0.0 and _db(0.0, 1.0) == 0.0 and _db(-1.0, -1.0) == 0.0 and _db(np.nan, 1.0) == 0.0
    assert _db(10.0, 1.0) == pytest.approx(10.0)


# --- batch API ----------------------------------------------------------------------------------------------

def test_analyze_clips_order_and_workers():
    clips = [(f"c{c}", stimulus(coherence=c, seed=2)) for c in (1.0, 0.5, 0.1)]
    serial = analyze_clips(clips)
    assert list(serial.columns) == ["name", *METRICS]
    assert list(serial["name"]) == ["c1.0", "c0.5", "c0.1"]
    for (_, clip), (_, row) in zip(clips, serial.iterrows(), strict=True):
        assert row[list(METRICS)].to_dict() == snr_metrics(clip)
    parallel = analyze_clips(iter(clips), workers=2)
    pd.testing.assert_frame_equal(parallel, serial)
    assert analyze_clips([]).columns.tolist() == ["name", *METRICS]


def test_summarize_snr():
    df = pd.DataFrame({m: [1.0, 2.0, 4.0] for m in METRICS} | {"name": list("abc")})
    df.loc[2, "basic_snr"] = np.nan
    out = summarize_snr(df)
    assert list(out.index) == list(METRICS)
    row = out.loc["perceptual_snr"]
    half = stats.t.ppf(0.975, 2) * np.std([1, 2, 4], ddof=1) / math.sqrt(3)
    assert row["n"] == 3 and row["mean"] == pytest.approx(7 / 3)
    assert row["ci_low"] == pytest.approx(7 / 3 - half) and row["ci_high"] == pytest.approx(7 / 3 + half)
    assert out.loc["basic_snr", "n"] == 2 and out.loc["basic_snr", "mean"] == pytest.approx(1.5)
    single = summarize_snr(df.iloc[:1])
    assert single["n"].eq(1).all() and single["std"].isna().all() and single["ci_low"].isna().all()


# --- streaming ----------------------------------------------------------------------------------------------

def test_flows_kept_on_disk_give_the_same_metrics():
    """A long clip's flow fields go to a temporary file and are read back: the numbers do not change."""
    from timeblind.analysis.snr import _as_gray_uint8, snr_of_kept_frames

    clip = stimulus(coherence=0.5, seed=4)
    kept = _as_gray_uint8(clip, 2)
    assert snr_of_kept_frames(iter(kept), flows_in_memory=0) == snr_metrics(clip)


def test_a_video_file_is_measured_as_its_decoded_frames(tmp_path):
    from timeblind.analysis.snr import snr_of_video
    from timeblind.io.export import write_video
    from timeblind.io.video import load_video

    path = write_video(stimulus(frames=15, seed=6), tmp_path / "clip.mp4", crf=0)
    assert snr_of_video(path, SNRConfig(step=3, window=2)) == snr_metrics(load_video(path), SNRConfig(step=3, window=2))


def test_items_that_cannot_be_measured_are_named_and_the_others_measured(tmp_path):
    from timeblind.analysis.snr_batch import analyze
    from timeblind.io.export import write_video

    short = write_video(stimulus(frames=2), tmp_path / "short.mp4")  # one kept frame at step 2
    (tmp_path / "broken.mp4").write_bytes(b"\0" * 64)
    items = [("a", stimulus(seed=1)), ("short", short), ("broken", tmp_path / "broken.mp4"), ("b", stimulus(seed=2))]
    for workers in (1, 2):
        measured, failed = analyze(items, workers=workers)
        assert measured.name.tolist() == ["a", "b"]
        assert [name for name, _ in failed] == ["short", "broken"]
        assert "need at least 2 kept frames, got 1" in failed[0][1] and "cannot open" in failed[1][1]
