"""Stimulus data sets: generation, sharded storage, memory-mapped reading.

Sample i of split s is a pure function of (config, seed, s, i): its layout (class, mask,
direction) comes from a generator seeded with (seed, s, i, 0) and its noise from one seeded
with (seed, s, i, 1), so any process, in any order, makes the same bytes.

On disk, one folder per data set:
    manifest.json                  config, counts, classes, storage, sha256 of every file
    <split>/clips-00000.npy ...    shards of clips: (S, T, H, ceil(W/8)) bit-packed binary noise,
                                   or (S, T, H, W) uint8 grey for other noise kinds and patterns
    <split>/labels.npy             (N,) int64 class index
    <split>/samples.csv            one row per clip: category, label, answers, angle, pattern targets
    <split>/pattern_bits.npy       (N, T) int8 bits of pattern clips (-1 elsewhere), when patterns are used
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
from timeblind.stimuli.motion import MotionConfig
from timeblind.stimuli.patterns import PATTERN_KINDS, PatternConfig

SPLITS = ("train", "val", "test")
FORMAT = "timeblind.stimuli/2"


def _default_objects() -> tuple[str, ...]:
    from timeblind.stimuli.objects import OBJECTS

    return tuple(OBJECTS)


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
    shard_size: int = 1024  # clips per shard file

    def __post_init__(self):
        if self.height < 8 or self.width < 8:
            raise ValueError(f"frame size {self.height}x{self.width}: expected at least 8x8 px")
        unknown = [c for c in self.categories if c not in CATEGORIES]
        if unknown or not self.categories:
            raise ValueError(f"categories={list(self.categories)}: expected one or more of {CATEGORIES}")
        bad_shapes = sorted(set(self.shapes) - set(SHAPES))
        if bad_shapes:
            raise ValueError(f"unknown shapes {bad_shapes}; expected names from {sorted(SHAPES)}")
        if self.shard_size < 1:
            raise ValueError(f"shard_size={self.shard_size}: expected a positive number of clips")
        self.classes  # noqa: B018  (validates every category's options now, not mid-generation)

    @cached_property
    def classes(self) -> list[ClassInfo]:
        objects = self.objects or (_default_objects() if "images" in self.categories else ())
        return build_classes(self.categories, self.shapes, self.words, objects, self.videos, self.pattern_kinds,
                             frame_shape=(self.motion.frames, self.height, self.width))

    @property
    def storage(self) -> str:
        """'bits' when every clip is binary dot noise, else 'uint8' grey."""
        return "bits" if self.motion.noise == "binary" and "patterns" not in self.categories else "uint8"

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
        return cls(**d)

    @classmethod
    def from_pipeline(cls, data: dict) -> "StimulusConfig":
        """From the pipeline config's flat `data` section (config/config.yaml)."""
        motion_keys = {f.name for f in dataclasses.fields(MotionConfig)}
        skip = {"seed", *(f"{split}_size" for split in SPLITS)}
        d = {k: v for k, v in data.items() if k not in motion_keys | skip}
        return cls.from_dict({**d, "motion": {k: v for k, v in data.items() if k in motion_keys}})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

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

    def class_of(self, index: int, split: str) -> int:
        """Class of sample `index` of `split`: categories interleave, classes cycle within each, so
        every split is balanced over categories and over classes within a category."""
        n_cat = len(self.categories)
        members = self._members[split, self.categories[index % n_cat]]
        return members[(index // n_cat) % len(members)]

    def layout(self, seed: int, split: str, index: int) -> Layout:
        rng = np.random.default_rng([seed, SPLITS.index(split), index, 0])
        label = self.class_of(index, split)
        return draw_layout(label, self.classes[label], self.height, self.width, self.motion, self.placement,
                           self.words, self.videos, rng)

    def sample(self, seed: int, split: str, index: int) -> tuple[np.ndarray, Layout, dict | None]:
        """Grey frames (T, H, W) uint8, the layout and (for patterns) the targets of one sample."""
        layout = self.layout(seed, split, index)
        rng = np.random.default_rng([seed, SPLITS.index(split), index, 1])
        clip, targets = render_layout(layout, self.motion, self.patterns, self.height, self.width, rng)
        return clip, layout, targets

    def stored_sample(self, seed: int, split: str, index: int) -> tuple[np.ndarray, Layout, dict | None]:
        """Like sample(), but in the storage format (bit-packed for binary noise)."""
        if self.storage == "uint8":
            return self.sample(seed, split, index)
        from timeblind.stimuli.motion import render_bits

        layout = self.layout(seed, split, index)
        rng = np.random.default_rng([seed, SPLITS.index(split), index, 1])
        return render_bits(layout.mask, self.motion, rng, layout.angle), layout, None


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
    row = {"index": index, "category": info.category, "label": info.name, "answers": repr(list(info.answers)),
           "angle": round(layout.angle, 3)}
    if "patterns" in cfg.categories:
        targets = targets or {}
        row.update(length=targets.get("length", -1), next_bit=targets.get("next_bit", -1),
                   letters=targets.get("letters", ""))
    return row


def _write_shard(args) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """Render clips [start, stop) of a split into one shard file; returns sample rows, labels, bits."""
    cfg, seed, split, start, stop, path = args
    T = cfg.motion.frames
    clips, rows = [], []
    labels = np.empty(stop - start, np.int64)
    bits = np.full((stop - start, T), -1, np.int8)
    for j, i in enumerate(range(start, stop)):
        clip, layout, targets = cfg.stored_sample(seed, split, i)
        clips.append(clip)
        labels[j] = layout.label
        if targets is not None:
            bits[j] = targets["bits"]
        rows.append(_sample_row(cfg, i, layout, targets))
    _atomic_save(path, np.stack(clips))
    return rows, labels, bits


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
            for stale in split_dir.glob("clips-*.npy"):
                stale.unlink()
            jobs = [(cfg, seed, split, start, min(start + cfg.shard_size, size),
                     split_dir / f"clips-{start // cfg.shard_size:05d}.npy") for start in range(0, size, cfg.shard_size)]
            results = list(pool.map(_write_shard, jobs) if pool else map(_write_shard, jobs))
            rows = [row for r in results for row in r[0]]
            _atomic_save(split_dir / "labels.npy", np.concatenate([r[1] for r in results]))
            if "patterns" in cfg.categories:
                _atomic_save(split_dir / "pattern_bits.npy", np.concatenate([r[2] for r in results]))
            with atomic(split_dir / "samples.csv") as tmp:
                pd.DataFrame(rows).to_csv(tmp, index=False)
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
        "frame_shape": [cfg.motion.frames, cfg.height, cfg.width],
        "storage": cfg.storage,
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
    """Read one split of a stored data set; shards are memory-mapped, so opening costs nothing."""

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
        self.classes = self.manifest["classes"]
        self._shards: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.labels)

    def _shard(self, k: int) -> np.ndarray:
        if k not in self._shards:
            self._shards[k] = np.load(self.split_dir / f"clips-{k:05d}.npy", mmap_mode="r")
        return self._shards[k]

    def stored(self, i: int) -> np.ndarray:
        """Clip i as stored: (T, H, ceil(W/8)) packed bits or (T, H, W) uint8."""
        if not 0 <= i < len(self):
            raise IndexError(f"clip {i} of a split with {len(self)} clips")
        return np.asarray(self._shard(i // self.shard_size)[i % self.shard_size])

    def clip(self, i: int) -> np.ndarray:
        """Clip i as grey frames (T, H, W) uint8."""
        clip = self.stored(i)
        if self.manifest["storage"] == "bits":
            low, high = self.manifest["binary_levels"]
            bits = np.unpackbits(clip, axis=-1, count=self.width).astype(bool)
            return np.where(bits, np.uint8(high), np.uint8(low))
        return np.array(clip)  # a writable copy, not a view into the read-only memory map

    @cached_property
    def samples(self) -> pd.DataFrame:
        return pd.read_csv(self.split_dir / "samples.csv", keep_default_na=False)

    @cached_property
    def pattern_bits(self) -> np.ndarray | None:
        path = self.split_dir / "pattern_bits.npy"
        return np.load(path) if path.exists() else None
