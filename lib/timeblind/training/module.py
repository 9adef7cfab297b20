"""The LightningModule: optimisation and metrics around a plain nn.Module, no layers of its own."""

from __future__ import annotations

import lightning as L
import torch
import torchmetrics
from torch import nn


class ClassifierModule(L.LightningModule):
    def __init__(self, net: nn.Module, num_classes: int, lr: float = 2e-3, weight_decay: float = 0.05,
                 max_steps: int = 1000, warmup_steps: int = 50):
        super().__init__()
        self.save_hyperparameters(ignore=["net"], logger=False)
        self.net = net
        self.loss = nn.CrossEntropyLoss()
        self.train_acc = torchmetrics.Accuracy(task="multiclass", num_classes=num_classes)
        self.val_acc = torchmetrics.Accuracy(task="multiclass", num_classes=num_classes)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.net(video)

    def _step(self, batch):
        video, target = batch
        logits = self(video)
        return self.loss(logits, target), logits.argmax(dim=-1), target

    def training_step(self, batch, batch_idx):
        loss, pred, target = self._step(batch)
        self.train_acc(pred, target)
        self.log("train/loss", loss, on_step=True, on_epoch=False)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True)
        return loss

    def on_train_start(self):
        self.val_acc.reset()  # the sanity check must not leak into the first epoch

    def validation_step(self, batch, batch_idx):
        loss, pred, target = self._step(batch)
        self.val_acc(pred, target)
        self.log("val/loss", loss, on_epoch=True, sync_dist=True)
        self.log("val/acc", self.val_acc, on_epoch=True)

    def configure_optimizers(self):
        hp = self.hparams
        optimizer = torch.optim.AdamW(self.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
        warmup = torch.optim.lr_scheduler.LinearLR(optimizer, 0.01, 1.0, total_iters=hp.warmup_steps)
        cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(1, hp.max_steps - hp.warmup_steps))
        schedule = torch.optim.lr_scheduler.SequentialLR(optimizer, [warmup, cosine], [hp.warmup_steps])
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
