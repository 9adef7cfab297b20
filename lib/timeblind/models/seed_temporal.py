"""Seed temporal encoder: the seed document's TemporalVideoEncoder, made runnable and fixed.

What it is. The seed describes a video encoder in four steps: (1) a "spatial encoder" giving
standard vision features per frame, projected by Linear(feature_dim, hidden); (2) a sinusoidal
position table (base 1000) added to the frame tokens; (3) a TransformerEncoder over time
(nhead=8, gelu, batch_first); (4) "temporal difference layers" Linear(2*hidden, hidden), each
applied to the pairs cat(x_t, x_{t+1}) (the last frame paired with itself) and blended into the
sequence as x = 0.7*x + 0.3*diff. Here the sequence is averaged within each of K temporal
windows, in order, so the encoder maps (B, T, H, W) -> (B, K * hidden_dim, 1, 1): the feature-map
interface of the other encoders in timeblind.models, with a 1x1 map because the seed pools each
frame to a vector first.

The seed's defects and how they are fixed:
  * The pairs were built with a Python loop over t. They are vectorised: the "next frame" is
    the sequence shifted by one with its last frame repeated, cat([x[:, 1:], x[:, -1:]], 1),
    which gives exactly the loop's pairs (the tests check it against a transcription of it).
  * The position table was a plain attribute, rebuilt for a fixed num_frames and moved to the
    device on every forward. It is a non-persistent buffer (moves with .to(), not saved in
    state_dict), built once for max_frames and sliced to the clip length, so any T up to
    max_frames works; a longer clip fails with an assertion that says so.
  * The seed read pretrained ViT features (B, T, 2048); timeblind has no pretrained ViT, so
    the per-frame features come from a SpatialTrunk applied to each frame alone (the seed's
    "standard vision features per frame"), followed by the seed's Linear(feature_dim, hidden).
  * Sizes are scaled down for CPU (hidden 128, feed-forward 256, features 128), and dropout is
    0 as in the frame-wise encoder, so the two differ only in architecture.

Caveat. Time enters only after each frame has been spatially pooled to a vector (late
fusion): no pixel of one frame meets a pixel of another before pooling, and the temporal
difference layers compare pooled frame embeddings, not pixels. On SpookyBench-style stimuli,
where every single frame is noise and the shape exists only in the correlation between frames,
this encoder is therefore expected to be as time-blind as the frame-wise encoder. That is a
prediction for the results to test, not something to assume.
"""

from __future__ import annotations

import torch
from torch import nn

from timeblind.models.config import SeedTemporalConfig
from timeblind.models.layers import SpatialTrunk, sinusoidal_positions, windowed_tokens


def next_frame_pairs(x: torch.Tensor) -> torch.Tensor:
    """(B, T, D) -> (B, T, 2D): cat(x_t, x_{t+1}) for every t, the last frame paired with itself."""
    following = torch.cat([x[:, 1:], x[:, -1:]], dim=1)  # (B, T, D)
    return torch.cat([x, following], dim=-1)  # (B, T, 2D)


class SeedTemporalEncoder(nn.Module):
    def __init__(self, cfg: SeedTemporalConfig):
        super().__init__()
        assert cfg.hidden_dim % cfg.heads == 0, f"hidden_dim {cfg.hidden_dim} is not divisible by heads {cfg.heads}"
        assert cfg.hidden_dim % 2 == 0, f"hidden_dim {cfg.hidden_dim} must be even for the sinusoidal table"
        self.cfg = cfg
        self.frame_encoder = SpatialTrunk(1, cfg.width, cfg.feature_dim, cfg.full_resolution_stages)
        self.spatial_encoder = nn.Linear(cfg.feature_dim, cfg.hidden_dim)  # the seed's Linear(2048, hidden)
        layer = nn.TransformerEncoderLayer(cfg.hidden_dim, cfg.heads, cfg.feedforward, dropout=0.0,
                                           batch_first=True, activation="gelu")
        # 0 layers (allowed by the config schema): no temporal mixing; torch's encoder cannot run empty
        self.temporal = (nn.TransformerEncoder(layer, cfg.temporal_layers, enable_nested_tensor=False)
                         if cfg.temporal_layers else nn.Identity())
        self.diff_layers = nn.ModuleList(nn.Linear(2 * cfg.hidden_dim, cfg.hidden_dim) for _ in range(cfg.diff_layers))
        table = sinusoidal_positions(cfg.max_frames, cfg.hidden_dim, cfg.position_base)
        self.register_buffer("positions", table, persistent=False)  # (max_frames, D)
        self.out_dim = cfg.windows * cfg.hidden_dim

    def temporal_differences(self, x: torch.Tensor) -> torch.Tensor:
        """The seed's temporal difference layers, vectorised: (B, T, D) -> (B, T, D)."""
        for layer in self.diff_layers:
            diff = layer(next_frame_pairs(x))  # (B, T, D)
            x = (1.0 - self.cfg.blend) * x + self.cfg.blend * diff  # (B, T, D)
        return x

    def sequence(self, video: torch.Tensor) -> torch.Tensor:
        """(B, T, H, W) -> (B, T, D): the seed's per-frame output, before pooling over time."""
        B, T, H, W = video.shape
        self.cfg.check_frames(T)
        maps = self.frame_encoder(video.reshape(B * T, 1, H, W))  # (B*T, F, h, w)
        features = maps.mean(dim=(2, 3)).reshape(B, T, -1)  # (B, T, F): the seed's per-frame vectors
        x = self.spatial_encoder(features)  # (B, T, D)
        if self.cfg.time_encoding:
            x = x + self.positions[:T]  # (B, T, D)
        x = self.temporal(x)  # (B, T, D)
        return self.temporal_differences(x)  # (B, T, D)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        # Late fusion into one vector: each frame was pooled before time entered, so there is
        # nothing spatial left to read; the map is 1x1 to fit the (B, D, h, w) interface.
        return windowed_tokens(self.sequence(video)[..., None, None], self.cfg.windows)  # (B, K*D, 1, 1)
