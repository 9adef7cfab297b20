import dataclasses

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from timeblind.training.augment import augment
from timeblind.training.config import AugmentConfig, BlurConfig, NoiseConfig, TemporalFilterConfig


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def white(shape, amplitude: float = 1.0, seed: int = 123) -> torch.Tensor:
    return (torch.rand(shape, generator=gen(seed)) * 2 - 1) * amplitude


def all_on(p: float = 1.0) -> AugmentConfig:
    return AugmentConfig.from_dict({
        "noise": {"p": p, "std": 0.3, "gain": 0.8},
        "blur": {"p": p, "sigma": [0.5, 2.0], "kernel_size": 5},
        "temporal_filter": {"p": p, "mode": "lowpass", "cutoff": 0.3},
    })


def spatial_high_power(v: torch.Tensor, f_min: float = 0.25) -> float:
    spec = torch.fft.fft2(v).abs() ** 2  # over (H, W)
    fy = torch.fft.fftfreq(v.shape[-2]).abs()[:, None]
    fx = torch.fft.fftfreq(v.shape[-1]).abs()[None, :]
    return spec[..., torch.maximum(fy, fx) > f_min].sum().item()


def temporal_power(v: torch.Tensor) -> torch.Tensor:
    return (torch.fft.rfft(v, dim=1).abs() ** 2).sum(dim=(0, 2, 3))  # (F,)


# -- identity, determinism, shape ---------------------------------------------------------------

@pytest.mark.parametrize("cfg", [AugmentConfig(), AugmentConfig.from_dict({}), AugmentConfig.from_dict(None),
                                 AugmentConfig.from_dict({"noise": {"p": 0}, "blur": {"p": 0.0},
                                                          "temporal_filter": {"p": 0}})])
def test_disabled_is_exact_identity(cfg):
    v = white((3, 5, 8, 8), amplitude=1.5)  # even out-of-range input is left alone
    g = gen(1)
    state = g.get_state()
    out = augment(v, cfg, g)
    assert out is v  # documented: nothing enabled returns the input itself
    assert torch.equal(g.get_state(), state)  # no random draws either


