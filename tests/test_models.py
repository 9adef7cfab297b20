"""Encoders: output shapes, where time enters, and safe model files."""

import argparse

import pytest
import torch

from timeblind.core.tasks import TaskSpec
from timeblind.models.checkpoint import load_model, save_model
from timeblind.models.config import ENCODER_CONFIGS, EarlyTemporalConfig, FramewiseConfig
from timeblind.models.early_temporal import EarlyTemporalEncoder
from timeblind.models.framewise import FramewiseEncoder
from timeblind.models.registry import ENCODERS, build_encoder, build_model


SMALL = {  # a few-thousand-parameter version of every encoder
    "framewise": {"width": 4, "dim": 16},
    "early_temporal": {"width": 4, "dim": 16},
    "seed_temporal": {"width": 4, "feature_dim": 16, "hidden_dim": 16, "heads": 4, "temporal_layers": 1,
                      "feedforward": 32},
    "stave": {"patch_size": 4, "dim": 16, "depth": 2, "heads": 2, "image_size": 16},
    "two_stream": {"segments": 1, "width": 4, "dim": 8, "stem_channels": 4},  # 1 segment: any clip of >= 2 frames
    "motion_energy": {"width": 4, "dim": 16},
}


def test_every_registered_encoder_is_covered():
    assert set(SMALL) == set(ENCODERS)
    assert list(ENCODERS) == list(ENCODER_CONFIGS)  # each encoder has its config dataclass, under the same name


@pytest.mark.parametrize("encoder", sorted(ENCODERS))
@pytest.mark.parametrize("frames", [2, 5, 12])
def test_every_head_answers_for_any_clip_length(encoder, frames):
    tasks = TaskSpec(("circle", "star", "spikes"), ("shapes", "shapes", "patterns"), ("shapes", "words", "patterns"),
                     frames)
    model = build_model(encoder, tasks, **SMALL[encoder]).eval()
    with torch.no_grad():
        out = model(torch.randn(3, frames, 16, 24))
    assert out["logits"].shape == (3, 3)  # closed classes: circle, star, spikes (words are read, not classified)
    assert out["figure_logits"].shape == out["figure"].shape == (3, tasks.windows, 16, 24)  # full resolution
    assert out["figure"].min() >= 0 and out["figure"].max() <= 1
    assert out["bits"].shape == (3, frames) and out["length"].shape == (3, frames + 1)
    assert all(torch.isfinite(v).all() for v in out.values())
    assert model.heads.lines is not None and len(model.heads.read(out["figure"])) == 3


def small_encoder(name: str, **overrides) -> torch.nn.Module:
    return ENCODERS[name](ENCODER_CONFIGS[name](**{**SMALL[name], **overrides}))


def expected_map_size(name: str, encoder: torch.nn.Module, H: int, W: int) -> tuple[int, int]:
    """Map size as documented: 1x1 for the seed (late fusion into one vector), the patch grid for
    STAVE, else the trunk's two halvings to stride 4 (a max-pool stage rounds down, a strided stage
    rounds up)."""
    if name == "seed_temporal":
        return 1, 1
    if name == "stave":
        return H // encoder.cfg.patch_size, W // encoder.cfg.patch_size
    stages = encoder.cfg.full_resolution_stages

    def halve(n: int) -> int:
        for i in range(2):
            n = n // 2 if i < stages else (n + 1) // 2
        return n

    return halve(H), halve(W)


@pytest.mark.parametrize("name", sorted(ENCODERS))
@pytest.mark.parametrize("frames", [2, 5, 12])
@pytest.mark.parametrize("size", [(16, 24), (32, 32), (20, 28)])
def test_encoder_returns_a_feature_map(name, frames, size):
    torch.manual_seed(0)
    encoder = small_encoder(name).eval()
    with torch.no_grad():
        out = encoder(torch.rand(3, frames, *size) * 2 - 1)
    assert out.shape == (3, encoder.out_dim, *expected_map_size(name, encoder, *size))
    assert torch.isfinite(out).all()


