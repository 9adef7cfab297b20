"""Stimulus data sets: generation, sharded storage, memory-mapped reading.

Sample i of split s is a pure function of (config, seed, s, i): its layout (class, mask,
motion draws) comes from a generator seeded with (seed, s, i, 0) and its noise from one seeded
with (seed, s, i, 1), so any process, in any order, makes the same bytes. Sample i belongs to
category i % n_categories (categories interleave, so every split is balanced); each category may
have its own frame shape (`sizes`), so clips are stored per category.

On disk, one folder per data set:
    manifest.json                         config, counts, classes, frame shapes, storage, sha256 of every file
    <split>/<category>/clips-00000.npy    shards of that category's clips, its j-th clip being sample
                                          c + j * n_categories (c: the category's position):
                                          (S, T, H, ceil(W/8)) bit-packed binary noise, or (S, T, H, W) uint8
                                          grey (other noise kinds, patterns, render_scale > 1)
    <split>/<category>/masks-00000.npy    the figure mask of every kept frame, sharded like the clips: at
                                          render_scale 1 bit-packed like binary clips, else (S, T, H, W) uint8,
                                          the share of figure in each clip pixel x 255 (none for patterns)
    <split>/labels.npy                    (N,) int64 class index (words: the first word shown)
    <split>/samples.csv                   one row per clip: category, label, answers, the clip's motion draws
                                          (angle, speed, density, stride), words' text and glyph extents,
                                          pattern targets
    <split>/pattern_bits.npy              (N, T) int8 bits of pattern clips (-1 elsewhere), when patterns are used
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from timeblind.core.io import atomic, write_json
from timeblind.stimuli.categories import (CATEGORIES, ClassInfo, Layout, Placement, VideoOptions, WordOptions,
                                          build_classes, draw_layout, render_layout)
from timeblind.stimuli.masks import SHAPES
from timeblind.stimuli.motion import MotionConfig, clip_config, is_range
from timeblind.stimuli.patterns import PATTERN_KINDS, PatternConfig

SPLITS = ("train", "val", "test")
FORMAT = "timeblind.stimuli/3"


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

    def __post_init__(self):
        unknown = [c for c in self.categories if c not in CATEGORIES]
        if unknown or not self.categories:
            raise ValueError(f"categories={list(self.categories)}: expected one or more of {CATEGORIES}")
        bad_sizes = sorted({c for c, _ in self.sizes} - set(CATEGORIES))
        if bad_sizes:
            raise ValueError(f"sizes for {bad_sizes}: expected categories from {CATEGORIES}")
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
        """The motion config of a category's clips: motion with that category's frame count."""
        frames = self.frame_shape(category)[0]
        return self.motion if frames == self.motion.frames else dataclasses.replace(self.motion, frames=frames)

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
        return cls(**d)

    @classmethod
    def from_pipeline(cls, data: dict) -> "StimulusConfig":
        """From the pipeline config's flat `data` section (config/config.yaml)."""
        motion_keys = {f.name for f in dataclasses.fields(MotionConfig)}
        skip = {"seed", *(f"{split}_size" for split in SPLITS)}
        d = {k: v for k, v in data.items() if k not in motion_keys | skip}
        return cls.from_dict({**d, "motion": {k: v for k, v in data.items() if k in motion_keys}})

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["sizes"] = {c: dict(zip(SIZE_KEYS, shape)) for c, shape in self.sizes}  # as the config writes it
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


# What a shifted export may change: how clips look, never which classes exist (or which words
# are held out), so every answer stays one a model could give.
CLASS_KEYS = ("categories", "shapes", "objects", "pattern_kinds", "seed", *(f"{s}_size" for s in SPLITS))


def shifted_stimulus(data: dict, shift: dict) -> dict:
    """The pipeline's data section with `shift` applied (nested sections merged key by key)."""
    fixed = sorted(set(shift) & set(CLASS_KEYS))
    words = shift.get("words", {})
    fixed += [f"words.{k}" for k in ("vocabulary", "held_out") if k in words]
    fixed += [f"videos.{k}" for k in ("what", "motions") if k in shift.get("videos", {})]
    if fixed:
        raise ValueError(f"export.shift changes {fixed}: a shifted export may change how clips look "
                         f"(size, frames, speed, directions, noise, fonts...), not the classes")
    merged = dict(data)  # seed and split sizes are ignored by StimulusConfig.from_pipeline
    for key, value in shift.items():
        merged[key] = {**merged.get(key, {}), **value} if isinstance(value, dict) else value
    return merged


