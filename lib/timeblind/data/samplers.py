"""Training batches as a pure function of the trainer's global step.

A resumed run then sees exactly the batches the killed one would have, without loader state in
the checkpoint, and N devices train on the same global batches as one: a DDP rank takes every
world-th clip of each global batch. Both are Lightning "stateful" iterables with nothing to
save: the position is the trainer's global step, read when an epoch starts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch.utils.data import default_collate


def _epoch_seed(seed: int, epoch: int) -> int:
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


class StepBatches:
    """Batches of a stored split: batch g is slice g mod n of the permutation of epoch g // n
    (seeded by the training seed and the epoch). Incomplete last batches are dropped, so every
    rank gets the same share."""

    def __init__(self, dataset, batch_size: int, seed: int, global_step: Callable[[], int], rank: int = 0,
                 world: int = 1):
        self.dataset, self.batch_size, self.seed = dataset, batch_size, seed
        self.global_step, self.rank, self.world = global_step, rank, world
        self.per_epoch = len(dataset) // batch_size
        if self.per_epoch == 0:
            raise ValueError(f"batch_size={batch_size} is larger than the {len(dataset)} training clips")

    def __len__(self) -> int:
        return self.per_epoch

    def __iter__(self):
        # Lightning iterates once per epoch, and each batch is one optimiser step
        epoch, first = divmod(self.global_step(), self.per_epoch)
        generator = torch.Generator().manual_seed(_epoch_seed(self.seed, epoch))
        order = torch.randperm(len(self.dataset), generator=generator)
        for b in range(first, self.per_epoch):
            share = order[b * self.batch_size:(b + 1) * self.batch_size][self.rank::self.world]
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
