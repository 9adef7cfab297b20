"""Mask sources: shapes, words, object silhouettes and moving figures are what their names promise."""

import re
from importlib.resources import files

import numpy as np
import pytest
from matplotlib.ft2font import FT2Font
from matplotlib.path import Path
from scipy import ndimage
from timeblind.stimuli.categories import VideoOptions
from timeblind.stimuli.dynamics import (
    MOTIONS,
    SYMMETRY,
    dynamic_answers,
    dynamic_label,
    dynamic_masks,
    observable,
)
from timeblind.stimuli.masks import SHAPES, fill_polygon, shape_mask
from timeblind.stimuli.objects import OBJECTS, object_hull, object_mask, silhouette
from timeblind.stimuli.text import FONT_DIR, FONTS, load_words, word_mask


def iou(a, b):
    return (a & b).sum() / (a | b).sum()


def bbox(mask):
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return rows[0], rows[-1] + 1, cols[0], cols[-1] + 1  # top, bottom, left, right (exclusive)


def touches_border(mask):
    return mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any()


def centroid(mask):
    rows, cols = np.nonzero(mask)
    return np.array([cols.mean(), rows.mean()])  # x, y


def principal_angle(mask):
    """Orientation of the mask's long axis in degrees, image coordinates (y down), modulo 180."""
    rows, cols = np.nonzero(mask)
    x, y = cols - cols.mean(), rows - rows.mean()
    return np.degrees(0.5 * np.arctan2(2 * (x * y).mean(), (x * x).mean() - (y * y).mean()))


# --- shapes -----------------------------------------------------------------------------------

def reference_shape(name, height, width, scale=0.35, center=(0.5, 0.5), rotation=0.0):
    """The original rasteriser: matplotlib's point-in-path test at every pixel centre."""
    c, s = np.cos(rotation), np.sin(rotation)
    xy = SHAPES[name] @ np.array([[c, s], [-s, c]]) * scale * min(height, width)
    xy = xy + np.array([center[1] * width, center[0] * height])
    rows, cols = np.mgrid[0:height, 0:width]
    centres = np.stack([cols.ravel() + 0.5, rows.ravel() + 0.5], axis=1)
    return Path(xy).contains_points(centres).reshape(height, width)


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_shape_raster_matches_the_point_in_path_reference(name):
    for center, rotation, size in (((0.5, 0.5), 0.0, (64, 64)), ((0.42, 0.57), 0.7, (64, 64)),
                                   ((0.5, 0.5), -2.0, (48, 80)), ((0.1, 0.95), 0.3, (64, 64))):  # last: clipped
        mask = shape_mask(name, *size, center=center, rotation=rotation)
        assert mask.shape == size and mask.dtype == bool
        assert iou(mask, reference_shape(name, *size, center=center, rotation=rotation)) > 0.98, (center, rotation)


def test_shapes_are_distinct_and_the_ring_has_a_hole():
    masks = {name: shape_mask(name, 64, 64) for name in SHAPES}
    assert len(masks) >= 12
    names = list(masks)
    for i, a in enumerate(names):
        assert 0.05 < masks[a].mean() < 0.6, a
        for b in names[i + 1:]:
            if {a, b} != {"circle", "octagon"}:  # the octagon differs from the circle at its eight corners only
                assert iou(masks[a], masks[b]) < 0.9, (a, b)
    assert masks["circle"][32, 32] and not masks["ring"][32, 32]


def test_polygons_outside_the_frame_give_empty_masks():
    square = np.array([(0, 0), (10, 0), (10, 10), (0, 10)], float)
    assert not fill_polygon(square + 100, 32, 32).any()
    assert not fill_polygon(square - 100, 32, 32).any()
    assert fill_polygon(square, 32, 32).sum() == 100  # pixels 0..9: centres 0.5..9.5 inside


def test_unknown_shape_names_the_choices():
    with pytest.raises(ValueError, match="unknown shape 'blob'.*circle"):
        shape_mask("blob", 32, 32)


# --- words ------------------------------------------------------------------------------------

