"""What a model is shown and asked about each clip: the input scale of clips, and the targets
(the data side of the task heads).

Every category of a data set is answered by one model (models/heads.py): closed-set classes
(shapes, images, videos, pattern kinds) restricted to the clip's category, words read letter by
letter (scored on words never trained on), and the pattern targets of the seed's bit sequences.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cached_property

import numpy as np
import torch

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"  # CTC classes: 0 is the blank, letter k is k + 1
MAX_WORD = 16  # longest word target, in letters
IGNORE = -100  # target of a task the clip does not carry


def to_model_input(grey: torch.Tensor) -> torch.Tensor:
    """uint8 grey (..., T, H, W) -> float in [-1, 1]; mid-grey is 0."""
    return grey.float().div_(127.5).sub_(1.0)


def encode_word(word: str) -> list[int]:
    unknown = sorted(set(word.upper()) - set(ALPHABET))
    if unknown:
        raise ValueError(f"word {word!r} has characters {unknown}; the reading head knows A-Z only")
    return [ALPHABET.index(c) + 1 for c in word.upper()]


def letters_of(text: torch.Tensor, lengths: torch.Tensor) -> list[str]:
    """Word targets back to words: ids (B, MAX_WORD) and lengths (B,)."""
    return ["".join(ALPHABET[k - 1] for k in row[:n]) for row, n in zip(text.tolist(), lengths.tolist())]


def decode_greedy(log_probs: torch.Tensor) -> list[str]:
    """Best path CTC decoding: (B, S, C) -> words (repeats merged, blanks dropped)."""
    words = []
    for path in log_probs.argmax(dim=-1).tolist():
        letters, previous = [], 0
        for k in path:
            if k != previous and k != 0:
                letters.append(ALPHABET[k - 1])
            previous = k
        words.append("".join(letters))
    return words


@dataclass(frozen=True)
class TaskSpec:
    """The answers a model gives, from a data set's manifest: every class with its category,
    and the clip length (pattern heads answer per frame)."""

    classes: tuple[str, ...]
    class_categories: tuple[str, ...]
    frames: int
    reading_steps: int = 24  # CTC time steps across the frame width

    def __post_init__(self):
        if len(self.classes) != len(self.class_categories):
            raise ValueError(f"{len(self.classes)} classes but {len(self.class_categories)} class categories")

    @classmethod
    def from_manifest(cls, manifest: dict, **options) -> "TaskSpec":
        return cls(tuple(manifest["classes"]), tuple(manifest["class_categories"]), manifest["frame_shape"][0],
                   **options)

    @classmethod
    def from_dict(cls, d: dict) -> "TaskSpec":
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

    def to_dict(self) -> dict:
        return asdict(self)

    @cached_property  # asked for per sample on the streaming path: computed once per spec
    def categories(self) -> list[str]:
        return list(dict.fromkeys(self.class_categories))

    @cached_property
    def closed(self) -> list[int]:
        """Indices (into classes) of the classes the class head answers: every category but words."""
        return [k for k, c in enumerate(self.class_categories) if c != "words"]

    @cached_property
    def closed_index(self) -> np.ndarray:
        """(classes,) index of each class among the closed classes; IGNORE for words."""
        index = np.full(len(self.classes), IGNORE, np.int64)
        index[self.closed] = np.arange(len(self.closed))
        return index

    @cached_property
    def category_index(self) -> np.ndarray:
        """(classes,) index of each class's category in `categories`."""
        return np.array([self.categories.index(c) for c in self.class_categories], np.int64)

    @property
    def reads_words(self) -> bool:
        return "words" in self.class_categories

    @property
    def has_patterns(self) -> bool:
        return "patterns" in self.class_categories


def targets_for(tasks: TaskSpec, labels: np.ndarray, bits: np.ndarray | None = None,
                lengths: np.ndarray | None = None, next_bits: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per-clip targets from class labels (N,) (indices into tasks.classes) and, for pattern
    clips, bits (N, T) (-1 where none), lengths (N,) and next bits (N,) (-1 for other clips)."""
    labels = np.asarray(labels, np.int64)
    n = len(labels)
    text = np.zeros((n, MAX_WORD), np.int64)
    text_length = np.zeros(n, np.int64)
    for i in np.flatnonzero(np.array(tasks.class_categories)[labels] == "words") if n else []:
        letters = encode_word(tasks.classes[labels[i]])[:MAX_WORD]
        text[i, :len(letters)], text_length[i] = letters, len(letters)
    pattern = np.full(n, False) if lengths is None else np.asarray(lengths) >= 0
    return {
        "label": tasks.closed_index[labels],
        "category": tasks.category_index[labels],
        "text": text,
        "text_length": text_length,
        "bits": np.full((n, tasks.frames), -1, np.int64) if bits is None else np.asarray(bits, np.int64),
        "length": np.where(pattern, lengths if lengths is not None else 0, IGNORE).astype(np.int64),
        "next_bit": np.where(pattern, next_bits if next_bits is not None else 0, IGNORE).astype(np.int64),
    }


NOT_TRAINED = -1  # category id of a category the model was not trained on: it answers with empty text


def category_ids(tasks: TaskSpec, names) -> torch.Tensor:
    """Category names -> ids into tasks.categories; NOT_TRAINED for a category the model was not trained on."""
    return torch.tensor([tasks.categories.index(c) if c in tasks.categories else NOT_TRAINED for c in names],
                        dtype=torch.long)
