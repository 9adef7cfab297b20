"""Temporal-grounding data sets: long noise videos with events (stimuli.events), stored per split.

Video i of split s is a pure function of (config, seed, s, i): its events, masks and angle come
from a generator seeded with (seed, s, i, 0), its noise from one seeded with (seed, s, i, 1), so
any number of worker processes makes the same bytes.

On disk:
    manifest.json          configs, seed, counts, classes per split and category, sha256 of every file
    <split>/videos.npy     (N, T, H, W) uint8 grey frames
    <split>/events.json    one list of events ({name, category, start, end}, end exclusive) per video
"""

from __future__ import annotations

import dataclasses
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from timeblind.core.io import atomic, write_text
from timeblind.data.config import SPLITS, StimulusConfig
from timeblind.data.writer import _sha256
from timeblind.stimuli.categories import ClassInfo
from timeblind.stimuli.events import Event, EventConfig, draw_events, event_masks
from timeblind.stimuli.scale import render_drawn, soft_mask

FORMAT = "timeblind.grounding/1"
CHUNK = 64  # videos per worker job


def stimulus_config(data: dict, events: EventConfig) -> StimulusConfig:
    """The stimulus config of a pipeline data section, its clip length set to the shortest event:
    StimulusConfig checks every moving figure can be drawn at that length, the hardest case."""
    if "patterns" in data.get("categories", ()):
        raise ValueError("categories include 'patterns': grounding videos show figures by motion, and "
                         "patterns carry their signal in brightness; remove 'patterns' from data.categories")
    return StimulusConfig.from_pipeline({**data, "frames": events.event_frames[0]})


def split_classes(stim: StimulusConfig, split: str) -> list[ClassInfo]:
    """The classes a split's events may show, category by category; held-out words as in config.py."""
    members = stim._members  # the same per-split word lists as the classification data set
    return [stim.classes[k] for c in stim.categories for k in members[split, c]]


def grounding_sample(stim: StimulusConfig, cfg: EventConfig, seed: int, split: str,
                     index: int) -> tuple[np.ndarray, list[Event], np.ndarray]:
    """Video (T, H, W) uint8, its events and its figure masks (T, H, W) bool (the figure's share of a pixel
    at least one half). Videos have the top-level frame size: data.sizes is for classification clips."""
    s = SPLITS.index(split)
    rng = np.random.default_rng([seed, s, index, 0])
    classes = split_classes(stim, split)
    drawn = draw_events(classes, cfg, rng)
    masks, clip = event_masks(stim, classes, drawn, cfg.frames, rng)
    motion = dataclasses.replace(stim.motion, frames=cfg.frames)
    video = render_drawn(masks, motion, clip, np.random.default_rng([seed, s, index, 1]))
    if motion.render_scale > 1:
        masks = soft_mask(masks, cfg.frames, motion.render_scale) >= 128
    events = [Event(classes[k].name, classes[k].category, start, end) for k, start, end in drawn]
    return video, events, masks


def _chunk(args) -> tuple[np.ndarray, list[list[dict]]]:
    stim, cfg, seed, split, start, stop = args
    videos, events = [], []
    for i in range(start, stop):
        video, evs, _ = grounding_sample(stim, cfg, seed, split, i)
        videos.append(video)
        events.append([e.to_dict() for e in evs])
    return np.stack(videos), events


def write_grounding_dataset(out_dir: str | Path, data: dict, events: dict, *, workers: int = 1, log=print) -> dict:
    """Generate every split of a grounding data set into `out_dir`, manifest.json last; returns the manifest.

    data: the pipeline's data section (config/config.yaml: seed, <split>_size and stimulus keys);
    events: an EventConfig dict.
    """
    if "seed" not in data:
        raise ValueError("data section has no 'seed': every video is a pure function of (config, seed, split, index)")
    cfg = EventConfig.from_dict(events)
    stim = stimulus_config(data, cfg)
    seed = int(data["seed"])
    sizes = {s: int(data.get(f"{s}_size", 0)) for s in SPLITS}
    for split, size in sizes.items():
        n = len(split_classes(stim, split))
        if size and n < cfg.events[1]:
            raise ValueError(f"split {split!r} has {n} classes for up to {cfg.events[1]} distinct events per video; "
                             "lower events max or add classes (or fewer held-out words)")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "manifest.json").unlink(missing_ok=True)  # no manifest = not a finished data set
    T, H, W = cfg.frames, stim.height, stim.width
    files: dict[str, str] = {}
    pool = ProcessPoolExecutor(workers) if workers > 1 else None
    try:
        for split, size in sizes.items():
            if size == 0:
                continue
            split_dir = out_dir / split
            split_dir.mkdir(exist_ok=True)
            jobs = [(stim, cfg, seed, split, a, min(a + CHUNK, size)) for a in range(0, size, CHUNK)]
            all_events: list[list[dict]] = []
            with atomic(split_dir / "videos.npy") as tmp:
                # written chunk by chunk into a memory map: a large split never sits in memory at once
                videos = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(size, T, H, W))
                chunks = pool.map(_chunk, jobs) if pool else map(_chunk, jobs)
                for (_, _, _, _, a, b), (chunk, evs) in zip(jobs, chunks):
                    videos[a:b] = chunk
                    all_events += evs
                videos.flush()
                del videos
            write_text(split_dir / "events.json", json.dumps(all_events))
            for name in ("videos.npy", "events.json"):
                files[f"{split}/{name}"] = _sha256(split_dir / name)
            log(f"generated {split}: {size} videos of {T} frames")
    finally:
        if pool:
            pool.shutdown()
    manifest = {
        "format": FORMAT,
        "seed": seed,
        "data": data,
        "config": stim.to_dict(),
        "events": cfg.to_dict(),
        "counts": {s: n for s, n in sizes.items() if n},
        "frame_shape": [T, H, W],
        "classes": {s: {c: [i.name for i in split_classes(stim, s) if i.category == c] for c in stim.categories}
                    for s, n in sizes.items() if n},
        "files": files,
    }
    text = json.dumps(manifest, indent=2)
    write_text(out_dir / "manifest.json", text)
    return json.loads(text)  # as load_grounding_split reads it: lists, not tuples


def load_grounding_split(data_dir: str | Path, split: str) -> tuple[np.ndarray, list[list[Event]], dict]:
    """Videos (N, T, H, W) uint8 (memory-mapped, read-only), each video's events, and the manifest."""
    root = Path(data_dir)
    path = root / "manifest.json"
    if not path.exists():
        raise FileNotFoundError(f"no grounding data set at {root}: {path} is missing (generate it first)")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{root} is not a grounding data set: manifest format {manifest.get('format')!r}, "
                         f"expected {FORMAT!r}")
    if split not in manifest["counts"]:
        raise ValueError(f"split {split!r} is not in {root}; it has {sorted(manifest['counts'])}")
    videos = np.load(root / split / "videos.npy", mmap_mode="r")
    events = [[Event.from_dict(d) for d in video] for video in json.loads((root / split / "events.json").read_text())]
    return videos, events, manifest


__all__ = ["FORMAT", "stimulus_config", "split_classes", "grounding_sample", "write_grounding_dataset",
           "load_grounding_split"]
