"""Training the grounded decoder: the variants of the grounding table, the three progressive
stages (Grounded-VideoLLM), the losses (D2VLM) and fit_stage(), one stage of one variant.

Stages: align (what appears, text answers only), time (time tokens or evidence: what + when,
the time tokens' rows starting at the mean of the trained ones), instruct (all four question
kinds; preference optimisation for the FPO variants). The frame tokens come from a frozen encoder
in every stage; with no pretrained language model to keep, align trains the whole decoder.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from timeblind.data.questions import IGNORE, KINDS, QuestionSet
from timeblind.models.grounded_decoder import (GroundedDecoder, grounding_bce, grounding_logprob, token_logprob)
from timeblind.training.fit import HeadlessProgress, keeps_tracking_uri
from timeblind.training.module import warmup_cosine


@dataclass(frozen=True)
class Variant:
    """One row of the grounding table."""

    fmt: str  # coupled | factorised
    evidence_embedding: bool = False  # answer-phase <evi> carries its span's mean frame state
    consistency: bool = False  # L1 between evi_head of the two appearances of each event
    reject: tuple[str, ...] = ()  # FPO's perturbations of the rejected responses (instruct stage)


VARIANTS = {
    "coupled": Variant("coupled"),
    "factorised": Variant("factorised"),
    "evidence": Variant("factorised", evidence_embedding=True),
    "consistency": Variant("factorised", evidence_embedding=True, consistency=True),
    "fpo_grounding": Variant("factorised", True, True, ("grounding",)),
    "fpo_text": Variant("factorised", True, True, ("text",)),
    "fpo_both": Variant("factorised", True, True, ("grounding", "text", "both")),
}


@dataclass(frozen=True)
class Stage:
    kinds: tuple[str, ...]
    text_only: bool = False  # answers without time tokens or evidence
    preference: bool = False  # FPO, for the variants that have it


STAGES = {
    "align": Stage(("what",), text_only=True),
    "time": Stage(("what", "when")),
    "instruct": Stage(KINDS, preference=True),
}
GROUNDING_WEIGHT = CONSISTENCY_WEIGHT = 10.0  # D2VLM's weights of the BCE and L1 terms


def _gather(x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """x (B, L, d) at positions (B, E) -> (B, E, d)."""
    return x.gather(1, positions.clamp(min=0).unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def _pass(net: GroundedDecoder, batch: dict, variant: Variant, prefixes: tuple[str, ...] = ("",)):
    """One forward over the responses named by each prefix ("" chosen, "rejected_"), stacked along
    the batch in that order: (B * len(prefixes), ...) outputs and grounding scores."""
    def stacked(key: str) -> torch.Tensor:
        return torch.cat([batch[prefix + key] for prefix in prefixes])

    inject = variant.evidence_embedding and variant.fmt == "factorised"
    evidence = ((stacked(k) for k in ("answer_pos", "spans", "question_pos", "question_spans")) if inject
                else (None,) * 4)
    out = net(batch["frames"].repeat(len(prefixes), 1, 1), stacked("tokens"), *evidence)
    scores = net.scores(out, stacked("ground_pos")) if variant.fmt == "factorised" else None
    return out, scores


def grounding_losses(net: GroundedDecoder, batch: dict, variant: Variant, stage: Stage,
                     beta: float = 0.1) -> dict[str, torch.Tensor]:
    """LM cross-entropy; for factorised answers the grounding BCE (and consistency L1); for FPO
    -log sigma(beta (log p_chosen - log p_rejected)), log p = text + grounding log-likelihoods
    (D2VLM: no reference model)."""
    grounded = variant if not stage.text_only else Variant("coupled")
    keep = batch["has_rejected"] if stage.preference and variant.reject and "rejected_tokens" in batch else None
    prefer = keep is not None and bool(keep.any())
    out, scores = _pass(net, batch, grounded, ("", "rejected_") if prefer else ("",))
    if prefer:  # chosen and rejected went through the net together: split them again
        out, out_r = ({k: v.chunk(2)[half] for k, v in out.items()} for half in (0, 1))
        scores, scores_r = scores.chunk(2)
    losses = {"ce": F.cross_entropy(out["logits"].transpose(1, 2), batch["targets"], ignore_index=IGNORE)}
    if scores is not None:
        losses["grounding"] = GROUNDING_WEIGHT * grounding_bce(scores, batch["spans"])
        if variant.consistency:
            valid = batch["answer_pos"] >= 0
            if valid.any():
                g, a = _gather(out["evidence"], batch["ground_pos"]), _gather(out["evidence"], batch["answer_pos"])
                losses["consistency"] = CONSISTENCY_WEIGHT * F.l1_loss(g[valid], a[valid])
    if prefer:
        chosen = token_logprob(out["logits"], batch["targets"]) + grounding_logprob(scores, batch["spans"])
        rejected = (token_logprob(out_r["logits"], batch["rejected_targets"])
                    + grounding_logprob(scores_r, batch["rejected_spans"]))
        losses["fpo"] = -F.logsigmoid(beta * (chosen - rejected))[keep].mean()
    return losses


class GroundingModule(L.LightningModule):
    """Optimisation around a GroundedDecoder; the losses are grounding_losses()."""

    def __init__(self, net: GroundedDecoder, variant: str, stage: str, lr: float, weight_decay: float,
                 max_steps: int, warmup_steps: int = 30, beta: float = 0.1):
        super().__init__()
        self.save_hyperparameters(ignore=["net"], logger=False)
        self.net, self.variant, self.stage = net, VARIANTS[variant], STAGES[stage]

    def on_train_epoch_start(self):
        self.trainer.train_dataloader.dataset.set_epoch(self.current_epoch)  # fresh FPO rejects every epoch

    def training_step(self, batch, batch_idx):
        losses = grounding_losses(self.net, batch, self.variant, self.stage, self.hparams.beta)
        loss = sum(losses.values())
        self.log("train/loss", loss, on_step=True, on_epoch=False)
        self.log_dict({f"train/loss_{k}": v for k, v in losses.items()}, on_step=True, on_epoch=False)
        return loss

    def validation_step(self, batch, batch_idx):
        losses = grounding_losses(self.net, batch, self.variant, self.stage, self.hparams.beta)
        self.log("val/loss", sum(losses.values()), on_epoch=True, batch_size=len(batch["tokens"]))

    def configure_optimizers(self):
        hp = self.hparams
        return warmup_cosine(self.parameters(), hp.lr, hp.weight_decay, max(1, min(hp.warmup_steps, hp.max_steps // 4)),
                             hp.max_steps)


def fit_stage(net: GroundedDecoder, train: QuestionSet, val: QuestionSet, *, variant: str, stage: str, seed: int,
              max_steps: int, batch_size: int, lr: float, weight_decay: float, val_every: int, beta: float = 0.1,
              tracking=None, log=print) -> dict:
    """Train `net` in place for one stage; returns summary metrics. Deterministic on CPU."""
    from lightning.pytorch.loggers import MLFlowLogger

    L.seed_everything(seed, workers=True, verbose=False)
    module = GroundingModule(net.train(), variant, stage, lr, weight_decay, max_steps, beta=beta)
    logger = MLFlowLogger(tracking_uri=tracking.tracking_uri, run_id=tracking.run_id) if tracking else False
    on_gpu = torch.cuda.is_available()
    trainer = L.Trainer(max_steps=max_steps, accelerator="auto", devices=1, deterministic=not on_gpu,
                        precision="bf16-mixed" if on_gpu else "32-true",
                        val_check_interval=min(val_every, max_steps), check_val_every_n_epoch=None,
                        num_sanity_val_steps=0, logger=logger, log_every_n_steps=max(1, val_every // 4),
                        callbacks=[HeadlessProgress(log)], enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    generator = torch.Generator().manual_seed(seed)
    loaders = (DataLoader(train, batch_size=batch_size, shuffle=True, drop_last=len(train) > batch_size,
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


__all__ = ["Variant", "VARIANTS", "Stage", "STAGES", "grounding_losses", "GroundingModule", "fit_stage"]