def _sample_row(cfg: StimulusConfig, index: int, layout: Layout, targets: dict | None) -> dict:
    info = cfg.classes[layout.label]
    label, answers = info.name, list(info.answers)
    if len(layout.words) > 1:  # a phrase: answered as a whole, "ice cream"
        label = " ".join(cfg.classes[k].name for k in layout.words)
        answers = [label.lower()]
    m = layout.motion
    row = {"index": index, "category": info.category, "label": label, "answers": repr(answers),
           "angle": round(layout.angle, 3), "speed": round(m.speed, 4), "density": round(m.density, 4),
           "stride": m.stride}
    if "words" in cfg.categories:
        row.update(text=layout.text or "",
                   glyphs=json.dumps([[line, char, round(x0, 2), round(x1, 2)] for line, char, x0, x1 in layout.glyphs])
                   if layout.text else "")
    if "patterns" in cfg.categories:
        targets = targets or {}
        row.update(length=targets.get("length", -1), next_bit=targets.get("next_bit", -1),
                   letters=targets.get("letters", ""))
    return row


def _members_of(cfg: StimulusConfig, category: str, size: int) -> range:
    """Indices of a split's samples of `category`, in order: its j-th clip is sample c + j * n_categories."""
    return range(cfg.categories.index(category), size, len(cfg.categories))


def _write_shard(args) -> tuple[list[dict], np.ndarray, np.ndarray, np.ndarray]:
    """Render clips [start, stop) of one category of a split into a shard of clips and one of masks;
    returns the split indices, sample rows, labels and pattern bits."""
    cfg, seed, split, category, indices, clip_path, mask_path = args
    T = cfg.frame_shape("patterns")[0]
    clips, masks, rows = [], [], []
    labels = np.empty(len(indices), np.int64)
    bits = np.full((len(indices), T), -1, np.int8)
    for j, i in enumerate(indices):
        clip, layout, targets = cfg.stored_sample(seed, split, i)
        clips.append(clip)
        if mask_path is not None:
            masks.append(cfg.stored_mask(layout))
        labels[j] = layout.label
        if targets is not None:
            bits[j] = targets["bits"]
        rows.append(_sample_row(cfg, i, layout, targets))
    _atomic_save(clip_path, np.stack(clips))
    if mask_path is not None:
        _atomic_save(mask_path, np.stack(masks))
    return np.asarray(indices, np.int64), rows, labels, bits


def _atomic_save(path: Path, array: np.ndarray) -> None:
    with atomic(path) as tmp:
        np.save(tmp, array)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_dataset(out_dir: str | Path, cfg: StimulusConfig, seed: int, sizes: dict[str, int], *,
                  workers: int = 1, log=print) -> dict:
    """Generate every split into `out_dir` and write manifest.json last; returns the manifest.

    Shards are independent, so `workers` processes give the same bytes as one.
    """
    out_dir = Path(out_dir)
    unknown = sorted(set(sizes) - set(SPLITS))
    if unknown:
        raise ValueError(f"split sizes for {unknown}: expected splits from {SPLITS}")
    (out_dir / "manifest.json").unlink(missing_ok=True)  # no manifest = not a finished data set
    files: dict[str, str] = {}
    pool = ProcessPoolExecutor(workers) if workers > 1 else None
    try:
        for split, size in sizes.items():
            if size == 0:  # e.g. a study's training data: its test sets are made apart
                continue
            split_dir = out_dir / split
            split_dir.mkdir(parents=True, exist_ok=True)
            for stale in [*split_dir.rglob("clips-*.npy"), *split_dir.rglob("masks-*.npy")]:
                stale.unlink()
            jobs = []
            for category in cfg.categories:
                (split_dir / category).mkdir(exist_ok=True)
                members = _members_of(cfg, category, size)
                for start in range(0, len(members), cfg.shard_size):
                    name = f"{start // cfg.shard_size:05d}.npy"
                    masks = split_dir / category / f"masks-{name}" if cfg.mask_storage(category) else None
                    jobs.append((cfg, seed, split, category, members[start:start + cfg.shard_size],
                                 split_dir / category / f"clips-{name}", masks))
            results = list(pool.map(_write_shard, jobs) if pool else map(_write_shard, jobs))
            order = np.argsort(np.concatenate([r[0] for r in results]), kind="stable")  # back to sample order
            rows = [row for r in results for row in r[1]]
            _atomic_save(split_dir / "labels.npy", np.concatenate([r[2] for r in results])[order])
            if "patterns" in cfg.categories:
                _atomic_save(split_dir / "pattern_bits.npy", np.concatenate([r[3] for r in results])[order])
            with atomic(split_dir / "samples.csv") as tmp:
                pd.DataFrame([rows[k] for k in order]).to_csv(tmp, index=False)
            log(f"generated {split}: {size} clips in {len(jobs)} shard(s)")
    finally:
        if pool:
            pool.shutdown()
    for path in sorted(p for p in out_dir.rglob("*") if p.is_file() and p.name != "manifest.json"):
        files[path.relative_to(out_dir).as_posix()] = _sha256(path)
    content = hashlib.sha256("".join(f"{k}:{v}\n" for k, v in files.items()).encode()).hexdigest()
    manifest = {
        "format": FORMAT,
        "seed": seed,
        "config": cfg.to_dict(),
        "counts": dict(sizes),
        "categories": list(cfg.categories),
        "classes": [c.name for c in cfg.classes],
        "class_categories": [c.category for c in cfg.classes],
        "class_answers": [list(c.answers) for c in cfg.classes],
        "frame_shape": list(cfg.frame_shape()),  # the top-level shape: every category's unless `sizes` says otherwise
        "frame_shapes": {c: list(shape) for c, shape in cfg.frame_shapes.items()},
        "render_scale": cfg.motion.render_scale,
        "storage": {c: cfg.storage(c) for c in cfg.categories},
        "mask_storage": {c: cfg.mask_storage(c) for c in cfg.categories if cfg.mask_storage(c)},
        "binary_levels": list(cfg.motion.binary_levels),
        "shard_size": cfg.shard_size,
        "files": files,
        "content_sha256": content,
    }
    write_json(out_dir / "manifest.json", manifest)
    return manifest


