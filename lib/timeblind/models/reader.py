"""The figure reader: what every model's answers about a figure are read from.

An encoder's only job is to recover the figure from the noise (models/heads.py's FigureHead
turns its feature map into a figure map per temporal window). The reader then works on that
figure map as on a picture: a small CNN for the class of a shape, an object or a moving figure,
and a line reader for text, which reads each text line (core/lines.py) scaled to one height,
column by column. The reader is pretrained on the clean figure masks of the training data
(training/reader.py), so every encoder starts from the same reader, and adapted to each trained
encoder's own figure maps (training/adapt.py): an encoder is judged on how well it recovers the
figure, which is the time-blindness question.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from timeblind.core.lines import ALPHABET, BAND_HEIGHT, BAND_WIDTH, Band
from timeblind.models.layers import SpatialTrunk


READ_HEIGHT = 32  # px: larger figure maps are area-averaged to about this height before a class is read


class FigureReader(nn.Module):
    """Figure maps (B, K, H, W) in [0, 1], one per temporal window -> feature vector (B, dim).
    A class reads at 32 px as well as at 64 (a filled shape, an object's silhouette), so maps of
    twice that height or more are averaged down first: the reader costs the same at any clip size."""

    def __init__(self, windows: int, width: int = 16, dim: int = 64):
        super().__init__()
        self.trunk = SpatialTrunk(windows, width, dim, full_resolution_stages=1)
        self.dim = dim

    def forward(self, figure: torch.Tensor) -> torch.Tensor:
        factor = figure.shape[-2] // READ_HEIGHT
        if factor > 1:
            figure = F.avg_pool2d(figure, factor, ceil_mode=True)  # (B, K, ~READ_HEIGHT, W / factor)
        return self.trunk(figure).mean(dim=(2, 3))  # (B, dim)


class LineReader(nn.Module):
    """One text line scaled to (1, BAND_HEIGHT, BAND_WIDTH) -> reading-class log-probabilities per
    label column (L, COLUMNS, len(ALPHABET) + 1). Convolutions only: each column's letter is read
    from the glyph under it and its neighbours, which the per-column targets teach directly."""

    def __init__(self, width: int = 16):
        super().__init__()
        c = width

        def block(c_in: int, c_out: int, pool: tuple[int, int]) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.GELU(), nn.MaxPool2d(pool)]

        self.features = nn.Sequential(
            nn.Conv2d(1, c, 3, padding=1), nn.BatchNorm2d(c), nn.GELU(),
            *block(c, c, (2, 2)),  # (c, 8, 64): the label columns' resolution
            *block(c, 2 * c, (2, 1)),  # (2c, 4, 64)
            *block(2 * c, 4 * c, (4, 1)),  # (4c, 1, 64): each column sees the line's full height
        )
        self.columns = nn.Sequential(nn.Conv1d(4 * c, 128, 5, padding=2), nn.GELU(),
                                     nn.Conv1d(128, len(ALPHABET) + 1, 1))

    def forward(self, bands: torch.Tensor) -> torch.Tensor:
        x = self.features(bands)[:, :, 0]  # (L, 4c, COLUMNS)
        return self.columns(x).transpose(1, 2).log_softmax(dim=-1)  # (L, COLUMNS, classes)


def crop_bands(figure: torch.Tensor, bands: list[list[Band]]) -> tuple[torch.Tensor, list[int]]:
    """Cut every text line out of figure maps (B, H, W) and scale it to BAND_HEIGHT, left-aligned
    in a BAND_WIDTH canvas: (L, 1, BAND_HEIGHT, BAND_WIDTH), and the clip each line comes from."""
    crops, owners = [], []
    for b, clip_bands in enumerate(bands):
        for band in clip_bands:
            region = figure[b, band.top:band.bottom, band.left:band.right][None, None]
            canvas = figure.new_zeros(1, BAND_HEIGHT, BAND_WIDTH)
            canvas[:, :, :band.width] = F.interpolate(region, size=(BAND_HEIGHT, band.width), mode="bilinear",
                                                      align_corners=False)[0]
            crops.append(canvas)
            owners.append(b)
    if not crops:
        return figure.new_zeros(0, 1, BAND_HEIGHT, BAND_WIDTH), owners
    return torch.stack(crops), owners