def test_deterministic_per_generator_seed():
    v = white((16, 8, 16, 16))
    cfg = all_on(p=0.5)
    a, b = augment(v, cfg, gen(7)), augment(v, cfg, gen(7))
    c = augment(v, cfg, gen(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("T", [1, 2, 5, 7, 8])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_shape_dtype_range(T, dtype):
    v = white((4, T, 9, 11)).to(dtype)
    out = augment(v, all_on(), gen())
    assert out.shape == v.shape and out.dtype == dtype and out.device == v.device
    assert torch.isfinite(out.float()).all()
    assert out.abs().max() <= 1.0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_device_and_generator_on_cpu():
    v = white((4, 8, 16, 16)).cuda()
    out = augment(v, all_on(), gen())
    assert out.device == v.device
    assert torch.equal(out, augment(v, all_on(), gen()))
    cuda_gen = torch.Generator(device="cuda").manual_seed(0)
    assert augment(v, all_on(), cuda_gen).device == v.device


def test_bad_video():
    with pytest.raises(ValueError, match=r"expected \(B, T, H, W\)"):
        augment(torch.zeros(8, 16, 16), all_on(), gen())
    with pytest.raises(ValueError, match="expected floating point"):
        augment(torch.zeros(1, 8, 16, 16, dtype=torch.uint8), all_on(), gen())


# -- blur ------------------------------------------------------------------------------------

def test_blur_lowers_high_spatial_frequencies_of_white_noise():
    v = white((4, 3, 32, 32))
    cfg = AugmentConfig(blur=BlurConfig(p=1.0, sigma=(1.0, 2.0)))
    out = augment(v, cfg, gen())
    # sigma 1 passes exp(-2 pi^2 sigma^2 f^2)^2 ~ 0.08 of the power at f = 0.25 cycles/px
    assert spatial_high_power(out) < 0.2 * spatial_high_power(v)
    assert not torch.equal(out, v)


@pytest.mark.parametrize("size", [(32, 32), (3, 5)])  # (3, 5): smaller than the 9-tap kernel
def test_blur_leaves_constant_image_unchanged(size):
    v = torch.full((3, 4, *size), 0.37)
    out = augment(v, AugmentConfig(blur=BlurConfig(p=1.0)), gen())
    torch.testing.assert_close(out, v, atol=1e-6, rtol=0)


def test_blur_matches_seed_kernel():
    """Seed: torchvision GaussianBlur(kernel_size=9, sigma=5), i.e. a 9-tap truncated Gaussian with
    torch 'reflect' padding, which is scipy's 'mirror' mode with radius 4."""
    v = white((2, 3, 16, 16), amplitude=0.5)
    out = augment(v, AugmentConfig(blur=BlurConfig(p=1.0)), gen())
    ref = gaussian_filter(v.numpy().astype(np.float64), sigma=(0, 0, 5, 5), radius=(0, 0, 4, 4), mode="mirror")
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-5)


def test_blur_sigma_is_drawn_per_clip():
    v = white((1, 2, 16, 16)).expand(8, -1, -1, -1).contiguous()  # 8 identical clips
    out = augment(v, AugmentConfig(blur=BlurConfig(p=1.0, sigma=(0.5, 3.0), kernel_size=15)), gen())
    assert len({round(float(s), 5) for s in out.std(dim=(1, 2, 3))}) == 8


# -- temporal filter -------------------------------------------------------------------------

@pytest.mark.parametrize("T", [16, 15])
def test_temporal_lowpass_cuts_high_frequencies_keeps_mean(T):
    v = white((6, T, 8, 8), amplitude=0.25)  # small, so the [-1, 1] clamp never bites
    out = augment(v, AugmentConfig(temporal_filter=TemporalFilterConfig(p=1.0, mode="lowpass", cutoff=0.2)), gen())
    f = torch.fft.rfftfreq(T)
    before, after = temporal_power(v), temporal_power(out)
    high = f > 0.2 + 1e-6  # bin 3/15 sits on the cut-off and is kept
    assert after[high].sum() < 1e-6 * before[high].sum()
    torch.testing.assert_close(after[~high], before[~high], rtol=1e-4, atol=1e-6)  # pass band untouched
    torch.testing.assert_close(out.mean(dim=1), v.mean(dim=1), atol=1e-6, rtol=0)


def test_temporal_highpass_default_is_seed_difference_analogue():
    """Seed: frame difference, zero gain at DC. Default: ideal high-pass at 1/6 cycles/frame."""
    cfg = AugmentConfig.from_dict({"temporal_filter": {"p": 1.0}})
    assert cfg.temporal_filter.mode == "highpass" and cfg.temporal_filter.cutoff == pytest.approx(1 / 6)
    v = white((4, 12, 8, 8), amplitude=0.25) + 0.5  # a static offset, as a static spatial cue would be
    out = augment(v, cfg, gen())
    torch.testing.assert_close(out.mean(dim=1), torch.zeros_like(v[:, 0]), atol=1e-6, rtol=0)
    f = torch.fft.rfftfreq(12)
    before, after = temporal_power(v), temporal_power(out)
    assert after[f < 1 / 6 - 1e-9].sum() < 1e-6 * before[f < 1 / 6 - 1e-9].sum()
    torch.testing.assert_close(after[f >= 1 / 6 - 1e-9], before[f >= 1 / 6 - 1e-9], rtol=1e-4, atol=1e-6)


def test_temporal_bandstop_removes_only_the_band():
    v = white((4, 16, 8, 8), amplitude=0.25)
    cfg = AugmentConfig(temporal_filter=TemporalFilterConfig(p=1.0, mode="bandstop", band=(0.1875, 0.25)))  # edges on bins 3/16, 4/16: inclusive
    out = augment(v, cfg, gen())
    f = torch.fft.rfftfreq(16)
    band = (f >= 0.18) & (f <= 0.26)
    before, after = temporal_power(v), temporal_power(out)
    assert band.sum() == 2 and after[band].sum() < 1e-6 * before[band].sum()
    torch.testing.assert_close(after[~band], before[~band], rtol=1e-4, atol=1e-6)


def test_temporal_filter_is_identity_for_one_frame():
    v = white((4, 1, 8, 8))
    out = augment(v, AugmentConfig(temporal_filter=TemporalFilterConfig(p=1.0)), gen())
    assert torch.equal(out, v)


# -- noise -----------------------------------------------------------------------------------

@pytest.mark.parametrize("std", [0.1, 0.3])
def test_noise_has_configured_std(std):
    v = white((32, 8, 16, 16), amplitude=0.3)  # |v| + 3 std stays under 1: no clamping
    out = augment(v, AugmentConfig(noise=NoiseConfig(p=1.0, std=std, gain=1.0)), gen())
    diff = out - v
    assert diff.std().item() == pytest.approx(std, rel=0.02)
    assert abs(diff.mean().item()) < 0.01
    # independent per pixel and frame: neighbouring frames' noise is uncorrelated
    assert abs(torch.corrcoef(torch.stack([diff[:, :-1].flatten(), diff[:, 1:].flatten()]))[0, 1]) < 0.02


def test_noise_gain_scales_signal_about_mid_grey():
    v = white((4, 8, 16, 16))
    out = augment(v, AugmentConfig(noise=NoiseConfig(p=1.0, std=0.0, gain=0.3)), gen())
    torch.testing.assert_close(out, 0.3 * v)


def test_noise_defaults_follow_seed():
    """Seed: frame * 0.3 + randn * 0.7 on [0, 1] frames; our inputs span [-1, 1], twice that."""
    cfg = NoiseConfig()
    assert (cfg.p, cfg.gain, cfg.std) == (0.0, 0.3, 1.4)
    out = augment(torch.zeros(64, 8, 16, 16), AugmentConfig(noise=NoiseConfig(p=1.0)), gen())
    assert out.abs().max() == 1.0  # overwhelming noise, clamped back to the input range
    assert out.mean().abs() < 0.01


# -- probability -----------------------------------------------------------------------------

@pytest.mark.parametrize("section", [{"noise": {"p": 0.5, "std": 0.2}},
                                     {"blur": {"p": 0.5, "sigma": 1.0}},
                                     {"temporal_filter": {"p": 0.5, "mode": "lowpass", "cutoff": 0.1}}])
def test_half_probability_applies_to_about_half(section):
    B = 4000
    v = white((B, 4, 4, 4), amplitude=0.5)
    out = augment(v, AugmentConfig.from_dict(section), gen(3))
    changed = (out != v).flatten(1).any(dim=1)
    # Binomial(4000, 0.5): sd ~32; 5 sd either side
    assert abs(changed.sum().item() - B / 2) < 160
    # the clips left alone are bit-exact
    assert torch.equal(out[~changed], v[~changed])


def test_untouched_clips_are_not_clamped():
    v = white((400, 2, 4, 4), amplitude=1.5)  # out of range on purpose
    out = augment(v, AugmentConfig(noise=NoiseConfig(p=0.5, std=0.0, gain=1.0)), gen())
    hit = (out != v).flatten(1).any(dim=1)
    assert 150 < hit.sum() < 250
    assert torch.equal(out[hit], v[hit].clamp(-1, 1))
    assert torch.equal(out[~hit], v[~hit])
    assert v[~hit].abs().max() > 1


def test_transforms_decide_independently():
    B = 4000
    v = white((B, 4, 4, 4), amplitude=0.5)
    cfg = AugmentConfig.from_dict({"noise": {"p": 0.5, "std": 0.0, "gain": 0.5},  # halves the clip
                                   "temporal_filter": {"p": 0.5, "mode": "highpass", "cutoff": 0.1}})
    out = augment(v, cfg, gen(4))
    halved = torch.isclose(out, 0.5 * v).flatten(1).all(dim=1) | torch.isclose(
        out, 0.5 * augment(v, AugmentConfig.from_dict({"temporal_filter": {"p": 1.0, "cutoff": 0.1}}), gen())
    ).flatten(1).all(dim=1)
    changed = (out != v).flatten(1).any(dim=1)
    # P(some transform) = 0.75, P(noise) = 0.5
    assert abs(changed.float().mean().item() - 0.75) < 0.04
    assert abs(halved.float().mean().item() - 0.5) < 0.04


# -- configuration ---------------------------------------------------------------------------

def test_from_dict_builds_each_section():
    cfg = AugmentConfig.from_dict({"noise": {"p": 0.5, "std": 0.3},
                                   "blur": {"p": 1, "sigma": [1, 2]},
                                   "temporal_filter": {"p": 0.25, "mode": "bandstop", "band": [0.1, 0.2]}})
    assert cfg.noise == NoiseConfig(p=0.5, std=0.3)
    assert cfg.blur.sigma == (1.0, 2.0) and cfg.blur.kernel_size == 9
    assert cfg.temporal_filter.band == (0.1, 0.2)
    assert AugmentConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.noise.p = 1.0


@pytest.mark.parametrize("d, message", [
    ({"jitter": {"p": 1}}, r"unknown transform\(s\) \['jitter'\]; expected some of \('noise', 'blur', 'temporal_filter'\)"),
    ([("noise", {})], "expected a mapping of transform name"),
    ({"noise": 0.5}, r"augment.noise=0.5: expected a mapping of options"),
    ({"noise": {"std": 0.3}}, r"augment.noise: missing 'p'"),
    ({"noise": {"p": 1.5}}, r"noise.p=1.5: expected a probability in \[0, 1\]"),
    ({"blur": {"p": -0.1}}, r"blur.p=-0.1: expected a probability in \[0, 1\]"),
    ({"blur": {"p": "half"}}, r"blur.p='half': expected a number"),
    ({"noise": {"p": 1, "std": -0.2}}, r"noise.std=-0.2: expected a std >= 0"),
    ({"noise": {"p": 1, "gain": 2}}, r"noise.gain=2.0: expected a signal gain in \[0, 1\]"),
    ({"noise": {"p": 1, "sd": 0.3}}, r"augment.noise: unknown option\(s\) \['sd'\]"),
    ({"blur": {"p": 1, "sigma": -1}}, r"blur.sigma=\(-1.0, -1.0\): expected values in \[0.0, inf\] px"),
    ({"blur": {"p": 1, "sigma": [3, 1]}}, r"blur.sigma=\(3.0, 1.0\): expected low <= high"),
    ({"blur": {"p": 1, "sigma": [1, 2, 3]}}, r"blur.sigma=\[1, 2, 3\]: expected a number or a \(low, high\) pair"),
    ({"blur": {"p": 1, "kernel_size": 8}}, r"blur.kernel_size=8: expected an odd positive integer"),
    ({"temporal_filter": {"p": 1, "mode": "notch"}}, r"temporal_filter.mode='notch': expected one of"),
    ({"temporal_filter": {"p": 1, "cutoff": 0.7}}, r"temporal_filter.cutoff=0.7: expected cycles/frame in \[0, 0.5\]"),
    ({"temporal_filter": {"p": 1, "mode": "bandstop"}}, r"temporal_filter.band: required for mode='bandstop'"),
    ({"temporal_filter": {"p": 1, "mode": "lowpass", "band": [0.1, 0.2]}}, r"only used by mode='bandstop'"),
    ({"temporal_filter": {"p": 1, "mode": "bandstop", "band": [0.1, 0.6]}},
     r"temporal_filter.band=\(0.1, 0.6\): expected values in \[0.0, 0.5\] cycles/frame"),
    ({"temporal_filter": {"p": 1, "mode": "bandstop", "band": [0.1, 0.2], "cutoff": 0.1}},
     r"temporal_filter.cutoff=0.1: not used by mode='bandstop'"),
])
def test_bad_configs_say_what_is_wrong(d, message):
    with pytest.raises(ValueError, match=message):
        AugmentConfig.from_dict(d)


def test_sub_config_type_is_checked():
    with pytest.raises(ValueError, match="noise=.*expected a NoiseConfig"):
        AugmentConfig(noise={"p": 1})
