"""write_video as the release writes its videos: H.264 Constrained Baseline, yuv420p, limited range,
960x540, a variable frame rate, and binary dots that survive the codec."""

import av
import numpy as np
import pytest

from timeblind.io.export import VideoItem, export_dataset, write_video
from timeblind.io.video import load_video


def opposing_dots(T, H, W, rng, white=0.5, speed=2):
    """Binary dots: the middle third of the rows moves down `speed` px/frame, the rest up."""
    travel = speed * (T - 1)
    figure, ground = (rng.random((2, H + travel, W)) < white)
    t, rows = np.arange(T)[:, None], np.arange(H)[None, :]
    inside = np.zeros(H, bool)
    inside[H // 3: 2 * H // 3] = True
    frames = np.where(inside[None, :, None], figure[travel - speed * t + rows], ground[speed * t + rows])
    return frames.astype(np.uint8) * 255  # (T, H, W)


def release_timestamps(count, rng, low=44.0, high=55.0):
    """Seconds per frame with gaps drawn between 1/high and 1/low, as the release's variable timing."""
    return np.concatenate([[0.0], np.cumsum(rng.uniform(1 / high, 1 / low, count - 1))])


def stream_facts(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        seconds = [float(frame.pts * stream.time_base) for frame in container.decode(stream)]
        return {"codec": ctx.name, "profile": ctx.profile, "pix_fmt": ctx.pix_fmt, "size": (ctx.width, ctx.height),
                "range": ctx.color_range, "seconds": np.array(seconds), "rate": float(stream.average_rate)}


def test_release_format_constrained_baseline_at_a_variable_rate(tmp_path):
    rng = np.random.default_rng(0)
    frames, stamps = opposing_dots(40, 540, 960, rng), release_timestamps(40, rng)
    path = write_video(frames, tmp_path / "v.mp4", timestamps=stamps, profile="baseline", preset="veryfast")
    facts = stream_facts(path)
    assert facts["codec"] == "h264" and facts["profile"] == "Constrained Baseline"
    assert facts["pix_fmt"] == "yuv420p" and facts["size"] == (960, 540) and facts["range"] == 1  # 1: limited
    np.testing.assert_allclose(facts["seconds"], stamps, atol=1e-5)  # every frame at its own time
    assert 44 <= facts["rate"] <= 55 and np.ptp(np.diff(facts["seconds"])) > 0.003  # variable, not constant
    decoded = load_video(path)
    assert decoded.shape == frames.shape
    assert ((decoded >= 128) != (frames >= 128)).mean() < 1e-3  # the dots survive


def test_constant_rate_and_default_profile_unchanged(tmp_path):
    frames = opposing_dots(6, 64, 96, np.random.default_rng(1))
    facts = stream_facts(write_video(frames, tmp_path / "v.mp4", fps=12))
    assert facts["profile"] == "High" and facts["rate"] == 12
    np.testing.assert_allclose(facts["seconds"], np.arange(6) / 12, atol=1e-6)


def test_export_passes_the_writer_options_and_each_items_timing(tmp_path):
    rng = np.random.default_rng(2)
    stamps = release_timestamps(8, rng)
    items = [VideoItem(opposing_dots(8, 32, 48, rng), "shapes", ["circle"], "a", timestamps=stamps),
             VideoItem(opposing_dots(8, 32, 48, rng), "words", ["cat"], "b")]
    export_dataset(items, tmp_path, fps=20, profile="baseline", preset="ultrafast")
    a, b = stream_facts(tmp_path / "shapes/a.mp4"), stream_facts(tmp_path / "words/b.mp4")
    assert a["profile"] == b["profile"] == "Constrained Baseline"
    np.testing.assert_allclose(a["seconds"], stamps, atol=1e-5)
    np.testing.assert_allclose(b["seconds"], np.arange(8) / 20, atol=1e-6)


@pytest.mark.parametrize("options, match", [
    ({"timestamps": [0.0, 0.02]}, "2 timestamps for 4 frames"),
    ({"timestamps": [0.0, 0.02, 0.02, 0.05]}, "increase strictly; frame 2 at 0.02 s follows 0.02 s"),
    ({"timestamps": [-1.0, 0.0, 0.1, 0.2]}, "finite seconds >= 0"),
    ({"profile": "baseline", "crf": 0}, "crf=0 .*High 4:4:4"),
    ({"profile": "extended"}, "profile='extended': expected one of baseline, main, high"),
    ({"preset": "quick"}, "preset='quick': expected one of ultrafast"),
])
def test_bad_writer_options_are_named_and_nothing_is_left(tmp_path, options, match):
    frames = np.zeros((4, 8, 8), np.uint8)
    with pytest.raises(ValueError, match=match):
        write_video(frames, tmp_path / "v.mp4", **options)
    assert list(tmp_path.iterdir()) == []
