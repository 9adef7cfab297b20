"""Long noise videos with events: a figure appears by opposing motion only during its event's frames.

Outside every event all pixels move with the ground field, so the noise statistics are the
same everywhere and at all times; only within an event does the figure's noise move the other
way. "When does X appear" is a temporal-grounding question: events of one video show distinct
classes, never overlap and are at least `gap` frames apart.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from timeblind.stimuli.categories import ClassInfo, Placement, VideoOptions, WordOptions, draw_layout
from timeblind.stimuli.motion import ClipMotion, MotionConfig, draw_motion


def _pair(name: str, value) -> tuple[int, int]:
    if not (isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, (int, np.integer)) for v in value)):
        raise ValueError(f"{name}={value!r}: expected a pair of whole numbers (min, max)")
    if value[0] > value[1]:
        raise ValueError(f"{name}={value!r}: expected min <= max")
    return value


@dataclass(frozen=True)
class EventConfig:
    frames: int = 64  # video length T
    events: tuple[int, int] = (1, 3)  # min and max events per video
    event_frames: tuple[int, int] = (12, 24)  # min and max event length, frames
    gap: int = 4  # minimum frames between two events

    def __post_init__(self):
        if not isinstance(self.frames, int) or self.frames < 2:
            raise ValueError(f"frames={self.frames!r}: expected a whole number of at least 2")
        lo_n, hi_n = _pair("events", self.events)
        lo_len, hi_len = _pair("event_frames", self.event_frames)
        if lo_n < 0 or hi_n < 1:
            raise ValueError(f"events={self.events}: expected 0 <= min <= max and max >= 1")
        if lo_len < 2 or hi_len > self.frames:
            raise ValueError(f"event_frames={self.event_frames}: expected 2 <= min <= max <= frames={self.frames} "
                             "(motion needs two frames)")
        if not isinstance(self.gap, int) or self.gap < 0:
            raise ValueError(f"gap={self.gap!r}: expected a whole number of frames >= 0")
        needed = hi_n * lo_len + (hi_n - 1) * self.gap
        if needed > self.frames:
            raise ValueError(f"events={self.events}, event_frames={self.event_frames}, gap={self.gap}: "
                             f"{hi_n} events of {lo_len} frames with gaps need {needed} frames, "
                             f"expected at most frames={self.frames}")

    @classmethod
    def from_dict(cls, d: dict) -> EventConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown event config keys {unknown}; expected some of {sorted(known)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Event:
    name: str  # class name
    category: str
    start: int  # first frame
    end: int  # one past the last frame

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Event:
        return cls(str(d["name"]), str(d["category"]), int(d["start"]), int(d["end"]))


def draw_events(classes: list[ClassInfo], cfg: EventConfig, rng: np.random.Generator) -> list[tuple[int, int, int]]:
    """(class index into `classes`, start, end) of each event of one video, sorted by start.

    Classes are distinct within a video and drawn category first, then class, so a category with
    many classes (words) does not crowd out the others.
    """
    lo_n, hi_n = cfg.events
    if len(classes) < hi_n:
        raise ValueError(f"{len(classes)} classes for up to {hi_n} events per video: events show distinct "
                         f"classes, so expected at least {hi_n} classes (lower events max or add classes)")
    n = int(rng.integers(lo_n, hi_n + 1))
    if n == 0:
        return []
    # Lengths one by one, each capped so the remaining events still fit at minimum length; shuffled,
    # so the cap does not make later events shorter.
    lo_len, hi_len = cfg.event_frames
    room = cfg.frames - cfg.gap * (n - 1)
    lengths = []
    for j in range(n):
        cap = min(hi_len, room - sum(lengths) - lo_len * (n - 1 - j))
        lengths.append(int(rng.integers(lo_len, cap + 1)))
    lengths = [lengths[j] for j in rng.permutation(n)]
    # The free frames go to the n + 1 slots before, between and after the events.
    free = room - sum(lengths)
    cuts = np.sort(rng.integers(0, free + 1, size=n))  # (n,)
    slack = np.diff(cuts, prepend=0)  # (n,) extra frames before each event
    pool: dict[str, list[int]] = {}
    for k, info in enumerate(classes):
        pool.setdefault(info.category, []).append(k)
    events, t = [], 0
    for length, extra in zip(lengths, slack):
        categories = [c for c, members in pool.items() if members]
        members = pool[categories[int(rng.integers(len(categories)))]]
        k = members.pop(int(rng.integers(len(members))))
        start = t + int(extra)
        events.append((k, start, start + length))
        t = start + length + cfg.gap
    return events


class Scene(Protocol):
    """What a video needs of a StimulusConfig (data.config), without depending on it."""

    height: int
    width: int
    motion: MotionConfig
    placement: Placement
    words: WordOptions
    videos: VideoOptions


def event_masks(scene: Scene, classes: list[ClassInfo], events: list[tuple[int, int, int]], frames: int,
                rng: np.random.Generator) -> tuple[np.ndarray, ClipMotion]:
    """Figure mask of every frame at the rendered scale, (T, k*H, k*W) bool (False outside every event;
    k = scene.motion.render_scale), and the video's motion draws."""
    clip = draw_motion(scene.motion, rng)  # one motion per video: only the figure changes between events
    scale = scene.motion.render_scale
    masks = np.zeros((frames, scale * scene.height, scale * scene.width), bool)
    for k, start, end in events:
        info = classes[k]
        if info.category == "patterns":
            raise ValueError(f"category 'patterns' ({info.name!r}) cannot be an event: its signal is "
                             "brightness, not a figure mask")
        # a moving figure's masks span exactly the event's frames, at the video's stride
        motion = dataclasses.replace(scene.motion, frames=end - start, speed=clip.speed, density=clip.density,
                                     frame_stride=clip.stride, shift=None)
        layout = draw_layout(k, info, scene.height, scene.width, motion, scene.placement, scene.words,
                             scene.videos, rng)
        masks[start:end] = layout.mask  # (H, W) broadcasts; (end - start, H, W) fits
    return masks, clip


def render_event_video(scene: Scene, classes: list[ClassInfo], events: list[tuple[int, int, int]], frames: int,
                       rng: np.random.Generator, noise_rng: np.random.Generator | None = None) -> np.ndarray:
    """Grey frames (T, H, W) uint8 of a video with `events` (from draw_events). Masks and motion come
    from rng, the noise from noise_rng (rng when None)."""
    from timeblind.stimuli.scale import render_drawn

    masks, clip = event_masks(scene, classes, events, frames, rng)
    motion = dataclasses.replace(scene.motion, frames=frames)
    return render_drawn(masks, motion, clip, rng if noise_rng is None else noise_rng)


__all__ = ["EventConfig", "Event", "Scene", "draw_events", "event_masks", "render_event_video"]