def test_word_list_is_clean_uppercase_words():
    lines = (files("timeblind.stimuli") / "data" / "words.txt").read_text().splitlines()
    entries = [line for line in lines if not line.startswith("#")]
    assert [w for w in entries if not re.fullmatch(r"[A-Z]{3,8}", w)] == []
    words = load_words()
    assert 400 <= len(words) <= 700 and len(set(words)) == len(words) and words == list(dict.fromkeys(entries))
    assert all(len(w) <= 4 for w in load_words(3, 4)) and set(load_words(3, 4)) < set(words)


def test_every_word_renders_inside_the_frame():
    for word in load_words():
        mask = word_mask(word, 48, 128)
        assert mask.any() and not touches_border(mask), word


@pytest.mark.parametrize("font", sorted(FONTS))
def test_every_font_renders_long_words_inside_small_frames(font):
    for word in ("CHAMPION", "WQJ", "MOUNTAIN", "BOX"):
        mask = word_mask(word, 32, 64, font=font, size=0.9)  # too big: shrinks to fit
        _, _, left, right = bbox(mask)
        assert not touches_border(mask) and right - left > 20, (word, font)


def test_size_is_the_cap_height_and_center_places_the_ink():
    mask = word_mask("HI", 100, 200, size=0.3, center=(0.4, 0.6))
    top, bottom, left, right = bbox(mask)
    assert abs((bottom - top) - 30) <= 2
    assert abs((top + bottom) / 2 - 40) <= 1 and abs((left + right) / 2 - 120) <= 1
    corner = word_mask("HELLO", 100, 200, size=0.3, center=(0.0, 1.0))  # pushed back inside
    assert corner.any() and not touches_border(corner)


def test_fonts_give_different_masks():
    masks = {font: word_mask("SPOOKY", 64, 192, font=font) for font in FONTS}
    assert len(FONTS) >= 5
    names = list(masks)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert iou(masks[a], masks[b]) < 0.9, (a, b)


def test_bad_words_fonts_and_frames_are_refused_clearly():
    for word in ("HI!", "ÄBC", "TWO WORDS", ""):
        with pytest.raises(ValueError, match="expected letters A-Z only"):
            word_mask(word, 64, 64)
    assert word_mask("hello", 64, 64).any()  # lowercase, as the release shows its words
    with pytest.raises(ValueError, match="unknown font 'comic'.*sans-bold"):
        word_mask("BOX", 64, 64, font="comic")
    with pytest.raises(ValueError, match="too small to render 'CHAMPION'"):
        word_mask("CHAMPION", 16, 16)


# --- objects ----------------------------------------------------------------------------------

def test_objects_exist_in_their_fonts_and_do_not_reuse_shape_names():
    assert len(OBJECTS) >= 20
    assert not set(OBJECTS) & set(SHAPES)
    for name, (font_file, codepoint) in OBJECTS.items():
        assert name == name.lower(), name
        assert FT2Font(str(FONT_DIR / font_file)).get_char_index(codepoint) != 0, name


@pytest.mark.parametrize("name", sorted(OBJECTS))
def test_each_object_is_a_solid_silhouette(name):
    mask = object_mask(name, 128, 128)
    assert 0.04 < mask.mean() < 0.5, mask.mean()
    # Solid, not an outline: filling holes adds (almost) nothing.
    assert ndimage.binary_fill_holes(mask).sum() <= 1.02 * mask.sum()
    # Connected enough: a few parts (the telephone's handset and base); thin tips may leave a stray pixel.
    labels, _ = ndimage.label(mask)
    sizes = np.bincount(labels.ravel())[1:]
    parts = sizes[sizes >= 0.01 * mask.sum()]
    assert len(parts) <= 8 and parts.sum() >= 0.99 * mask.sum(), sizes
    # Placed like shape_mask: the ink box is centred, its larger half-extent is scale * size.
    top, bottom, left, right = bbox(mask)
    assert abs(max(bottom - top, right - left) / 2 - 0.35 * 128) <= 1.5
    assert abs((top + bottom) / 2 - 64) <= 1.5 and abs((left + right) / 2 - 64) <= 1.5


def test_objects_are_distinct():
    masks = {name: object_mask(name, 64, 64) for name in OBJECTS}
    names = list(masks)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert iou(masks[a], masks[b]) < 0.9, (a, b)


