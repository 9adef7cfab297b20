"""Questions about event videos, and their token sequences for the grounded decoder.

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
import torch

from timeblind.stimuli.events import Event

KINDS = ("what", "when", "refer", "order")
FORMATS = ("coupled", "factorised", "text")
PERTURBATIONS = ("grounding", "text", "both")
SPECIALS = ("<pad>", "<bos>", "<eos>", "<sep>", "<evi>", "<ans>", *(f"<{k}>" for k in KINDS))
LETTERS = tuple(string.ascii_lowercase)
MAX_EVENTS = 3  # evidence slots per sequence; EventConfig.events[1] may not exceed it
IGNORE = -100


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


def encode(q: Question, fmt: str, vocab: Vocab, grid: WindowGrid, length: int) -> dict[str, torch.Tensor]:
    """One question as fixed-length tensors (L = length):
    tokens (L,) [<bos> <kind> prompt <sep> response <eos> <pad>...]; targets (L,) the next token
    where it belongs to the response, else IGNORE; ground_pos / answer_pos (E,) positions of the
    grounding-phase and answer-phase <evi> inputs (-1: none); spans (E, 2) window spans, inclusive
    (-1: none); n_spans (); question_pos (1,) and question_spans (1, 2): the question's own <evi>
    and the windows of its time range (factorised refer questions; else -1)."""
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r}: expected one of {list(FORMATS)}")
    T = grid.frames
    prompt = [vocab["<bos>"], vocab[f"<{q.kind}>"]]
    for entry in q.prompt:
        if entry[0] == "item":
            if prompt[-1] != vocab[f"<{q.kind}>"]:
                prompt.append(vocab["<sep>"])
            prompt += vocab.item(entry[1], entry[2])
        else:
            prompt.append(vocab.time(entry[1], T))
    question_pos, question_span = -1, (-1, -1)
    asked = _asked_range(q, fmt)
    if asked:
        question_pos, question_span = len(prompt), grid.to_windows(*asked)
        prompt.append(vocab["<evi>"])
    prompt.append(vocab["<sep>"])
    items: list[int] = []
    for i, (name, category) in enumerate(q.items):
        items += ([vocab["<sep>"]] if i else []) + vocab.item(name, category)
    E = len(q.spans)
    ground_pos, answer_pos = [], []
    if fmt == "text":
        response = items
    elif fmt == "coupled":
        response = items + [tok for s, e in q.spans for tok in (vocab.time(s, T), vocab.time(e, T))]
    else:
        start = len(prompt)
        ground_pos = list(range(start, start + E))
        response = [vocab["<evi>"]] * E + [vocab["<ans>"]] + items
        answer_pos = list(range(start + len(response), start + len(response) + E))
        response += [vocab["<evi>"]] * E
    sequence = prompt + response + [vocab["<eos>"]]
    if len(sequence) > length:
        raise ValueError(f"this {q.kind} question needs {len(sequence)} tokens; the decoder holds {length} "
                         "(raise grounding.max_tokens)")
    tokens = torch.full((length,), vocab["<pad>"], dtype=torch.long)
    tokens[:len(sequence)] = torch.tensor(sequence)
    targets = torch.full((length,), IGNORE, dtype=torch.long)
    first = len(prompt) - 1  # the <sep> before the response predicts its first token
    targets[first:len(sequence) - 1] = tokens[first + 1:len(sequence)]
    spans = torch.full((MAX_EVENTS, 2), -1, dtype=torch.long)
    ground, answer = (torch.full((MAX_EVENTS,), -1, dtype=torch.long) for _ in range(2))
    if fmt != "text":
        for i, (s, e) in enumerate(q.spans):
            spans[i] = torch.tensor(grid.to_windows(s, e))
        ground[:len(ground_pos)] = torch.tensor(ground_pos, dtype=torch.long)
        answer[:len(answer_pos)] = torch.tensor(answer_pos, dtype=torch.long)
    return {"tokens": tokens, "targets": targets, "ground_pos": ground, "answer_pos": answer, "spans": spans,
            "n_spans": torch.tensor(E if fmt != "text" else 0), "question_pos": torch.tensor([question_pos]),
            "question_spans": torch.tensor([question_span])}


def _asked_range(q: Question, fmt: str) -> tuple[float, float] | None:
    """The time range a factorised question gives its own <evi> for (refer questions), else None."""
    times = [entry[1] for entry in q.prompt if entry[0] == "time"]
    return (min(times), max(times)) if fmt == "factorised" and times else None


def prompt_length(q: Question, vocab: Vocab, fmt: str) -> int:
    """Tokens before the response (<bos> ... <sep>), where decoding starts."""
    n = 2 + sum(len(vocab.item(p[1], p[2])) + (i > 0) if p[0] == "item" else 1 for i, p in enumerate(q.prompt))
    return n + (_asked_range(q, fmt) is not None) + 1


class QuestionSet(torch.utils.data.Dataset):
    """(frame tokens, encoded question) pairs of one split; with `reject`, each item also carries
    a rejected response (key prefix rejected_) drawn from those perturbations, for FPO. The reject
    is drawn anew each epoch (set_epoch), as D2VLM samples one per example, and is a pure function
    of (seed, epoch, index)."""

    def __init__(self, features: torch.Tensor, questions: list[Question], fmt: str, vocab: Vocab,
                 grid: WindowGrid, length: int, reject: tuple[str, ...] = (), names: dict | None = None,
                 seed: int = 0):
        self.features, self.questions, self.fmt, self.vocab = features, questions, fmt, vocab
        self.grid, self.length, self.reject, self.names, self.seed = grid, length, reject, names or {}, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.questions)

    def token_ids(self) -> set[int]:
        """The ids the questions' own sequences use, padding included; rejects are left out."""
        return {t for q in self.questions
                for t in encode(q, self.fmt, self.vocab, self.grid, self.length)["tokens"].tolist()}

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        q = self.questions[i]
        item = {"frames": self.features[q.video], "index": torch.tensor(i),
                **encode(q, self.fmt, self.vocab, self.grid, self.length)}
        if self.reject:
            rng = np.random.default_rng([self.seed, self.epoch, i])
            how = self.reject[int(rng.integers(len(self.reject)))]
            rejected = perturb(q, how, self.grid.frames, self.names, rng)
            item["has_rejected"] = torch.tensor(rejected != q)
            item.update({f"rejected_{k}": v for k, v in encode(rejected, self.fmt, self.vocab, self.grid,
                                                              self.length).items()})
        return item


__all__ = ["KINDS", "FORMATS", "PERTURBATIONS", "MAX_EVENTS", "IGNORE", "to_time_token", "from_time_token",
           "WindowGrid", "Vocab", "Question", "make_questions", "perturb", "encode", "prompt_length", "QuestionSet"]
