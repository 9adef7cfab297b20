"""The SpookyBench release layout: export -> read round trip, per-row failures, motion-preserving resampling."""

import ast
import logging
import os
import shutil
import time

import av
import cv2
import numpy as np
import pandas as pd
import pytest
from timeblind.io.export import VideoItem, export_dataset
from timeblind.io.folder import SpookyBenchFolder, iter_clips
from timeblind.io.metadata import Entry, read_metadata
from timeblind.io.resample import estimate_displacement, resample_clip
from timeblind.io.spookybench import is_correct
from timeblind.io.video import MAX_HELD_BYTES, VideoError, VideoReader, load_video, read_clips

try:  # the library's correlator; a local one keeps these tests independent of renderer rewrites
    from timeblind.stimuli.motion import motion_energy_mask
except ImportError:  # pragma: no cover
    from scipy.ndimage import uniform_filter

    def motion_energy_mask(frames, speed=1, smooth=3):
        """Vertical Reichardt correlator: figure = pixels moving against the border's majority."""
        x = np.asarray(frames, np.float32)
        x = (x - x.mean()) / (x.std() + 1e-6)
        prev, nxt = x[:-1], x[1:]
        e = (nxt * np.roll(prev, speed, axis=1) - nxt * np.roll(prev, -speed, axis=1)).mean(axis=0)
        e = uniform_filter(e, smooth, mode="nearest")
        border = np.concatenate([e[0], e[-1], e[:, 0], e[:, -1]])
        return np.sign(e) == -(np.sign(np.median(border)) or 1.0)


def render(T, H, W, speed, rng, radius=0.35):
    """Opposing-motion binary noise, no timeblind renderer: a disc whose noise moves +speed px/frame along
    rows, the rest moving -speed. Returns (T, H, W) uint8 0/255 frames and the (H, W) bool mask."""
    yy, xx = np.mgrid[:H, :W]
    mask = (yy - H / 2) ** 2 + (xx - W / 2) ** 2 < (radius * min(H, W)) ** 2
    travel = speed * (T - 1)
    figure = rng.random((H + travel, W)) < 0.5
    ground = rng.random((H + travel, W)) < 0.5
    t, rows = np.arange(T)[:, None], np.arange(H)[None, :]
    frames = np.where(mask[None], figure[travel - speed * t + rows], ground[speed * t + rows])  # (T, H, W)
    return frames.astype(np.uint8) * 255, mask


def iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


def mask_iou(clip, mask, speed=1):
    """IoU of the motion-energy mask of a (T, H, W) uint8 clip with the true mask (downscaled if needed)."""
    h, w = clip.shape[1:]
    if mask.shape != (h, w):
        mask = cv2.resize(mask.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA) > 0.5
    return iou(motion_energy_mask(clip / 255.0, speed=speed), mask)


def items(rng, T=12, H=64, W=96):
    specs = [("words", "hello", ["hello"]), ("shapes", "disc", ["circle", "disc"]),
             ("images", "quote", ["it's a cat"]), ("patterns", "p1", ["stripes"])]
    return [VideoItem(render(T, H, W, 1, rng)[0], cat, answers, name) for cat, name, answers in specs]


@pytest.fixture
def bench(tmp_path):
    """A small exported release with two good videos."""
    root = tmp_path / "bench"
    export_dataset(items(np.random.default_rng(0))[:2], root)
    return root


# ------------------------------------------------------------------------------------------------ export


@pytest.mark.parametrize("scale, crf", [(1, 18), (2, 18), (1, 0)])
def test_round_trip(tmp_path, scale, crf):
    rng = np.random.default_rng(1)
    its = items(rng)
    table = export_dataset(its, tmp_path / "out", scale=scale, crf=crf, profile=None if crf == 0 else "baseline")
    csv_table = pd.read_csv(tmp_path / "out" / "metadata.csv")
    assert list(csv_table.columns) == list(table.columns) == ["Path", "Category", "Label"]
    assert csv_table.equals(table)
    official, patterns = its[:3], its[3:]  # the release's categories; patterns go to a folder of their own
    assert csv_table["Path"].tolist() == [f"{it.category}/{it.name}.mp4" for it in official]  # item order
    assert [ast.literal_eval(label) for label in csv_table["Label"]] == [it.answers for it in official]
    pattern_table = pd.read_csv(tmp_path / "out" / "patterns" / "metadata.csv")
    assert pattern_table.to_dict("records") == [{"Path": "p1.mp4", "Category": "patterns", "Label": "['stripes']"}]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["images", "metadata.csv", "patterns", "shapes",
                                                                     "words"]  # no temp files left
    assert sorted(p.name for p in (tmp_path / "out" / "patterns").iterdir()) == ["metadata.csv", "p1.mp4"]
    entries, skipped = read_metadata(tmp_path / "out")
    pattern_entries, pattern_skipped = read_metadata(tmp_path / "out" / "patterns")
    entries += pattern_entries
    assert skipped == pattern_skipped == [] and [e.answers for e in entries] == [it.answers for it in its]
    for entry, item in zip(entries, its):
        with av.open(str(entry.path)) as c:
            assert c.streams.video[0].codec_context.name == "h264"
        video = load_video(entry.path)
        T, H, W = item.frames.shape
        assert video.shape == (T, H * scale, W * scale) and video.dtype == np.uint8
        decoded = video[:, ::scale, ::scale]  # (T, H, W) back at the rendered size
        if crf == 0:
            assert np.array_equal(decoded, item.frames)  # lossless
        else:
            assert np.abs(decoded.astype(int) - item.frames).mean() < 4
        mask = render(T, H, W, 1, np.random.default_rng(9))[1]  # same disc geometry
        assert mask_iou(decoded, mask) >= 0.8 * mask_iou(item.frames, mask)
        assert load_video(entry.path, max_frames=5).shape == (5, H * scale, W * scale)


