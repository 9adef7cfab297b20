"""Torch views of a stored data set. Lightning-free, so scoring a model does not load Lightning
(the DataModule that trains on these views is data/datamodule.py)."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from timeblind.core.tasks import TaskSpec, targets_for, to_model_input
from timeblind.data.dataset import StimulusDataset


def split_targets(data: StimulusDataset, tasks: TaskSpec) -> dict[str, np.ndarray]:
    """The targets of every clip of a stored split (tasks.targets_for)."""
    samples = data.samples
    lengths = samples["length"].to_numpy() if "length" in samples else None
    next_bits = samples["next_bit"].to_numpy() if "next_bit" in samples else None
    return targets_for(tasks, data.labels, data.pattern_bits, lengths, next_bits)


class ClipDataset(Dataset):
    """Clips as float tensors (T, H, W) in [-1, 1] with their targets (a dict of tensors).

    with_masks: also the clean figure mask (T, H, W) bool of each clip, where the stored figure share is
    at least one half (all False for pattern clips), for models trained to read masks."""

    def __init__(self, data_dir: str, split: str, with_masks: bool = False):
        self.data = StimulusDataset(data_dir, split)
        self.manifest = self.data.manifest
        self.split = split
        self.tasks = TaskSpec.from_manifest(self.manifest)
        self.targets = {k: torch.from_numpy(v) for k, v in split_targets(self.data, self.tasks).items()}
        self.with_masks = with_masks

    def __len__(self) -> int:
        return len(self.data)

    def mask(self, i: int) -> torch.Tensor:
        return torch.from_numpy(self.data.mask(i) >= 128)

    def __getitem__(self, i: int):
        targets = {k: v[i] for k, v in self.targets.items()}
        if self.with_masks:
            targets["mask"] = self.mask(i)
        return to_model_input(torch.from_numpy(self.data.clip(i))), targets
