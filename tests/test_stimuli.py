"""The stimulus invariants: single frames carry no figure information, motion does; samples are
pure functions of (config, seed, split, index); storage is compact, sharded and memory-mapped."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy import stats

from timeblind.data.config import SPLITS, StimulusConfig
from timeblind.data.dataset import StimulusDataset, load_manifest
from timeblind.data.writer import write_dataset
from timeblind.stimuli.categories import WordOptions
from timeblind.stimuli import SHAPES, MotionConfig, motion_energy_mask, render_bits, render_clip, shape_mask
from timeblind.stimuli.torch_render import render_batch


def iou(a, b):
    return (a & b).sum() / (a | b).sum()


def test_every_shape_is_a_distinct_nonempty_mask():
    masks = {name: shape_mask(name, 48, 48) for name in SHAPES}
    assert len(masks) >= 8
    for name, mask in masks.items():
        assert 0.05 < mask.mean() < 0.6, name
    names = list(masks)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if {a, b} != {"circle", "octagon"}:  # the octagon differs from the circle at its eight corners only
                assert iou(masks[a], masks[b]) < 0.9, (a, b)


def test_unknown_shape_names_the_choices():
    with pytest.raises(ValueError, match="unknown shape 'blob'.*circle"):
        shape_mask("blob", 32, 32)


def _frame_statistics(clips, mask, stride=4):
    """Grey values and horizontal-neighbour differences inside and outside the mask, from one
    frame per clip on a grid of `stride` px: KS tests need independent samples, and frames of
    one clip share their noise fields, blurred noise correlates neighbouring pixels."""
    grid = np.zeros_like(mask)
    grid[::stride, ::stride] = True
    inside, outside, diff_in, diff_out = [], [], [], []
    for k, clip in enumerate(clips):
        frame = clip[k % len(clip)].astype(np.int16)
        d = np.abs(frame[:, 1:] - frame[:, :-1])
        pair_in, pair_out = (mask[:, 1:] & mask[:, :-1] & grid[:, 1:]), (~mask[:, 1:] & ~mask[:, :-1] & grid[:, 1:])
        inside.append(frame[mask & grid]), outside.append(frame[~mask & grid])
        diff_in.append(d[pair_in]), diff_out.append(d[pair_out])
    return [(np.concatenate(a), np.concatenate(b)) for a, b in ((inside, outside), (diff_in, diff_out))]


@pytest.mark.parametrize("noise", ["binary", "gaussian", "blurred"])
def test_single_frames_have_the_same_statistics_inside_and_outside(noise):
    """A frame-wise observer is at chance: grey levels and the (dis)agreement of neighbouring
    pixels (spatial structure) have the same distribution in figure and ground (two-sample KS)."""
    rng = np.random.default_rng(1)
    mask = shape_mask("circle", 48, 48, scale=0.3)
    cfg = MotionConfig(frames=6, speed=2, noise=noise, coherence=0.8)
    clips = [render_clip(mask, cfg, rng) for _ in range(150)]
    for a, b in _frame_statistics(clips, mask):
        assert stats.ks_2samp(a, b).pvalue > 0.001
        assert abs(a.mean() - b.mean()) < 0.02 * 255


@pytest.mark.parametrize("noise", ["binary", "gaussian", "blurred"])
@pytest.mark.parametrize("speed", [1, 1.5, 3])
def test_motion_energy_recovers_the_mask_in_any_direction(noise, speed):
    rng = np.random.default_rng(2)
    mask = shape_mask("star", 48, 48, scale=0.38)
    ious = [iou(motion_energy_mask(render_clip(mask, MotionConfig(frames=10, speed=speed, noise=noise), rng, angle),
                                   speed), mask) for angle in (0, 37, 90, 200, 315)]
    # Chance (a random mask of the star's area) is ~0.1; diagonal motion of blurred noise is the hardest case.
    # Speed is measured along the dominant axis, so at 3 px/frame a diagonal moves 4.2 px: more of the edge is lost.
    assert np.mean(ious) > (0.6 if speed == 3 else 0.65) and min(ious) > 0.4, ious


def test_without_coherent_motion_the_mask_is_not_recovered():
    rng = np.random.default_rng(3)
    mask = shape_mask("square", 40, 40)
    clip = render_clip(mask, MotionConfig(frames=10, coherence=0.0), rng, 0.0)
    assert iou(motion_energy_mask(clip), mask) < 0.5


def test_coherence_is_the_share_of_pixels_that_follow_their_field():
    mask = np.zeros((64, 64), bool)
    for coherence in (1.0, 0.7, 0.3):
        clip = render_clip(mask, MotionConfig(frames=6, coherence=coherence), np.random.default_rng(4), 0.0)
        # The ground moves left by 1 px/frame: a pixel that follows its field in both frames equals
        # its right neighbour one frame earlier; any other pair agrees by chance (density 0.5).
        same = (clip[1:, :, :-1] == clip[:-1, :, 1:]).mean()
        assert same == pytest.approx(coherence**2 + (1 - coherence**2) * 0.5, abs=0.02)


def test_contrast_and_density_set_the_grey_levels():
    clip = render_clip(np.zeros((32, 32), bool), MotionConfig(contrast=0.5, density=0.2), np.random.default_rng(0), 0.0)
    assert set(np.unique(clip)) == {64, 191}
    assert (clip == 191).mean() == pytest.approx(0.2, abs=0.02)


def test_bit_packed_rendering_is_the_grey_rendering():
    mask = shape_mask("heart", 30, 37)  # a width that is not a multiple of 8
    cfg = MotionConfig(frames=5, speed=2.5, coherence=0.9)
    bits = render_bits(mask, cfg, np.random.default_rng(5), 123.0)
    grey = render_clip(mask, cfg, np.random.default_rng(5), 123.0)
    assert bits.shape == (5, 30, 5)
    assert np.array_equal(np.unpackbits(bits, axis=-1, count=37).astype(bool), grey == 255)
    assert not np.any(bits[..., -1] & 0b111)  # padding bits are zero, as np.packbits leaves them


@pytest.mark.parametrize("noise", ["binary", "gaussian", "blurred"])
def test_torch_renderer_makes_the_same_stimulus_on_the_device(noise):
    mask = torch.from_numpy(shape_mask("triangle", 48, 48, scale=0.38))
    cfg = MotionConfig(frames=10, speed=1.5, noise=noise)
    clips = render_batch(mask.expand(4, 48, 48), torch.tensor([0.0, 60.0, 180.0, 290.0]), cfg,
                         torch.Generator().manual_seed(0))  # (B, T, H, W) in [-1, 1]
    reference = render_clip(mask.numpy(), cfg, np.random.default_rng(0), 60.0) / 127.5 - 1
    assert clips.shape == (4, 10, 48, 48)
    assert float(clips.std()) == pytest.approx(float(reference.std()), rel=0.05)
    for clip in clips:
        assert iou(motion_energy_mask(clip.numpy(), 1.5), mask.numpy()) > 0.6
    again = render_batch(mask.expand(4, 48, 48), torch.tensor([0.0, 60.0, 180.0, 290.0]), cfg,
                         torch.Generator().manual_seed(0))
    assert torch.equal(clips, again)


def test_dynamic_masks_move_the_figure():
    moving = np.stack([np.roll(shape_mask("circle", 32, 32, scale=0.2), 2 * t, axis=1) for t in range(6)])
    clip = render_clip(moving, MotionConfig(frames=6), np.random.default_rng(0), 90.0)
    assert clip.shape == (6, 32, 32)
    with pytest.raises(ValueError, match=r"mask shape \(5, 32, 32\)"):
        render_clip(moving[:5], MotionConfig(frames=6), np.random.default_rng(0))


def test_samples_are_a_pure_function_of_config_seed_and_index():
    cfg = StimulusConfig(height=24, width=24, categories=("shapes", "patterns"))
    forward = [cfg.sample(7, "train", i)[0] for i in range(6)]
    backward = [cfg.sample(7, "train", i)[0] for i in reversed(range(6))][::-1]
    assert all(np.array_equal(a, b) for a, b in zip(forward, backward))
    code = ("import sys; from timeblind.data.config import StimulusConfig;"
            "cfg = StimulusConfig(height=24, width=24, categories=('shapes', 'patterns'));"
            "sys.stdout.buffer.write(cfg.sample(7, 'train', 4)[0].tobytes())")
    other_process = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout
    assert other_process == forward[4].tobytes()
    assert not np.array_equal(cfg.sample(8, "train", 4)[0], forward[4])
    assert not np.array_equal(cfg.sample(7, "test", 4)[0], forward[4])


def test_categories_and_classes_are_balanced():
    cfg = StimulusConfig(categories=("shapes", "patterns"), shapes=("circle", "star"))
    labels = [cfg.class_of(i, "train") for i in range(24)]
    names = [cfg.classes[k].name for k in labels]
    assert names[:4] == ["circle", "spikes", "star", "morse"]
    assert {n: names.count(n) for n in set(names)} == {"circle": 6, "star": 6, "spikes": 4, "morse": 4, "timeseries": 4}


def test_held_out_words_never_reach_training():
    cfg = StimulusConfig(height=32, width=64, categories=("words",), words=WordOptions(vocabulary=12, held_out=4))
    words = {split: {cfg.classes[cfg.class_of(i, split)].name for i in range(200)} for split in SPLITS}
    vocabulary = [c.name for c in cfg.classes]
    assert words["train"] == set(vocabulary[:8])
    assert words["val"] == set(vocabulary[8:10]) and words["test"] == set(vocabulary[10:])
    with pytest.raises(ValueError, match="words.held_out=12"):
        StimulusConfig(height=32, width=64, categories=("words",), words=WordOptions(vocabulary=12, held_out=12))


def test_written_data_sets_are_sharded_identical_and_memory_mapped(tmp_path):
    cfg = StimulusConfig(height=16, width=20, motion=MotionConfig(frames=4), shard_size=5)
    sizes = {"train": 12, "val": 8, "test": 8}
    a = write_dataset(tmp_path / "a", cfg, 0, sizes, log=lambda *_: None)
    b = write_dataset(tmp_path / "b", cfg, 0, sizes, workers=2, log=lambda *_: None)
    assert a["content_sha256"] == b["content_sha256"] and a["files"] == b["files"]
    assert a["counts"] == sizes and a["classes"] == list(SHAPES) and a["storage"] == {"shapes": "bits"}
    assert sorted(p.name for p in (tmp_path / "a" / "train" / "shapes").glob("*.npy")) == [
        "clips-00000.npy", "clips-00001.npy", "clips-00002.npy", "masks-00000.npy", "masks-00001.npy",
        "masks-00002.npy"]
    data = StimulusDataset(tmp_path / "a", "train")
    assert isinstance(data._row("clips", 0), np.memmap)
    assert data.stored(7).shape == (4, 16, 3)  # bit-packed: ceil(20 / 8) bytes per row
    for i in (0, 7, 11):
        clip, layout, _ = cfg.sample(0, "train", i)
        assert np.array_equal(data.clip(i), clip)
        assert np.array_equal(data.mask(i), np.broadcast_to(layout.mask, (4, 16, 20)) * np.uint8(255))
        assert data.samples.label[i] == cfg.classes[data.labels[i]].name


def test_grey_storage_for_other_noise_and_patterns(tmp_path):
    cfg = StimulusConfig(height=16, width=16, motion=MotionConfig(frames=6, noise="gaussian"),
                         categories=("shapes", "patterns"))
    manifest = write_dataset(tmp_path, cfg, 1, {"train": 10}, log=lambda *_: None)
    data = StimulusDataset(tmp_path, "train")
    assert manifest["storage"] == {"shapes": "uint8", "patterns": "uint8"} and data.stored(0).shape == (6, 16, 16)
    assert not data.mask(1).any() and data.mask(0).any()  # patterns have no figure
    pattern_rows = data.samples.category == "patterns"
    assert (data.pattern_bits[pattern_rows.to_numpy()] >= 0).any() and (data.pattern_bits[~pattern_rows.to_numpy()] == -1).all()


def test_a_stale_or_unfinished_data_set_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="run the generate step first"):
        load_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text('{"format": "old"}')
    with pytest.raises(ValueError, match="regenerate the data set"):
        load_manifest(tmp_path)


def test_bad_values_are_named():
    with pytest.raises(ValueError, match="density=1.5"):
        MotionConfig(density=1.5)
    with pytest.raises(ValueError, match="noise='pink'.*binary"):
        MotionConfig(noise="pink")
    with pytest.raises(ValueError, match=r"unknown shapes \['blob'\]"):
        StimulusConfig(shapes=("circle", "blob"))
    with pytest.raises(ValueError, match="categories=.*expected one or more of"):
        StimulusConfig(categories=("sounds",))


def test_classes_that_cannot_be_drawn_are_refused_with_the_config():
    with pytest.raises(ValueError, match=r"words cannot be drawn at this size.*NUMBER in sans-bold"):
        StimulusConfig(categories=("words",), height=24, width=24, words=WordOptions(size=(0.35, 0.55)))
    with pytest.raises(ValueError, match=r"unknown objects \['blob'\]"):
        StimulusConfig(categories=("images",), objects=("airplane", "blob"))
    with pytest.raises(ValueError, match=r"unknown fonts \['comic'\]"):
        StimulusConfig.from_dict({"categories": ["words"], "words": {"fonts": ["comic"]}})


def test_every_category_makes_labelled_clips():
    cfg = StimulusConfig.from_dict({"categories": ["words", "shapes", "images", "videos", "patterns"],
                                    "height": 48, "width": 64, "motion": {"frames": 12}})
    assert [c.category for c in cfg.classes][:1] == ["words"] and len({c.name for c in cfg.classes}) == len(cfg.classes)
    for i in range(10):
        clip, layout, targets = cfg.sample(0, "val", i)
        assert clip.shape == (12, 48, 64) and clip.dtype == np.uint8
        assert layout.category == cfg.categories[i % 5]
        assert (targets is not None) == (layout.category == "patterns")
        if layout.category == "videos":
            assert layout.mask.shape == (12, 48, 64) and not np.array_equal(layout.mask[0], layout.mask[-1])


def test_frame_stride_keeps_every_sth_frame_of_the_slower_clip():
    """A clip with frame_stride s is the s-th-frame subsample of one rendered at the same speed."""
    import numpy as np

    from timeblind.stimuli.motion import MotionConfig, render_clip

    mask = np.zeros((24, 24), bool)
    mask[6:18, 6:18] = True
    dense = render_clip(mask, MotionConfig(frames=7, speed=1.0), np.random.default_rng(3), angle=0.0)
    strided = render_clip(mask, MotionConfig(frames=4, speed=1.0, frame_stride=2), np.random.default_rng(3), angle=0.0)
    # Fields are drawn larger for the longer path, so compare motion, not bytes: frame t of the
    # strided clip shifted back by 2t px must match its first frame inside the figure.
    for t in range(1, 4):
        assert (strided[t, 8:16, 8 + 2 * t:16] == strided[0, 8:16, 8:16 - 2 * t]).all()
        assert not (dense[t, 8:16, 8 + 2 * t:16] == dense[0, 8:16, 8:16 - 2 * t]).all()
    with pytest.raises(ValueError, match="frame_stride=0"):
        MotionConfig(frame_stride=0)


def test_a_split_of_size_zero_is_left_out(tmp_path):
    from timeblind.data.config import StimulusConfig
    from timeblind.data.writer import write_dataset

    manifest = write_dataset(tmp_path, StimulusConfig(height=16, width=16), 0, {"train": 4, "val": 2, "test": 0})
    assert manifest["counts"] == {"train": 4, "val": 2, "test": 0}
    assert not (tmp_path / "test").exists() and (tmp_path / "val/samples.csv").exists()
