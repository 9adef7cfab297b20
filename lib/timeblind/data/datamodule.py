"""The thin Lightning DataModule that trains on a stored data set (torch_data's views)."""

from __future__ import annotations

import lightning as L
from torch.utils.data import DataLoader

from timeblind.data.samplers import StepBatches
from timeblind.data.torch_data import ClipDataset


class ClipDataModule(L.LightningDataModule):
    """Training batches drawn by the trainer's global step (StepBatches, ordered by the training
    seed, each DDP rank its share); validation batches as stored (Lightning shards them)."""

    def __init__(self, data_dir: str, batch_size: int = 64, seed: int = 0, train_masks: bool = False):
        super().__init__()
        self.data_dir, self.batch_size, self.seed, self.train_masks = data_dir, batch_size, seed, train_masks

    def setup(self, stage: str | None = None):
        self.train_set = ClipDataset(self.data_dir, "train", with_masks=self.train_masks)
        self.val_set = ClipDataset(self.data_dir, "val")

    def train_dataloader(self):
        t = self.trainer
        return StepBatches(self.train_set, self.batch_size, self.seed, lambda: t.global_step, t.global_rank,
                           t.world_size)

    def val_dataloader(self):
        return DataLoader(self.val_set, batch_size=self.batch_size, shuffle=False)
