"""Training batches as a pure function of the trainer's global step.

A resumed run then sees exactly the batches the killed one would have, without loader state in
the checkpoint, and N devices train on the same global batches as one: a DDP rank takes every
world-th clip of each global batch. Both are Lightning "stateful" iterables with nothing to
save: the position is the trainer's global step, read when an epoch starts.

Clips of different sizes (categories generated at their own frame size) never share a batch:
the clips are split into groups of one size, and the steps of an epoch interleave the groups'
batches in proportion to their sizes. A group of large clips may take fewer clips per batch
(group_sizes), so that a step costs about the same whatever its group.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import default_collate


def _epoch_seed(seed: int, epoch: int, group: int = 0) -> int:
    return int(np.random.SeedSequence([seed, epoch, group]).generate_state(1)[0])


def interleave(counts: Sequence[int]) -> list[int]:
    """A fixed order of sum(counts) slots in which group k appears counts[k] times, spread evenly:
    each slot goes to the group furthest behind its share (smooth weighted round robin)."""
    total, credit, order = sum(counts), [0] * len(counts), []
    for _ in range(total):
        credit = [c + n for c, n in zip(credit, counts)]
        k = max(range(len(counts)), key=lambda j: credit[j])
        credit[k] -= total
        order.append(k)
    return order


def words_step_shares(holds_words: Sequence[bool], clips: Sequence[int], words_share: float | None
                      ) -> list[float] | None:
    """Each frame-size group's share of the steps: `words_share` for the groups that hold words, the
    rest for the others, each split in proportion to the groups' clips. None (every group by its
    clips, StepBatches' default) without a words_share, or when every group or none holds words."""
    if words_share is None or all(holds_words) or not any(holds_words):
        return None
    words_clips = sum(n for n, w in zip(clips, holds_words) if w)
    other_clips = sum(n for n, w in zip(clips, holds_words) if not w)
    return [words_share * n / words_clips if w else (1 - words_share) * n / other_clips
            for n, w in zip(clips, holds_words)]


class StepBatches:
    """Batches of a stored split. groups: the clip indices of each frame size (default: one group
    of every clip). In epoch e each group is permuted (seeded by the training seed, e and the
    group) and cut into whole batches; step g of the run is slot g mod n of `interleave`'s order
    over those batches. Incomplete last batches are dropped, so every rank gets the same share.
    group_sizes: clips per batch of each group (default batch_size each); a group's share of the
    steps stays that of its clips, whatever its batch size, unless `shares` sets each group's share
    of the steps (a group given more steps than it has batches repeats its clips within an epoch)."""

    def __init__(self, dataset, batch_size: int, seed: int, global_step: Callable[[], int], rank: int = 0,
                 world: int = 1, groups: Sequence[Sequence[int]] | None = None,
                 group_sizes: Sequence[int] | None = None, shares: Sequence[float] | None = None):
        self.dataset, self.batch_size, self.seed = dataset, batch_size, seed
        self.global_step, self.rank, self.world = global_step, rank, world
        self.groups = [np.asarray(g, np.int64) for g in (groups if groups is not None else [range(len(dataset))])]
        self.group_sizes = list(group_sizes) if group_sizes is not None else [batch_size] * len(self.groups)
        if len(self.group_sizes) != len(self.groups) or min(self.group_sizes) < 1:
            raise ValueError(f"group_sizes={self.group_sizes}: expected a positive batch size for each of the "
                             f"{len(self.groups)} groups")
        counts = [len(g) // batch_size for g in self.groups]
        if sum(counts) == 0 or any(len(g) and c == 0 for g, c in zip(self.groups, counts)):
            small = min(len(g) for g in self.groups if len(g))
            raise ValueError(f"batch_size={batch_size} is larger than the {small} training clips of one frame size")
        self.batches = [len(g) // size for g, size in zip(self.groups, self.group_sizes)]  # distinct per epoch
        if shares is not None:
            if len(shares) != len(self.groups) or min(shares) <= 0:
                raise ValueError(f"shares={list(shares)}: expected a positive share for each of the "
                                 f"{len(self.groups)} groups")
            counts = [max(1, round(sum(counts) * share / sum(shares))) for share in shares]
        self.order = interleave(counts)
        self.per_epoch = len(self.order)

    def __len__(self) -> int:
        return self.per_epoch

    def _batch(self, epoch: int, slot: int) -> np.ndarray:
        k = self.order[slot]
        j = self.order[:slot].count(k) % self.batches[k]  # the j-th batch of group k this epoch
        generator = torch.Generator().manual_seed(_epoch_seed(self.seed, epoch, k))
        members = self.groups[k][torch.randperm(len(self.groups[k]), generator=generator).numpy()]
        size = self.group_sizes[k]
        return members[j * size:(j + 1) * size]

    def __iter__(self):
        # Lightning iterates once per epoch, and each batch is one optimiser step
        epoch, first = divmod(self.global_step(), self.per_epoch)
        for slot in range(first, self.per_epoch):
            share = self._batch(epoch, slot)[self.rank::self.world]
            yield default_collate([self.dataset[int(i)] for i in share])

    # Stateful for Lightning (no "not resumable" warning); the position is the trainer's global step.
    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class StepStream:
    """Batches of an endless sample stream: global batch g is samples g*B ... g*B+B-1, and a rank
    takes every world-th of them. samples(start) iterates the stream from sample `start` on."""

    def __init__(self, samples: Callable[[int], Iterator], batch_size: int, global_step: Callable[[], int],
                 rank: int = 0, world: int = 1):
        self.samples, self.batch_size = samples, batch_size
        self.global_step, self.rank, self.world = global_step, rank, world

    def __iter__(self):
        samples = self.samples(self.global_step() * self.batch_size)
        while True:
            batch = [next(samples) for _ in range(self.batch_size)]
            yield default_collate(batch[self.rank::self.world])

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass
