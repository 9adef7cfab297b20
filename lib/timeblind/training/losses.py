"""The training losses: the video model's objective over its tasks, and the grounded decoder's
(D2VLM's grounding, consistency and factorised preference terms)."""

from __future__ import annotations

from collections import Counter

import torch
import torch.nn.functional as F

from timeblind.core.tasks import IGNORE, true_bands, window_means
from timeblind.models.grounded_decoder import GroundedDecoder
from timeblind.models.heads import TaskHeads
from timeblind.training.config import Stage, Variant


# -- the video model ------------------------------------------------------------------------

TASK_GROUPS = {"figure": "figure", "class": "class", "reading": "reading", "bits": "patterns", "length": "patterns",
               "next_bit": "patterns"}
TASKS_PER_GROUP = Counter(TASK_GROUPS.values())  # losses a clip of the group carries
CTC_WEIGHT = 0.5  # reading: the per-column loss, plus CTC on the line's text for lines the columns miss


def objective(losses: dict[str, torch.Tensor], targets: dict[str, torch.Tensor],
              weights: dict[str, float]) -> torch.Tensor:
    """The training loss: each task's mean loss (task_losses) weighted by the share of the batch's
    clips that carry it, then by its group's weight (figure, class, reading, patterns: TrainConfig's
    loss_weights). The three pattern-sequence tasks split their clips' share.

    Why shares: a plain sum of task means gives a task the same weight whatever its number of
    clips, so the words and the patterns (three losses) would outweigh the clips with a class."""
    carried = {"figure": torch.ones_like(targets["category"], dtype=torch.bool), "class": targets["label"] != IGNORE,
               "reading": targets["line_length"].sum(dim=1) > 0, "patterns": targets["length"] != IGNORE}
    total = 0.0
    for task, loss in losses.items():
        group = TASK_GROUPS[task]
        share = carried[group].float().mean()
        total = total + weights[group] * share / TASKS_PER_GROUP[group] * loss
    return total


def figure_loss(logits: torch.Tensor, masks: torch.Tensor, change_weight: float = 0.0) -> torch.Tensor:
    """Per-pixel BCE between figure logits (B, K, H, W) and the true soft masks (B, T, H, W) uint8,
    averaged over the K temporal windows as the figure head predicts them.

    change_weight: pixels the figure covers in some windows and not others (a moving, turning or
    growing figure's path) weigh 1 + change_weight times their change, each clip's weights rescaled to
    mean 1. Without it the windows' shared mask dominates the loss of a slow figure, and an encoder that
    predicts one static mask for every window loses little while the motion class becomes unreadable."""
    target = window_means(masks.float() / 255, logits.shape[1])
    if not change_weight:
        return F.binary_cross_entropy_with_logits(logits, target)
    change = target.amax(dim=1, keepdim=True) - target.amin(dim=1, keepdim=True)  # (B, 1, H, W)
    weight = 1 + change_weight * change
    weight = weight / weight.mean(dim=(1, 2, 3), keepdim=True)  # each clip keeps its share of the loss
    return F.binary_cross_entropy_with_logits(logits, target, weight=weight)  # (B, 1, H, W) broadcasts over K


def reading_loss(heads: TaskHeads, figure: torch.Tensor, targets: dict[str, torch.Tensor]) -> torch.Tensor | None:
    """Read the true text lines of the recovered figures: per-column cross-entropy against the
    glyph labels, plus CTC on each line's text. None when the batch has no text line."""
    bands = true_bands(targets)
    if not any(bands):
        return None
    log_probs, owners = heads.read_lines(figure, bands)  # (L, COLUMNS, classes)
    present = targets["line_length"] > 0  # (B, MAX_LINES): lines in the order read_lines returns them
    labels, text, lengths = targets["line_labels"][present], targets["line_text"][present], targets["line_length"][present]
    columns = F.nll_loss(log_probs.flatten(0, 1), labels.flatten(), ignore_index=IGNORE)
    steps = torch.full((len(log_probs),), log_probs.shape[1], dtype=torch.long)
    ctc = F.ctc_loss(log_probs.transpose(0, 1), text, steps, lengths, zero_infinity=True)
    return columns + CTC_WEIGHT * ctc


def task_losses(heads: TaskHeads, out: dict[str, torch.Tensor], targets: dict[str, torch.Tensor],
                change_weight: float = 0.0) -> dict:
    """The loss of each task over the clips that carry it (a task no clip of the batch carries is
    left out, so the sum is always defined); change_weight as in figure_loss."""
    losses = {"figure": figure_loss(out["figure_logits"], targets["mask"], change_weight)}
    closed = targets["label"] != IGNORE
    if "logits" in out and closed.any():
        logits = heads.restricted_logits(out["logits"][closed], targets["category"][closed])
        losses["class"] = F.cross_entropy(logits, targets["label"][closed])
    if heads.lines is not None:
        reading = reading_loss(heads, out["figure"], targets)
        if reading is not None:
            losses["reading"] = reading
    if "bits" in out:
        is_pattern = targets["length"] != IGNORE
        if is_pattern.any():
            bits = targets["bits"][is_pattern]
            carried = bits >= 0
            losses["bits"] = F.binary_cross_entropy_with_logits(out["bits"][is_pattern][carried],
                                                                bits[carried].float())
            losses["length"] = F.cross_entropy(out["length"][is_pattern], targets["length"][is_pattern])
            losses["next_bit"] = F.cross_entropy(out["next_bit"][is_pattern], targets["next_bit"][is_pattern])
    return losses


# -- the grounded decoder -------------------------------------------------------------------

def soft_targets(spans: torch.Tensor, S: int, alpha: float = 2.0) -> torch.Tensor:
    """D2VLM's grounding target (B, E, S): 1 inside the span, alpha^-distance outside."""
    j = torch.arange(S, device=spans.device)
    start, end = spans[..., :1], spans[..., 1:]
    distance = (start - j).clamp(min=0) + (j - end).clamp(min=0)
    return alpha ** (-distance.float())


def token_logprob(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Summed log-likelihood of the target tokens per sequence (B,)."""
    logp = -F.cross_entropy(logits.transpose(1, 2), targets.clamp(min=0), reduction="none")  # (B, L)
    return (logp * (targets != IGNORE)).sum(-1)


def grounding_logprob(scores: torch.Tensor, spans: torch.Tensor) -> torch.Tensor:
    """D2VLM's grounding log-likelihood per sequence (B,): sum over events and frame tokens of
    log[y sigma(s) + (1 - y)(1 - sigma(s))] with y the soft target of the span."""
    y = soft_targets(spans, scores.shape[-1])
    p = torch.sigmoid(scores)
    ll = torch.log((y * p + (1 - y) * (1 - p)).clamp(min=1e-6))
    return (ll * (spans[..., :1] >= 0)).sum((1, 2))


def grounding_bce(scores: torch.Tensor, spans: torch.Tensor) -> torch.Tensor:
    """Mean BCE between grounding scores and soft targets over the real events."""
    valid = (spans[..., 0] >= 0)  # (B, E)
    if not valid.any():
        return scores.sum() * 0.0
    y = soft_targets(spans, scores.shape[-1])
    return F.binary_cross_entropy_with_logits(scores[valid], y[valid])


GROUNDING_WEIGHT = CONSISTENCY_WEIGHT = 10.0  # D2VLM's weights of the BCE and L1 terms
TEXT_ONLY = Variant("coupled")  # how an align stage answers, whatever the variant


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
    grounded = variant if not stage.text_only else TEXT_ONLY
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
