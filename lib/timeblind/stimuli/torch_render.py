"""Opposing-motion noise rendered in torch, on whatever device the masks live on.

Same geometry as motion.render_clip (the same per-frame integer offsets, the same noise kinds,
coherence and contrast), batched, so a GPU makes its own training data and never waits on
a CPU. Random numbers come from a torch.Generator on that device: a batch is a pure function
of (masks, angles, config, generator seed, device type), not byte-identical to the numpy path.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from timeblind.stimuli.motion import GAUSSIAN_STD, MotionConfig, blur_gain, field_padding


def batch_offsets(cfg: MotionConfig, angles: torch.Tensor) -> torch.Tensor:
    """Integer figure displacement (rows, cols) per clip and frame: angles (B,) degrees -> (B, T, 2)."""
    t = torch.arange(cfg.frames, dtype=torch.float64, device=angles.device) * cfg.step  # (T,)
    theta = torch.deg2rad(angles.to(torch.float64))[:, None]  # (B, 1)
    rows, cols = -torch.sin(theta), torch.cos(theta)
    dominant = torch.maximum(rows.abs(), cols.abs())  # speed along the dominant axis, as in motion.offsets
    # float64 and round-half-even, like np.rint in motion.offsets, so both paths agree.
    return torch.stack([t * (rows / dominant), t * (cols / dominant)], dim=-1).round().long()


def _noise(shape: tuple[int, ...], cfg: MotionConfig, g: torch.Generator, device) -> torch.Tensor:
    """Noise in model units (mid-grey 0, full contrast +-1) over the last two axes of `shape`."""
    if cfg.noise == "binary":
        bright = torch.rand(shape, generator=g, device=device) < cfg.density
        return torch.where(bright, cfg.contrast, -cfg.contrast)
    z = torch.randn(shape, generator=g, device=device)
    if cfg.noise == "blurred":
        radius = math.ceil(4 * cfg.blur)
        x = torch.arange(-radius, radius + 1, dtype=torch.float32, device=device)
        k1 = torch.exp(-0.5 * (x / cfg.blur) ** 2)
        k1 = k1 / k1.sum()
        flat = z.reshape(-1, 1, *shape[-2:])
        flat = F.pad(flat, (radius, radius, radius, radius), mode="circular")
        flat = F.conv2d(flat, k1.view(1, 1, 1, -1))
        flat = F.conv2d(flat, k1.view(1, 1, -1, 1))
        z = flat.reshape(shape) / blur_gain(cfg.blur)
    return (2 * GAUSSIAN_STD * cfg.contrast * z).clamp_(-1.0, 1.0)


def render_batch(masks: torch.Tensor, angles: torch.Tensor, cfg: MotionConfig,
                 generator: torch.Generator) -> torch.Tensor:
    """masks (B, H, W) or (B, T, H, W) bool, angles (B,) degrees -> clips (B, T, H, W) float in [-1, 1]."""
    if not cfg.concrete:
        raise ValueError(f"speed={cfg.speed}, density={cfg.density}, render_scale={cfg.render_scale}: the device "
                         "renderer takes one speed and density at the clip's own size")
    device = masks.device
    if masks.dim() == 3:
        masks = masks[:, None]
    B, T, H, W = masks.shape[0], cfg.frames, masks.shape[-2], masks.shape[-1]
    P = field_padding(cfg)
    d = batch_offsets(cfg, angles.to(device))  # (B, T, 2)
    rows = torch.arange(H, device=device)
    cols = torch.arange(W, device=device)
    b = torch.arange(B, device=device)[:, None, None, None]

    def window(field: torch.Tensor, sign: int) -> torch.Tensor:
        # Content displaced by +d shows the field at p - d (figure, sign -1); the ground at p + d.
        r = (P + sign * d[..., 0])[..., None, None] + rows[:, None]  # (B, T, H, 1)
        c = (P + sign * d[..., 1])[..., None, None] + cols[None, :]  # (B, T, 1, W)
        return field[b, r, c]  # (B, T, H, W)

    field_shape = (B, H + 2 * P, W + 2 * P)
    figure = window(_noise(field_shape, cfg, generator, device), -1)
    ground = window(_noise(field_shape, cfg, generator, device), +1)
    clips = torch.where(masks, figure, ground)
    if cfg.coherence < 1.0:
        refresh = torch.rand((B, T, H, W), generator=generator, device=device) >= cfg.coherence
        clips = torch.where(refresh, _noise((B, T, H, W), cfg, generator, device), clips)
    return clips
