"""Early-temporal encoder: a 3-D convolution stem sees neighbouring frames before any
spatial pooling, so it can correlate a pixel with its displaced neighbour in the next frame
(a learned motion-energy detector). The motion map is then read by a 2-D CNN."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from timeblind.models.layers import SpatialTrunk


@dataclass
class EarlyTemporalConfig:
    stem_channels: int = 16  # channels of the 3-D stem
    stem_kernel: int = 3  # spatio-temporal kernel size; must cover the speed: >= 2*speed+1
    width: int = 32  # first stage of the 2-D trunk
    dim: int = 128


class EarlyTemporalEncoder(nn.Module):
    def __init__(self, cfg: EarlyTemporalConfig):
        super().__init__()
        self.cfg = cfg
        k, c = cfg.stem_kernel, cfg.stem_channels
        self.stem = nn.Sequential(
            nn.Conv3d(1, c, (2, k, k), padding=(0, k // 2, k // 2)), nn.BatchNorm3d(c), nn.GELU(),
            nn.Conv3d(c, c, (1, k, k), padding=(0, k // 2, k // 2)), nn.BatchNorm3d(c), nn.GELU(),
        )
        # The motion map is noisy pixel by pixel: integrate it at full resolution before subsampling.
        self.trunk = SpatialTrunk(c, cfg.width, cfg.dim, full_resolution_stages=3)
        self.out_dim = cfg.dim

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        B, T, H, W = video.shape
        motion = self.stem(video[:, None])  # (B, C, T-1, H, W): one response per frame pair
        motion = motion.mean(dim=2)  # (B, C, H, W): average over time, after the motion is seen
        return self.trunk(motion)  # (B, D)
