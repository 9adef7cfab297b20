"""Where a STAVE model loses the figure: how well each stage's output tells figure from ground.

A trained STAVE model (models/stave.py) runs on test clips, and at every stage the patch tokens
are labelled figure or ground by the true mask (a patch mostly inside the figure, or almost not
at all; patches on the outline are left out). The stages, in the order the signal passes them:

  input       the pixels' motion energy per patch (the fixed motion-energy front end,
              models/motion_energy.py): the signal that is there to find;
  stem        the stem's tokens, frame by frame (each frame alone is noise: the floor);
  stem pairs  the product of each token with the same patch's token in the next frame, averaged
              over time: what a dot product between neighbouring frames, as attention scores
              take, could pick up from the stem;
  attention k the temporal attention scores of block k (every head, every frame pair);
  block k     block k's output tokens, averaged per temporal window;
  pooled      the encoder's output map (tokens per window after the final norm), what the
              figure head reads;
  figure      the figure the model recovered, averaged per patch.

The score of a stage is the ROC AUC of a linear probe (logistic regression) telling figure from
ground tokens, fitted on half the clips and scored on the other half. It reads each feature's
squared deviation from the clip's median token: the ground covers most of the frame, so its
tokens sit near the median, and the figure's and the ground's motion change sign from clip to
clip, so a feature positive on the figure in one clip is negative there in the next. 0.5 is
chance; the stage where the score falls to it is where the signal is lost.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from timeblind.core.tasks import to_model_input, window_means
from timeblind.models.config import MotionEnergyConfig
from timeblind.models.motion_energy import MotionEnergyEncoder
from timeblind.models.stave import StaveEncoder, apply_rotary

FIGURE, GROUND = 0.6, 0.1  # a patch's figure share at or above which it is figure, at or below which ground


def probe_auc(features: torch.Tensor, labels: torch.Tensor) -> float:
    """ROC AUC of a linear probe telling figure (1) from ground (0) tokens (-1: left out), fitted on
    the even clips and scored on the odd ones. features (B, N, F), labels (B, N). The probe reads
    each feature's squared deviation from its clip's median token: which features are unusual
    there, not in which direction, as the direction of motion flips from clip to clip."""
    deviation = (features - features.median(dim=1, keepdim=True).values).square()  # (B, N, F)
    fit, score = slice(0, None, 2), slice(1, None, 2)
    x_fit, y_fit = deviation[fit][labels[fit] >= 0].numpy(), labels[fit][labels[fit] >= 0].numpy()
    x_score, y_score = deviation[score][labels[score] >= 0].numpy(), labels[score][labels[score] >= 0].numpy()
    if len(set(y_fit)) < 2 or len(set(y_score)) < 2:
        return float("nan")
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=500))
    probe.fit(x_fit, y_fit)
    return float(roc_auc_score(y_score, probe.decision_function(x_score)))


def patch_labels(masks: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Figure masks (B, T, H, W) in [0, 1] -> (B, N) labels on the patch grid: 1 figure, 0 ground, -1 mixed."""
    share = F.adaptive_avg_pool2d(masks.mean(dim=1, keepdim=True), grid).flatten(1)  # (B, N)
    return torch.where(share >= FIGURE, 1, torch.where(share <= GROUND, 0, -1))


