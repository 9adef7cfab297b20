"""Torch views of a stored data set and the thin Lightning DataModule."""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from timeblind.data.dataset import StimulusConfig, StimulusDataset
from timeblind.tasks import TaskSpec, targets_for


def to_model_input(grey: torch.Tensor) -> torch.Tensor:
    """uint8 grey (..., T, H, W) -> float in [-1, 1]; mid-grey is 0."""
    return grey.float().div_(127.5).sub_(1.0)


def split_targets(data: StimulusDataset, tasks: TaskSpec) -> dict[str, np.ndarray]:
    """The targets of every clip of a stored split (tasks.targets_for)."""
    samples = data.samples
    lengths = samples["length"].to_numpy() if "length" in samples else None
    next_bits = samples["next_bit"].to_numpy() if "next_bit" in samples else None
    return targets_for(tasks, data.labels, data.pattern_bits, lengths, next_bits)


class ClipDataset(Dataset):
    """Clips as float tensors (T, H, W) in [-1, 1] with their targets (a dict of tensors).

    with_masks: also the clean figure mask (T, H, W) of each clip, redrawn from its layout
    (all zeros for pattern clips), for models trained to read masks."""

    def __init__(self, data_dir: str, split: str, with_masks: bool = False):
        self.data = StimulusDataset(data_dir, split)
        self.manifest = self.data.manifest
        self.split = split
        self.tasks = TaskSpec.from_manifest(self.manifest)
        self.targets = {k: torch.from_numpy(v) for k, v in split_targets(self.data, self.tasks).items()}
        self.stimulus = StimulusConfig.from_dict(self.manifest["config"]) if with_masks else None

    def __len__(self) -> int:
        return len(self.data)

    def mask(self, i: int) -> torch.Tensor:
        layout = self.stimulus.layout(self.manifest["seed"], self.split, i)
        T, H, W = self.manifest["frame_shape"]
        mask = np.zeros((T, H, W), bool) if layout.mask is None else np.broadcast_to(layout.mask, (T, H, W))
        return torch.from_numpy(np.ascontiguousarray(mask))

    def __getitem__(self, i: int):
        targets = {k: v[i] for k, v in self.targets.items()}
        if self.stimulus is not None:
            targets["mask"] = self.mask(i)
        return to_model_input(torch.from_numpy(self.data.clip(i))), targets


class ClipDataModule(L.LightningDataModule):
    def __init__(self, data_dir: str, batch_size: int = 64, num_workers: int = 0, train_masks: bool = False):
        super().__init__()
        self.data_dir, self.batch_size, self.num_workers = data_dir, batch_size, num_workers
        self.train_masks = train_masks

    def setup(self, stage: str | None = None):
        self.train_set = ClipDataset(self.data_dir, "train", with_masks=self.train_masks)
        self.val_set = ClipDataset(self.data_dir, "val")

    def _loader(self, dataset, shuffle: bool) -> DataLoader:
        return DataLoader(dataset, batch_size=self.batch_size, shuffle=shuffle,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def train_dataloader(self):
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self):
        return self._loader(self.val_set, shuffle=False)
