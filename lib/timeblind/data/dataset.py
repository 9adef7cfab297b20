"""Reading a stored stimulus data set (its layout: data/writer.py): the manifest, and one split's clips,
masks and sample table, memory-mapped.

StimulusConfig (data/config.py) and write_dataset (data/writer.py) are importable from here too, as most
callers import them.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from timeblind.data.config import SPLITS, StimulusConfig
from timeblind.data.writer import FORMAT, write_dataset

__all__ = ["StimulusConfig", "StimulusDataset", "load_manifest", "write_dataset"]


def load_manifest(data_dir: str | Path) -> dict:
    path = Path(data_dir) / "manifest.json"
    if not path.exists():
        raise FileNotFoundError(f"no data set at {data_dir}: {path} is missing (run the generate step first)")
    try:
        manifest = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} is not a data set manifest ({err}): regenerate the data set") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise ValueError(f"{path} has format {found!r}, expected {FORMAT!r}: regenerate the data set")
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

    def clip(self, i: int, frames: int | None = None) -> np.ndarray:
        """Clip i as grey frames (T, H, W) uint8; frames: its first `frames` frames only (read and
        unpacked alone)."""
        clip = self._row("clips", i)[:frames]
        if self.manifest["storage"][self.category_of(i)] == "bits":
            low, high = self.manifest["binary_levels"]
            grey = np.unpackbits(clip, axis=-1, count=self.frame_shape_of(i)[2])  # 0/1, a new array
            grey *= np.uint8(high - low)
            grey += np.uint8(low)
            return grey
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
