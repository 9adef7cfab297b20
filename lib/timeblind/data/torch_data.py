"""Torch views of a stored data set and the thin Lightning DataModule."""

from __future__ import annotations

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from timeblind.data.dataset import StimulusDataset


def to_model_input(grey: torch.Tensor) -> torch.Tensor:
    """uint8 grey (..., T, H, W) -> float in [-1, 1]; mid-grey is 0."""
    return grey.float().div_(127.5).sub_(1.0)


class ClipDataset(Dataset):
    """Clips as float tensors (T, H, W) in [-1, 1], labels as int64."""

    def __init__(self, data_dir: str, split: str):
        self.data = StimulusDataset(data_dir, split)
        self.manifest = self.data.manifest
        self.labels = self.data.labels

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int):
        return to_model_input(torch.from_numpy(self.data.clip(i))), int(self.labels[i])


class ClipDataModule(L.LightningDataModule):
    def __init__(self, data_dir: str, batch_size: int = 64, num_workers: int = 0):
        super().__init__()
        self.data_dir, self.batch_size, self.num_workers = data_dir, batch_size, num_workers

    def setup(self, stage: str | None = None):
        self.train_set = ClipDataset(self.data_dir, "train")
        self.val_set = ClipDataset(self.data_dir, "val")

    def _loader(self, dataset, shuffle: bool) -> DataLoader:
        return DataLoader(dataset, batch_size=self.batch_size, shuffle=shuffle,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def train_dataloader(self):
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self):
        return self._loader(self.val_set, shuffle=False)
