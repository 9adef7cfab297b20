"""Early-temporal encoder: a 3-D convolution stem sees neighbouring frames before any spatial
pooling, so it can correlate a pixel with its displaced neighbour in the next frame (a learned
motion-energy detector, layers.MotionStem). The motion maps of a few temporal windows, in order,
are then read by a 2-D CNN.

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
from timeblind.models.layers import MAP_STRIDE, MotionStem, SpatialTrunk


class EarlyTemporalEncoder(nn.Module):
    def __init__(self, cfg: EarlyTemporalConfig):
        super().__init__()
        self.cfg = cfg
        self.stem = MotionStem(cfg.stem_channels, cfg.stem_kernel, cfg.windows, cfg.correlator_init, cfg.opponent)
        # The motion maps are noisy pixel by pixel: integrate them at full resolution before subsampling.
        # window_trunk: each window alone, shared weights, so its channels are that window's figure
        channels, dim = ((cfg.stem_channels, cfg.dim // cfg.windows) if cfg.window_trunk
                         else (self.stem.out_channels, cfg.dim))
        self.trunk = SpatialTrunk(channels, cfg.width, dim, cfg.full_resolution_stages, MAP_STRIDE)
        self.out_dim = cfg.dim

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        T = video.shape[1]  # video: (B, T, H, W)
        self.cfg.check_frames(T)
        x = video[:, None]  # (B, 1, T, H, W)
        if self.cfg.stem == "difference":
            x = x[:, :, 1:] - x[:, :, :-1]  # (B, 1, T-1, H, W): static content cancels
        motion = self.stem(x)  # (B, C*K, H, W): motion of K windows, in order
        if not self.cfg.window_trunk:
            return self.trunk(motion)  # (B, D, H/4, W/4)
        B, _, H, W = motion.shape
        K = self.cfg.windows
        per_window = motion.reshape(B, -1, K, H, W).transpose(1, 2).reshape(B * K, -1, H, W)  # (B*K, C, H, W)
        maps = self.trunk(per_window)  # (B*K, D/K, H/4, W/4)
        return maps.reshape(B, -1, *maps.shape[-2:])  # (B, D, H/4, W/4): windows in order
