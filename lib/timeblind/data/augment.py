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

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

TRANSFORMS = ("noise", "blur", "temporal_filter")
FILTER_MODES = ("highpass", "lowpass", "bandstop")
_EPS = 1e-9  # slack when comparing bin frequencies k/T with a cut-off, so k/T == cutoff counts as on it


def _number(name: str, v) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"{name}={v!r}: expected a number")
    return float(v)


def _probability(name: str, v) -> float:
    v = _number(name, v)
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"{name}={v}: expected a probability in [0, 1]")
    return v


def _pair(name: str, v, lo: float, hi: float, unit: str) -> tuple[float, float]:
    """A (low, high) range inside [lo, hi]; a single number means (v, v)."""
    if isinstance(v, (list, tuple)):
        if len(v) != 2:
            raise ValueError(f"{name}={v!r}: expected a number or a (low, high) pair")
        a, b = (_number(name, x) for x in v)
    else:
        a = b = _number(name, v)
    if not (lo <= a <= hi and lo <= b <= hi):
        raise ValueError(f"{name}={(a, b)}: expected values in [{lo}, {hi}] {unit}")
    if a > b:
        raise ValueError(f"{name}={(a, b)}: expected low <= high")
    return a, b


@dataclass(frozen=True)
class NoiseConfig:
    p: float = 0.0  # probability that a clip gets noise; 0 = off
    std: float = 1.4  # std of the added Gaussian, in input units (seed: 0.7 in [0, 1] grey)
    gain: float = 0.3  # signal gain about mid-grey before adding noise (seed: 0.3)

    def __post_init__(self):
        object.__setattr__(self, "p", _probability("noise.p", self.p))
        std = _number("noise.std", self.std)
        if std < 0:
            raise ValueError(f"noise.std={std}: expected a std >= 0 in input units ([-1, 1] range)")
        gain = _number("noise.gain", self.gain)
        if not 0.0 <= gain <= 1.0:
            raise ValueError(f"noise.gain={gain}: expected a signal gain in [0, 1]")
        object.__setattr__(self, "std", std)
        object.__setattr__(self, "gain", gain)


@dataclass(frozen=True)
class BlurConfig:
    p: float = 0.0  # probability that a clip is blurred; 0 = off
    sigma: tuple[float, float] = (5.0, 5.0)  # px, drawn uniformly per clip (seed: sigma=5)
    kernel_size: int = 9  # taps of the truncated Gaussian, odd (seed: 9)

    def __post_init__(self):
        object.__setattr__(self, "p", _probability("blur.p", self.p))
        object.__setattr__(self, "sigma", _pair("blur.sigma", self.sigma, 0.0, float("inf"), "px (sigma >= 0)"))
        k = self.kernel_size
        if isinstance(k, bool) or not isinstance(k, int) or k < 1 or k % 2 == 0:
            raise ValueError(f"blur.kernel_size={k!r}: expected an odd positive integer")


@dataclass(frozen=True)
class TemporalFilterConfig:
    p: float = 0.0  # probability that a clip is filtered; 0 = off
    mode: str = "highpass"  # highpass (seed: frame difference), lowpass or bandstop
    cutoff: float | None = None  # cycles/frame for highpass (keeps f >= cutoff) and lowpass (keeps
    # f <= cutoff); None = 1/6, where the seed's frame difference |2 sin(pi f)| crosses gain 1
    band: tuple[float, float] | None = None  # cycles/frame; bandstop removes low <= f <= high

    def __post_init__(self):
        object.__setattr__(self, "p", _probability("temporal_filter.p", self.p))
        if self.mode not in FILTER_MODES:
            raise ValueError(f"temporal_filter.mode={self.mode!r}: expected one of {FILTER_MODES}")
        if self.mode == "bandstop":
            if self.band is None:
                raise ValueError("temporal_filter.band: required for mode='bandstop', a (low, high) pair "
                                 "in cycles/frame within [0, 0.5]")
            if self.cutoff is not None:
                raise ValueError(f"temporal_filter.cutoff={self.cutoff!r}: not used by mode='bandstop' (give band)")
            object.__setattr__(self, "band", _pair("temporal_filter.band", self.band, 0.0, 0.5, "cycles/frame"))
            return
        if self.band is not None:
            raise ValueError(f"temporal_filter.band={self.band!r}: only used by mode='bandstop', "
                             f"not mode={self.mode!r} (which uses cutoff)")
        cutoff = 1 / 6 if self.cutoff is None else _number("temporal_filter.cutoff", self.cutoff)
        if not 0.0 <= cutoff <= 0.5:
            raise ValueError(f"temporal_filter.cutoff={cutoff}: expected cycles/frame in [0, 0.5] (0.5 = Nyquist)")
        object.__setattr__(self, "cutoff", cutoff)


_SECTIONS = {"noise": NoiseConfig, "blur": BlurConfig, "temporal_filter": TemporalFilterConfig}


@dataclass(frozen=True)
class AugmentConfig:
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    blur: BlurConfig = field(default_factory=BlurConfig)
    temporal_filter: TemporalFilterConfig = field(default_factory=TemporalFilterConfig)

    def __post_init__(self):
        for name, kind in _SECTIONS.items():
            if not isinstance(getattr(self, name), kind):
                raise ValueError(f"{name}={getattr(self, name)!r}: expected a {kind.__name__}")

    @property
    def enabled(self) -> bool:
        return any(getattr(self, name).p > 0 for name in TRANSFORMS)

    @classmethod
    def from_dict(cls, d: Mapping | None) -> AugmentConfig:
        """From a plain dict such as {"noise": {"p": 0.5, "std": 0.3}}; absent or None sections
        are off. A given section must state p, so that a section never silently does nothing."""
        if d is None:
            return cls()
        if not isinstance(d, Mapping):
            raise ValueError(f"augment={d!r}: expected a mapping of transform name to options")
        unknown = sorted(set(d) - set(TRANSFORMS))
        if unknown:
            raise ValueError(f"augment: unknown transform(s) {unknown}; expected some of {TRANSFORMS}")
        sections = {}
        for name, kind in _SECTIONS.items():
            opts = d.get(name)
            if opts is None:
                continue
            if not isinstance(opts, Mapping):
                raise ValueError(f"augment.{name}={opts!r}: expected a mapping of options, e.g. {{'p': 0.5}}")
            allowed = [f.name for f in dataclasses.fields(kind)]
            bad = sorted(set(opts) - set(allowed))
            if bad:
                raise ValueError(f"augment.{name}: unknown option(s) {bad}; expected some of {allowed}")
            if "p" not in opts:
                raise ValueError(f"augment.{name}: missing 'p' (probability in [0, 1] that a clip gets it)")
            sections[name] = kind(**opts)
        return cls(**sections)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# -- transforms ------------------------------------------------------------------------------

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