def reference_object(name, height, width, scale, center, rotation):
    """Nearest sampling of the silhouette at every pixel centre, written out with numpy."""
    image = np.asarray(silhouette(name)) > 0
    h, w = image.shape
    k = scale * min(height, width) / (max(h, w) / 2)
    c, s = np.cos(rotation), np.sin(rotation)
    rows, cols = np.mgrid[0:height, 0:width] + 0.5
    dx, dy = cols - center[1] * width, rows - center[0] * height
    x, y = np.floor((c * dx + s * dy) / k + w / 2).astype(int), np.floor((-s * dx + c * dy) / k + h / 2).astype(int)
    inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
    out = np.zeros((height, width), bool)
    out[inside] = image[y[inside], x[inside]]
    return out


@pytest.mark.parametrize("name", ["airplane", "chess knight", "pointing hand"])
def test_object_raster_matches_a_reference_sampling(name):
    for scale, center, rotation in ((0.35, (0.5, 0.5), 0.0), (0.3, (0.4, 0.6), 0.8), (0.45, (0.9, 0.2), -2.5)):
        mask = object_mask(name, 64, 80, scale=scale, center=center, rotation=rotation)
        assert iou(mask, reference_object(name, 64, 80, scale, center, rotation)) > 0.97


def test_object_hull_bounds_the_silhouette_at_any_angle():
    for name in ("airplane", "cloud", "pen nib"):
        for rotation in (0.0, 0.6, 2.0):
            c, s = np.cos(rotation), np.sin(rotation)
            hull = object_hull(name) @ np.array([[c, s], [-s, c]]) * 0.3 * 100 + 50  # x, y in px
            top, bottom, left, right = bbox(object_mask(name, 100, 100, scale=0.3, rotation=rotation))
            assert hull[:, 0].min() <= left + 0.5 and right - 0.5 <= hull[:, 0].max() + 1e-9
            assert hull[:, 1].min() <= top + 0.5 and bottom - 0.5 <= hull[:, 1].max() + 1e-9


def test_shapes_and_objects_turn_the_same_way():
    # Positive rotation is clockwise on screen: the centroid offset (x, y) turns to (-y, x) at +90 degrees.
    for render, name in ((shape_mask, "arrow"), (object_mask, "pointing hand"), (object_mask, "flag")):
        upright = centroid(render(name, 128, 128)) - 64
        turned = centroid(render(name, 128, 128, rotation=np.pi / 2)) - 64
        assert np.allclose(turned, [-upright[1], upright[0]], atol=1.0), name


def test_unknown_object_names_the_choices():
    with pytest.raises(ValueError, match="unknown object 'unicorn'.*airplane"):
        object_mask("unicorn", 32, 32)


# --- dynamics ---------------------------------------------------------------------------------

FIGURES = ["arrow", "star", "airplane", "cloud", "chess knight"]


@pytest.mark.parametrize("motion", MOTIONS)
def test_dynamic_masks_move_as_labelled_and_stay_inside(motion):
    for what in FIGURES:
        for seed in range(3):
            clip = dynamic_masks(what, motion, 64, 96, 16, np.random.default_rng(seed))
            assert clip.shape == (16, 64, 96) and clip.dtype == bool
            assert all(frame.any() and not touches_border(frame) for frame in clip), (what, seed)
            areas = clip.sum(axis=(1, 2))
            shift = centroid(clip[-1]) - centroid(clip[0])  # x, y
            verb, _, direction = motion.partition(" ")
            if verb == "moving":
                axis = 0 if direction in ("left", "right") else 1
                sign = -1 if direction in ("left", "up") else 1
                assert sign * shift[axis] > 0.15 * clip.shape[2 - axis] - 2, (what, seed, shift)
                assert abs(shift[1 - axis]) < 2, (what, seed, shift)
            if verb in ("moving", "rotating"):
                assert areas.std() < 0.1 * areas.mean(), (what, seed)  # never clipped by the frame
            if verb == "growing":
                assert areas[-1] > 2 * areas[0] and np.all(np.diff(areas) > -0.02 * areas.max())
            if verb == "shrinking":
                assert areas[-1] < 0.5 * areas[0] and np.all(np.diff(areas) < 0.02 * areas.max())
            if verb == "rotating" and what in ("arrow", "cloud"):  # elongated: a well-defined long axis
                angles = np.array([principal_angle(frame) for frame in clip])
                steps = (np.diff(angles) + 90) % 180 - 90  # modulo the axis' 180 degrees
                sign = 1 if direction == "clockwise" else -1  # clockwise on screen: the angle grows (y down)
                assert 80 < sign * steps.sum() < 190 and np.all(sign * steps > -1), (what, seed, steps)


