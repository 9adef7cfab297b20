"""Early-temporal encoder: a 3-D convolution stem sees neighbouring frames before any
spatial pooling, so it can correlate a pixel with its displaced neighbour in the next frame
(a learned motion-energy detector). The motion map is then read by a 2-D CNN.

Two stems:
  * "conv3d": the 3-D convolutions read the frames themselves (temporal kernel 2: frame pairs).
  * "difference": frame differences x[t+1] - x[t] are taken first, with no learned weights, and
    the same 3-D stem reads the difference frames. Static content cancels before any weight
    sees it. The stem still spans 2 difference frames (3 video frames): for i.i.d. noise one
    difference frame has the same statistics for either direction of motion, consecutive
    differences do not.
"""

from __future__ import annotations

import torch
from torch import nn

from timeblind.models.config import EarlyTemporalConfig
from timeblind.models.layers import SpatialTrunk


class FrameDifference(nn.Module):
    """(B, C, T, H, W) -> (B, C, T-1, H, W): x[t+1] - x[t]; no weights."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, 1:] - x[:, :, :-1]


class EarlyTemporalEncoder(nn.Module):
    def __init__(self, cfg: EarlyTemporalConfig):
        super().__init__()
        self.cfg = cfg
        k, c = cfg.stem_kernel, cfg.stem_channels
        difference = [FrameDifference()] if cfg.stem == "difference" else []
        self.stem = nn.Sequential(
            *difference,
            nn.Conv3d(1, c, (2, k, k), padding=(0, k // 2, k // 2)), nn.BatchNorm3d(c), nn.GELU(),
            nn.Conv3d(c, c, (1, k, k), padding=(0, k // 2, k // 2)), nn.BatchNorm3d(c), nn.GELU(),
        )
        # The motion map is noisy pixel by pixel: integrate it at full resolution before subsampling.
        self.trunk = SpatialTrunk(c, cfg.width, cfg.dim, full_resolution_stages=3)
        self.out_dim = cfg.dim

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        T = video.shape[1]  # video: (B, T, H, W)
        self.cfg.check_frames(T)
        motion = self.stem(video[:, None])  # (B, C, T', H, W): one response per frame pair (T' = T-1, or T-2)
        motion = motion.mean(dim=2)  # (B, C, H, W): average over time, after the motion is seen
        return self.trunk(motion)  # (B, D, H/8, W/8)
