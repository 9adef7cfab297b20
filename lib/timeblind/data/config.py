"""StimulusConfig: what a stimulus data set holds (categories, classes, frame shapes, motion), checked
when it is made, and how each of its samples is drawn; and the config of a shifted export. Nothing here
touches the disk: data/writer.py stores the samples, data/dataset.py reads them back.

Sample i of split s is a pure function of (config, seed, s, i): its layout (class, mask,
motion draws) comes from a generator seeded with (seed, s, i, 0) and its noise from one seeded
with (seed, s, i, 1), so any process, in any order, makes the same bytes. Sample i belongs to
category i % n_categories (categories interleave, so every split is balanced); each category may
have its own frame shape (`sizes`), so clips are stored per category.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from timeblind.stimuli.categories import (CATEGORIES, ClassInfo, Layout, Placement, VideoOptions, WordOptions,
                                          build_classes, draw_layout, render_layout)
from timeblind.stimuli.masks import SHAPES
from timeblind.stimuli.motion import MotionConfig, clip_config, is_range
from timeblind.stimuli.patterns import PATTERN_KINDS, PatternConfig

SPLITS = ("train", "val", "test")


def _default_objects() -> tuple[str, ...]:
    from timeblind.stimuli.objects import OBJECTS

    return tuple(OBJECTS)


SIZE_KEYS = ("frames", "height", "width")


@dataclass(frozen=True)
class StimulusConfig:
    height: int = 32
    width: int = 32
    motion: MotionConfig = field(default_factory=MotionConfig)
    categories: tuple[str, ...] = ("shapes",)
    shapes: tuple[str, ...] = tuple(SHAPES)
    objects: tuple[str, ...] = ()  # empty = every bundled object silhouette
    placement: Placement = field(default_factory=Placement)  # shapes and images
    words: WordOptions = field(default_factory=WordOptions)
    videos: VideoOptions = field(default_factory=VideoOptions)
    patterns: PatternConfig = field(default_factory=PatternConfig)
    pattern_kinds: tuple[str, ...] = PATTERN_KINDS
    shard_size: int = 1024  # clips per shard file (per category)
    # category -> (frames, height, width) of its clips; categories left out use motion.frames, height, width
    sizes: tuple[tuple[str, tuple[int, int, int]], ...] = ()
    # category -> its share of white dots (a value or a [low, high] range drawn per clip); categories
    # left out use motion.density. The release: ~79% white for shapes, ~50% for words.
    densities: tuple[tuple[str, float | tuple[float, float]], ...] = ()

    def __post_init__(self):
        unknown = [c for c in self.categories if c not in CATEGORIES]
        if unknown or not self.categories:
            raise ValueError(f"categories={list(self.categories)}: expected one or more of {CATEGORIES}")
        bad_sizes = sorted({c for c, _ in self.sizes} - set(CATEGORIES))
        if bad_sizes:
            raise ValueError(f"sizes for {bad_sizes}: expected categories from {CATEGORIES}")
        bad_densities = sorted({c for c, _ in self.densities} - set(CATEGORIES))
        if bad_densities:
            raise ValueError(f"density for {bad_densities}: expected categories from {CATEGORIES}")
        for category, density in self.densities:
            try:
                dataclasses.replace(self.motion, density=density)
            except ValueError as error:
                raise ValueError(f"density.{category}: {error}") from None
        for category in (None, *self.categories):
            frames, height, width = self.frame_shape(category)
            where = f"sizes.{category}: " if category in dict(self.sizes) else ""
            if height < 8 or width < 8:
                raise ValueError(f"{where}frame size {height}x{width}: expected at least 8x8 px")
            if frames < 2:
                raise ValueError(f"{where}frames={frames}: need at least 2 frames for motion")
        bad_shapes = sorted(set(self.shapes) - set(SHAPES))
        if bad_shapes:
            raise ValueError(f"unknown shapes {bad_shapes}; expected names from {sorted(SHAPES)}")
        if self.shard_size < 1:
            raise ValueError(f"shard_size={self.shard_size}: expected a positive number of clips")
        self.classes  # noqa: B018  (validates every category's options now, not mid-generation)

    def frame_shape(self, category: str | None = None) -> tuple[int, int, int]:
        """(T, H, W) of a category's clips (sizes, else the top-level shape); None: the top-level shape."""
        return dict(self.sizes).get(category, (self.motion.frames, self.height, self.width))

    @property
    def frame_shapes(self) -> dict[str, tuple[int, int, int]]:
        return {c: self.frame_shape(c) for c in self.categories}

    def motion_of(self, category: str) -> MotionConfig:
        """The motion config of a category's clips: motion with that category's frame count and density."""
        changes = {"frames": self.frame_shape(category)[0],
                   "density": dict(self.densities).get(category, self.motion.density)}
        changes = {k: v for k, v in changes.items() if v != getattr(self.motion, k)}
        return dataclasses.replace(self.motion, **changes) if changes else self.motion

    @cached_property
    def classes(self) -> list[ClassInfo]:
        objects = self.objects or (_default_objects() if "images" in self.categories else ())
        return build_classes(self.categories, self.shapes, self.words, objects, self.videos, self.pattern_kinds,
                             frame_shapes=self.frame_shapes, placement=self.placement)

    def storage(self, category: str) -> str:
        """How a category's clips are stored: 'bits' for binary dots at the clip size, else 'uint8' grey."""
        binary = self.motion.noise == "binary" and self.motion.render_scale == 1
        return "bits" if binary and category != "patterns" else "uint8"

    def mask_storage(self, category: str) -> str | None:
        """How a category's figure masks are stored: 'bits' when they are binary (render_scale 1), else
        'uint8' shares; None for patterns (no figure)."""
        if category == "patterns":
            return None
        return "bits" if self.motion.render_scale == 1 else "uint8"

    def streamable(self) -> str | None:
        """Why training cannot stream this data (torch_render draws one speed and density at the clip size
        for every clip of a batch, of one shape), or None when it can."""
        m = self.motion
        if m.render_scale > 1 or is_range(m.speed) or is_range(m.density):
            return (f"render_scale={m.render_scale}, speed={m.speed}, density={m.density}: streaming renders one "
                    "speed and density at the clip size; train on stored clips (training.stream: false)")
        if len(set(self.frame_shapes.values())) > 1:
            return f"sizes={dict(self.sizes)}: streaming batches clips of one shape; train on stored clips"
        if self.densities:
            return (f"density={dict(self.densities)}: streaming renders one density for every clip of a batch; "
                    "train on stored clips")
        return None

    @classmethod
    def from_dict(cls, d: dict) -> "StimulusConfig":
        d = dict(d)
        nested = {"motion": MotionConfig, "placement": Placement, "words": WordOptions, "videos": VideoOptions,
                  "patterns": PatternConfig}
        for key, kind in nested.items():
            if key in d:
                d[key] = kind(**{k: tuple(v) if isinstance(v, list) else v for k, v in d[key].items()})
        for key in ("categories", "shapes", "objects", "pattern_kinds"):
            if key in d:
                d[key] = tuple(d[key])
        if "sizes" in d:
            d["sizes"] = _sizes(d["sizes"], d)
        if "densities" in d:
            d["densities"] = _densities(d["densities"])
        return cls(**d)

    @classmethod
    def from_pipeline(cls, data: dict) -> "StimulusConfig":
        """From the pipeline config's flat `data` section (config/config.yaml)."""
        motion_keys = {f.name for f in dataclasses.fields(MotionConfig)}
        skip = {"seed", *(f"{split}_size" for split in SPLITS)}
        d = {k: v for k, v in data.items() if k not in motion_keys | skip}
        motion = {k: v for k, v in data.items() if k in motion_keys}
        if isinstance(motion.get("density"), dict):  # per category: {shapes: 0.79, words: 0.5}
            d["densities"] = motion.pop("density")
        return cls.from_dict({**d, "motion": motion})

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["sizes"] = {c: dict(zip(SIZE_KEYS, shape)) for c, shape in self.sizes}  # as the config writes it
        d["densities"] = {c: list(v) if isinstance(v, tuple) else v for c, v in self.densities}
        return d

    # -- one sample -------------------------------------------------------------------------
    @cached_property
    def _members(self) -> dict[tuple[str, str], list[int]]:
        """Class indices of each (split, category). Words held out (words.held_out) never reach
        training: the first half of them are the val words, the second half the test words."""
        members = {}
        for c in self.categories:
            everything = [k for k, info in enumerate(self.classes) if info.category == c]
            for split in SPLITS:
                members[split, c] = everything
            if c == "words" and self.words.held_out:
                seen, unseen = everything[:-self.words.held_out], everything[-self.words.held_out:]
                half = len(unseen) // 2
                members["train", c], members["val", c], members["test", c] = seen, unseen[:half], unseen[half:]
        return members

    @cached_property
    def _partners(self) -> dict[str, tuple[tuple[int, str], ...]]:
        """Per split, the words a phrase may pair a word with: the split's own, so held-out phrases are
        made of held-out words only."""
        return {split: tuple((k, self.classes[k].spec[0]) for k in self._members.get((split, "words"), ()))
                for split in SPLITS}

    def class_of(self, index: int, split: str) -> int:
        """Class of sample `index` of `split`: categories interleave, classes cycle within each, so
        every split is balanced over categories and over classes within a category."""
        n_cat = len(self.categories)
        members = self._members[split, self.categories[index % n_cat]]
        return members[(index // n_cat) % len(members)]

    def layout(self, seed: int, split: str, index: int) -> Layout:
        """Sample `index`'s class, mask (at motion.render_scale x its clip size) and motion draws."""
        rng = np.random.default_rng([seed, SPLITS.index(split), index, 0])
        label = self.class_of(index, split)
        category = self.classes[label].category
        _, height, width = self.frame_shape(category)
        return draw_layout(label, self.classes[label], height, width, self.motion_of(category), self.placement,
                           self.words, self.videos, rng, partners=self._partners[split])

    def sample(self, seed: int, split: str, index: int) -> tuple[np.ndarray, Layout, dict | None]:
        """Grey frames (T, H, W) uint8, the layout and (for patterns) the targets of one sample."""
        return self._rendered(self.layout(seed, split, index), seed, split, index)

    def _rendered(self, layout: Layout, seed: int, split: str, index: int) -> tuple[np.ndarray, Layout, dict | None]:
        rng = np.random.default_rng([seed, SPLITS.index(split), index, 1])
        _, height, width = self.frame_shape(layout.category)
        clip, targets = render_layout(layout, self.motion_of(layout.category), self.patterns, height, width, rng)
        return clip, layout, targets

    def stored_sample(self, seed: int, split: str, index: int) -> tuple[np.ndarray, Layout, dict | None]:
        """Like sample(), but in the storage format (bit-packed for binary noise at the clip size)."""
        layout = self.layout(seed, split, index)
        if self.storage(layout.category) == "uint8":
            return self._rendered(layout, seed, split, index)
        from timeblind.stimuli.motion import render_bits

        rng = np.random.default_rng([seed, SPLITS.index(split), index, 1])
        cfg = clip_config(self.motion_of(layout.category), layout.motion)
        return render_bits(layout.mask, cfg, rng, layout.angle), layout, None

    def figure_mask(self, layout: Layout) -> np.ndarray:
        """The figure's share of each clip pixel on every kept frame, x 255: (T, H, W) uint8 (zeros for patterns)."""
        from timeblind.stimuli.scale import soft_mask

        frames, height, width = self.frame_shape(layout.category)
        if layout.mask is None:
            return np.zeros((frames, height, width), np.uint8)
        return soft_mask(layout.mask, frames, self.motion.render_scale)

    def stored_mask(self, layout: Layout) -> np.ndarray:
        """figure_mask in the storage format: bit-packed (figure where the share is 1) at render_scale 1."""
        if self.mask_storage(layout.category) == "bits":
            frames = self.frame_shape(layout.category)[0]
            mask = np.asarray(layout.mask, bool)
            return np.packbits(np.broadcast_to(mask, (frames, *mask.shape[-2:])), axis=-1)
        return np.ascontiguousarray(self.figure_mask(layout))


def _sizes(sizes: dict, d: dict) -> tuple[tuple[str, tuple[int, int, int]], ...]:
    """The config's sizes mapping {category: {frames, height, width}} (each key optional, the top-level
    value when left out) as sorted (category, (T, H, W)) pairs."""
    if not isinstance(sizes, dict):
        raise ValueError(f"sizes={sizes!r}: expected a mapping category -> {{frames, height, width}}")
    defaults = {"frames": (d.get("motion") or MotionConfig()).frames,
                "height": d.get("height", StimulusConfig.height), "width": d.get("width", StimulusConfig.width)}
    out = []
    for category, shape in sorted(sizes.items()):
        unknown = sorted(set(shape) - set(SIZE_KEYS))
        if unknown:
            raise ValueError(f"sizes.{category}: unknown key(s) {unknown}; expected some of {list(SIZE_KEYS)}")
        out.append((category, tuple(int(shape.get(k, defaults[k])) for k in SIZE_KEYS)))
    return tuple(out)


def _densities(densities) -> tuple[tuple[str, float | tuple[float, float]], ...]:
    """{category: density or [low, high]} (or such pairs) as sorted (category, value) pairs."""
    pairs = densities.items() if isinstance(densities, dict) else densities
    try:
        return tuple(sorted((str(c), tuple(v) if isinstance(v, (list, tuple)) else v) for c, v in pairs))
    except (TypeError, ValueError):
        raise ValueError(f"density={densities!r}: expected a share, [low, high], or a mapping category -> "
                         "share or [low, high]") from None


# What a shifted export may change: how clips look, never which classes exist (or which words
# are held out), so every answer stays one a model could give.
CLASS_KEYS = ("categories", "shapes", "objects", "pattern_kinds", "seed", *(f"{s}_size" for s in SPLITS))


def shifted_stimulus(data: dict, shift: dict) -> dict:
    """The pipeline's data section with `shift` applied (nested sections merged key by key).

    A shift that sets the clip shape (height, width, frames or sizes) sets it for every category: the
    data's per-category sizes are dropped, so a category that training sized apart (e.g. words) does not
    keep its training shape in the export. A shift that renders at the clip size (render_scale 1) drops
    the data's texture `shift`, which needs render_scale > 1.
    """
    fixed = sorted(set(shift) & set(CLASS_KEYS))
    words = shift.get("words", {})
    fixed += [f"words.{k}" for k in ("vocabulary", "held_out") if k in words]
    fixed += [f"videos.{k}" for k in ("what", "motions") if k in shift.get("videos", {})]
    if fixed:
        raise ValueError(f"export.shift changes {fixed}: a shifted export may change how clips look "
                         f"(size, frames, speed, directions, noise, fonts...), not the classes")
    merged = dict(data)  # seed and split sizes are ignored by StimulusConfig.from_pipeline
    if set(shift) & {"height", "width", "frames", "sizes"}:
        merged.pop("sizes", None)
    if shift.get("render_scale") == 1 and "shift" not in shift:
        merged.pop("shift", None)
    for key, value in shift.items():
        base = merged.get(key)
        merged[key] = {**base, **value} if isinstance(value, dict) and isinstance(base, dict) else value
    return merged
