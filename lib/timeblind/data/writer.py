"""Writing a stimulus data set (data/config.py's StimulusConfig) to disk: every split rendered shard by
shard, in worker processes when asked (the same bytes as one), and manifest.json last, so a folder with a
manifest is a finished data set. data/dataset.py reads it back.

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

import hashlib
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from timeblind.core.io import atomic, write_json
from timeblind.data.config import SPLITS, StimulusConfig
from timeblind.stimuli.categories import Layout

FORMAT = "timeblind.stimuli/3"  # manifest.json's "format": a reader refuses any other


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
