"""The LightningModule: optimisation and metrics around a plain nn.Module, no layers of its own."""

from __future__ import annotations

import lightning as L
import torch
import torchmetrics

from timeblind.core.tasks import IGNORE, true_texts
from timeblind.models.registry import VideoModel
from timeblind.training.augment import augment
from timeblind.training.config import TrainConfig
from timeblind.training.losses import objective, task_losses


def answers_correct(net: VideoModel, out: dict[str, torch.Tensor], targets: dict[str, torch.Tensor],
                    read_words: bool = True) -> torch.Tensor:
    """(B,) bool: the class (within the clip's category) is right or, with read_words, the text read
    is the clip's text (its lines found on the recovered figure, as in an answer)."""
    correct = torch.zeros_like(targets["label"], dtype=torch.bool)
    closed = targets["label"] != IGNORE
    if "logits" in out and closed.any():
        logits = net.heads.restricted_logits(out["logits"][closed], targets["category"][closed])
        correct[closed] = logits.argmax(dim=-1) == targets["label"][closed]
    words = targets["line_length"].sum(dim=1) > 0
    if read_words and net.heads.lines is not None and words.any():
        read = net.heads.read(out["figure"][words])
        truth = [t for t, w in zip(true_texts(targets), words.tolist()) if w]
        correct[words] = torch.tensor([r == t for r, t in zip(read, truth)], device=correct.device)
    return correct


class VideoTaskModule(L.LightningModule):
    """Trains a VideoModel on every task of its data set at once (losses.objective: each task's
    mean loss by its share of the batch's clips, times its group's weight).

    cfg: the optimiser, its schedule, the loss weights and the seed's augmentations
    (training/augment.py), drawn from a generator seeded with `seed` on the training device;
    validation clips are never augmented."""

    def __init__(self, net: VideoModel, cfg: TrainConfig, seed: int = 0, warmup_steps: int = 50,
                 frozen: tuple[str, ...] = ()):
        super().__init__()
        self.net, self.cfg, self.seed, self.warmup_steps = net, cfg, seed, warmup_steps
        self.frozen = [getattr(net.heads, name) for name in frozen]  # heads' parts kept as they are (the reader)
        for part in self.frozen:
            part.requires_grad_(False)
        self.augment, self.loss_weights = cfg.augmentations, cfg.loss_weights
        self.generator = None
        self.train_acc = torchmetrics.MeanMetric()
        self.val_acc = torchmetrics.MeanMetric()
        self.clips_seen = 0  # training clips so far (batches of large clips hold fewer), checkpointed
        self.learning_curve: list[dict] = []  # per validation: step, clips seen, accuracy per category
        self._val_correct: list[tuple[torch.Tensor, torch.Tensor]] = []

    def forward(self, video: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.net(video)

    def _step(self, batch, augmented: bool = False, read_words: bool = True):
        video, targets = batch
        if augmented and self.augment.enabled:
            video = augment(video, self.augment, self.generator)
        out = self.net(video)
        losses = task_losses(self.net.heads, out, targets, self.cfg.figure_change_weight)
        loss = objective(losses, targets, self.loss_weights)
        return loss, losses, answers_correct(self.net, out, targets, read_words)

    def training_step(self, batch, batch_idx):
        loss, losses, correct = self._step(batch, augmented=True, read_words=False)  # reading is scored in validation
        classed = batch[1]["label"] != IGNORE
        if classed.any():
            self.train_acc(correct[classed].float())
        self.clips_seen += len(correct) * self.trainer.world_size
        self.log("train/loss", loss, on_step=True, on_epoch=False)
        self.log_dict({f"train/loss_{task}": value for task, value in losses.items()}, on_step=True, on_epoch=False)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True)
        return loss

    def on_train_batch_start(self, batch, batch_idx):
        for part in self.frozen:  # Lightning puts the whole model in training mode; batch norms stay put
            part.eval()

    def on_train_start(self):
        self.val_acc.reset()  # the sanity check must not leak into the first epoch
        self.generator = torch.Generator(device=self.device).manual_seed(self.seed)

    def validation_step(self, batch, batch_idx):
        loss, _, correct = self._step(batch)
        self.val_acc(correct.float())
        self._val_correct.append((batch[1]["category"].cpu(), correct.cpu()))
        self.log("val/loss", loss, on_epoch=True, sync_dist=True, batch_size=len(correct))
        self.log("val/acc", self.val_acc, on_epoch=True)

    def on_validation_epoch_end(self):
        """One point of the learning curve: validation accuracy per category against clips seen
        (on rank 0's share of the validation clips under DDP)."""
        if not self._val_correct:
            return
        category, correct = (torch.cat(parts) for parts in zip(*self._val_correct))
        self._val_correct = []
        point = {"step": self.global_step, "clips_seen": self.clips_seen}
        for k, name in enumerate(self.net.heads.spec.categories):
            chosen = category == k
            if chosen.any():
                point[name] = correct[chosen].float().mean().item()
                self.log(f"val/acc_{name}", point[name], on_epoch=True, rank_zero_only=True)
        self.log("val/clips_seen", float(self.clips_seen), on_epoch=True, rank_zero_only=True)
        if not self.trainer.sanity_checking:
            self.learning_curve.append(point)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["clips_seen"], checkpoint["learning_curve"] = self.clips_seen, self.learning_curve

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.clips_seen = checkpoint.get("clips_seen", 0)
        self.learning_curve = list(checkpoint.get("learning_curve", []))

    def configure_optimizers(self):
        return warmup_cosine(self.parameters(), self.cfg.lr, self.cfg.weight_decay, self.warmup_steps,
                             self.cfg.max_steps)


def warmup_cosine(parameters, lr: float, weight_decay: float, warmup_steps: int, max_steps: int) -> dict:
    """AdamW with a linear warm-up and a cosine decay, stepped every optimiser step."""
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay)
    warmup = torch.optim.lr_scheduler.LinearLR(optimizer, 0.01, 1.0, total_iters=warmup_steps)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(1, max_steps - warmup_steps))
    schedule = torch.optim.lr_scheduler.SequentialLR(optimizer, [warmup, cosine], [warmup_steps])
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