@pytest.mark.parametrize("change, match", [
    ({"category": "sounds"}, "unknown category 'sounds'"),
    ({"name": "a/b"}, "name 'a/b'"),
    ({"name": ".."}, r"name '\.\.'"),
    ({"answers": []}, r"answers \[\]"),
    ({"answers": "cat"}, "answers 'cat'"),
    ({"frames": np.zeros((3, 5, 8), np.uint8)}, "8x5 .*odd"),
    ({"frames": np.zeros((3, 8, 8), np.float32)}, "dtype float32"),
])
def test_export_rejects_bad_items(tmp_path, change, match):
    good = VideoItem(np.zeros((3, 8, 8), np.uint8), "words", ["ok"], "fine")
    bad = VideoItem(**{**vars(good), "name": "bad", **change})
    with pytest.raises(ValueError, match=match):
        export_dataset([good, bad], tmp_path)
    assert not (tmp_path / "metadata.csv").exists()


def test_export_rejects_duplicates_and_bad_scale(tmp_path):
    item = VideoItem(np.zeros((3, 8, 8), bool), "words", ["ok"], "same")
    with pytest.raises(ValueError, match="duplicate path 'words/same.mp4'"):
        export_dataset([item, item], tmp_path)
    with pytest.raises(ValueError, match="scale=0"):
        export_dataset([item], tmp_path, scale=0)


# ------------------------------------------------------------------------------------------------- read


