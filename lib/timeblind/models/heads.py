"""The heads that answer what a model is asked about a clip, from an encoder's feature map.

One model covers every category of its data set:
  * a class head for the closed-set categories (shapes, images, videos, pattern kinds), whose
    answer is restricted to the classes of the clip's category, as a category-specific prompt
    would restrict a video-language model;
  * a reading head for words: letters read left to right from the map's columns with CTC, so
    words never seen in training can be read (scored on held-out words);
  * pattern heads for the seed's brightness-coded bit sequences: one bit per frame, the sequence
    length and the next bit.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from timeblind.core.tasks import ALPHABET, NOT_TRAINED, TaskSpec, decode_greedy


class ReadingHead(nn.Module):
    """Reads a word left to right: the map's columns, resampled to `steps` positions, through a
    bidirectional GRU to per-step letter log-probabilities for CTC. The GRU also lets encoders
    whose map is a single column (late fusion into one vector) spell a word out."""

    def __init__(self, dim: int, steps: int, hidden: int = 64):
        super().__init__()
        self.steps = steps
        self.proj = nn.Linear(dim, hidden)
        self.rnn = nn.GRU(hidden, hidden, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * hidden, len(ALPHABET) + 1)

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        columns = fmap.mean(dim=2)  # (B, D, w): a word is read along the width
        columns = F.interpolate(columns, size=self.steps, mode="linear", align_corners=False)  # (B, D, S)
        x, _ = self.rnn(self.proj(columns.transpose(1, 2)))  # (B, S, 2*hidden)
        return self.out(x).log_softmax(dim=-1)  # (B, S, 27)


class TaskHeads(nn.Module):
    """Every head a TaskSpec asks for, on one feature map (B, D, h, w)."""

    def __init__(self, dim: int, spec: TaskSpec):
        super().__init__()
        self.spec = spec
        closed = spec.closed
        # category id of each closed class, so answers can be restricted to the clip's category
        self.register_buffer("closed_category", torch.from_numpy(spec.category_index[closed]), persistent=False)
        self.classify = nn.Linear(dim, len(closed)) if closed else None
        self.read = ReadingHead(dim, spec.reading_steps) if spec.reads_words else None
        if spec.has_patterns:
            T = spec.frames
            self.bits = nn.Linear(dim, T)  # one bit per frame (frames from the length on carry none)
            self.length = nn.Linear(dim, T + 1)  # how many frames carry a bit
            self.next_bit = nn.Linear(dim, 2)  # the bit that would follow the sequence

    def forward(self, fmap: torch.Tensor) -> dict[str, torch.Tensor]:
        pooled = fmap.mean(dim=(2, 3))  # (B, D)
        out = {}
        if self.classify is not None:
            out["logits"] = self.classify(pooled)  # (B, closed classes)
        if self.read is not None:
            out["reading"] = self.read(fmap)  # (B, S, 27)
        if self.spec.has_patterns:
            out["bits"] = self.bits(pooled)  # (B, T)
            out["length"] = self.length(pooled)  # (B, T + 1)
            out["next_bit"] = self.next_bit(pooled)  # (B, 2)
        return out

    def restricted_logits(self, logits: torch.Tensor, category: torch.Tensor) -> torch.Tensor:
        """Class logits with every class outside the clip's category (B,) masked out."""
        inside = self.closed_category[None, :] == category[:, None]  # (B, closed classes)
        return logits.masked_fill(~inside, float("-inf"))

    def answers(self, out: dict[str, torch.Tensor], category: torch.Tensor) -> list[str]:
        """The text answer per clip: the word read for words, else the class name in its category;
        empty text for a category the model was not trained on (id NOT_TRAINED)."""
        names = [self.spec.classes[k] for k in self.spec.closed]
        # None, not an id, when there is no reading head: no category id can then select it
        words_id = self.spec.categories.index("words") if self.spec.reads_words else None
        read = decode_greedy(out["reading"]) if "reading" in out else None
        chosen = (self.restricted_logits(out["logits"], category).argmax(dim=-1).tolist()
                  if "logits" in out else None)
        texts = []
        for i, c in enumerate(category.tolist()):
            if c == NOT_TRAINED:
                texts.append("")
            elif c == words_id:
                texts.append(read[i])
            else:
                texts.append(names[chosen[i]])
        return texts
