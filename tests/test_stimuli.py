"""The stimulus invariants: single frames carry no shape information, motion does."""

import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from timeblind.data.shapes import ShapesConfig, make_sample, sha256_files, write_dataset
from timeblind.stimuli import SHAPES, MotionConfig, motion_energy_mask, render_clip, shape_mask


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
            assert iou(masks[a], masks[b]) < 0.9, (a, b)


def test_unknown_shape_names_the_choices():
    with pytest.raises(ValueError, match="unknown shape 'blob'.*circle"):
        shape_mask("blob", 32, 32)


@pytest.mark.parametrize("axis", [0, 1])
def test_single_frames_have_the_same_statistics_inside_and_outside(axis):
    """A frame-wise observer is at chance: dot density and the agreement of neighbouring dots
    (spatial structure) do not differ between figure and ground in any single frame."""
    rng = np.random.default_rng(1)
    mask = shape_mask("circle", 48, 48, scale=0.3)
    inside, outside, same_in, same_out = [], [], [], []
    for _ in range(40):
        clip = render_clip(mask, MotionConfig(frames=6, speed=2), rng, axis=axis, sign=1)
        for frame in clip:
            inside.append(frame[mask]), outside.append(frame[~mask])
            agree = frame[:, 1:] == frame[:, :-1]  # horizontal neighbour agreement
            pair_mask = mask[:, 1:] & mask[:, :-1]
            pair_ground = ~mask[:, 1:] & ~mask[:, :-1]
            same_in.append(agree[pair_mask]), same_out.append(agree[pair_ground])
    for a, b in ((inside, outside), (same_in, same_out)):
        a, b = np.concatenate(a), np.concatenate(b)
        table = [[a.sum(), len(a) - a.sum()], [b.sum(), len(b) - b.sum()]]
        assert stats.chi2_contingency(table).pvalue > 0.001
        assert abs(a.mean() - b.mean()) < 0.01


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_motion_energy_recovers_the_mask(name):
    rng = np.random.default_rng(2)
    mask = shape_mask(name, 40, 40, scale=0.38)
    for axis in (0, 1):
        for sign in (-1, 1):
            clip = render_clip(mask, MotionConfig(frames=10), rng, axis=axis, sign=sign)
            assert iou(motion_energy_mask(clip), mask) > 0.7, (axis, sign)


def test_without_coherent_motion_the_mask_is_not_recovered():
    rng = np.random.default_rng(3)
    mask = shape_mask("square", 40, 40)
    clip = render_clip(mask, MotionConfig(frames=10, coherence=0.0), rng)
    assert iou(motion_energy_mask(clip), mask) < 0.5


def test_samples_are_a_pure_function_of_config_seed_and_index():
    cfg = ShapesConfig(height=24, width=24)
    forward = [make_sample(cfg, 7, "train", i)[0] for i in range(6)]
    backward = [make_sample(cfg, 7, "train", i)[0] for i in reversed(range(6))][::-1]
    assert all(np.array_equal(a, b) for a, b in zip(forward, backward))
    code = ("import sys; from timeblind.data.shapes import ShapesConfig, make_sample;"
            "sys.stdout.buffer.write(make_sample(ShapesConfig(height=24, width=24), 7, 'train', 4)[0].tobytes())")
    other_process = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout
    assert other_process == forward[4].tobytes()
    assert not np.array_equal(make_sample(cfg, 8, "train", 4)[0], forward[4])
    assert not np.array_equal(make_sample(cfg, 7, "test", 4)[0], forward[4])


def test_written_data_sets_are_byte_identical(tmp_path):
    cfg = ShapesConfig(height=16, width=16, motion=MotionConfig(frames=4))
    sizes = {"train": 16, "val": 8, "test": 8}
    a = write_dataset(tmp_path / "a", cfg, 0, sizes, log=lambda *_: None)
    b = write_dataset(tmp_path / "b", cfg, 0, sizes, log=lambda *_: None)
    assert a["content_sha256"] == b["content_sha256"]
    assert sha256_files(sorted((tmp_path / "a").glob("*.npy"))) == sha256_files(sorted((tmp_path / "b").glob("*.npy")))
    assert a["counts"] == sizes and a["classes"] == list(SHAPES)


def test_bad_motion_values_are_named():
    with pytest.raises(ValueError, match="density=1.5"):
        MotionConfig(density=1.5)
    with pytest.raises(ValueError, match="unknown shape classes"):
        ShapesConfig(classes=("circle", "blob"))
