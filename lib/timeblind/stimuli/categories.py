"""What a clip shows, per category: the mask (or brightness pattern), its label and accepted answers.

Category names follow the official SpookyBench folders (words, shapes, images, videos) plus
`patterns`, the seed document's brightness-coded bit sequences (a control: see patterns.py).
A Layout is everything about a sample except its noise, so the stored data set and the
on-device stream draw the same layouts and differ only in where the noise is made.
"""

from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from pathlib import Path

import numpy as np

from timeblind.stimuli.motion import MotionConfig, draw_angle, render_clip
from timeblind.stimuli.patterns import PatternConfig, make_pattern_clip

CATEGORIES = ("words", "shapes", "images", "videos", "patterns")


@dataclass(frozen=True)
class Placement:
    """Where a static figure sits: radius as a share of min(H, W), centre jitter, rotation."""

    scale: tuple[float, float] = (0.28, 0.40)
    jitter: float = 0.10  # max shift of the centre, fraction of the frame
    max_rotation: float = 0.2  # radians; small, so square and diamond stay distinct

    def draw(self, rng: np.random.Generator) -> dict:
        return {"scale": rng.uniform(*self.scale),
                "center": tuple(0.5 + rng.uniform(-self.jitter, self.jitter, size=2)),
                "rotation": rng.uniform(-self.max_rotation, self.max_rotation)}


@dataclass(frozen=True)
class WordOptions:
    vocabulary: int = 50  # the first N words of the bundled word list
    held_out: int = 10  # the last N of them never appear in training: half are val words, half test words
    fonts: tuple[str, ...] = ()  # empty = every bundled font
    size: tuple[float, float] = (0.35, 0.55)  # cap height as a share of the frame height
    jitter: float = 0.05


@dataclass(frozen=True)
class VideoOptions:
    what: tuple[str, ...] = ("circle", "square", "triangle", "star")  # shapes or objects that move
    motions: tuple[str, ...] = ()  # empty = every motion in dynamics.MOTIONS
    scale: float = 0.3


@dataclass(frozen=True)
class Layout:
    category: str
    label: int  # index into the data set's class list
    angle: float  # figure direction in degrees
    mask: np.ndarray | None  # (H, W) or (T, H, W) bool; None for patterns
    pattern_kind: str | None = None


@dataclass(frozen=True)
class ClassInfo:
    category: str
    name: str
    answers: tuple[str, ...]
    spec: tuple = field(default=(), compare=False)  # what the mask function needs


def _shape_classes(names) -> list[ClassInfo]:
    return [ClassInfo("shapes", n, (n,), (n,)) for n in names]


# Checks that every class can be drawn (_check_renderable) passed in this process, and the folder that
# remembers passed checks across processes (check_cache): the same config is checked each time the
# pipeline is planned, and drawing every word in every font is most of that.
_PASSED: set[str] = set()
_CHECK_CACHE: ContextVar[Path | None] = ContextVar("check_cache", default=None)


@contextmanager
def check_cache(folder: str | Path | None):
    """Within this block, a passed drawing check is recorded in `folder` and not repeated."""
    token = _CHECK_CACHE.set(Path(folder) if folder is not None else None)
    try:
        yield
    finally:
        _CHECK_CACHE.reset(token)


@cache
def _drawing_code() -> str:
    """What a check's outcome depends on besides its arguments: the stimulus code, and the packages
    that draw and the fonts they draw with."""
    digest = hashlib.sha256()
    for source in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(source.read_bytes())
    for package in ("numpy", "pillow", "matplotlib"):
        digest.update(f"{package}={metadata.version(package)}".encode())
    return digest.hexdigest()


def _check_renderable(what: str, arguments: tuple, attempts) -> None:
    """Fail now, with the offending classes named, rather than mid-generation. `arguments` names
    everything the attempts draw, so a check that passed once is known to pass again."""
    key = hashlib.sha256(json.dumps([what, arguments, _drawing_code()]).encode()).hexdigest()[:32]
    folder = _CHECK_CACHE.get()
    if key in _PASSED or (folder is not None and (folder / key).exists()):
        return
    failures = []
    for name, make in attempts:
        try:
            make()
        except ValueError as error:
            failures.append(f"{name} ({error})")
    if failures:
        raise ValueError(f"{len(failures)} {what} cannot be drawn at this size (use larger frames, more frames or "
                         "fewer classes): " + "; ".join(failures[:3]) + ("; ..." if len(failures) > 3 else ""))
    _PASSED.add(key)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / key).touch()


