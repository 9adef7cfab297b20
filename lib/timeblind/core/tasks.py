"""What a model is shown and asked about each clip: the input scale of clips, and the targets
(the data side of the task heads).

Every category of a data set is answered by one model (models/heads.py): closed-set classes
(shapes, images, videos, pattern kinds) restricted to the clip's category, text read line by line
(core/lines.py; scored on words never trained on), the pattern targets of the seed's bit
sequences, and, for every clip, the figure itself: its soft mask per temporal window.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import cached_property

import numpy as np
import torch

from timeblind.core.lines import COLUMNS, MAX_LINES, encode_text, line_targets

IGNORE = -100  # target of a task the clip does not carry
MAX_TEXT = 24  # longest line, in characters


def to_model_input(grey: torch.Tensor) -> torch.Tensor:
    """uint8 grey (..., T, H, W) -> float in [-1, 1]; mid-grey is 0."""
    return grey.float().div_(127.5).sub_(1.0)


def window_means(x: torch.Tensor, windows: int, dim: int = 1) -> torch.Tensor:
    """The mean of each of `windows` contiguous stretches of axis `dim` (torch.tensor_split), stacked
    in their place; when the axis is shorter than `windows`, stretches repeat its entries."""
    n = x.shape[dim]
    if n >= windows:
        return torch.stack([part.mean(dim=dim) for part in torch.tensor_split(x, windows, dim=dim)], dim=dim)
    return x.index_select(dim, torch.arange(windows, device=x.device) * n // windows)


@dataclass(frozen=True)
class TaskSpec:
    """The answers a model gives, from a data set's manifest: the closed-set classes with their
    categories, every category (words are read, not classified), the pattern clips' length (one
    bit per frame) and the figure's temporal windows."""

    classes: tuple[str, ...]
    class_categories: tuple[str, ...]
    categories: tuple[str, ...]
    frames: int
    windows: int = 4

    def __post_init__(self):
        if len(self.classes) != len(self.class_categories):
            raise ValueError(f"{len(self.classes)} classes but {len(self.class_categories)} class categories")
        unknown = sorted(set(self.class_categories) - set(self.categories))
        if unknown:
            raise ValueError(f"classes of categories {unknown}, which are not among {list(self.categories)}")

    @classmethod
    def from_manifest(cls, manifest: dict, **options) -> "TaskSpec":
        closed = [(n, c) for n, c in zip(manifest["classes"], manifest["class_categories"]) if c != "words"]
        shapes = manifest["frame_shapes"]
        frames = shapes.get("patterns", next(iter(shapes.values())))[0]
        return cls(tuple(n for n, _ in closed), tuple(c for _, c in closed), tuple(manifest["categories"]),
                   frames, **options)

    @classmethod
    def from_dict(cls, d: dict) -> "TaskSpec":
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

    def to_dict(self) -> dict:
        return asdict(self)

    @cached_property
    def class_category_index(self) -> np.ndarray:
        """(classes,) index of each class's category in `categories`."""
        return np.array([self.categories.index(c) for c in self.class_categories], np.int64)

    @cached_property
    def figure_classes(self) -> np.ndarray:
        """(classes,) bool: the class is read off a figure (every category but the patterns)."""
        return np.array([c != "patterns" for c in self.class_categories], bool)

    @property
    def reads_words(self) -> bool:
        return "words" in self.categories

    @property
    def has_patterns(self) -> bool:
        return "patterns" in self.categories


def clip_targets(tasks: TaskSpec, category: str, label: str, mask: np.ndarray, glyphs: str | list = "",
                 bits: np.ndarray | None = None, length: int = -1, next_bit: int = -1) -> dict[str, np.ndarray]:
    """The targets of one clip. category and label as in the data set's samples (label: the class
    name, or the text of a words clip); mask: its soft figure mask (T, H, W) uint8 0-255; glyphs:
    the words' (line, char, x0, x1) as drawn (JSON or list); for pattern clips their bits (T,),
    sequence length and next bit."""
    T = mask.shape[0]
    is_class = category != "words" and label in tasks.classes
    line_bands = np.full((MAX_LINES, 4), -1, np.int64)  # top, bottom, left, right
    line_labels = np.full((MAX_LINES, COLUMNS), IGNORE, np.int64)
    line_text = np.zeros((MAX_LINES, MAX_TEXT), np.int64)
    line_length = np.zeros(MAX_LINES, np.int64)
    if category == "words" and glyphs:
        glyphs = json.loads(glyphs) if isinstance(glyphs, str) else glyphs
        figure = mask.astype(np.float32).mean(axis=0) / 255
        for k, (band, labels, text) in enumerate(line_targets(figure, [tuple(g) for g in glyphs])):
            codes = encode_text(text)[:MAX_TEXT]
            line_bands[k], line_labels[k] = band.as_array(), labels
            line_text[k, :len(codes)], line_length[k] = codes, len(codes)
    pattern = category == "patterns"
    return {
        "label": np.int64(tasks.classes.index(label) if is_class else IGNORE),
        "category": np.int64(tasks.categories.index(category)),
        "mask": mask,
        "line_bands": line_bands,
        "line_labels": line_labels,
        "line_text": line_text,
        "line_length": line_length,
        "bits": np.full(tasks.frames, -1, np.int64) if bits is None or not pattern else np.asarray(bits, np.int64),
        "length": np.int64(length if pattern else IGNORE),
        "next_bit": np.int64(next_bit if pattern else IGNORE),
    }


NOT_TRAINED = -1  # category id of a category the model was not trained on: it answers with empty text


def category_ids(tasks: TaskSpec, names) -> torch.Tensor:
    """Category names -> ids into tasks.categories; NOT_TRAINED for a category the model was not trained on."""
    return torch.tensor([tasks.categories.index(c) if c in tasks.categories else NOT_TRAINED for c in names],
                        dtype=torch.long)
