"""The shapes data set: one opposing-motion clip per sample, labelled by shape name.

Sample i of split s is a pure function of (config, seed, s, i): its random generator is
seeded from exactly those numbers, so any process, in any order, makes the same bytes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from timeblind.stimuli import SHAPES, MotionConfig, render_clip, shape_mask

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class ShapesConfig:
    height: int = 32
    width: int = 32
    motion: MotionConfig = field(default_factory=MotionConfig)
    classes: tuple[str, ...] = tuple(SHAPES)
    scale: tuple[float, float] = (0.28, 0.40)  # shape radius / min(H, W)
    jitter: float = 0.10  # max shift of the centre, fraction of the frame
    max_rotation: float = 0.2  # radians; small, so square and diamond stay distinct

    def __post_init__(self):
        unknown = sorted(set(self.classes) - set(SHAPES))
        if unknown:
            raise ValueError(f"unknown shape classes {unknown}; expected names from {sorted(SHAPES)}")
        if self.height < 8 or self.width < 8:
            raise ValueError(f"frame size {self.height}x{self.width}: expected at least 8x8 px")

    @classmethod
    def from_dict(cls, d: dict) -> "ShapesConfig":
        d = dict(d)
        motion = MotionConfig(**d.pop("motion", {}))
        for key in ("classes", "scale"):
            if key in d:
                d[key] = tuple(d[key])
        return cls(motion=motion, **d)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def make_sample(cfg: ShapesConfig, seed: int, split: str, index: int) -> tuple[np.ndarray, int]:
    """(T, H, W) bool clip and its class index for sample `index` of `split`."""
    rng = np.random.default_rng([seed, SPLITS.index(split), index])
    label = index % len(cfg.classes)  # exactly balanced classes
    mask = shape_mask(
        cfg.classes[label],
        cfg.height,
        cfg.width,
        scale=rng.uniform(*cfg.scale),
        center=tuple(0.5 + rng.uniform(-cfg.jitter, cfg.jitter, size=2)),
        rotation=rng.uniform(-cfg.max_rotation, cfg.max_rotation),
    )
    clip = render_clip(mask, cfg.motion, rng, axis=int(rng.integers(2)), sign=int(rng.choice([-1, 1])))
    return clip, label


def generate_split(cfg: ShapesConfig, seed: int, split: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Bit-packed clips (N, T, H, ceil(W/8)) uint8 and labels (N,) int64."""
    packed = np.empty((size, cfg.motion.frames, cfg.height, (cfg.width + 7) // 8), np.uint8)
    labels = np.empty(size, np.int64)
    for i in range(size):
        clip, labels[i] = make_sample(cfg, seed, split, i)
        packed[i] = np.packbits(clip, axis=-1)
    return packed, labels


def _atomic_save(path: Path, array: np.ndarray) -> None:
    # Write next to the target, then rename: a killed job never leaves a half-written file.
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, array)
    os.replace(tmp, path)


def sha256_files(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def write_dataset(out_dir: str | Path, cfg: ShapesConfig, seed: int, sizes: dict[str, int], log=print) -> dict:
    """Generate every split into `out_dir` and write manifest.json; returns the manifest."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for split in SPLITS:
        clips, labels = generate_split(cfg, seed, split, sizes[split])
        for kind, array in (("clips", clips), ("labels", labels)):
            path = out_dir / f"{split}_{kind}.npy"
            _atomic_save(path, array)
            files.append(path)
        log(f"generated {split}: {sizes[split]} clips")
    manifest = {
        "category": "shapes",
        "seed": seed,
        "config": cfg.to_dict(),
        "counts": {split: sizes[split] for split in SPLITS},
        "classes": list(cfg.classes),
        "frame_shape": [cfg.motion.frames, cfg.height, cfg.width],
        "storage": "numpy bit-packed along width (np.packbits axis=-1)",
        "content_sha256": sha256_files(files),
    }
    tmp = out_dir / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=2))
    os.replace(tmp, out_dir / "manifest.json")
    return manifest


def load_manifest(data_dir: str | Path) -> dict:
    path = Path(data_dir) / "manifest.json"
    if not path.exists():
        raise FileNotFoundError(f"no data set at {data_dir}: {path} is missing (run the generate step first)")
    return json.loads(path.read_text())


def load_split(data_dir: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Memory-mapped packed clips and labels of one split."""
    if split not in SPLITS:
        raise ValueError(f"split={split!r}: expected one of {SPLITS}")
    data_dir = Path(data_dir)
    return (np.load(data_dir / f"{split}_clips.npy", mmap_mode="r"),
            np.load(data_dir / f"{split}_labels.npy"))


def unpack(packed: np.ndarray, width: int) -> np.ndarray:
    """(..., ceil(W/8)) uint8 -> (..., W) bool."""
    return np.unpackbits(packed, axis=-1, count=width).astype(bool)
