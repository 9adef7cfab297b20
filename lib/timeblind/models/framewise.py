"""Frame-wise, VLM-like encoder: every frame is encoded alone, time enters only afterwards.

This is the shape of today's video-language models: a per-frame vision tower whose
features are then attended over time. No pixel of one frame ever meets a pixel of another
before the trunk has convolved and strided each frame on its own, which is exactly what
SpookyBench punishes. The temporal transformer runs over the T frame tokens at each location of
the strided feature map (late fusion), so the output keeps its spatial layout. With `frame_token`,
each frame also gives one whole-frame token, the mean of its map (the role of a ViT's class
token): its sequence goes through the same transformer and joins the output as channels that are
the same at every location, so whatever a single frame shows as a whole can be followed in time.
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
        self.out_dim = (2 if cfg.frame_token else 1) * cfg.windows * cfg.dim

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        B, T, H, W = video.shape
        self.cfg.check_frames(T)
        maps = self.frame_encoder(video.reshape(B * T, 1, H, W))  # (B*T, D, h, w): each frame alone
        _, D, h, w = maps.shape
        # one sequence of T frame tokens per map location
        tokens = maps.reshape(B, T, D, h * w).permute(0, 3, 1, 2).reshape(B * h * w, T, D)  # (B*h*w, T, D)
        tokens = self.temporal(tokens + self.positions[:T])  # (B*h*w, T, D)
        tokens = tokens.reshape(B, h, w, T, D).permute(0, 3, 4, 1, 2)  # (B, T, D, h, w)
        out = windowed_tokens(tokens, self.cfg.windows)  # (B, K*D, h, w)
        if not self.cfg.frame_token:
            return out
        whole = maps.mean(dim=(2, 3)).reshape(B, T, D)  # (B, T, D): one token per frame
        # each channel standardised over the clip's frames: how a frame differs from the others
        # stands out, not the clip's overall look (which varies far more between clips)
        spread = whole.std(dim=1, keepdim=True, correction=0) + 1e-3  # (B, 1, D)
        whole = (whole - whole.mean(dim=1, keepdim=True)) / spread  # (B, T, D)
        whole = self.temporal(whole + self.positions[:T])  # (B, T, D)
        whole = windowed_tokens(whole[..., None, None], self.cfg.windows)  # (B, K*D, 1, 1)
        return torch.cat([out, whole.expand(-1, -1, h, w)], dim=1)  # (B, 2*K*D, h, w)
