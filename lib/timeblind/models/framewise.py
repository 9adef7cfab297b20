"""Frame-wise, VLM-like encoder: every frame is encoded alone, time enters only afterwards.

This is the shape of today's video-language models: a per-frame vision tower whose
features are then attended over time. No pixel of one frame ever meets a pixel of another
before the trunk has convolved and strided each frame on its own, which is exactly what
SpookyBench punishes. The temporal transformer runs over the T frame tokens at each location of
the strided feature map (late fusion), so the output keeps its spatial layout.
"""

from __future__ import annotations

import torch
from torch import nn

from timeblind.models.config import FramewiseConfig
from timeblind.models.layers import MAP_STRIDE, SpatialTrunk, sinusoidal_positions, windowed_tokens


class FramewiseEncoder(nn.Module):
    def __init__(self, cfg: FramewiseConfig):
        super().__init__()
        self.cfg = cfg
        self.frame_encoder = SpatialTrunk(1, cfg.width, cfg.dim, cfg.full_resolution_stages, MAP_STRIDE)
        layer = nn.TransformerEncoderLayer(cfg.dim, cfg.heads, 2 * cfg.dim, dropout=0.0,
                                           batch_first=True, norm_first=True, activation="gelu")
        # 0 layers (allowed by the config schema): no temporal mixing; torch's encoder cannot run empty
        self.temporal = (nn.TransformerEncoder(layer, cfg.temporal_layers, enable_nested_tensor=False)
                         if cfg.temporal_layers else nn.Identity())
        self.register_buffer("positions", sinusoidal_positions(cfg.max_frames, cfg.dim), persistent=False)
        self.out_dim = cfg.windows * cfg.dim

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        B, T, H, W = video.shape
        self.cfg.check_frames(T)
        maps = self.frame_encoder(video.reshape(B * T, 1, H, W))  # (B*T, D, h, w): each frame alone
        _, D, h, w = maps.shape
        # one sequence of T frame tokens per map location
        tokens = maps.reshape(B, T, D, h * w).permute(0, 3, 1, 2).reshape(B * h * w, T, D)  # (B*h*w, T, D)
        tokens = self.temporal(tokens + self.positions[:T])  # (B*h*w, T, D)
        tokens = tokens.reshape(B, h, w, T, D).permute(0, 3, 4, 1, 2)  # (B, T, D, h, w)
        return windowed_tokens(tokens, self.cfg.windows)  # (B, K*D, h, w)
