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

from timeblind.stimuli.motion import ClipMotion, MotionConfig, draw_motion, render_clip
from timeblind.stimuli.patterns import PatternConfig, make_pattern_clip

CATEGORIES = ("words", "shapes", "images", "videos", "patterns")
ROTATIONS = ("small", "any")
WORD_CASES = ("upper", "lower", "title", "mixed")


def _pair_ok(pair, low: float, high: float) -> bool:
    return len(pair) == 2 and low <= pair[0] <= pair[1] <= high


@dataclass(frozen=True)
class Placement:
    """Where a static figure sits: radius as a share of min(H, W), centre jitter, rotation, stretch."""

    scale: tuple[float, float] = (0.28, 0.40)
    jitter: float = 0.10  # max shift of the centre, fraction of the frame
    max_rotation: float = 0.2  # radians, with rotation "small"; small, so square and diamond stay distinct
    rotation: str = "small"  # "small": within +-max_rotation; "any": uniform over the full turn
    aspect: tuple[float, float] | None = None  # horizontal stretch drawn per clip (log-uniform); None: none

    def __post_init__(self):
        if self.rotation not in ROTATIONS:
            raise ValueError(f"placement.rotation={self.rotation!r}: expected one of {ROTATIONS}")
        if not _pair_ok(self.scale, 1e-9, 1.0):
            raise ValueError(f"placement.scale={self.scale}: expected [low, high] with 0 < low <= high")
        if self.aspect is not None and not _pair_ok(self.aspect, 1e-9, float("inf")):
            raise ValueError(f"placement.aspect={self.aspect}: expected [low, high] stretch factors, 0 < low <= high")

    @property
    def stretch(self) -> float:
        """The largest stretch between two samples' figures (1 without aspect)."""
        return self.aspect[1] / self.aspect[0] if self.aspect else 1.0

    def draw(self, rng: np.random.Generator) -> dict:
        """shape_mask / object_mask placement keywords. Draws the stretch only when aspect is set, so
        placements without it draw what they always did."""
        placed = {"scale": rng.uniform(*self.scale),
                  "center": tuple(0.5 + rng.uniform(-self.jitter, self.jitter, size=2)),
                  "rotation": (rng.uniform(-self.max_rotation, self.max_rotation) if self.rotation == "small"
                               else rng.uniform(0.0, 2 * np.pi))}
        if self.aspect is not None:
            placed["aspect"] = float(np.exp(rng.uniform(np.log(self.aspect[0]), np.log(self.aspect[1]))))
        return placed


@dataclass(frozen=True)
class WordOptions:
    vocabulary: int = 50  # the first N words of the bundled word list
    held_out: int = 10  # the last N of them never appear in training: half are val words, half test words
    fonts: tuple[str, ...] = ()  # font names or groups (text.FONT_GROUPS); empty = text.DEFAULT_FONTS
    size: tuple[float, float] = (0.35, 0.55)  # cap height as a share of the frame height; release-like: (0.11, 0.15)
    jitter: float = 0.05
    case: str = "upper"  # upper, lower, title, or mixed (one of the three per sample)
    phrases: float = 0.0  # share of samples showing two words, "ice cream" (val/test: held-out words only)
    two_lines: float = 0.0  # share of phrases set on two lines, one word each

    def __post_init__(self):
        if self.case not in WORD_CASES:
            raise ValueError(f"words.case={self.case!r}: expected one of {WORD_CASES}")
        for key in ("phrases", "two_lines"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ValueError(f"words.{key}={getattr(self, key)}: expected a share in [0, 1]")
        if not _pair_ok(self.size, 1e-9, 1.0):
            raise ValueError(f"words.size={self.size}: expected [low, high] cap height shares, 0 < low <= high <= 1")


@dataclass(frozen=True)
class VideoOptions:
    what: tuple[str, ...] = ("circle", "square", "triangle", "star")  # shapes or objects that move
    motions: tuple[str, ...] = ()  # empty = every motion in dynamics.MOTIONS
    scale: float = 0.3
    travel: tuple[float, float] = (0.3, 0.5)  # share of the frame side a moving figure crosses over the clip

    def __post_init__(self):
        if not _pair_ok(self.travel, 1e-9, 1.0):
            raise ValueError(f"videos.travel={self.travel}: expected [low, high] shares of the frame side, "
                             "0 < low <= high <= 1")


@dataclass(frozen=True)
class Layout:
    category: str
    label: int  # index into the data set's class list (words: the first word shown)
    angle: float  # figure direction in degrees
    mask: np.ndarray | None  # (H, W) or (T, H, W) bool at the rendered scale (k x the clip); None for patterns
    pattern_kind: str | None = None
    motion: ClipMotion | None = None  # the clip's draws: angle, speed, density, stride
    words: tuple[int, ...] = ()  # words: class indices of the words shown (two for a phrase)
    text: str | None = None  # words: the text as shown, cased, words separated by a space
    glyphs: tuple = ()  # words: (line, char, x0, x1) of every character drawn, x in clip px


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
    _check_cached(what, arguments, lambda: _failures(attempts))


def _check_cached(what: str, arguments: tuple, find_failures) -> None:
    key = hashlib.sha256(json.dumps([what, arguments, _drawing_code()]).encode()).hexdigest()[:32]
    folder = _CHECK_CACHE.get()
    if key in _PASSED or (folder is not None and (folder / key).exists()):
        return
    _refuse(what, find_failures())
    _PASSED.add(key)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / key).touch()


