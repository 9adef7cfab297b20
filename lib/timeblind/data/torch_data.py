"""Torch views of a stored data set. Lightning-free, so scoring a model does not load Lightning
(the DataModule that trains on these views is data/datamodule.py)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch
from torch.utils.data import Dataset

from timeblind.core.tasks import TaskSpec, clip_targets, to_model_input
from timeblind.data.dataset import StimulusDataset


class ClipDataset(Dataset):
    """Clips as float tensors (T, H, W) in [-1, 1] with their targets (core/tasks.clip_targets:
    class, category, soft figure mask, text lines, pattern targets), as a dict of tensors."""

    def __init__(self, data_dir: str, split: str):
        self.data = StimulusDataset(data_dir, split)
        self.manifest = self.data.manifest
        self.split = split
        self.tasks = TaskSpec.from_manifest(self.manifest)
        self.rows = self.data.samples.to_dict("records")
        self.bits = self.data.pattern_bits

    def __len__(self) -> int:
        return len(self.data)

    def targets(self, i: int) -> dict[str, torch.Tensor]:
        row = self.rows[i]
        pattern = row["category"] == "patterns"
        targets = clip_targets(self.tasks, row["category"], str(row["label"]), self.data.mask(i), row.get("glyphs", ""),
                               self.bits[i] if pattern and self.bits is not None else None,
                               int(row.get("length", -1)), int(row.get("next_bit", -1)))
        return {k: torch.as_tensor(v) for k, v in targets.items()}

    def __getitem__(self, i: int):
        return to_model_input(torch.from_numpy(self.data.clip(i))), self.targets(i)

    def size_groups(self) -> list[list[int]]:
        """The clip indices of each frame size: clips of different sizes never share a batch."""
        groups = defaultdict(list)
        for i, row in enumerate(self.rows):
            groups[tuple(self.manifest["frame_shapes"][row["category"]])].append(i)
        return [groups[shape] for shape in sorted(groups)]

    def group_batch_sizes(self, batch_size: int, smallest: int = 4) -> list[int]:
        """Clips per batch of each size group (size_groups' order): batch_size clips of the smallest
        frame size, and as many larger clips as hold about the same number of pixels (at least
        `smallest`), so a words step costs about what any other step costs."""
        shapes = sorted({tuple(self.manifest["frame_shapes"][row["category"]]) for row in self.rows})
        pixels = [int(np.prod(s)) for s in shapes]
        return [min(batch_size, max(smallest, round(batch_size * min(pixels) / p))) for p in pixels]


def size_batches(dataset: ClipDataset, batch_size: int) -> list[list[int]]:
    """Fixed batches of clips of one frame size, in index order within a size: batch_size clips of
    the smallest size, fewer of larger ones (group_batch_sizes), so memory stays about the same."""
    return [group[a:a + size] for group, size in zip(dataset.size_groups(), dataset.group_batch_sizes(batch_size))
            for a in range(0, len(group), size)]


def rank_batches(dataset: ClipDataset, batch_size: int, trainer=None) -> list[list[int]]:
    """size_batches, each rank of a DDP run its share of every batch (Lightning's samplers are off)."""
    rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
    return [share for share in (batch[rank::world] for batch in size_batches(dataset, batch_size)) if share]
