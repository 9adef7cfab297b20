"""Training the grounded decoder, one progressive stage of one variant at a time (fit_stage).

Stages (config.STAGES, after Grounded-VideoLLM): align (what appears, text answers only), time
(time tokens or evidence: what + when, the time tokens' rows starting at the mean of the trained
ones), instruct (all four question kinds; preference optimisation for the FPO variants). The
frame tokens come from a frozen encoder in every stage; with no pretrained language model to
keep, align trains the whole decoder. The losses are losses.grounding_losses (D2VLM).
"""

from __future__ import annotations

import time

import lightning as L
import torch
from torch.utils.data import DataLoader

from timeblind.data.question_set import QuestionSet
from timeblind.models.grounded_decoder import GroundedDecoder
from timeblind.training.callbacks import HeadlessProgress, keeps_tracking_uri, quiet_lightning, run_logger
from timeblind.training.config import GroundingTrainConfig, Stage, Variant
from timeblind.training.losses import grounding_losses
from timeblind.training.module import warmup_cosine


class GroundingModule(L.LightningModule):
    """Optimisation around a GroundedDecoder for one stage of one variant."""

    def __init__(self, net: GroundedDecoder, cfg: GroundingTrainConfig, variant: Variant, stage: Stage,
                 warmup_steps: int = 30):
        super().__init__()
        self.net, self.cfg, self.variant, self.stage = net, cfg, variant, stage
        self.warmup_steps = max(1, min(warmup_steps, cfg.max_steps // 4))

    def on_train_epoch_start(self):
        self.trainer.train_dataloader.dataset.set_epoch(self.current_epoch)  # fresh FPO rejects every epoch

    def training_step(self, batch, batch_idx):
        losses = grounding_losses(self.net, batch, self.variant, self.stage, self.cfg.beta)
        loss = sum(losses.values())
        self.log("train/loss", loss, on_step=True, on_epoch=False)
        self.log_dict({f"train/loss_{k}": v for k, v in losses.items()}, on_step=True, on_epoch=False)
        return loss

    def validation_step(self, batch, batch_idx):
        losses = grounding_losses(self.net, batch, self.variant, self.stage, self.cfg.beta)
        self.log("val/loss", sum(losses.values()), on_epoch=True, batch_size=len(batch["tokens"]))

    def configure_optimizers(self):
        return warmup_cosine(self.parameters(), self.cfg.lr, self.cfg.weight_decay, self.warmup_steps,
                             self.cfg.max_steps)


def fit_stage(net: GroundedDecoder, train: QuestionSet, val: QuestionSet, cfg: GroundingTrainConfig, *,
              variant: Variant, stage: Stage, seed: int, tracking=None, log=print) -> dict:
    """Train `net` in place for one stage; returns summary metrics. Deterministic on CPU.
    tracking: the step's MLflow run (anything with tracking_uri and run_id), or None."""
    L.seed_everything(seed, workers=True, verbose=False)
    module = GroundingModule(net.train(), cfg, variant, stage)
    on_gpu = torch.cuda.is_available()
    quiet_lightning()
    trainer = L.Trainer(max_steps=cfg.max_steps, accelerator="auto", devices=1, deterministic=not on_gpu,
                        precision="bf16-mixed" if on_gpu else "32-true",
                        val_check_interval=min(cfg.val_every, cfg.max_steps), check_val_every_n_epoch=None,
                        num_sanity_val_steps=0, logger=run_logger(tracking),
                        log_every_n_steps=max(1, cfg.val_every // 4),
                        callbacks=[HeadlessProgress(log)], enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    generator = torch.Generator().manual_seed(seed)
    loaders = (DataLoader(train, batch_size=cfg.batch_size, shuffle=True, drop_last=len(train) > cfg.batch_size,
                          generator=generator),
               DataLoader(val, batch_size=256))
    start = time.perf_counter()
    with keeps_tracking_uri():
        trainer.fit(module, *loaders)
    seconds = time.perf_counter() - start
    net.eval()
    return {"train_seconds": seconds, "seconds_per_step": seconds / max(1, trainer.global_step),
            "final_val_loss": float(trainer.callback_metrics["val/loss"]),
            "final_train_loss": float(trainer.callback_metrics["train/loss"])}