def build_classes(categories: tuple[str, ...], shapes: tuple[str, ...], words: WordOptions,
                  objects: tuple[str, ...], videos: VideoOptions, patterns: tuple[str, ...],
                  frame_shape: tuple[int, int, int] | None = None) -> list[ClassInfo]:
    """Every class of a data set, category by category, in a fixed order. With frame_shape
    (T, H, W), also checks that every word and moving figure can be drawn at that size."""
    classes: list[ClassInfo] = []
    for category in categories:
        if category == "shapes":
            classes += _shape_classes(shapes)
        elif category == "words":
            from timeblind.stimuli import text

            vocabulary = text.load_words()
            if not 1 <= words.vocabulary <= len(vocabulary):
                raise ValueError(f"words.vocabulary={words.vocabulary}: expected 1..{len(vocabulary)} "
                                 "(the size of the bundled word list)")
            if not 0 <= words.held_out < words.vocabulary or words.held_out == 1:
                raise ValueError(f"words.held_out={words.held_out}: expected 0 or 2..{words.vocabulary - 1} "
                                 f"(val and test each need unseen words, training needs some words)")
            classes += [ClassInfo("words", w, (w.lower(),), (w,)) for w in vocabulary[:words.vocabulary]]
            if frame_shape:
                _, H, W = frame_shape
                fonts = words.fonts or tuple(text.FONTS)
                unknown = sorted(set(fonts) - set(text.FONTS))
                if unknown:
                    raise ValueError(f"unknown fonts {unknown}; expected names from {sorted(text.FONTS)}")
                words_drawn = vocabulary[:words.vocabulary]
                _check_renderable("words", (words_drawn, fonts, words.size[0], H, W), [
                    (f"{w} in {f}", lambda w=w, f=f: text.word_mask(w, H, W, font=f, size=words.size[0]))
                    for w in words_drawn for f in fonts])
        elif category == "images":
            from timeblind.stimuli.objects import OBJECTS

            unknown = sorted(set(objects) - set(OBJECTS))
            if unknown:
                raise ValueError(f"unknown objects {unknown}; expected names from {sorted(OBJECTS)}")
            classes += [ClassInfo("images", n, (n,), (n,)) for n in objects]
        elif category == "videos":
            from timeblind.stimuli import dynamics

            motions = videos.motions or dynamics.MOTIONS
            pairs = [(w, m) for w in videos.what for m in motions if dynamics.observable(w, m)]
            classes += [ClassInfo("videos", dynamics.dynamic_label(w, m), tuple(dynamics.dynamic_answers(w, m)), (w, m))
                        for w, m in pairs]
            if frame_shape:
                T, H, W = frame_shape
                _check_renderable("moving figures", (pairs, T, H, W, videos.scale), [
                    (dynamics.dynamic_label(w, m), lambda w=w, m=m: dynamics.dynamic_masks(
                        w, m, H, W, T, np.random.default_rng(0), scale=videos.scale)) for w, m in pairs])
        elif category == "patterns":
            from timeblind.stimuli.patterns import pattern_answers

            classes += [ClassInfo("patterns", k, tuple(pattern_answers(k)), (k,)) for k in patterns]
        else:
            raise ValueError(f"unknown category {category!r}; expected some of {CATEGORIES}")
    names = [c.name for c in classes]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"class names {duplicated} appear in two categories; labels must be unique")
    return classes


def draw_layout(cls_index: int, info: ClassInfo, height: int, width: int, motion: MotionConfig,
                placement: Placement, words: WordOptions, videos: VideoOptions,
                rng: np.random.Generator) -> Layout:
    """The mask and motion direction of one sample of class `info` (pure function of rng)."""
    angle = draw_angle(motion, rng)
    if info.category == "shapes":
        from timeblind.stimuli.masks import shape_mask

        mask = shape_mask(info.spec[0], height, width, **placement.draw(rng))
    elif info.category == "images":
        from timeblind.stimuli.objects import object_mask

        mask = object_mask(info.spec[0], height, width, **placement.draw(rng))
    elif info.category == "words":
        from timeblind.stimuli.text import FONTS, word_mask

        fonts = words.fonts or tuple(FONTS)
        mask = word_mask(info.spec[0], height, width, font=fonts[int(rng.integers(len(fonts)))],
                         size=rng.uniform(*words.size),
                         center=tuple(0.5 + rng.uniform(-words.jitter, words.jitter, size=2)))
    elif info.category == "videos":
        from timeblind.stimuli.dynamics import dynamic_masks

        # a strided clip keeps every s-th frame of the scene, so the figure moves s times as far per frame
        stride = motion.frame_stride
        mask = dynamic_masks(*info.spec, height, width, (motion.frames - 1) * stride + 1, rng,
                             scale=videos.scale)[::stride]
    else:  # patterns: the signal is in brightness, made with the noise
        return Layout(info.category, cls_index, angle, None, pattern_kind=info.spec[0])
    return Layout(info.category, cls_index, angle, mask)


def render_layout(layout: Layout, motion: MotionConfig, patterns: PatternConfig, height: int, width: int,
                  rng: np.random.Generator) -> tuple[np.ndarray, dict | None]:
    """Grey frames (T, H, W) uint8 for a layout, and the pattern targets for pattern samples."""
    if layout.pattern_kind is not None:
        return make_pattern_clip(layout.pattern_kind, motion.frames, height, width, patterns, rng)
    return render_clip(layout.mask, motion, rng, layout.angle), None


__all__ = ["CATEGORIES", "Placement", "WordOptions", "VideoOptions", "Layout", "ClassInfo",
           "build_classes", "draw_layout", "render_layout"]
