"""The heads that answer what a model is asked about a clip, from an encoder's feature map.

Every answer about a figure goes through the figure the encoder recovered:
  * the figure head turns the feature map (B, D, h, w) into figure logits per temporal window
    (B, K, H, W) at the clip's full resolution (a 1x1 convolution to K * s * s channels, then a
    pixel shuffle by the map's stride s), trained against the true figure masks;
  * the figure reader (models/reader.py) reads the recovered figure, as a picture, for the
    closed-set classes (shapes, objects, moving figures: the answer restricted to the clip's
    category, as a category-specific prompt would restrict a video-language model) and, line by
    line, for text (scored on words never trained on). It sees the figure detached: the figure
    masks train the encoder, the reader is pretrained, frozen during training (unless training's
    train_reader) and then adapted to the trained encoder's maps (training/adapt.py), so an
    encoder is judged on how well it recovers the figure and nothing else;
  * the seed's brightness-coded patterns carry no figure: their kind, bits, length and next bit
    are read from the encoder's own pooled features.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from timeblind.core.lexicon import Lexicon
from timeblind.core.lines import Band, decode_columns, find_lines
from timeblind.core.tasks import NOT_TRAINED, TaskSpec
from timeblind.models.reader import FigureReader, LineReader, crop_bands

CANNOT_ANSWER = ""  # the answer to a category the model was not trained on (id NOT_TRAINED) or has no head for
MIRRORED = ("shapes", "images")  # a mirrored shape or object is still itself; a moving figure's direction is not
# How a figure's class name changes when its maps (B, K, H, W) are mirrored left-right, mirrored up-down
# or played backwards: a shape keeps its name, a circle moving left mirrored left-right moves right.
VIEW_RENAMES = {
    "flip_x": {"left": "right", "right": "left", "clockwise": "counterclockwise", "counterclockwise": "clockwise"},
    "flip_y": {"up": "down", "down": "up", "clockwise": "counterclockwise", "counterclockwise": "clockwise"},
    "reverse": {"left": "right", "right": "left", "up": "down", "down": "up", "growing": "shrinking",
                "shrinking": "growing", "clockwise": "counterclockwise", "counterclockwise": "clockwise"},
}
VIEW_DIMS = {"flip_x": -1, "flip_y": -2, "reverse": 1}
VIEWS = [tuple(v for v, on in zip(VIEW_RENAMES, bits) if on) for bits in itertools.product((0, 1), repeat=3)][1:]


class FigureHead(nn.Module):
    """Feature map (B, D, h, w) -> figure logits (B, K, H, W): each map cell spells out the
    stride x stride pixels under it, per window (a pixel shuffle). Maps coarser than the clip's
    stride (late fusion into one vector) are repeated over the cells first, so they can only say
    the same thing everywhere."""

    def __init__(self, dim: int, windows: int, stride: int = 4):
        super().__init__()
        self.stride, self.windows = stride, windows
        self.proj = nn.Conv2d(dim, windows * stride * stride, 1)

    def forward(self, fmap: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        H, W = size
        cells = (math.ceil(H / self.stride), math.ceil(W / self.stride))
        if fmap.shape[-2:] != cells:
            fmap = F.interpolate(fmap, size=cells, mode="nearest")
        logits = F.pixel_shuffle(self.proj(fmap), self.stride)  # (B, K, cells * stride)
        return logits[..., :H, :W]


class TaskHeads(nn.Module):
    """Every head a TaskSpec asks for, on one feature map (B, D, h, w) of a clip of size (H, W)."""

    def __init__(self, dim: int, spec: TaskSpec, reader_width: int = 16, reader_dim: int = 64):
        super().__init__()
        self.spec = spec
        K = spec.windows
        self.figure = FigureHead(dim, K)
        self.reader = FigureReader(K, reader_width, reader_dim)
        # category id of each closed class, so answers can be restricted to the clip's category
        self.register_buffer("class_category", torch.from_numpy(spec.class_category_index), persistent=False)
        self.register_buffer("from_figure", torch.from_numpy(spec.figure_classes), persistent=False)
        index, usable = view_permutations(spec)
        self.register_buffer("view_index", index, persistent=False)
        self.register_buffer("view_usable", usable, persistent=False)
        n = len(spec.classes)
        self.classify_figure = nn.Linear(reader_dim, n) if n else None
        self.classify_frames = nn.Linear(dim, n) if spec.has_patterns else None
        self.lines = LineReader() if spec.reads_words else None
        if spec.has_patterns:
            T = spec.frames
            self.bits = nn.Linear(dim, T)  # one bit per frame (frames from the length on carry none)
            self.length = nn.Linear(dim, T + 1)  # how many frames carry a bit
            self.next_bit = nn.Linear(dim, 2)  # the bit that would follow the sequence

    def forward(self, fmap: torch.Tensor, size: tuple[int, int]) -> dict[str, torch.Tensor]:
        figure_logits = self.figure(fmap, size)  # (B, K, H, W)
        figure = torch.sigmoid(figure_logits).detach()  # what the reader sees: the answers do not train the encoder
        pooled = fmap.mean(dim=(2, 3))  # (B, D)
        out = {"figure_logits": figure_logits, "figure": figure}
        if self.classify_figure is not None:
            logits = self.figure_logits(figure)  # (B, classes)
            if self.classify_frames is not None:  # pattern kinds: from the frames, not a figure
                logits = torch.where(self.from_figure, logits, self.classify_frames(pooled))
            out["logits"] = logits
        if self.spec.has_patterns:
            out["bits"] = self.bits(pooled)  # (B, T)
            out["length"] = self.length(pooled)  # (B, T + 1)
            out["next_bit"] = self.next_bit(pooled)  # (B, 2)
        return out

    def figure_logits(self, figure: torch.Tensor) -> torch.Tensor:
        """Class logits (B, classes) read off figure maps (B, K, H, W). Answering (eval mode), the
        figure is also read mirrored and played backwards (VIEWS), each view's logits renamed back
        (a circle moving right, mirrored, is read as one moving left), and all averaged: one odd
        view no longer decides, and a reader's lean towards one direction cancels out."""
        logits = self.classify_figure(self.reader(figure))
        if self.training or not self.view_usable.any():
            return logits
        total, count = logits.clone(), torch.ones_like(logits[0])
        for v, view in enumerate(VIEWS):
            seen = self.classify_figure(self.reader(figure.flip([VIEW_DIMS[k] for k in view])))
            usable = self.view_usable[v]
            total = total + torch.where(usable, seen[:, self.view_index[v]], 0.0)
            count = count + usable.float()
        return total / count

    def restricted_logits(self, logits: torch.Tensor, category: torch.Tensor) -> torch.Tensor:
        """Class logits with every class outside the clip's category (B,) masked out."""
        inside = self.class_category[None, :] == category[:, None]  # (B, classes)
        return logits.masked_fill(~inside, float("-inf"))

    def read_lines(self, figure: torch.Tensor, bands: list[list[Band]]) -> tuple[torch.Tensor, list[int]]:
        """Per-column reading log-probabilities of the given text lines of figure maps (B, K, H, W):
        (L, COLUMNS, classes), and the clip each line belongs to."""
        crops, owners = crop_bands(figure.mean(dim=1), bands)  # text does not move: the windows' mean
        return self.lines(crops), owners

    def read(self, figure: torch.Tensor, lexicon: Lexicon | None = None) -> list[str]:
        """The text on each figure map (B, K, H, W): its lines found, read, joined by a space. Each
        line is read letter by letter, or word by word against a lexicon (core/lexicon.py)."""
        bands = [find_lines(f) for f in figure.mean(dim=1).cpu().numpy()]
        log_probs, owners = self.read_lines(figure, bands)
        texts = [[] for _ in bands]
        for owner, line in zip(owners, log_probs):
            texts[owner].append(lexicon.read_line(line) if lexicon else decode_columns(line.argmax(dim=-1).tolist()))
        return [" ".join(t for t in lines if t) for lines in texts]

    def answers(self, out: dict[str, torch.Tensor], category: torch.Tensor, lexicon: Lexicon | None = None
                ) -> list[str]:
        """The text answer per clip: the text read for words (against `lexicon`, if given), else the
        class name in its category; CANNOT_ANSWER for a category (id -1) or a head the model does not have."""
        category = category.to(out["figure"].device)
        texts = [CANNOT_ANSWER] * len(category)
        if self.lines is not None:
            reading = np.flatnonzero((category == self.spec.categories.index("words")).cpu().numpy())
            for i, text in zip(reading, self.read(out["figure"][reading], lexicon) if len(reading) else []):
                texts[i] = text
        if "logits" in out:
            chosen = self.restricted_logits(out["logits"], category).argmax(dim=-1).tolist()
            has_class = torch.isin(category, self.class_category).tolist()
            for i, ok in enumerate(has_class):
                if ok:
                    texts[i] = self.spec.classes[chosen[i]]
        return texts


