"""Two-stream encoder after Grounded-VideoLLM (Wang et al., arXiv 2410.03290), small.

Grounded-VideoLLM cuts a clip into segments (12 of 8 frames) and encodes each segment twice: a
spatial stream reads the segment's key (middle) frame with an image encoder (CLIP ViT-L/14), and
a temporal stream reads all the segment's frames with a video encoder (InternVideo2-1B). The two
streams' tokens are concatenated per segment and the segments are handed to the LLM in order.

Kept here:
  * contiguous segments (torch.tensor_split over T, so lengths differ by at most one);
  * spatial stream: the middle frame of each segment (index len // 2, the paper's i*8+4) alone
    through a SpatialTrunk -> map;
  * temporal stream: all the segment's frames through a spatio-temporal stem (Conv3d, temporal
    kernel 2, at full resolution before any spatial pooling; early_temporal's stem,
    layers.MotionStem), averaged over the segment's frame pairs, then a SpatialTrunk -> map;
  * per-segment fusion of the two streams: their maps are concatenated along channels, and the
    segments are handed on in order (concatenated along channels), as the paper hands the LLM
    one token set per segment, in order.
Not kept:
  * pretrained, frozen encoders and their resolutions (336 px / 224 px): both streams are small
    CNNs trained from scratch on the same frames;
  * the MLP projectors, the LLM and its discrete temporal tokens;
  * token layout: the paper concatenates along the token axis ([spatial | temporal | newline])
    and keeps one token set per segment and, in the temporal stream, per frame (8 x 4x4 tokens).
    Here each segment's pair responses are averaged over time, one map per segment.

Why it can see motion: only the temporal stream can; each key frame of a SpookyBench clip is
noise, so the spatial stream alone is time-blind (a frame-wise baseline inside the model).
"""

from __future__ import annotations

import torch
from torch import nn

from timeblind.models.config import TwoStreamConfig
from timeblind.models.layers import MAP_STRIDE, MotionStem, SpatialTrunk


class TwoStreamEncoder(nn.Module):
    def __init__(self, cfg: TwoStreamConfig):
        super().__init__()
        self.cfg = cfg
        self.spatial = SpatialTrunk(1, cfg.width, cfg.dim, cfg.full_resolution_stages, MAP_STRIDE)
        self.stem = MotionStem(cfg.stem_channels, cfg.stem_kernel, 1, cfg.correlator_init, cfg.opponent)
        self.temporal = SpatialTrunk(self.stem.out_channels, cfg.width, cfg.dim, cfg.full_resolution_stages,
                                     MAP_STRIDE)
        self.out_dim = 2 * cfg.dim * cfg.segments

    def streams(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, H, W) -> spatial, temporal maps, each (B, S, dim, h, w), one per segment."""
        B, T, H, W = video.shape
        S = self.cfg.segments
        self.cfg.check_frames(T)
        segments = torch.tensor_split(video, S, dim=1)  # S x (B, L, H, W), L = T // S or T // S + 1
        keys = torch.stack([seg[:, seg.shape[1] // 2] for seg in segments], dim=1)  # (B, S, H, W)
        spatial = self.spatial(keys.reshape(B * S, 1, H, W))  # (B*S, D, h, w)
        # each segment alone through the stem: no frame pair straddles two segments
        motion = torch.stack([self.stem(seg[:, None]) for seg in segments], dim=1)  # (B, S, C, H, W)
        temporal = self.temporal(motion.flatten(0, 1))  # (B*S, D, h, w)
        return spatial.unflatten(0, (B, S)), temporal.unflatten(0, (B, S))

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        spatial, temporal = self.streams(video)  # (B, S, D, h, w) each
        tokens = torch.cat([spatial, temporal], dim=2)  # (B, S, 2D, h, w): both streams of each segment
        return tokens.flatten(1, 2)  # (B, S*2D, h, w): the segments in order