def _left_edge_change(encoder: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """Largest change of each map column (W/4,) when the left 8 px of every frame change."""
    video = torch.rand(1, 4, 16, 128) * 2 - 1
    changed = video.clone()
    changed[..., :8] = torch.rand(1, 4, 16, 8) * 2 - 1
    with torch.no_grad():
        a, b = encoder(video), encoder(changed)  # (1, D, 4, 32)
    return (a - b).abs().amax(dim=(0, 1, 2))


@pytest.mark.parametrize("name", ["framewise", "early_temporal", "two_stream"])
def test_map_columns_keep_horizontal_layout(name):
    """Convolutional encoders keep the left-to-right layout the figure head spells out: changing the
    left edge of every frame changes the left columns of the map and leaves the far right alone
    (the motion stems' opponent norm and framewise's whole-frame token, statistics over the whole
    map, are left out here)."""
    torch.manual_seed(0)
    local = {"frame_token": False} if name == "framewise" else {"opponent": False}
    change = _left_edge_change(small_encoder(name, **local).eval())
    assert change[0] > 1e-5
    assert change[8:].max() <= 1e-6


@pytest.mark.parametrize("name", ["early_temporal", "two_stream"])
def test_opponent_norm_moves_the_far_side_of_the_map_only_slightly(name):
    """With the opponent norm (the default) every location shares the clip's motion statistics, so
    the far right moves, but by a small fraction of the change at the left edge."""
    torch.manual_seed(0)
    change = _left_edge_change(small_encoder(name).eval())
    assert change[8:].max() < 0.1 * change[:2].max()


def test_framewise_spatial_features_never_mix_frames():
    """Each frame's feature map depends on that frame alone: time only enters after the trunk."""
    net = FramewiseEncoder(FramewiseConfig(width=4, dim=16)).eval().frame_encoder
    video = torch.randn(2, 6, 16, 16)
    changed = video.clone()
    changed[:, 3] = torch.randn(2, 16, 16)
    with torch.no_grad():
        a = net(video.reshape(12, 1, 16, 16)).reshape(2, 6, 16, 4, 4)  # (B, T, D, h, w) at stride 4
        b = net(changed.reshape(12, 1, 16, 16)).reshape(2, 6, 16, 4, 4)
    untouched = [0, 1, 2, 4, 5]
    assert torch.allclose(a[:, untouched], b[:, untouched])
    assert not torch.allclose(a[:, 3], b[:, 3])


def test_framewise_without_temporal_layers_is_a_frame_average():
    """temporal_layers=0 (the schema allows it): the per-frame maps averaged over each temporal
    window, the windows in order as channels (K * D)."""
    torch.manual_seed(0)
    net = FramewiseEncoder(FramewiseConfig(width=4, dim=16, temporal_layers=0, windows=2, frame_token=False)).eval()
    video = torch.randn(2, 5, 16, 24)
    with torch.no_grad():
        maps = net.frame_encoder(video.reshape(10, 1, 16, 24)).reshape(2, 5, 16, 4, 6)  # (B, T, D, h, w)
        maps = maps + net.positions[:5, :, None, None]
        expected = torch.cat([maps[:, :3].mean(dim=1), maps[:, 3:].mean(dim=1)], dim=1)  # frames 0-2, 3-4
        out = net(video)
        assert out.shape == (2, net.out_dim, 4, 6) and net.out_dim == 2 * 16
        assert torch.allclose(out, expected, atol=1e-5)


def test_framewise_time_mixes_only_at_the_same_map_location():
    """The transformer over frames runs per location: every location sees all frames (frame order
    matters through the positions), and a frame change reaches only the locations it touches (in
    the location channels; the whole-frame channels see the whole frame)."""
    torch.manual_seed(0)
    net = FramewiseEncoder(FramewiseConfig(width=4, dim=16)).eval()
    video = torch.randn(1, 6, 16, 128)
    with torch.no_grad():
        assert not torch.allclose(net(video), net(video.flip(1)), atol=1e-4)
        changed = video.clone()
        changed[:, 2, :, :8] = torch.randn(16, 8)  # one frame, left edge only
        local = net.cfg.windows * net.cfg.dim  # the first K * D channels: the locations'
        a, b = net(video)[:, :local], net(changed)[:, :local]
    assert not torch.allclose(a[..., 0], b[..., 0])
    assert torch.allclose(a[..., 8:], b[..., 8:], atol=1e-6)


def test_framewise_frame_token_follows_whole_frame_brightness_in_time():
    """The whole-frame channels are the same at every location and follow how frames differ as a
    whole: flipping a brightness code (the seed's patterns) moves them far more than a brightness
    offset shared by every frame (the clip's overall look), which the standardisation over frames
    removes."""
    torch.manual_seed(0)
    net = FramewiseEncoder(FramewiseConfig(width=4, dim=16)).eval()
    noise = 0.5 + 0.2 * torch.randn(1, 8, 32, 48)
    code = torch.tensor([1, 0, 1, 1, 0, 0, 1, 0]).float()[None, :, None, None]  # (1, T, 1, 1)
    coded = noise * (1 + 0.05 * (2 * code - 1))
    with torch.no_grad():
        whole = lambda video: net(video)[:, net.cfg.windows * net.cfg.dim:]  # (B, K*D, h, w): the whole-frame channels
        a = whole(coded)
        flipped = whole(noise * (1 + 0.05 * (1 - 2 * code)))
        offset = whole(coded + 0.025)  # as large as the code
    assert torch.allclose(a, a[..., :1, :1].expand_as(a))
    assert (a - flipped).abs().mean() > 5 * (a - offset).abs().mean()


@pytest.mark.parametrize("stem", ["conv3d", "difference"])
def test_early_temporal_stem_responds_to_motion_direction(stem):
    """The 3-D stem sees frame pairs (of difference frames), so the same frames played backwards
    give another motion map and another output."""
    torch.manual_seed(0)
    net = EarlyTemporalEncoder(EarlyTemporalConfig(width=4, dim=16, stem=stem)).eval()
    video = torch.randn(1, 1, 6, 16, 16)  # (B, C, T, H, W)
    with torch.no_grad():
        forward, backward = net.stem(video), net.stem(video.flip(2))  # (B, C * K, H, W)
        assert (forward - backward).abs().mean() > 0.05 * forward.abs().mean()
        # fresh weights damp the difference, but it is well above float rounding (~1e-7)
        assert (net(video[:, 0]) - net(video[:, 0].flip(1))).abs().max() > 1e-6


def test_early_temporal_difference_stem_ignores_static_content():
    """Difference stem: a static clip gives exactly the response to an all-zero clip (nothing
    learned sees static content), while a moving clip does not; the conv3d stem does see it."""
    torch.manual_seed(0)
    static = torch.randn(2, 1, 16, 16).expand(2, 5, 16, 16)  # (B, T, H, W): all frames equal
    zeros = torch.zeros(2, 5, 16, 16)
    moving = torch.randn(2, 5, 16, 16)
    difference = EarlyTemporalEncoder(EarlyTemporalConfig(width=4, dim=16, stem="difference")).eval()
    conv3d = EarlyTemporalEncoder(EarlyTemporalConfig(width=4, dim=16, stem="conv3d")).eval()
    with torch.no_grad():
        assert torch.equal(difference(static), difference(zeros))
        assert not torch.allclose(difference(moving), difference(zeros))
        assert not torch.allclose(conv3d.stem(static[:, None]), conv3d.stem(zeros[:, None]))
        assert not torch.allclose(conv3d(static), conv3d(zeros))


def test_early_temporal_difference_stem_spans_two_difference_frames():
    """The stem's first conv has temporal kernel 2, over difference frames: 3 frames (two
    difference frames) suffice, and a 2-frame clip (one difference frame) is refused by name."""
    net = EarlyTemporalEncoder(EarlyTemporalConfig(width=4, dim=16, stem="difference")).eval()
    assert net.stem.pairs.kernel_size[0] == 2
    with torch.no_grad():
        assert net(torch.randn(1, 3, 16, 16)).shape == (1, 16, 4, 4)
        with pytest.raises(ValueError, match="2 frames.*stem='difference'.*at least 3"):
            net(torch.randn(1, 2, 16, 16))


def test_early_temporal_unknown_stem_is_named():
    with pytest.raises(ValueError, match=r"stem='diff'.*\['conv3d', 'difference'\]"):
        EarlyTemporalConfig(stem="diff")


def test_unknown_encoder_and_option_are_named():
    with pytest.raises(ValueError, match="unknown encoder 'vit3000'.*early_temporal"):
        build_encoder("vit3000")
    with pytest.raises(ValueError, match=r"unknown options \['depth'\]"):
        build_encoder("framewise", depth=3)


TASKS = TaskSpec(tuple(f"c{i}" for i in range(8)), ("shapes",) * 8, ("shapes",), 4)


def test_model_file_round_trip_is_weights_only(tmp_path):
    model = build_model("early_temporal", TASKS, width=4, dim=16).eval()
    save_model(tmp_path / "m.pt", model, "early_temporal", {"seed": 3})
    torch.load(tmp_path / "m.pt", weights_only=True)  # plain tensors and builtins only
    loaded, info = load_model(tmp_path / "m.pt")
    video = torch.randn(2, 4, 16, 16)
    with torch.no_grad():
        assert torch.equal(model(video)["logits"], loaded(video)["logits"])
    assert info["extra"] == {"seed": 3}
    assert loaded.heads.spec == TASKS


def test_wrong_files_get_clear_messages(tmp_path):
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="expected a 'timeblind.model/3' file"):
        load_model(tmp_path / "other.pt")
    model = build_model("framewise", TASKS, width=4, dim=16)
    save_model(tmp_path / "m.pt", model, "framewise")
    payload = torch.load(tmp_path / "m.pt", weights_only=True)
    payload["encoder_config"]["dim"] = 32  # weights no longer fit the architecture
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="weights do not fit encoder 'framewise'"):
        load_model(tmp_path / "bad.pt")

    # an arbitrary pickled object: weights-only loading refuses it instead of unpickling it
    torch.save(argparse.Namespace(encoder="framewise"), tmp_path / "code.pt")
    with pytest.raises(ValueError, match="code.pt is refused: it is not a plain-tensor timeblind model file"):
        load_model(tmp_path / "code.pt")


def test_early_temporal_window_trunk_keeps_each_window_to_its_own_frames():
    """With window_trunk, frames of the last window change only the last window's channels: the
    12 frames give 11 pairs, split 3/3/3/2, so frames 10-11 enter pairs 9-10, the last window."""
    torch.manual_seed(0)
    net = EarlyTemporalEncoder(EarlyTemporalConfig(width=4, dim=16, window_trunk=True)).eval()
    video = torch.randn(1, 12, 16, 16)
    changed = video.clone()
    changed[:, 10:] = torch.randn(1, 2, 16, 16)
    with torch.no_grad():
        a, b = net(video), net(changed)  # (1, 16, 4, 4): 4 channels per window, in order
    assert a.shape == (1, 16, 4, 4)
    assert torch.allclose(a[:, :12], b[:, :12])
    assert not torch.allclose(a[:, 12:], b[:, 12:])


def test_early_temporal_window_trunk_needs_dim_a_multiple_of_windows():
    with pytest.raises(ValueError, match="dim=18 with window_trunk.*windows=4"):
        EarlyTemporalConfig(dim=18, window_trunk=True)
