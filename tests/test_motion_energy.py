"""Motion-energy observer: a fixed front end recovers the figure from motion, a spatial reader reads it."""

import numpy as np
import pytest
import torch
from scipy.ndimage import uniform_filter

from timeblind.core.tasks import to_model_input, window_means
from timeblind.data.dataset import StimulusConfig
from timeblind.models.config import MotionEnergyConfig
from timeblind.models.motion_energy import MotionEnergyEncoder, window_weights
from timeblind.stimuli.masks import SHAPES
from timeblind.stimuli.motion import MotionConfig, opponent_energy, render_clip

ANGLES = (0.0, 30.0, 45.0, 90.0, 135.0, 200.0, 250.0, 315.0)  # axis and diagonal, every quadrant
PER_ANGLE = 3


def small(**options) -> MotionEnergyEncoder:
    torch.manual_seed(0)
    return MotionEnergyEncoder(MotionEnergyConfig(width=4, dim=16, **options))


def iou(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a & b).sum()) / max(float((a | b).sum()), 1.0)


@pytest.fixture(scope="module")
def rendered():
    """Binary-noise clips of shapes, 32x32, 8 frames, 1 px/frame, PER_ANGLE clips (distinct shapes)
    per direction: video (N, 8, 32, 32) in [-1, 1], masks (N, 32, 32) bool, angles (N,), grey uint8,
    shape names (N,)."""
    clips, masks, angles, names = [], [], [], []
    for a, angle in enumerate(ANGLES):
        cfg = StimulusConfig(height=32, width=32, motion=MotionConfig(frames=8, speed=1.0, angle=angle))
        for j in range(PER_ANGLE):
            clip, layout, _ = cfg.sample(7, "test", a * PER_ANGLE + j)  # classes cycle: a different shape each
            clips.append(clip)
            masks.append(layout.mask)
            angles.append(angle)
            names.append(cfg.classes[layout.label].name)
    grey = np.stack(clips)
    return (to_model_input(torch.from_numpy(grey)), torch.from_numpy(np.stack(masks)), np.array(angles), grey,
            np.array(names))


def test_front_end_has_no_parameters_and_no_learned_state(rendered):
    video = rendered[0][:4]
    enc = small()
    for name, _ in [*enc.named_parameters(), *enc.named_buffers()]:
        assert name.startswith("reader."), f"{name}: everything learned must sit in the spatial reader"
    first = enc.front_end(video)
    assert not first.requires_grad
    # another initialisation, other weights, train mode: the front end does not change
    other = small()
    with torch.no_grad():
        for p in other.parameters():
            p.add_(torch.randn_like(p))
    other.train()
    assert torch.equal(other.front_end(video), first)
    # training the reader moves its weights only; the front end's output is the same before and after
    optimiser = torch.optim.SGD(other.parameters(), lr=0.1)
    other(video).square().mean().backward()
    assert all(p.grad is not None for p in other.reader.parameters())
    optimiser.step()
    assert torch.equal(other.front_end(video), first)


def test_front_end_recovers_the_figure_mask_from_noise(rendered):
    video, masks, angles, _, names = rendered
    assert len(set(names)) >= min(10, len(SHAPES))  # shapes of many kinds, not one
    out = small().front_end(video)  # (N, 4, H, W)
    assert out.shape == (len(video), 4, 32, 32)
    assert out.min() >= 0 and out.max() <= 1
    scores = np.array([[iou(out[i, k] > 0.5, masks[i]) for k in range(4)] for i in range(len(video))])  # (N, K)
    print(f"\nfront end IoU (threshold 0.5), {len(video)} clips x 4 windows, 32x32, 8 frames, speed 1, binary: "
          f"mean {scores.mean():.3f}, min clip {scores.mean(1).min():.3f}, {len(set(names))} shapes; per angle "
          + ", ".join(f"{a:g}: {scores[angles == a].mean():.2f}" for a in ANGLES))
    assert scores.mean() >= 0.6
    for a in ANGLES:  # no direction left behind (diagonals step unevenly: (0, 1) then (1, 1) ...)
        assert scores[angles == a].mean() >= 0.5, f"angle {a}: IoU {scores[angles == a].mean():.2f}"
    # the output looks like a mask: most figure pixels saturate at 1, most ground pixels are 0
    figure, ground = out.permute(1, 0, 2, 3)[:, masks], out.permute(1, 0, 2, 3)[:, ~masks]
    assert (figure > 0.99).float().mean() > 0.6
    assert (ground < 0.01).float().mean() > 0.9


