"""Clips like the SpookyBench release as the reader delivers them: dots rendered at k x the clip size
and area-averaged, per-clip speed, density and stride, motion at any angle that never stalls, soft
figure masks, per-category frame sizes, words in any case and as phrases with glyph extents, shapes
at any rotation and stretch."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from timeblind.core.grey import GRAY_MEAN, GRAY_STD, restore_grey
from timeblind.data.config import SPLITS, StimulusConfig, shifted_stimulus
from timeblind.data.dataset import StimulusDataset
from timeblind.data.writer import write_dataset
from timeblind.data.grounding import grounding_sample, stimulus_config
from timeblind.io.resample import _area_resize, estimate_displacement
from timeblind.stimuli import text
from timeblind.stimuli.categories import Placement
from timeblind.stimuli.events import EventConfig
from timeblind.stimuli.masks import shape_mask
from timeblind.stimuli.motion import MotionConfig, draw_motion, offsets, opponent_energy, render_clip
from timeblind.stimuli.scale import render_scaled, soft_mask
from timeblind.stimuli.torch_render import batch_offsets

RELEASE = {"render_scale": 4, "speed": [0.85, 2.0], "shift": [0.8, 1.2], "density": [0.4, 0.8], "directions": "axis"}
WORDS = {"vocabulary": 40, "held_out": 10, "case": "mixed", "phrases": 0.5, "two_lines": 0.5, "size": [0.11, 0.15],
         "fonts": ["bold-sans"]}


def release_config(**changes) -> StimulusConfig:
    d = {"height": 32, "width": 48, "categories": ["shapes"], "shapes": ["circle", "star", "heart", "square"],
         "motion": {"frames": 8, **RELEASE}, "placement": {"scale": [0.25, 0.35]}}
    return StimulusConfig.from_dict({**d, **changes})


def word_config(**motion) -> StimulusConfig:
    return StimulusConfig.from_dict({"height": 64, "width": 112, "categories": ["words"], "words": WORDS,
                                     "motion": {"frames": 6, **RELEASE, **motion}})


def iou(a, b):
    return (a & b).sum() / (a | b).sum()


# --- motion ------------------------------------------------------------------------------------

@pytest.mark.parametrize("speed", [1.0, 1.3, 2.5])
def test_every_frame_moves_at_every_angle(speed):
    """Speed along the dominant axis: at >= 1 px/frame no two consecutive frames share a displacement,
    whatever the angle (a Euclidean 1 px at 45 degrees rounds to 0, 1, 1, 2...)."""
    for angle in np.arange(0.0, 360.0, 0.5):
        d = offsets(MotionConfig(frames=24, speed=speed), angle)
        assert (np.abs(np.diff(d, axis=0)).max(axis=1) >= 1).all(), angle
    clip = render_clip(np.zeros((24, 24), bool), MotionConfig(frames=16), np.random.default_rng(0), 45.0)
    assert all((clip[t] != clip[t + 1]).any() for t in range(15))


def test_axis_aligned_motion_is_unchanged_and_the_device_agrees():
    for angle in (0.0, 90.0, 180.0, 270.0):
        cfg = MotionConfig(frames=9, speed=1.5, frame_stride=2)
        t, theta = np.arange(9) * 3.0, math.radians(angle)
        euclidean = np.rint(np.stack([-t * math.sin(theta), t * math.cos(theta)], axis=1)).astype(np.int64)
        assert np.array_equal(offsets(cfg, angle), euclidean)  # the bytes of axis-aligned clips are today's
    angles = np.arange(0.0, 360.0, 7.5)
    device = batch_offsets(MotionConfig(frames=12, speed=1.7), torch.tensor(angles)).numpy()
    assert all(np.array_equal(device[k], offsets(MotionConfig(frames=12, speed=1.7), a)) for k, a in enumerate(angles))


def test_speed_density_and_stride_are_drawn_per_clip_within_bounds():
    cfg = MotionConfig(**{**RELEASE, "speed": (0.85, 2.0), "shift": (0.8, 1.2), "density": (0.4, 0.8)})
    draws = [draw_motion(cfg, np.random.default_rng(i)) for i in range(400)]
    speeds, densities = np.array([m.speed for m in draws]), np.array([m.density for m in draws])
    assert 0.85 <= speeds.min() and speeds.max() <= 2.0 and speeds.max() - speeds.min() > 0.9
    assert 0.4 <= densities.min() and densities.max() <= 0.8 and densities.max() - densities.min() > 0.3
    for m in draws:  # the whole number of rendered frames closest to shift * k / speed: within half a frame
        moved = m.stride * m.speed / 4
        assert m.stride >= 1 and 0.8 - m.speed / 8 <= moved <= 1.2 + m.speed / 8
    assert cfg.step >= max(m.stride * m.speed / 4 for m in draws)
    fixed = draw_motion(MotionConfig(speed=1.5, frame_stride=2), np.random.default_rng(0))
    assert (fixed.speed, fixed.density, fixed.stride) == (1.5, 0.5, 2)


def test_mixed_directions_take_any_share_at_any_angle():
    def off_axis(share):
        cfg = MotionConfig(directions="mixed", any_share=share)
        return np.mean([draw_motion(cfg, np.random.default_rng(i)).angle % 90 != 0 for i in range(400)])

    assert off_axis(0.0) == 0.0 and off_axis(1.0) == 1.0 and 0.22 < off_axis(0.3) < 0.38


def test_new_motion_keys_are_checked():
    with pytest.raises(ValueError, match="shift=.*needs render_scale > 1"):
        MotionConfig(shift=(0.8, 1.2))
    with pytest.raises(ValueError, match="speed=.*0 < low <= high"):
        MotionConfig(speed=(2.0, 1.0))
    with pytest.raises(ValueError, match="density=.*inside"):
        MotionConfig(density=(0.2, 1.0))
    with pytest.raises(ValueError, match="render_scale=0"):
        MotionConfig(render_scale=0)
    with pytest.raises(ValueError, match="a config that draws per clip"):
        render_clip(np.zeros((8, 8), bool), MotionConfig(speed=(1.0, 2.0)), np.random.default_rng(0), 0.0)


# --- rendering at k x ----------------------------------------------------------------------------

def test_scaled_rendering_is_the_readers_area_average_and_grey_restoration():
    mask = shape_mask("star", 4 * 24, 4 * 32, scale=0.35)
    cfg = MotionConfig(frames=6, speed=1.3, frame_stride=3, density=0.7)
    clip = render_scaled(mask, cfg, 4, np.random.default_rng(0), 90.0)
    dots = render_clip(mask, cfg, np.random.default_rng(0), 90.0)  # the same dots at 96x128
    reader = restore_grey(_area_resize(dots, 24, 32))  # io/resample.py's area average, then its restoration
    assert clip.shape == (6, 24, 32) and np.abs(clip.astype(int) - reader).max() <= 1


def test_scaled_clips_have_the_readers_statistics_and_motion():
    cfg = release_config()
    for i in range(8):
        clip, layout, _ = cfg.sample(0, "train", i)
        assert clip.shape == (8, 32, 48) and clip.dtype == np.uint8
        assert abs(clip.mean() - GRAY_MEAN) < 2 and abs(clip.std() - GRAY_STD) < 5  # clipping at 0 and 255
        assert len(np.unique(clip)) > 2  # a texture, not dots
        m = layout.motion
        moved = estimate_displacement(clip).max()  # the ground's motion per kept frame, clip px
        assert moved == pytest.approx(m.stride * m.speed / 4, abs=0.15)


def test_motion_energy_recovers_the_figure_from_scaled_clips():
    cfg = release_config(motion={"frames": 16, **RELEASE})
    ious = []
    for i in range(12):
        clip, layout, _ = cfg.sample(0, "val", i)
        figure = cfg.figure_mask(layout)[0] >= 128
        ious.append(iou(opponent_energy(clip, speed=1.0) > 0, figure))
    assert np.mean(ious) > 0.6 and min(ious) > 0.35, ious  # chance (a random mask of the figure's area) ~0.15


def test_soft_masks_are_the_area_averaged_rendered_masks():
    cfg = release_config(categories=["shapes", "videos"], videos={"what": ["square"], "scale": 0.25})
    for i in range(4):
        layout = cfg.layout(0, "train", i)
        hires = np.broadcast_to(layout.mask, (8, 128, 192)).astype(np.float64)
        share = hires.reshape(8, 32, 4, 48, 4).mean(axis=(2, 4))
        soft = cfg.figure_mask(layout)
        assert soft.shape == (8, 32, 48) and np.abs(soft - share * 255).max() <= 0.5
        assert ((soft > 0) & (soft < 255)).any()  # edges are shares, not 0/1
    assert np.array_equal(soft_mask(np.ones((2, 8, 8), bool), 2, 4), np.full((2, 2, 2), 255, np.uint8))


def test_samples_are_a_pure_function_of_config_seed_and_index_at_scale():
    cfg = word_config()
    here = cfg.sample(5, "test", 3)[0]
    code = ("import sys, json; from timeblind.data.config import StimulusConfig;"
            f"cfg = StimulusConfig.from_dict(json.loads({json.dumps(json.dumps(cfg.to_dict()))}));"
            "sys.stdout.buffer.write(cfg.sample(5, 'test', 3)[0].tobytes())")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout
    assert other == here.tobytes()
    assert not np.array_equal(cfg.sample(5, "test", 4)[0], here)


# --- words ---------------------------------------------------------------------------------------

def test_words_come_in_every_case_as_phrases_on_one_or_two_lines():
    cfg = word_config()
    layouts = [cfg.layout(0, "train", i) for i in range(120)]
    texts = [layout.text for layout in layouts]
    phrases = [layout for layout in layouts if len(layout.words) == 2]
    assert 0.35 < len(phrases) / len(layouts) < 0.65
    two_lines = [layout for layout in phrases if {g[0] for g in layout.glyphs} == {0, 1}]
    assert 0.3 < len(two_lines) / len(phrases) < 0.7
    assert all(" " in layout.text and " " not in {g[1] for g in layout.glyphs} for layout in two_lines)
    assert any(t.islower() for t in texts) and any(t.isupper() for t in texts) and any(t.istitle() and not t.isupper()
                                                                                       for t in texts)
    for layout in layouts:  # the text shown is the words' names, cased
        assert layout.text.upper() == " ".join(cfg.classes[k].name for k in layout.words)
    lower = StimulusConfig.from_dict({**cfg.to_dict(), "words": {**WORDS, "case": "lower"}})
    assert all(lower.layout(0, "train", i).text.islower() for i in range(10))


def test_held_out_phrases_are_made_of_held_out_words_only():
    cfg = word_config()
    words = {split: {k for i in range(150) for k in cfg.layout(0, split, i).words} for split in SPLITS}
    names = [c.name for c in cfg.classes]
    assert {names[k] for k in words["train"]} <= set(names[:30])
    assert {names[k] for k in words["val"]} <= set(names[30:35]) and {names[k] for k in words["test"]} <= set(names[35:])
    assert len(words["val"]) == 5 and len(words["test"]) == 5


def test_glyph_extents_line_up_with_the_ink_columns():
    cfg = word_config()
    for i in range(16):
        layout = cfg.layout(0, "train", i)
        ink = cfg.figure_mask(layout)[0] >= 64  # (H, W): any real share of ink
        columns = np.flatnonzero(ink.any(axis=0))
        covered = np.zeros(ink.shape[1], bool)
        for line, char, x0, x1 in layout.glyphs:
            assert 0 <= x0 < x1 <= ink.shape[1], (layout.text, char)
            if char != " ":
                covered[max(0, math.floor(x0) - 1):math.ceil(x1) + 1] = True
                assert ink[:, math.floor(x0):math.ceil(x1)].any(), (layout.text, char)  # each letter has ink there
        assert covered[columns].all(), layout.text  # no ink outside the letters' advance widths (1 px to spare)
        widths = [x1 - x0 for _, c, x0, x1 in layout.glyphs if c in "mwMW"]
        thin = [x1 - x0 for _, c, x0, x1 in layout.glyphs if c in "iljI"]
        if widths and thin:
            assert min(widths) > max(thin)


def test_words_at_scale_are_stored_with_text_and_glyphs(tmp_path):
    cfg = word_config()
    write_dataset(tmp_path, cfg, 0, {"train": 6, "val": 4}, log=lambda *_: None)
    data = StimulusDataset(tmp_path, "val")
    rows = data.samples
    for i in range(len(data)):
        layout = cfg.layout(0, "val", i)
        assert rows.text[i] == layout.text and json.loads(rows.glyphs[i])[0][:2] == list(layout.glyphs[0][:2])
        assert rows.label[i] == " ".join(cfg.classes[k].name for k in layout.words)
        assert eval(rows.answers[i]) == [rows.label[i].lower()]  # noqa: S307 (a list literal written by us)
        assert (rows.speed[i], rows.density[i], rows.stride[i]) == (
            round(layout.motion.speed, 4), round(layout.motion.density, 4), layout.motion.stride)
        assert np.array_equal(data.mask(i), cfg.figure_mask(layout))


def test_every_font_is_found_and_a_missing_package_is_named(monkeypatch):
    assert set(text.FONT_GROUPS["bold-sans"]) <= set(text.FONTS)
    for name in text.expand_fonts(["bold-sans"]):
        text.check_fonts([name])
        assert text.word_mask("spooky", 32, 96, font=name).any()
    assert text.expand_fonts([]) == text.DEFAULT_FONTS and text.expand_fonts(["bold-sans", "sans-bold"])[0] == "sans-bold"
    monkeypatch.setitem(text.FONTS, "lato-bold", "/nowhere/Lato-Bold.ttf")
    with pytest.raises(ValueError, match="needs the package font-lato"):
        text.check_fonts(["bold-sans"])
    with pytest.raises(ValueError, match="needs the package font-lato"):  # rendering says so too, not PIL's OSError
        text.word_mask("spooky", 32, 96, font="lato-bold")


def test_phrases_that_cannot_fit_are_refused_with_the_config():
    words = {"vocabulary": 40, "held_out": 10, "fonts": ["sans-bold"], "size": [0.3, 0.4]}
    config = {"categories": ["words"], "height": 32, "width": 48, "words": words}
    StimulusConfig.from_dict(config)  # every word alone fits
    with pytest.raises(ValueError, match=r"1 words cannot be drawn at this size.*: [A-Z]+ [A-Z]+ in sans-bold"):
        StimulusConfig.from_dict({**config, "words": {**words, "phrases": 0.2}})  # the widest pair on one line does not
    StimulusConfig.from_dict({**config, "words": {**words, "phrases": 0.2, "two_lines": 1.0}})  # on two lines it does


# --- shapes and placement ----------------------------------------------------------------------

def test_any_rotation_turns_figures_the_whole_way():
    placement = Placement(rotation="any")
    turns = np.array([placement.draw(np.random.default_rng(i))["rotation"] for i in range(300)])
    assert turns.min() >= 0 and turns.max() < 2 * np.pi and np.histogram(turns, 4, (0, 2 * np.pi))[0].min() > 50
    cfg = release_config(shapes=["arrow", "heart"], placement={"rotation": "any", "scale": [0.25, 0.3]},
                         motion={"frames": 8})
    arrows = [cfg.layout(0, "train", 2 * i).mask for i in range(8)]
    assert min(iou(arrows[0], a) for a in arrows[1:]) < 0.5  # pointing other ways


def test_shapes_that_rotation_or_stretch_make_one_picture_are_refused():
    with pytest.raises(ValueError, match=r"square and diamond \(turned\) become one picture"):
        release_config(shapes=["square", "diamond"], placement={"rotation": "any"})
    with pytest.raises(ValueError, match="circle and oval .*become one picture"):
        release_config(shapes=["circle", "oval"], placement={"aspect": [0.7, 1.4]})
    release_config(shapes=["square", "diamond"], placement={"aspect": [0.9, 1.1]})  # small turns: two pictures
    release_config(shapes=["square", "rectangle", "oval", "parallelogram", "kite", "octagon"],
                   placement={"rotation": "any"})
    # the merge is real: a square turned 45 degrees and squeezed is the diamond, a stretched circle the oval
    turned = shape_mask("square", 96, 96, scale=0.35 * 1.05 / (0.85 * 2**0.5), rotation=np.pi / 4, aspect=0.8 / 1.05)
    assert iou(shape_mask("diamond", 96, 96), turned) > 0.95
    assert iou(shape_mask("oval", 96, 96), shape_mask("circle", 96, 96, scale=0.35 * 0.6, aspect=1 / 0.6)) > 0.95


def test_aspect_stretches_shapes_and_objects_per_clip():
    placement = Placement(aspect=(0.5, 2.0))
    stretches = np.array([placement.draw(np.random.default_rng(i))["aspect"] for i in range(400)])
    assert 0.5 <= stretches.min() and stretches.max() <= 2.0 and abs(np.median(np.log(stretches))) < 0.15
    from timeblind.stimuli.objects import object_mask

    for draw in (shape_mask, object_mask):
        name = "circle" if draw is shape_mask else "airplane"
        plain, wide = draw(name, 64, 96, scale=0.25), draw(name, 64, 96, scale=0.25, aspect=1.5)
        width = lambda m: np.ptp(np.flatnonzero(m.any(axis=0))) + 1  # noqa: E731
        height = lambda m: np.ptp(np.flatnonzero(m.any(axis=1))) + 1  # noqa: E731
        assert width(wide) / width(plain) == pytest.approx(1.5, abs=0.08) and height(wide) == height(plain)


# --- storage -------------------------------------------------------------------------------------

def test_categories_keep_their_own_frame_sizes_in_the_stored_data_set(tmp_path):
    cfg = StimulusConfig.from_dict({"height": 24, "width": 32, "categories": ["shapes", "words", "patterns"],
                                    "shapes": ["circle", "star"], "motion": {"frames": 4},
                                    "words": {"vocabulary": 8, "held_out": 2},
                                    "sizes": {"words": {"height": 40, "width": 72, "frames": 6}}, "shard_size": 3})
    manifest = write_dataset(tmp_path, cfg, 0, {"train": 14, "val": 6}, workers=2, log=lambda *_: None)
    assert manifest["frame_shape"] == [4, 24, 32]
    assert manifest["frame_shapes"] == {"shapes": [4, 24, 32], "words": [6, 40, 72], "patterns": [4, 24, 32]}
    assert sorted(p.name for p in (tmp_path / "train" / "words").glob("*.npy")) == [
        "clips-00000.npy", "clips-00001.npy", "masks-00000.npy", "masks-00001.npy"]
    data = StimulusDataset(tmp_path, "train")
    for i in range(len(data)):
        category = cfg.categories[i % 3]
        clip, layout, _ = cfg.sample(0, "train", i)
        assert data.category_of(i) == data.samples.category[i] == category  # still interleaved and balanced
        assert data.frame_shape_of(i) == tuple(manifest["frame_shapes"][category]) == clip.shape
        assert np.array_equal(data.clip(i), clip) and data.mask(i).shape == clip.shape
        assert data.labels[i] == layout.label
    again = StimulusDataset(tmp_path, "val")
    assert [again.clip(i).shape[0] for i in range(3)] == [4, 6, 4]
    assert StimulusConfig.from_dict(manifest["config"]) == cfg  # the manifest's config rebuilds the generator


def test_grounding_videos_render_at_scale():
    data = {"seed": 0, "categories": ["shapes"], "shapes": ["circle", "star"], "height": 16, "width": 24,
            "render_scale": 2, "speed": [1.0, 2.0], "shift": [0.8, 1.2]}
    events = EventConfig(frames=16, events=(1, 1), event_frames=(8, 8), gap=2)
    video, evs, masks = grounding_sample(stimulus_config(data, events), events, 0, "train", 0)
    assert video.shape == masks.shape == (16, 16, 24) and masks.dtype == bool
    assert masks[evs[0].start:evs[0].end].any() and not masks[:evs[0].start].any()


def test_each_category_may_have_its_own_density():
    data = {"categories": ["shapes", "words", "patterns"], "shapes": ["circle", "star"], "height": 24, "width": 40,
            "frames": 4, "words": {"vocabulary": 8, "held_out": 2}, "density": {"shapes": 0.79, "words": [0.4, 0.6]}}
    cfg = StimulusConfig.from_pipeline(data)
    assert cfg.motion_of("shapes").density == 0.79 and cfg.motion_of("words").density == (0.4, 0.6)
    assert cfg.motion_of("patterns") is cfg.motion  # left out: motion.density (0.5), the same config
    white = {c: [] for c in ("shapes", "words")}
    for i in range(12):
        clip, layout, _ = cfg.sample(0, "train", i)
        if layout.category in white:
            white[layout.category].append((clip == 255).mean())
            assert clip.mean() / 255 == pytest.approx(layout.motion.density, abs=0.06)
    assert np.mean(white["shapes"]) == pytest.approx(0.79, abs=0.03)
    assert all(0.35 < w < 0.65 for w in white["words"]) and np.ptp(white["words"]) > 0.02  # drawn per clip
    assert StimulusConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg  # travels in the manifest
    assert "streaming renders one density" in cfg.streamable()
    with pytest.raises(ValueError, match=r"density\.words: density=1\.2"):
        StimulusConfig.from_pipeline({**data, "density": {"words": 1.2}})
    with pytest.raises(ValueError, match=r"density for \['sounds'\]"):
        StimulusConfig.from_pipeline({**data, "density": {"sounds": 0.5}})


def test_a_shift_that_sets_the_clip_shape_sets_it_for_every_category():
    data = {"categories": ["shapes", "words"], "shapes": ["circle"], "height": 32, "width": 48, "frames": 8,
            "sizes": {"words": {"height": 64, "width": 112, "frames": 16}}, "render_scale": 4, "shift": [0.7, 1.4],
            "density": 0.5, "words": {"vocabulary": 8, "held_out": 2, "fonts": ["lato-bold"]}}
    shifted = shifted_stimulus(data, {"height": 54, "width": 96, "frames": 12, "render_scale": 1,
                                      "density": {"shapes": 0.79}, "words": {"fonts": ["manrope-bold"]}})
    assert "sizes" not in shifted and "shift" not in shifted  # training's words size and texture shift are gone
    assert shifted["density"] == {"shapes": 0.79} and shifted["words"] == {"vocabulary": 8, "held_out": 2,
                                                                           "fonts": ["manrope-bold"]}
    cfg = StimulusConfig.from_pipeline(shifted)
    assert cfg.frame_shapes == {"shapes": (12, 54, 96), "words": (12, 54, 96)} and cfg.motion.render_scale == 1
    kept = shifted_stimulus(data, {"speed": 2.0})  # a shift that leaves the shape alone keeps the sizes
    assert kept["sizes"] == data["sizes"] and kept["shift"] == [0.7, 1.4]
