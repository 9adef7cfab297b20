"""Torch views of a stored data set and the thin Lightning DataModule."""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from timeblind.data.shapes import load_manifest, load_split, unpack


class PackedClips(Dataset):
    """Clips as float tensors (T, H, W) in {-1, +1}, labels as int64."""

    def __init__(self, data_dir: str, split: str):
        self.manifest = load_manifest(data_dir)
        self.width = self.manifest["frame_shape"][2]
        self.packed, self.labels = load_split(data_dir, split)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        clip = unpack(np.asarray(self.packed[i]), self.width)  # (T, H, W) bool
        return torch.from_numpy(clip).float().mul_(2).sub_(1), int(self.labels[i])


class ClipDataModule(L.LightningDataModule):
    def __init__(self, data_dir: str, batch_size: int = 64, num_workers: int = 0):
        super().__init__()
        self.data_dir, self.batch_size, self.num_workers = data_dir, batch_size, num_workers

    def setup(self, stage: str | None = None):
        self.train_set = PackedClips(self.data_dir, "train")
        self.val_set = PackedClips(self.data_dir, "val")

    def _loader(self, dataset, shuffle: bool) -> DataLoader:
        return DataLoader(dataset, batch_size=self.batch_size, shuffle=shuffle,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def train_dataloader(self):
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self):
        return self._loader(self.val_set, shuffle=False)
