"""Building blocks shared by the encoders."""

from __future__ import annotations

import torch
from torch import nn


class SpatialTrunk(nn.Module):
    """A small CNN: (N, C, H, W) -> feature map (N, dim, h, w). Three stages that each halve the
    resolution, then a 1x1 conv projection. The map keeps the layout (a reader can go left to
    right across the w columns); callers that want a position-free embedding take
    `.mean((2, 3))`, which equals the former pool-then-Linear since the projection is linear.

    The first `full_resolution_stages` stages convolve at full resolution and then max-pool; the
    rest use a strided conv, about 4x cheaper, which suits inputs that are not pixel noise.
    h, w are H/8, W/8 for sizes divisible by 8; otherwise a max-pool stage rounds down and a
    strided stage rounds up, so two trunks whose maps must align need the same stage choice."""

    def __init__(self, in_channels: int = 1, width: int = 32, dim: int = 128, full_resolution_stages: int = 3):
        super().__init__()

        def stage(c_in: int, c_out: int, full_resolution: bool = False) -> nn.Sequential:
            if full_resolution:  # convolve at full resolution, then max-pool: nothing is skipped
                return nn.Sequential(
                    nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.GELU(),
                    nn.Conv2d(c_out, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.GELU(), nn.MaxPool2d(2),
                )
            return nn.Sequential(
                nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.BatchNorm2d(c_out), nn.GELU(),
                nn.Conv2d(c_out, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.GELU(),
            )

        channels = [in_channels, width, 2 * width, 4 * width]
        self.stages = nn.Sequential(*[stage(channels[i], channels[i + 1], i < full_resolution_stages) for i in range(3)])
        self.proj = nn.Conv2d(4 * width, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(x)  # (N, 4w, H/8, W/8)
        return self.proj(x)  # (N, dim, H/8, W/8)


def sinusoidal_positions(length: int, dim: int, base: float = 10000.0) -> torch.Tensor:
    """(length, dim) sinusoidal position table (Vaswani et al.)."""
    position = torch.arange(length, dtype=torch.float32)[:, None]
    inv_freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-torch.log(torch.tensor(base)) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(position * inv_freq)
    table[:, 1::2] = torch.cos(position * inv_freq[: dim // 2])
    return table