@pytest.mark.parametrize("travel", [(0.12, 0.25), (0.4, 0.5)])
def test_moving_figures_cross_the_share_of_the_frame_travel_asks_for(travel):
    for seed in range(5):
        clip = dynamic_masks("heart", "moving right", 48, 72, 12, np.random.default_rng(seed), scale=0.25,
                             travel=travel)
        shift = centroid(clip[-1]) - centroid(clip[0])  # x, y
        assert travel[0] * 72 - 1.5 < shift[0] < travel[1] * 72 + 1.5, (seed, shift)
        assert all(frame.any() and not touches_border(frame) for frame in clip), seed


def test_a_travel_the_frame_leaves_no_room_for_is_refused():
    with pytest.raises(ValueError, match="leaves room to move only"):
        dynamic_masks("square", "moving up", 48, 72, 12, np.random.default_rng(0), scale=0.4, travel=(0.9, 1.0))
    with pytest.raises(ValueError, match=r"videos.travel=\(0.5, 0.2\)"):
        VideoOptions(travel=(0.5, 0.2))


def test_every_observable_pair_renders_inside_the_frame():
    for what in list(SHAPES) + list(OBJECTS):
        for motion in MOTIONS:
            if not observable(what, motion):
                continue
            clip = dynamic_masks(what, motion, 48, 64, 12, np.random.default_rng(0), scale=0.3)
            assert all(frame.any() and not touches_border(frame) for frame in clip), (what, motion)


def test_dynamic_masks_are_a_pure_function_of_the_generator():
    for what, motion in (("heart", "moving up"), ("anchor", "rotating clockwise"), ("cat", "shrinking")):
        a = dynamic_masks(what, motion, 40, 60, 8, np.random.default_rng(7))
        b = dynamic_masks(what, motion, 40, 60, 8, np.random.default_rng(7))
        c = dynamic_masks(what, motion, 40, 60, 8, np.random.default_rng(8))
        assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_symmetric_figures_never_end_where_they_started():
    for what in ("square", "hexagon", "star", "snowflake", "diamond"):
        assert observable(what, "rotating clockwise")
        for seed in range(10):
            clip = dynamic_masks(what, "rotating counterclockwise", 64, 64, 16, np.random.default_rng(seed))
            assert iou(clip[0], clip[-1]) < 0.95, (what, seed)


def test_unobservable_and_unknown_requests_are_refused():
    assert not observable("circle", "rotating clockwise") and not observable("ring", "rotating counterclockwise")
    assert observable("circle", "moving left") and observable("airplane", "rotating clockwise")
    assert all(SYMMETRY.get(name, 1) > 0 for name in OBJECTS)
    with pytest.raises(ValueError, match="not observable"):
        dynamic_masks("circle", "rotating clockwise", 32, 32, 8, np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown figure 'blob'.*circle.*airplane"):
        dynamic_masks("blob", "growing", 32, 32, 8, np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown motion 'jumping'.*moving left"):
        dynamic_label("circle", "jumping")
    with pytest.raises(ValueError, match="needs at least 12 frames"):
        dynamic_masks("gear", "rotating clockwise", 64, 64, 6, np.random.default_rng(0))
    with pytest.raises(ValueError, match="smaller scale"):
        dynamic_masks("square", "moving left", 64, 64, 8, np.random.default_rng(0), scale=0.6)


def test_labels_and_answers():
    assert dynamic_label("circle", "moving left") == "circle moving left"
    assert dynamic_answers("circle", "moving left") == ["circle moving left", "circle moves left"]
    assert dynamic_answers("gear", "growing") == ["gear growing", "gear grows"]
    answers = dynamic_answers("chess knight", "rotating counterclockwise")
    assert "chess knight rotates anticlockwise" in answers and "chess knight rotating counter-clockwise" in answers
    # No answer for one motion is a substring of the label of another.
    for a in MOTIONS:
        for b in MOTIONS:
            if a != b:
                assert not any(ans in dynamic_label("star", b) for ans in dynamic_answers("star", a)), (a, b)