def _failures(attempts) -> list[str]:
    failures = []
    for name, make in attempts:
        try:
            make()
        except ValueError as error:
            failures.append(f"{name} ({error})")
    return failures


def _refuse(what: str, failures: list[str]) -> None:
    if failures:
        raise ValueError(f"{len(failures)} {what} cannot be drawn at this size (use larger frames, more frames or "
                         "fewer classes): " + "; ".join(failures[:3]) + ("; ..." if len(failures) > 3 else ""))


def _word_texts(vocabulary: list[str], words: WordOptions) -> list[tuple[str, ...]]:
    """The texts (tuples of lines) a words category may show whose fit decides whether all fit: every word
    in every case in use, and for phrases the two widest words on one line and on two lines."""
    from timeblind.stimuli import text

    cases = text.CASES if words.case == "mixed" else (words.case,)
    texts = [(text.apply_case(w, c),) for w in vocabulary for c in cases]
    if words.phrases > 0 and len(vocabulary) > 1:
        reference = text._font(text.FONTS["sans-bold"], 100)
        a, b = sorted(vocabulary, key=reference.getlength)[-2:]  # the widest pair, in a reference font
        for c in cases:
            pair = (text.apply_case(a, c), text.apply_case(b, c))
            if words.two_lines < 1:
                texts.append((" ".join(pair),))
            if words.two_lines > 0:
                texts.append(pair)
    return texts


def build_classes(categories: tuple[str, ...], shapes: tuple[str, ...], words: WordOptions,
                  objects: tuple[str, ...], videos: VideoOptions, patterns: tuple[str, ...],
                  frame_shapes: dict[str, tuple[int, int, int]] | None = None,
                  placement: Placement | None = None) -> list[ClassInfo]:
    """Every class of a data set, category by category, in a fixed order. With frame_shapes (category ->
    (T, H, W)), also checks that every word and moving figure can be drawn at its category's size; with
    placement, that no two shapes become one picture under its rotations and stretches."""
    classes: list[ClassInfo] = []
    for category in categories:
        if category == "shapes":
            classes += _shape_classes(shapes)
            if placement is not None:
                from timeblind.stimuli.masks import merged_shapes

                merged = merged_shapes(shapes, placement.rotation == "any", placement.stretch)
                if merged:
                    raise ValueError(f"shapes {'; '.join(merged)} become one picture under placement.rotation="
                                     f"{placement.rotation!r}, aspect={placement.aspect}: drop one of each pair "
                                     "from data.shapes, or narrow the rotation or aspect")
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
            text.check_fonts(words.fonts)
            if frame_shapes:
                _, H, W = frame_shapes["words"]
                texts = _word_texts(vocabulary[:words.vocabulary], words)
                fonts = text.expand_fonts(words.fonts)
                _check_cached("words", (texts, fonts, words.size, H, W),
                              lambda: text.unfit_texts(texts, fonts, H, W, words.size[0]))
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
            if frame_shapes:
                T, H, W = frame_shapes["videos"]
                _check_renderable("moving figures", (pairs, T, H, W, videos.scale), [
                    (dynamics.dynamic_label(w, m), lambda w=w, m=m: dynamics.dynamic_masks(
                        w, m, H, W, T, np.random.default_rng(0), scale=videos.scale, travel=videos.travel))
                    for w, m in pairs])
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
                rng: np.random.Generator, *, partners: tuple[tuple[int, str], ...] = ()) -> Layout:
    """The mask and motion of one sample of class `info` (pure function of rng), the mask drawn at
    motion.render_scale x the clip's height and width. partners: (class index, word) of the words a
    phrase may pair the sample's word with (the split's own words)."""
    clip = draw_motion(motion, rng)  # the angle first, as always; ranges only when configured
    scale = motion.render_scale
    H, W = scale * height, scale * width
    if info.category == "shapes":
        from timeblind.stimuli.masks import shape_mask

        mask = shape_mask(info.spec[0], H, W, **placement.draw(rng))
    elif info.category == "images":
        from timeblind.stimuli.objects import object_mask

        mask = object_mask(info.spec[0], H, W, **placement.draw(rng))
    elif info.category == "words":
        return _word_layout(cls_index, info, H, W, clip, words, rng, scale, partners)
    elif info.category == "videos":
        from timeblind.stimuli.dynamics import dynamic_masks

        # a strided clip keeps every s-th frame of the scene, so the figure moves s times as far per frame
        stride = clip.stride
        mask = dynamic_masks(*info.spec, H, W, (motion.frames - 1) * stride + 1, rng, scale=videos.scale,
                             every=stride, travel=videos.travel)
    else:  # patterns: the signal is in brightness, made with the noise
        return Layout(info.category, cls_index, clip.angle, None, pattern_kind=info.spec[0], motion=clip)
    return Layout(info.category, cls_index, clip.angle, mask, motion=clip)