def on_grid(maps: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Maps (B, C, H, W) -> patch features (B, N, C), averaged over each patch."""
    return F.adaptive_avg_pool2d(maps, grid).flatten(2).transpose(1, 2)


@torch.no_grad()
def stage_features(model, video: torch.Tensor) -> tuple[dict[str, torch.Tensor], tuple[int, int]]:
    """Each stage's patch features (B, N, F) of a STAVE VideoModel on clips (B, T, H, W) in [-1, 1],
    in the order the signal passes them, and the patch grid."""
    encoder: StaveEncoder = model.encoder
    captured, hooks = {}, []
    hooks.append(encoder.patch_embed.register_forward_hook(lambda m, i, o: captured.__setitem__("stem", o)))
    for k, block in enumerate(encoder.blocks):
        hooks.append(block.register_forward_hook(lambda m, i, o, k=k: captured.__setitem__(f"block {k + 1}", o)))
        if block.temporal is not None:
            hooks.append(block.temporal.attn.qkv.register_forward_hook(
                lambda m, i, o, k=k: captured.__setitem__(f"attention {k + 1}", o)))
    try:
        out = model(video)
    finally:
        for hook in hooks:
            hook.remove()
    stem = captured.pop("stem")  # (B, D, T', gh, gw)
    B, D, T, gh, gw = stem.shape
    grid, N = (gh, gw), gh * gw
    front = MotionEnergyEncoder(MotionEnergyConfig()).front_end(video)  # (B, K, H, W)
    tokens = stem.flatten(3).permute(0, 3, 2, 1)  # (B, N, T', D)
    stages = {"input": on_grid(front, grid),
              "stem": tokens.flatten(2),  # every frame's token, side by side
              "stem pairs": (tokens[:, :, 1:] * tokens[:, :, :-1]).mean(dim=2)}
    windows = encoder.cfg.windows
    for k, block in enumerate(encoder.blocks):
        if f"attention {k + 1}" in captured:
            stages[f"attention {k + 1}"] = attention_scores(block.temporal.attn, captured[f"attention {k + 1}"], encoder,
                                                            T).reshape(B, N, -1)
        x = captured[f"block {k + 1}"]  # (B, T', N, D)
        stages[f"block {k + 1}"] = _windows(x, windows)
    stages["pooled"] = on_grid(encoder(video), grid)
    stages["figure"] = on_grid(out["figure"], grid)
    return stages, grid


def attention_scores(attn, qkv: torch.Tensor, encoder: StaveEncoder, T: int) -> torch.Tensor:
    """The softmax scores (S, heads * T * T) of a temporal attention from its qkv output (S, T, 3 * inner)."""
    S = qkv.shape[0]
    q, k, _ = qkv.reshape(S, T, 3, attn.heads, attn.head_dim).permute(2, 0, 3, 1, 4)  # (S, h, T, hd) each
    rope = encoder.rope_cos[:T], encoder.rope_sin[:T]
    q, k = apply_rotary(q, *rope), apply_rotary(k, *rope)
    return (q @ k.transpose(-1, -2) / attn.head_dim ** 0.5).softmax(dim=-1).flatten(1)  # (S, h*T*T)


def _windows(x: torch.Tensor, windows: int) -> torch.Tensor:
    """Tokens (B, T, N, D) -> (B, N, windows * D): the mean of each stretch of frames, in order."""
    return window_means(x, windows, dim=1).permute(0, 2, 1, 3).flatten(2)  # (B, N, K*D)


def probe_stave(model, clips: np.ndarray, masks: np.ndarray, batch_size: int = 16) -> pd.DataFrame:
    """Figure-vs-ground separability of every stage of a STAVE model on clips (B, T, H, W) uint8 with
    their soft masks (B, T, H, W) uint8: one row per stage, in order, with its probe's AUC."""
    if not isinstance(model.encoder, StaveEncoder):
        raise ValueError(f"the STAVE probe needs a STAVE model; got {type(model.encoder).__name__}")
    if len(clips) < 4:
        raise ValueError(f"{len(clips)} clips: the probe fits on half the clips and scores on the other half; "
                         "expected at least 4")
    model.eval()
    features: dict[str, list[torch.Tensor]] = {}
    labels = []
    for a in range(0, len(clips), batch_size):
        video = to_model_input(torch.from_numpy(clips[a:a + batch_size]))
        stages, grid = stage_features(model, video)
        labels.append(patch_labels(torch.from_numpy(masks[a:a + batch_size]).float() / 255, grid))
        for name, f in stages.items():
            features.setdefault(name, []).append(f)
    labels = torch.cat(labels)
    return pd.DataFrame([{"stage": name, "order": k, "auc": probe_auc(torch.cat(f), labels), "clips": len(clips)}
                         for k, (name, f) in enumerate(features.items())])
