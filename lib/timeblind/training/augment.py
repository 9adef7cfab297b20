"""Batched training augmentations from the seed's `TemporalAugmentation` recipe.

The seed (video-temporal-reasoning skill, SpookyBench) lists "noise + blur + temporal filtering"
as the training augmentation, for "robustness to spatial ambiguity", and describes the class as
"Augmentations that preserve temporal structure while obscuring spatial information":

- noise injection, "Add overwhelming noise while preserving temporal signal":
  `frame * 0.3 + randn * 0.7` ("Signal becomes subtle"). Here: out = gain * x + std * N(0, 1),
  scaled about mid-grey (0). The seed's frames are [0, 1] grey, our inputs [-1, 1], so its noise
  std 0.7 is 1.4 here; scaling about 0 in [0, 1] units would also darken the clip, which we take
  for an artefact of those units, not the intent.
- spatial blur, "Blur spatial details while keeping temporal transitions sharp":
  torchvision GaussianBlur(kernel_size=9, sigma=5) on every frame. Here: the same truncated
  Gaussian (reflect padding, as torchvision), with sigma drawn per clip from a range.
  Blur is shift-invariant, so it commutes with the noise translation: motion survives, the
  texture and the figure's edge get soft.
- temporal frequency filter, "Extract temporal frequencies (motion) independent of spatial
  structure": the frame difference x[t] - x[t-1], which returns T-1 frames. That is a
  temporal high-pass (gain |2 sin(pi f)|, zero at DC). To keep (B, T, H, W) it is done as an
  ideal mask on the rFFT over T; the default "highpass" cut-off 1/6 cycles/frame is where the
  difference filter's gain crosses 1. "lowpass" and "bandstop" are there for ablations.

Each transform is off unless its p > 0; a clip takes each transform independently with
probability p. Order: blur, temporal filter, then noise, so the injected noise reaches the model
white and at its configured std rather than blurred or filtered away (the seed's methods are
independent, so it fixes no order). Transformed clips are clamped to [-1, 1], the model-input
range of `torch_data.to_model_input`; clips no transform touched come back bit-exact.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from timeblind.training.config import AugmentConfig, TemporalFilterConfig

_EPS = 1e-9  # slack when comparing bin frequencies k/T with a cut-off, so k/T == cutoff counts as on it

def _rand(shape, generator: torch.Generator, device, dtype, normal: bool = False) -> torch.Tensor:
    """Draw on the generator's device (torch requires it), then move to the video's device."""
    draw = torch.randn if normal else torch.rand
    return draw(shape, generator=generator, device=generator.device, dtype=dtype).to(device)


def _blur(x: torch.Tensor, sigma: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Separable truncated Gaussian, one sigma per clip. x (B, T, H, W), sigma (B,) px."""
    B, _, H, W = x.shape
    r = kernel_size // 2
    taps = torch.arange(-r, r + 1, device=x.device, dtype=x.dtype)  # (K,)
    k = torch.exp(-0.5 * (taps / sigma.clamp_min(1e-6)[:, None]) ** 2)  # (B, K); sigma 0 -> delta
    k = k / k.sum(dim=1, keepdim=True)  # unit DC gain: a constant frame stays put
    # reflect as torchvision does; it needs r < side, so tiny frames fall back to replicate
    mode = "reflect" if r < min(H, W) else "replicate"
    y = x.transpose(0, 1)  # (T, B, H, W): clips become conv channels, so groups=B gives per-clip kernels
    y = F.conv2d(F.pad(y, (r, r, 0, 0), mode=mode), k[:, None, None, :], groups=B)  # along W
    y = F.conv2d(F.pad(y, (0, 0, r, r), mode=mode), k[:, None, :, None], groups=B)  # along H
    return y.transpose(0, 1)  # (B, T, H, W)


def _temporal_keep(cfg: TemporalFilterConfig, T: int, device) -> torch.Tensor:
    """Which rFFT bins over T survive: (T // 2 + 1,) bool."""
    f = torch.fft.rfftfreq(T, device=device, dtype=torch.float64)  # cycles/frame, 0 .. 0.5
    if cfg.mode == "lowpass":
        return f <= cfg.cutoff + _EPS
    if cfg.mode == "highpass":
        return f >= cfg.cutoff - _EPS
    lo, hi = cfg.band
    return ~((f >= lo - _EPS) & (f <= hi + _EPS))


def _temporal_filter(x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Ideal filter over T. x (B, T, H, W); keep (F,) bool. Treats the clip as periodic in T."""
    spec = torch.fft.rfft(x, dim=1)  # (B, F, H, W) complex
    return torch.fft.irfft(spec * keep[:, None, None], n=x.shape[1], dim=1)  # (B, T, H, W)


def augment(video: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """Augment a batch of clips (B, T, H, W) float in [-1, 1]; same shape, dtype and device back.

    All randomness comes from `generator` (it may live on another device than `video`; one on the
    same device avoids copies). Returns `video` itself when nothing is enabled. Each enabled
    transform is computed for the whole batch and selected per clip with torch.where: no Python
    loop, no host sync, and the random draws do not depend on which clips were picked.
    """
    if video.ndim != 4:
        raise ValueError(f"video of shape {tuple(video.shape)}: expected (B, T, H, W)")
    if not video.is_floating_point():
        raise ValueError(f"video dtype {video.dtype}: expected floating point in [-1, 1]")
    if not cfg.enabled:
        return video
    B, T, H, W = video.shape
    device = video.device
    # half/bfloat16: conv and FFT are not supported or too coarse there; the round trip is exact
    work_dtype = torch.float32 if video.dtype in (torch.float16, torch.bfloat16) else video.dtype
    x = video.to(work_dtype)  # (B, T, H, W)
    touched = torch.zeros(B, dtype=torch.bool, device=device)  # (B,)

    def pick(p: float) -> torch.Tensor:  # (B,) bool, True with probability p per clip
        return _rand(B, generator, device, work_dtype) < p

    if cfg.blur.p > 0:
        hit = pick(cfg.blur.p)
        lo, hi = cfg.blur.sigma
        sigma = lo + (hi - lo) * _rand(B, generator, device, work_dtype)  # (B,) px
        x = torch.where(hit[:, None, None, None], _blur(x, sigma, cfg.blur.kernel_size), x)
        touched |= hit
    if cfg.temporal_filter.p > 0:
        hit = pick(cfg.temporal_filter.p)
        if T > 1:  # one frame has no temporal spectrum beyond DC; a high-pass would just blank it
            keep = _temporal_keep(cfg.temporal_filter, T, device)
            x = torch.where(hit[:, None, None, None], _temporal_filter(x, keep), x)
            touched |= hit
    if cfg.noise.p > 0:
        hit = pick(cfg.noise.p)
        noise = _rand((B, T, H, W), generator, device, work_dtype, normal=True)  # (B, T, H, W)
        x = torch.where(hit[:, None, None, None], cfg.noise.gain * x + cfg.noise.std * noise, x)
        touched |= hit
    x = torch.where(touched[:, None, None, None], x.clamp(-1.0, 1.0), x)
    return x.to(video.dtype)