def test_bad_rows_are_skipped_and_the_rest_load(bench, tmp_path, monkeypatch):
    good = ["words/hello.mp4", "shapes/disc.mp4"]
    outside = tmp_path / "outside.mp4"  # a valid video: refusal must come from the path, not a decode failure
    shutil.copy(bench / good[0], outside)
    data = (bench / good[0]).read_bytes()
    (bench / "words" / "truncated.mp4").write_bytes(data[: len(data) // 2])
    (bench / "words" / "link.mp4").symlink_to(outside)
    rows = [
        "Path,Category,Label",
        f"{good[0]},words,['hello']",
        "words/missing.mp4,words,\"['ghost']\"",
        "words/truncated.mp4,words,\"['cut']\"",
        "shapes/disc.mp4,shapes,'cat'",  # a literal, but not a list
        "shapes/disc.mp4,shapes,\"__import__('os').system('false')\"",  # code, never evaluated
        "../outside.mp4,words,\"['out']\"",
        f"{outside},words,\"['abs']\"",
        "words/link.mp4,words,\"['link']\"",
        "words/hello.mp4,words",  # too few fields
        "words/hello.mp4,sounds,\"['x']\"",
        f"{good[1]},shapes,\"['circle', 'disc']\"",
        f"{good[1]},shapes,\"['circle']\"",  # duplicate
    ]
    (bench / "metadata.csv").write_text("\n".join(rows) + "\n")
    opened, real_open = [], av.open

    def spy_open(path, *args, **kwargs):
        opened.append(os.path.realpath(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(av, "open", spy_open)

    folder = SpookyBenchFolder(bench)
    assert [e.rel for e in folder.entries] == [good[0], "words/truncated.mp4", good[1]]
    reasons = {(s.row, s.path): s.reason for s in folder.skipped}
    assert "missing file" in reasons[3, "words/missing.mp4"]
    assert "is a str" in reasons[5, "shapes/disc.mp4"]
    assert "not a Python literal" in reasons[6, "shapes/disc.mp4"]
    for row, path in [(7, "../outside.mp4"), (8, str(outside)), (9, "words/link.mp4")]:
        assert reasons[row, path].startswith("refused: path resolves to") and "outside the root" in reasons[row, path]
    assert "2 fields, expected 3" in reasons[10, "words/hello.mp4"]
    assert "unknown Category 'sounds'" in reasons[11, "words/hello.mp4"]
    assert "duplicate of the row on line 12" in reasons[13, good[1]]

    clips = list(folder.clips(frames=4, height=16, width=16))
    assert [e.rel for e, _ in clips] == good
    assert all(c.shape == (4, 16, 16) and c.dtype == np.uint8 for _, c in clips)
    last = folder.skipped[-1]
    assert (last.row, last.path) == (4, "words/truncated.mp4") and last.reason.startswith("unreadable video:")
    assert str(outside) not in opened and os.path.realpath(outside) not in opened

    skipped = []
    assert [e.rel for e, _ in iter_clips(bench, frames=4, height=16, width=16, skipped=skipped)] == good
    assert len(skipped) == len(folder.skipped)


def test_folder_level_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        read_metadata(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"empty.*expected a SpookyBench folder with metadata.csv"):
        read_metadata(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="empty"):
        list(iter_clips(tmp_path / "empty", frames=4, height=8, width=8))
    nested = tmp_path / "zip" / "SpookyBenchDatasets"
    export_dataset(items(np.random.default_rng(0))[:1], nested)
    with pytest.raises(FileNotFoundError, match="has no metadata.csv.*found one in .*SpookyBenchDatasets"):
        read_metadata(tmp_path / "zip")
    (nested / "metadata.csv").write_text("Path,Category,Label\n")
    with pytest.raises(ValueError, match="header but no rows"):
        read_metadata(nested)
    (nested / "metadata.csv").write_text("path,label\nwords/hello.mp4,\"['hello']\"\n")
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['Category'\]"):
        read_metadata(nested)
    elsewhere = tmp_path / "meta.csv"  # the paper's scripts take --csv separately from --dataset
    elsewhere.write_text("Path,Category,Label\nwords/hello.mp4,Words,\"['hello']\"\n")
    (entry,), skipped = read_metadata(nested, elsewhere)
    assert skipped == [] and entry == Entry((nested / "words/hello.mp4").resolve(), "words/hello.mp4", "words",
                                            ["hello"], 2)


def test_load_video_errors(bench, tmp_path):
    data = (bench / "words/hello.mp4").read_bytes()
    cases = {"half.mp4": data[: len(data) // 2], "garbage.mp4": os.urandom(4096), "empty.mp4": b"",
             "header.mp4": data[:200]}
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(VideoError) as err:
            load_video(tmp_path / name)
        assert err.value.path == tmp_path / name and str(tmp_path / name) in str(err.value), name
    with pytest.raises(VideoError, match="truncated|decoding failed"):
        load_video(tmp_path / "half.mp4")
    with pytest.raises(VideoError, match="cannot open"):
        load_video(tmp_path / "missing.mp4")


def raw_h264(frames, path):
    """An H.264 elementary stream: a container that does not declare its frame count."""
    with av.open(str(path), "w", format="h264") as c:
        stream = c.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for f in frames:
            c.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="gray").reformat(format="yuv420p")))
        c.mux(stream.encode())
    return path


@pytest.mark.parametrize("container", ["mp4", "h264"])
def test_streamed_clips_equal_resampling_the_whole_video(tmp_path, container):
    """read_clips decodes once (frames area-averaged as they come) and gives what resample_clip gives on
    the whole decoded video, for several shapes at once; a video of the requested shape is kept as it is."""
    video = render(60, 96, 160, 2, np.random.default_rng(0))[0]
    path = export_dataset([VideoItem(video, "shapes", ["disc"], "disc")], tmp_path).Path[0]
    path = tmp_path / path if container == "mp4" else raw_h264(video, tmp_path / "disc.h264")
    with VideoReader(path) as reader:
        assert reader.declared == (60 if container == "mp4" else 0)
    decoded = load_video(path)
    shapes = [(8, 32, 32), (6, 16, 24), (60, 96, 160), (10, 96, 160)]
    for method, restore in [("motion", "gray"), ("motion", "binary"), ("plain", "gray")]:
        clips = read_clips(path, shapes, method=method, restore=restore)
        want = [decoded if s == decoded.shape else resample_clip(decoded, *s, method=method, restore=restore)
                for s in shapes]
        assert all(np.array_equal(a, b) for a, b in zip(clips, want, strict=True)), (method, restore)


def test_a_video_too_large_for_the_budget_is_refused_before_decoding(bench, monkeypatch):
    path = bench / "words/hello.mp4"
    decoded = []
    real_frames = VideoReader.frames
    monkeypatch.setattr(VideoReader, "frames", lambda self, *a: decoded.append(1) or real_frames(self, *a))
    for read in (lambda: load_video(path, max_bytes=20_000), lambda: read_clips(path, [(8, 32, 32)], max_bytes=20_000)):
        with pytest.raises(VideoError) as err:
            read()
        assert str(path) in str(err.value) and "12 frames of 96x64 decode to 74 KB" in err.value.reason
        assert "over the 20 KB allowed" in err.value.reason
    assert decoded == []
    assert MAX_HELD_BYTES <= 1 << 30


def test_is_correct():
    assert is_correct("I think it is a Cat.", ["cat"])
    assert is_correct("CIRCLE", ["square", "circle"])
    assert not is_correct("a dog", ["cat"])
    assert not is_correct("anything", ["", "  "])


# ------------------------------------------------------------------------------------------- resampling


@pytest.mark.parametrize("speed, axis", [(2, 0), (3, 1), (1, 0)])
def test_estimate_displacement(speed, axis):
    video, _ = render(40, 96, 128, speed, np.random.default_rng(3))
    if axis:
        video = video.transpose(0, 2, 1)
    expected = np.array([speed, 0.0])[[axis, 1 - axis]]
    np.testing.assert_allclose(estimate_displacement(video), expected, atol=0.05)


def _motion_vs_plain(T, H, W, speed, seed):
    video, mask = render(T, H, W, speed, np.random.default_rng(seed))  # (T, H, W)
    out = {}
    for method, restore in [("motion", "gray"), ("motion", "binary"), ("plain", "gray")]:
        clip, info = resample_clip(video, 8, 32, 32, method=method, restore=restore, return_info=True)
        assert clip.shape == (8, 32, 32) and clip.dtype == np.uint8
        out[method, restore] = mask_iou(clip, mask), info
    return out


def test_resampling_keeps_motion_small():
    """240x135, 333 frames, 2 px/frame -> 32x32x8: stride ~ 4.2 / 2 so the texture moves ~1 output px."""
    out = _motion_vs_plain(333, 135, 240, 2, seed=0)
    info = out["motion", "gray"][1]
    assert info["stride"] == 2 and 0.8 < info["out_shift"] < 1.2 and not info["stride_reduced"]
    assert info["indices"][0] == (333 - 15) // 2  # centred run of 8 frames x stride 2
    for restore in ("gray", "binary"):
        assert out["motion", restore][0] >= 0.5, out
    assert out["plain", "gray"][0] < 0.35 and out["motion", "gray"][0] - out["plain", "gray"][0] > 0.3, out


def test_resample_short_video_reduces_stride(caplog):
    video, _ = render(20, 136, 240, 1, np.random.default_rng(4))
    with caplog.at_level(logging.WARNING, logger="timeblind.io.resample"):
        _, info = resample_clip(video, 8, 32, 32, return_info=True)
    assert info["stride_reduced"] and info["stride"] == 2  # wanted 4, (20 - 1) // 7 = 2 fits
    assert "too short" in caplog.text
    with pytest.raises(ValueError, match="video has 20 frames; need at least frames=24"):
        resample_clip(video, 24, 32, 32)
    with pytest.raises(ValueError, match="method='bicubic'"):
        resample_clip(video, 8, 32, 32, method="bicubic")
    binary = resample_clip(video, 8, 32, 32, restore="binary", speed=(1, 0))
    assert set(np.unique(binary)) == {0, 255}


@pytest.mark.slow
def test_resampling_keeps_motion_release_size(tmp_path):
    """Release size 960x540x333 at 2 px/frame, as arrays and through a real H.264 round trip."""
    out = _motion_vs_plain(333, 540, 960, 2, seed=0)
    motion, plain = out["motion", "gray"][0], out["plain", "gray"][0]
    assert out["motion", "gray"][1]["stride"] == 8  # 540 / 32 = 16.9 px per output px at 2 px/frame
    assert motion >= 0.5 and out["motion", "binary"][0] >= 0.5 and motion - plain > 0.3, out

    video, mask = render(333, 540, 960, 2, np.random.default_rng(0))
    t0 = time.perf_counter()
    export_dataset([VideoItem(video, "shapes", ["circle"], "disc")], tmp_path)
    encode_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ((entry, clip),) = list(iter_clips(tmp_path, frames=8, height=32, width=32))
    decode_s = time.perf_counter() - t0
    logging.getLogger(__name__).info("960x540x333: encode %.1f s, %.1f MB; decode+resample %.1f s", encode_s,
                                     entry.path.stat().st_size / 1e6, decode_s)
    assert mask_iou(clip, mask) >= 0.9 * motion