def test_every_window_sees_the_figure(rendered):
    """Each window is read on its own, so no window may be blank or inverted."""
    video, masks, *_ = rendered
    out = small(windows=7).front_end(video)  # one frame pair per window
    inside = (out * masks[:, None]).sum((2, 3)) / masks[:, None].sum((2, 3))  # (N, 7)
    outside = (out * ~masks[:, None]).sum((2, 3)) / (~masks[:, None]).sum((2, 3))
    moved = inside > 0.05  # diagonal motion has pairs where neither field moves: those windows are 0
    assert moved.float().mean() > 0.8
    assert (inside[moved] > outside[moved] + 0.4).all()


@pytest.mark.parametrize("case", ["one field everywhere", "figure field everywhere", "static noise", "constant"])
def test_no_opposing_motion_gives_an_empty_mask(case):
    rng = np.random.default_rng(3)
    cfg = MotionConfig(frames=8, speed=1.0)
    if case == "one field everywhere":  # the ground's field alone, moving at 45 degrees
        grey = render_clip(np.zeros((32, 32), bool), cfg, rng, angle=45.0)
    elif case == "figure field everywhere":
        grey = render_clip(np.ones((32, 32), bool), cfg, rng, angle=0.0)
    elif case == "static noise":
        grey = np.repeat(render_clip(np.zeros((32, 32), bool), cfg, rng, angle=0.0)[:1], 8, axis=0)
    else:
        grey = np.full((8, 32, 32), 128, np.uint8)
    out = small().front_end(to_model_input(torch.from_numpy(grey))[None])
    assert torch.isfinite(out).all()
    assert out.mean() < 0.02, f"{case}: mean mask {out.mean():.3f}"
    assert (out > 0.5).float().mean() < 0.01


def test_sum_estimator_is_the_numpy_opponent_energy(rendered):
    """estimator='sum' is an exact port: its time-averaged energy is opponent_energy's."""
    video, _, _, grey, _ = rendered
    enc = small(estimator="sum", windows=1)
    energy, _ = enc.pair_energy(video[:6])
    for i in range(6):
        ours = uniform_filter(energy[i].mean(0).numpy(), size=3, mode="nearest")
        reference = opponent_energy(grey[i], speed=1.0, smooth=3)
        np.testing.assert_allclose(ours, reference, atol=1e-4)
    # the torch box filter and ramp keep the sign: front end > 0 exactly where numpy's energy is > 0
    out = enc.front_end(video[:6])[:, 0].numpy()
    reference = np.stack([opponent_energy(g) for g in grey[:6]])
    assert ((out > 0) == (reference > 0)).mean() >= 0.995


def test_default_estimator_agrees_with_numpy_in_sign(rendered):
    """The per-pair estimator differs from numpy's on purpose (less noise), so it agrees in sign where
    numpy's energy is clear, and mostly elsewhere."""
    video, _, _, grey, _ = rendered
    i = 4  # one clip at 30 degrees: uneven steps
    out = small(windows=1).front_end(video[i:i + 1])[0, 0].numpy()
    reference = opponent_energy(grey[i], speed=1.0, smooth=3)
    agree = (out > 0) == (reference > 0)
    clear = np.abs(reference) > 0.5
    assert agree.mean() >= 0.88
    assert agree[clear].mean() >= 0.97


def test_clean_masks_and_recovered_masks_give_similar_reader_inputs(rendered):
    video, masks, *_ = rendered
    clean = window_means(masks[:, None].expand(-1, 8, -1, -1).float(), 4)  # the static mask over 8 frames
    assert torch.equal(clean, masks[:, None].expand(-1, 4, -1, -1).float())
    recovered = small().front_end(video)
    matched = (clean - recovered).abs().mean((1, 2, 3))  # (N,)
    mismatched = (clean - recovered.roll(1, 0)).abs().mean((1, 2, 3))
    assert matched.mean() < 0.08
    assert (matched < mismatched).all()
    enc = small().eval()
    with torch.no_grad():
        assert enc.reader(clean).shape == enc.reader(recovered).shape == enc(video).shape


@pytest.mark.parametrize("pairs,windows", [(7, 4), (1, 4), (3, 4), (11, 4), (4, 4), (5, 1)])
def test_window_weights_average_and_cover_every_pair(pairs, windows):
    A = window_weights(pairs, windows)
    assert A.shape == (windows, pairs)
    assert torch.allclose(A.sum(1), torch.ones(windows))
    assert (A.sum(0) > 0).all()  # no pair is dropped
    nonzero = [set(torch.nonzero(row).flatten().tolist()) for row in A]
    if pairs >= windows:  # contiguous, disjoint, in order
        assert [min(s) for s in nonzero] == sorted(min(s) for s in nonzero)
        assert sum(len(s) for s in nonzero) == pairs