def _word_layout(cls_index: int, info: ClassInfo, H: int, W: int, clip: ClipMotion, words: WordOptions,
                 rng: np.random.Generator, scale: int, partners: tuple[tuple[int, str], ...]) -> Layout:
    """A word or phrase. Font, size and centre are drawn first, as always; phrase, lines and case only
    when configured, so the default options draw what they always did."""
    from timeblind.stimuli.text import CASES, MIN_CAP_PX, apply_case, expand_fonts, text_mask

    fonts = expand_fonts(words.fonts)
    font = fonts[int(rng.integers(len(fonts)))]
    size = rng.uniform(*words.size)
    center = tuple(0.5 + rng.uniform(-words.jitter, words.jitter, size=2))
    shown = [(cls_index, info.spec[0])]
    if words.phrases > 0 and rng.random() < words.phrases:
        others = [p for p in partners if p[0] != cls_index] or shown
        shown.append(others[int(rng.integers(len(others)))])
    two_lines = len(shown) == 2 and words.two_lines > 0 and rng.random() < words.two_lines
    case = CASES[int(rng.integers(len(CASES)))] if words.case == "mixed" else words.case
    cased = [apply_case(word, case) for _, word in shown]
    lines = tuple(cased) if two_lines else (" ".join(cased),)
    mask, glyphs = text_mask(lines, H, W, font=font, size=size, center=center, min_cap=MIN_CAP_PX * scale)
    glyphs = tuple((line, char, x0 / scale, x1 / scale) for line, char, x0, x1 in glyphs)
    return Layout("words", cls_index, clip.angle, mask, motion=clip, words=tuple(k for k, _ in shown),
                  text=" ".join(cased), glyphs=glyphs)


def render_layout(layout: Layout, motion: MotionConfig, patterns: PatternConfig, height: int, width: int,
                  rng: np.random.Generator) -> tuple[np.ndarray, dict | None]:
    """Grey frames (T, H, W) uint8 for a layout (drawn by draw_layout at motion.render_scale), and the
    pattern targets for pattern samples."""
    if layout.pattern_kind is not None:
        return make_pattern_clip(layout.pattern_kind, motion.frames, height, width, patterns, rng)
    if layout.motion is None:  # a layout made by hand: the config's own motion
        return render_clip(layout.mask, motion, rng, layout.angle), None
    from timeblind.stimuli.scale import render_drawn

    return render_drawn(layout.mask, motion, layout.motion, rng), None


__all__ = ["CATEGORIES", "ROTATIONS", "WORD_CASES", "Placement", "WordOptions", "VideoOptions", "Layout", "ClassInfo",
           "build_classes", "draw_layout", "render_layout"]
