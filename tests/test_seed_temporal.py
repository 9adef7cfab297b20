"""Seed temporal encoder: shapes for any clip length, the seed's pair loop, the position buffer."""

import pytest
import torch

from timeblind.models.config import SeedTemporalConfig
from timeblind.models.seed_temporal import SeedTemporalEncoder, next_frame_pairs

SMALL = dict(width=4, feature_dim=16, hidden_dim=16, heads=4, temporal_layers=1, feedforward=32, max_frames=32)


def small(**overrides) -> SeedTemporalEncoder:
    return SeedTemporalEncoder(SeedTemporalConfig(**{**SMALL, **overrides}))


def test_output_shape_for_any_clip_length():
    net = small().eval()
    assert net.out_dim == 4 * 16  # one vector per temporal window, in order
    with torch.no_grad():
        for frames in (2, 4, 16):
            out = net(torch.rand(2, frames, 16, 24) * 2 - 1)
            assert out.shape == (2, 4 * 16, 1, 1)  # as a 1x1 map
            assert torch.isfinite(out).all()
            assert net.sequence(torch.rand(2, frames, 16, 16) * 2 - 1).shape == (2, frames, 16)


def test_output_is_the_mean_of_the_sequence_per_window():
    torch.manual_seed(0)
    net = small(windows=2).eval()
    video = torch.rand(2, 5, 16, 16) * 2 - 1
    with torch.no_grad():
        out, sequence = net(video)[:, :, 0, 0], net.sequence(video)  # (B, K * D), (B, T, D)
    assert torch.allclose(out[:, :16], sequence[:, :3].mean(dim=1), atol=1e-6)  # frames 0-2
    assert torch.allclose(out[:, 16:], sequence[:, 3:].mean(dim=1), atol=1e-6)  # frames 3-4


def test_zero_temporal_layers_runs():
    """temporal_layers=0 is allowed by the config schema: the transformer is skipped."""
    net = small(temporal_layers=0).eval()
    with torch.no_grad():
        assert net(torch.rand(2, 3, 16, 16)).shape == (2, 4 * 16, 1, 1)


def test_clip_longer_than_max_frames_fails_clearly():
    net = small(max_frames=8).eval()
    with pytest.raises(ValueError, match="clip has 9 frames, encoder supports at most max_frames=8"):
        net(torch.zeros(1, 9, 16, 16))


def seed_loop(x, layers, blend=0.3):
    """A literal transcription of the seed's temporal difference loop."""
    for layer in layers:
        B, T, D = x.shape
        diffs = []
        for t in range(T):
            if t < T - 1:
                pair = torch.cat([x[:, t], x[:, t + 1]], dim=-1)
            else:
                pair = torch.cat([x[:, t], x[:, t]], dim=-1)  # last frame paired with itself
            diffs.append(layer(pair))
        diff = torch.stack(diffs, dim=1)
        x = (1 - blend) * x + blend * diff
    return x


@pytest.mark.parametrize("frames", [1, 2, 7])
def test_vectorised_pair_blend_equals_seed_loop(frames):
    torch.manual_seed(0)
    net = small()
    x = torch.randn(3, frames, 16)
    with torch.no_grad():
        expected = seed_loop(x, net.diff_layers, blend=0.3)
        got = net.temporal_differences(x)
        assert torch.allclose(got, expected, atol=1e-6)
        pairs = next_frame_pairs(x)
        assert torch.equal(pairs[:, -1, :16], pairs[:, -1, 16:])


def test_position_table_is_a_non_persistent_buffer():
    net = small(position_base=1000.0)
    assert "positions" in dict(net.named_buffers())
    assert "positions" not in net.state_dict()
    assert net.positions.shape == (32, 16)
    # base 1000: the last sine/cosine pair has frequency 1000 ** (-(D-2)/D)
    freq = 1000.0 ** (-14 / 16)
    assert torch.allclose(net.positions[5, 14], torch.sin(torch.tensor(5 * freq)), atol=1e-6)
    net = net.to(torch.float64)
    assert net.positions.dtype == torch.float64
    net = net.to("meta")
    assert net.positions.device.type == "meta"


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    net = small().train()
    net(torch.rand(2, 5, 16, 16) * 2 - 1).square().sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_deterministic_under_manual_seed():
    def run():
        torch.manual_seed(123)
        net = small().eval()
        with torch.no_grad():
            return net(torch.rand(2, 6, 16, 16) * 2 - 1)

    assert torch.equal(run(), run())


def test_time_encoding_off_makes_the_transformer_blind_to_frame_order():
    """Without the frame-index table and difference layers (and with one temporal window), the
    encoder is a set function of its frames: shuffling them leaves the output unchanged; with the
    table it does not."""
    torch.manual_seed(0)
    video = torch.randn(2, 6, 16, 16)
    order = torch.tensor([3, 0, 5, 1, 4, 2])
    for time_encoding, unchanged in ((False, True), (True, False)):
        net = SeedTemporalEncoder(SeedTemporalConfig(width=4, feature_dim=8, hidden_dim=8, heads=2, temporal_layers=1,
                                                     feedforward=16, diff_layers=0, time_encoding=time_encoding,
                                                     windows=1)).eval()
        with torch.no_grad():
            same = torch.allclose(net(video), net(video[:, order]), atol=1e-5)
        assert same is unchanged