@pytest.mark.parametrize("frames", [2, 3, 5, 12])
@pytest.mark.parametrize("size", [(16, 24), (32, 32), (20, 12)])
@pytest.mark.parametrize("windows", [1, 4, 6])
def test_output_shapes(frames, size, windows):
    H, W = size
    enc = small(windows=windows).eval()
    video = torch.rand(2, frames, H, W) * 2 - 1
    masks = enc.front_end(video)
    assert masks.shape == (2, windows, H, W)
    assert torch.isfinite(masks).all() and masks.min() >= 0 and masks.max() <= 1
    with torch.no_grad():
        features = enc(video)
    expected = enc.reader(torch.zeros(1, windows, H, W)).shape[2:]
    assert features.shape == (2, enc.out_dim, *expected)
    assert enc.out_dim == 16


def test_non_square_clip_keeps_its_layout():
    """A figure on the left of a 16x24 clip is recovered on the left, and the reader's map is wider than tall."""
    mask = np.zeros((16, 24), bool)
    mask[4:12, 2:10] = True
    grey = render_clip(mask, MotionConfig(frames=8, speed=1.0), np.random.default_rng(5), angle=90.0)
    enc = small().eval()
    out = enc.front_end(to_model_input(torch.from_numpy(grey))[None])[0].mean(0)  # (16, 24)
    assert out[:, :12].mean() > 3 * out[:, 12:].mean()
    assert iou(out > 0.5, torch.from_numpy(mask)) >= 0.5
    with torch.no_grad():
        h, w = enc(to_model_input(torch.from_numpy(grey))[None]).shape[2:]
    assert w > h


def test_batch_independence(rendered):
    video = rendered[0]
    enc = small().eval()
    batch = enc.front_end(video[:8])
    for i in (0, 3, 7):
        alone = enc.front_end(video[i:i + 1])
        assert torch.allclose(batch[i:i + 1], alone, atol=1e-5)
    # replacing the other clips (other directions, static noise) changes nothing for clip 0
    others = torch.cat([video[:1], video[8:].flip(0)[:5], video[:1, :1].expand(1, 8, -1, -1)])
    assert torch.allclose(enc.front_end(others)[0], batch[0], atol=1e-5)
    with torch.no_grad():
        assert torch.allclose(enc(others)[0], enc(video[:8])[0], atol=1e-5)


def test_faster_motion_needs_a_larger_search():
    """3 px/frame: found with max_speed 3 (search radius 4), missed by the default radius 2."""
    mask = np.zeros((32, 32), bool)
    mask[8:24, 8:24] = True
    grey = render_clip(mask, MotionConfig(frames=8, speed=3.0), np.random.default_rng(2), angle=0.0)
    video = to_model_input(torch.from_numpy(grey))[None]
    fast, default = small(max_speed=3.0).front_end(video)[0], small().front_end(video)[0]
    assert np.mean([iou(fast[k] > 0.5, torch.from_numpy(mask)) for k in range(4)]) >= 0.6
    assert np.mean([iou(default[k] > 0.5, torch.from_numpy(mask)) for k in range(4)]) < 0.3
    assert small(max_speed=3.0).cfg.radius == 4 and small(max_speed=1.5).cfg.radius == 3 and small().cfg.radius == 2


@pytest.mark.parametrize("options,message", [
    ({"windows": 0}, r"windows=0: expected a positive integer"),
    ({"smooth": 2.5}, r"smooth=2.5: expected a positive integer"),
    ({"width": True}, r"width=True: expected a positive integer"),
    ({"max_speed": 0}, r"max_speed=0: expected a speed"),
    ({"max_speed": "1"}, r"max_speed='1': expected a speed"),
    ({"estimator": "fft"}, r"estimator='fft': expected one of \['pair', 'sum'\]"),
    ({"ramp": 0.0}, r"ramp=0.0: expected"),
    ({"min_correlation": 0}, r"min_correlation=0: expected"),
    ({"full_resolution_stages": 4}, r"full_resolution_stages=4: expected 0..3"),
])
def test_config_errors_name_the_value(options, message):
    with pytest.raises(ValueError, match=message):
        MotionEnergyConfig(**options)


def test_input_errors_are_named():
    enc = small()
    with pytest.raises(ValueError, match="clip has 1 frames"):
        enc.front_end(torch.zeros(1, 1, 16, 16))
    with pytest.raises(ValueError, match=r"video of shape \(16, 16\)"):
        enc.front_end(torch.zeros(16, 16))