def view_permutations(spec: TaskSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """For each of VIEWS, which class a figure of each class is read as in that view, (V, classes),
    and whether the view serves the class, (V, classes): only where every class of its category has
    its renamed class in the same category (a view cannot be renamed back to a class never trained),
    and played backwards only where a class of the category moves (a still figure's windows are
    alike: reversing them adds a read and no view)."""
    names = {(cat, name): k for k, (cat, name) in enumerate(zip(spec.class_categories, spec.classes))}
    index = torch.arange(len(spec.classes)).repeat(len(VIEWS), 1)
    usable = torch.zeros(len(VIEWS), len(spec.classes), dtype=torch.bool)
    for category in {c for c, on_figure in zip(spec.class_categories, spec.figure_classes) if on_figure}:
        members = [k for k, c in enumerate(spec.class_categories) if c == category]
        moves = any(rename(spec.classes[k], ("reverse",)) != spec.classes[k] for k in members)
        for v, view in enumerate(VIEWS):
            renamed = [names.get((category, rename(spec.classes[k], view))) for k in members]
            if None not in renamed and (moves or "reverse" not in view):
                index[v, members], usable[v, members] = torch.tensor(renamed), True
    return index, usable


def rename(name: str, view: tuple[str, ...]) -> str:
    """A class name as the figure reads in `view`: 'circle moving left' under flip_x is 'circle moving right'."""
    words = name.split()
    for k in view:
        words = [VIEW_RENAMES[k].get(w, w) for w in words]
    return " ".join(words)