def load_manifest(data_dir: str | Path) -> dict:
    path = Path(data_dir) / "manifest.json"
    if not path.exists():
        raise FileNotFoundError(f"no data set at {data_dir}: {path} is missing (run the generate step first)")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{path} has format {manifest.get('format')!r}, expected {FORMAT!r}: regenerate the data set")
    return manifest


class StimulusDataset:
    """Read one split of a stored data set; shards are memory-mapped, so opening costs nothing.

    Sample i is of category categories[i % n] and may have its category's own frame shape
    (frame_shape_of); frames, height and width are the data set's top-level shape."""

    def __init__(self, data_dir: str | Path, split: str):
        if split not in SPLITS:
            raise ValueError(f"split={split!r}: expected one of {SPLITS}")
        self.root = Path(data_dir)
        self.manifest = load_manifest(data_dir)
        if split not in self.manifest["counts"]:
            raise ValueError(f"split {split!r} is not in {data_dir}; it has {sorted(self.manifest['counts'])}")
        self.split_dir = self.root / split
        self.labels = np.load(self.split_dir / "labels.npy")
        self.shard_size = self.manifest["shard_size"]
        self.frames, self.height, self.width = self.manifest["frame_shape"]
        self.categories: list[str] = self.manifest["categories"]
        self.frame_shapes = {c: tuple(shape) for c, shape in self.manifest["frame_shapes"].items()}
        self.classes = self.manifest["classes"]
        self._shards: dict[tuple[str, str, int], np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.labels)

    def category_of(self, i: int) -> str:
        return self.categories[i % len(self.categories)]

    def frame_shape_of(self, i: int) -> tuple[int, int, int]:
        """(T, H, W) of clip i."""
        return self.frame_shapes[self.category_of(i)]

    def _row(self, kind: str, i: int) -> np.ndarray:
        """Clip or mask i as stored (a view into its memory-mapped shard)."""
        if not 0 <= i < len(self):
            raise IndexError(f"clip {i} of a split with {len(self)} clips")
        category, j = self.category_of(i), i // len(self.categories)
        key = (category, kind, j // self.shard_size)
        if key not in self._shards:
            path = self.split_dir / category / f"{kind}-{key[2]:05d}.npy"
            self._shards[key] = np.load(path, mmap_mode="r")
        return self._shards[key][j % self.shard_size]

    def stored(self, i: int) -> np.ndarray:
        """Clip i as stored: (T, H, ceil(W/8)) packed bits or (T, H, W) uint8."""
        return np.asarray(self._row("clips", i))

    def clip(self, i: int) -> np.ndarray:
        """Clip i as grey frames (T, H, W) uint8."""
        clip = self.stored(i)
        if self.manifest["storage"][self.category_of(i)] == "bits":
            low, high = self.manifest["binary_levels"]
            bits = np.unpackbits(clip, axis=-1, count=self.frame_shape_of(i)[2]).astype(bool)
            return np.where(bits, np.uint8(high), np.uint8(low))
        return np.array(clip)  # a writable copy, not a view into the read-only memory map

    def mask(self, i: int) -> np.ndarray:
        """The figure's share of each pixel of clip i on every frame, x 255: (T, H, W) uint8 (zeros for patterns)."""
        storage = self.manifest["mask_storage"].get(self.category_of(i))
        if storage is None:
            return np.zeros(self.frame_shape_of(i), np.uint8)
        mask = np.asarray(self._row("masks", i))
        if storage == "bits":
            return np.unpackbits(mask, axis=-1, count=self.frame_shape_of(i)[2]) * np.uint8(255)
        return np.array(mask)

    @cached_property
    def samples(self) -> pd.DataFrame:
        return pd.read_csv(self.split_dir / "samples.csv", keep_default_na=False)

    @cached_property
    def pattern_bits(self) -> np.ndarray | None:
        path = self.split_dir / "pattern_bits.npy"
        return np.load(path) if path.exists() else None
