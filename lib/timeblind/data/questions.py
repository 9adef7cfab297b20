"""Questions about event videos, and the vocabulary and formats of the grounded decoder's token
sequences (question_set.py turns them into tensors). Torch-free, so the plan can check a config
against them.

Four kinds of question (each with the events it is about, `spans`, and its text answer, `items`):
    what    what appears?                      spans: every event      items: every name, in time order
    when    when does X appear?                spans: X's event        items: none (the span is the answer)
    refer   what appears between <t1> and <t2>? spans: that event      items: its name
    order   which comes first, X or Y?         spans: X's, Y's events  items: the earlier name

Two response formats over one vocabulary:
    coupled     items, then a start and end time token per span (timestamps in the text, one pass)
    factorised  one <evi> per span (grounded against the frame tokens), <ans>, the items, then
                one <evi> per span again: the answer refers back to the evidence (D2VLM). A
                time range in the question (refer) is followed by an <evi> of its own, which
                the decoder gives the mean input frame embedding over that range (D2VLM's
                question-side events)
and `text`, the alignment stage's answer: the items alone.

Time tokens <0>..<M> as in Grounded-VideoLLM: k = min(int(M t / T), M), t = T k / M. Spans are
frames [start, end); the grounding targets live on the frame-token (window) grid.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, replace

import numpy as np

from timeblind.stimuli.events import Event

KINDS = ("what", "when", "refer", "order")
FORMATS = ("coupled", "factorised", "text")
PERTURBATIONS = ("grounding", "text", "both")
SPECIALS = ("<pad>", "<bos>", "<eos>", "<sep>", "<evi>", "<ans>", *(f"<{k}>" for k in KINDS))
LETTERS = tuple(string.ascii_lowercase)
MAX_EVENTS = 3  # evidence slots per sequence; EventConfig.events[1] may not exceed it


def to_time_token(t: float, duration: float, M: int) -> int:
    return min(int(M * t / duration), M)


def from_time_token(k: int, duration: float, M: int) -> float:
    return duration * k / M


@dataclass(frozen=True)
class WindowGrid:
    """The frame tokens of a video: window j covers frames [j stride, j stride + window)."""

    frames: int
    window: int
    stride: int

    def __post_init__(self):
        if not (1 <= self.window <= self.frames and self.stride >= 1):
            raise ValueError(f"window={self.window}, stride={self.stride} for {self.frames} frames: expected "
                             "1 <= window <= frames and stride >= 1")

    @property
    def count(self) -> int:
        return (self.frames - self.window) // self.stride + 1

    def centres(self) -> np.ndarray:
        return np.arange(self.count) * self.stride + self.window / 2

    def to_windows(self, start: float, end: float) -> tuple[int, int]:
        """Frames [start, end) -> the windows (first, last) whose centres fall inside (at least the nearest)."""
        c = self.centres()
        inside = np.flatnonzero((c >= start) & (c < end))
        if len(inside) == 0:
            j = int(np.argmin(np.abs(c - (start + end) / 2)))
            return j, j
        return int(inside[0]), int(inside[-1])

    def to_frames(self, first: int, last: int) -> tuple[float, float]:
        """Windows (first, last) -> frames [start, end): the stretch their centres stand for."""
        c = self.centres()
        half = self.stride / 2
        return float(max(0.0, c[first] - half)), float(min(self.frames, c[last] + half))


class Vocab:
    """Specials, time tokens <0>..<M>, the closed-set class names as single tokens, and letters
    (words are read letter by letter, so unseen words can be answered)."""

    def __init__(self, names: list[str], time_tokens: int):
        self.M = time_tokens
        self.tokens = [*SPECIALS, *(f"<{k}>" for k in range(time_tokens + 1)), *sorted(set(names)), *LETTERS]
        self.index = {t: i for i, t in enumerate(self.tokens)}
        if len(self.index) != len(self.tokens):
            raise ValueError(f"class names {sorted(set(names) & set(LETTERS))} clash with letter tokens")
        self.first_time, self.last_time = self.index["<0>"], self.index[f"<{time_tokens}>"]

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, token: str) -> int:
        return self.index[token]

    def item(self, name: str, category: str) -> list[int]:
        if category == "words":
            return [self.index[c] for c in name.lower()]
        return [self.index[name]]

    def time(self, t: float, duration: float) -> int:
        return self.first_time + to_time_token(t, duration, self.M)

    def is_time(self, token: int) -> bool:
        return self.first_time <= token <= self.last_time

    def items_text(self, tokens: list[int]) -> str:
        """The text answer in a token run: items split at <sep>, letters joined into words."""
        words, current = [], ""
        for tok in tokens:
            t = self.tokens[tok]
            if t == "<sep>":
                words.append(current)
                current = ""
            elif t in LETTERS:
                current += t
            elif not t.startswith("<"):
                current += t
        words.append(current)
        return " ".join(w for w in words if w)


@dataclass(frozen=True)
class Question:
    video: int
    kind: str
    prompt: tuple  # ("item", name, category) and ("time", t) entries after the kind token
    spans: tuple[tuple[int, int], ...]  # frames [start, end) of the events it is about
    items: tuple[tuple[str, str], ...]  # (name, category) of the answer

    @property
    def answer(self) -> str:
        return " ".join(name.lower() for name, _ in self.items)


def make_questions(events: list[list[Event]], kinds: tuple[str, ...], seed: int) -> list[Question]:
    """Every asked kind for every video it fits (order needs two events): `when` once per event,
    the others once per video. A pure function of (events, kinds, seed)."""
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise ValueError(f"question kinds {unknown}: expected some of {list(KINDS)}")
    questions = []
    for v, evs in enumerate(events):
        rng = np.random.default_rng([seed, v])
        span = lambda e: (e.start, e.end)  # noqa: E731
        item = lambda e: (e.name, e.category)  # noqa: E731
        if "what" in kinds:
            questions.append(Question(v, "what", (), tuple(span(e) for e in evs), tuple(item(e) for e in evs)))
        if "when" in kinds:
            questions += [Question(v, "when", (("item", *item(e)),), (span(e),), ()) for e in evs]
        if "refer" in kinds:
            e = evs[int(rng.integers(len(evs)))]
            questions.append(Question(v, "refer", (("time", e.start), ("time", e.end)), (span(e),), (item(e),)))
        if "order" in kinds and len(evs) >= 2:
            a, b = (evs[i] for i in rng.choice(len(evs), 2, replace=False))
            first = a if a.start < b.start else b
            questions.append(Question(v, "order", (("item", *item(a)), ("item", *item(b))),
                                      (span(a), span(b)), (item(first),)))
    return questions


def perturb(q: Question, how: str, frames: int, names: dict[str, list[str]], rng: np.random.Generator) -> Question:
    """A rejected answer for preference optimisation (D2VLM's factorised perturbations): spans
    moved to where they overlap the truth by IoU < 0.3 (grounding), a wrong name (text), or both.
    names: category -> class names to draw wrong ones from. A question with nothing to perturb
    that way (a `when` question has no text) comes back unchanged."""
    if how not in PERTURBATIONS:
        raise ValueError(f"perturbation {how!r}: expected one of {list(PERTURBATIONS)}")
    out = q
    if how in ("grounding", "both"):
        moved = []
        for start, end in q.spans:
            length = end - start
            for _ in range(50):
                s = int(rng.integers(0, frames - length + 1))
                inter = max(0, min(end, s + length) - max(start, s))
                if inter / (2 * length - inter) < 0.3:
                    break
            moved.append((s, s + length))
        out = replace(out, spans=tuple(moved))
    if how in ("text", "both") and q.items:
        k = int(rng.integers(len(q.items)))
        name, category = q.items[k]
        others = [n for n in names.get(category, []) if n != name]
        if q.kind == "order":  # the wrong answer to "which first" is the other one asked about
            others = [p[1] for p in q.prompt if p[0] == "item" and p[1] != name] or others
        if others:
            wrong = (others[int(rng.integers(len(others)))], category)
            out = replace(out, items=q.items[:k] + (wrong,) + q.items[k + 1:])
    return out


def asked_range(q: Question, fmt: str) -> tuple[float, float] | None:
    """The time range a factorised question gives its own <evi> for (refer questions), else None."""
    times = [entry[1] for entry in q.prompt if entry[0] == "time"]
    return (min(times), max(times)) if fmt == "factorised" and times else None


def prompt_length(q: Question, vocab: Vocab, fmt: str) -> int:
    """Tokens before the response (<bos> ... <sep>), where decoding starts."""
    n = 2 + sum(len(vocab.item(p[1], p[2])) + (i > 0) if p[0] == "item" else 1 for i, p in enumerate(q.prompt))
    return n + (asked_range(q, fmt) is not None) + 1


__all__ = ["KINDS", "FORMATS", "PERTURBATIONS", "MAX_EVENTS", "to_time_token", "from_time_token", "WindowGrid",
           "Vocab", "Question", "make_questions", "perturb", "prompt_length"]
