"""The thin Lightning DataModule that trains on a stored data set (torch_data's views)."""

from __future__ import annotations

import lightning as L
from torch.utils.data import DataLoader

from timeblind.data.samplers import StepBatches, words_step_shares
from timeblind.data.torch_data import ClipDataset, rank_batches


class ClipDataModule(L.LightningDataModule):
    """Training batches drawn by the trainer's global step (StepBatches, ordered by the training
    seed, each DDP rank its share, one frame size per batch); validation batches as stored
    (Lightning shards them)."""

    def __init__(self, data_dir: str, batch_size: int = 64, seed: int = 0, words_share: float | None = None):
        super().__init__()
        self.data_dir, self.batch_size, self.seed, self.words_share = data_dir, batch_size, seed, words_share

    def setup(self, stage: str | None = None):
        self.train_set = ClipDataset(self.data_dir, "train")
        self.val_set = ClipDataset(self.data_dir, "val")

    def train_dataloader(self):
        t, data = self.trainer, self.train_set
        groups = data.size_groups()
        shares = words_step_shares([data.rows[g[0]]["category"] == "words" for g in groups], [len(g) for g in groups],
                                   self.words_share)
        return StepBatches(data, self.batch_size, self.seed, lambda: t.global_step, t.global_rank, t.world_size,
                           groups=groups, group_sizes=data.group_batch_sizes(self.batch_size), shares=shares)

    def val_dataloader(self):
        return DataLoader(self.val_set, batch_sampler=rank_batches(self.val_set, self.batch_size, self.trainer))
