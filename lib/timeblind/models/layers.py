"""Building blocks shared by the encoders."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from timeblind.core.tasks import window_means

MAP_STRIDE = 4  # every encoder's feature map has one cell per 4 x 4 px: fine enough to spell the figure out


def box_mean(x: torch.Tensor, size: int) -> torch.Tensor:
    """Box mean over the last two axes, edges replicated (scipy uniform_filter, mode='nearest')."""
    if size == 1:
        return x
    lo, hi = size // 2, size - 1 - size // 2
    return F.avg_pool2d(F.pad(x, (lo, hi, lo, hi), mode="replicate"), size, stride=1)


class SpatialTrunk(nn.Module):
    """A small CNN: (N, C, H, W) -> feature map (N, dim, H / stride, W / stride). Three stages,
    the first log2(stride) of which halve the resolution, then a 1x1 conv projection. The map
    keeps the layout; callers that want a position-free embedding take `.mean((2, 3))`.

    The first `full_resolution_stages` stages convolve at full resolution and then max-pool; the
    rest use a strided conv, about 4x cheaper, which suits inputs that are not pixel noise. Sizes
    that do not divide: a max-pool stage rounds down and a strided stage rounds up, so two trunks
    whose maps must align need the same stage choice."""

    def __init__(self, in_channels: int = 1, width: int = 32, dim: int = 128, full_resolution_stages: int = 3,
                 stride: int = 8):
        super().__init__()
        if stride not in (2, 4, 8):
            raise ValueError(f"stride={stride}: expected 2, 4 or 8")
        halvings = stride.bit_length() - 1

        def stage(c_in: int, c_out: int, full_resolution: bool, halve: bool) -> nn.Sequential:
            if full_resolution or not halve:  # convolve at full resolution, then max-pool: nothing is skipped
                return nn.Sequential(
                    nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.GELU(),
                    nn.Conv2d(c_out, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.GELU(),
                    nn.MaxPool2d(2) if halve else nn.Identity(),
                )
            return nn.Sequential(
                nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.BatchNorm2d(c_out), nn.GELU(),
                nn.Conv2d(c_out, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.GELU(),
            )

        channels = [in_channels, width, 2 * width, 4 * width]
        self.stages = nn.Sequential(*[stage(channels[i], channels[i + 1], i < full_resolution_stages, i < halvings)
                                      for i in range(3)])
        self.proj = nn.Conv2d(4 * width, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(x)  # (N, 4w, H/stride, W/stride)
        return self.proj(x)  # (N, dim, H/stride, W/stride)


class Square(nn.Module):
    """x -> x^2: with a linear filter over two frames before it, the mean over frames is a motion
    energy (Adelson & Bergen): the cross term correlates the two frames."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * x


class MotionStem(nn.Module):
    """(B, 1, T, H, W) -> motion maps (B, channels * windows, H, W): a 3-D convolution over each
    pair of neighbouring frames, squared (a motion energy), a per-frame 3 x 3 convolution, then
    the mean over each of `windows` stretches of frames, kept in order as channels.

    `correlator_init`: the pair filters start as correlators, frame t+1 at a pixel against frame t
    at each of its 3 x 3 neighbours (with either sign), so the stem measures motion from the
    first step and training refines it; every weight stays trainable. `opponent`: an instance
    norm over space per channel, so each clip's dominant (ground) motion is the zero and the
    figure stands out whichever way it moves."""

    def __init__(self, channels: int = 16, kernel: int = 3, windows: int = 4, correlator_init: bool = True,
                 opponent: bool = True):
        super().__init__()
        self.windows = windows
        self.pairs = nn.Conv3d(1, channels, (2, kernel, kernel), padding=(0, kernel // 2, kernel // 2))
        self.stem = nn.Sequential(
            nn.BatchNorm3d(channels), Square(),
            nn.Conv3d(channels, channels, (1, kernel, kernel), padding=(0, kernel // 2, kernel // 2)),
            nn.BatchNorm3d(channels), nn.GELU(),
        )
        self.opponent = nn.InstanceNorm2d(channels * windows, affine=True) if opponent else nn.Identity()
        if correlator_init:
            self._init_correlators(kernel)
        self.out_channels = channels * windows

    @torch.no_grad()
    def _init_correlators(self, kernel: int) -> None:
        weight = torch.zeros_like(self.pairs.weight)  # (C, 1, 2, k, k)
        r = kernel // 2
        offsets = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
        for c in range(weight.shape[0]):
            dy, dx = offsets[c % len(offsets)]
            weight[c, 0, 0, r + dy, r + dx] = 0.7  # frame t, displaced
            weight[c, 0, 1, r, r] = 0.7 if (c // len(offsets)) % 2 == 0 else -0.7  # frame t+1, either sign
        self.pairs.weight.copy_(weight + 0.01 * torch.randn_like(weight))
        self.pairs.bias.zero_()

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        motion = self.stem(self.pairs(video))  # (B, C, T', H, W): one response per frame pair
        motion = window_means(motion, self.windows, dim=2)  # (B, C, K, H, W): time averaged, order kept
        return self.opponent(motion.flatten(1, 2))  # (B, C*K, H, W)


def sinusoidal_positions(length: int, dim: int, base: float = 10000.0) -> torch.Tensor:
    """(length, dim) sinusoidal position table (Vaswani et al.)."""
    position = torch.arange(length, dtype=torch.float32)[:, None]
    inv_freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-torch.log(torch.tensor(base)) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(position * inv_freq)
    table[:, 1::2] = torch.cos(position * inv_freq[: dim // 2])
    return table


def windowed_tokens(tokens: torch.Tensor, windows: int) -> torch.Tensor:
    """Per-frame maps (B, T, D, h, w) -> (B, windows * D, h, w): the mean of each stretch of frames,
    in order, as channels, so a reader of the map can still tell what moved which way."""
    return window_means(tokens, windows, dim=1).flatten(1, 2)
