"""Two-stream encoder: map shapes, key frames, segment isolation, segment and frame order, config checks."""

import pytest
import torch

from timeblind.models.config import TwoStreamConfig
from timeblind.models.two_stream import TwoStreamEncoder

SMALL = {"width": 4, "dim": 8, "stem_channels": 4}


def small(**overrides) -> TwoStreamEncoder:
    torch.manual_seed(0)
    return TwoStreamEncoder(TwoStreamConfig(**{**SMALL, **overrides})).eval()


@pytest.mark.parametrize(("segments", "frames"), [(1, 2), (2, 5), (4, 8), (4, 9), (3, 12)])
@pytest.mark.parametrize(("size", "grid"), [((16, 24), (4, 6)), ((32, 32), (8, 8)), ((20, 28), (5, 7))])
def test_output_map_shape(segments, frames, size, grid):
    """Stride 4, every segment's two streams in the channels: 2 * dim * segments."""
    net = small(segments=segments)
    assert net.out_dim == 16 * segments
    with torch.no_grad():
        out = net(torch.rand(2, frames, *size) * 2 - 1)
        spatial, temporal = net.streams(torch.rand(2, frames, *size) * 2 - 1)
    assert out.shape == (2, net.out_dim, *grid)
    assert spatial.shape == temporal.shape == (2, segments, 8, *grid)
    assert torch.isfinite(out).all()


def test_output_is_both_streams_of_each_segment_in_order():
    net = small(segments=3)
    video = torch.randn(2, 7, 16, 16)
    with torch.no_grad():
        out = net(video).unflatten(1, (3, 16))  # (B, S, 2D, h, w)
        spatial, temporal = net.streams(video)
    assert torch.equal(out[:, :, :8], spatial)
    assert torch.equal(out[:, :, 8:], temporal)


def test_too_few_frames_for_the_segments_is_named():
    net = small(segments=4)
    with pytest.raises(ValueError, match=r"7 frames.*segments=4.*at least 2 \* segments = 8"):
        net(torch.randn(1, 7, 16, 16))


def test_spatial_stream_reads_only_the_key_frames():
    """T=10, 4 segments: lengths 3, 3, 2, 2 -> key frames 1, 4, 7, 9 (each segment's middle)."""
    net = small(segments=4)
    video = torch.randn(2, 10, 16, 16)
    others = video.clone()
    non_key = [0, 2, 3, 5, 6, 8]
    others[:, non_key] = torch.randn(2, len(non_key), 16, 16)
    key = video.clone()
    key[:, 4] = torch.randn(2, 16, 16)  # the key frame of segment 1
    with torch.no_grad():
        spatial, temporal = net.streams(video)
        spatial_others, temporal_others = net.streams(others)
        spatial_key, _ = net.streams(key)
    assert torch.equal(spatial, spatial_others)
    assert not torch.allclose(temporal, temporal_others)
    assert not torch.allclose(spatial_key[:, 1], spatial[:, 1])
    assert torch.equal(spatial_key[:, [0, 2, 3]], spatial[:, [0, 2, 3]])


def test_frame_order_changes_the_temporal_stream_only():
    """Reversing each 3-frame segment keeps every key frame (the middle) in place: the spatial
    stream is unchanged, the temporal stream (frame pairs) and so the output are not."""
    net = small(segments=4)
    video = torch.randn(2, 12, 16, 16)
    reversed_segments = video.reshape(2, 4, 3, 16, 16).flip(2).reshape(2, 12, 16, 16)
    with torch.no_grad():
        spatial, temporal = net.streams(video)
        spatial_rev, temporal_rev = net.streams(reversed_segments)
        out, out_rev = net(video), net(reversed_segments)
    assert torch.equal(spatial, spatial_rev)
    assert not torch.allclose(temporal, temporal_rev)
    assert (out - out_rev).abs().max() > 1e-6  # above float rounding; fresh weights damp it
    assert (out[:, :8] - out_rev[:, :8]).abs().max() == 0


def test_no_frame_pair_straddles_two_segments():
    """Each segment goes through the stem alone: changing segment 0 leaves the others' streams."""
    net = small(segments=3)
    video = torch.randn(1, 9, 16, 16)
    changed = video.clone()
    changed[:, :3] = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        spatial, temporal = net.streams(video)
        spatial_c, temporal_c = net.streams(changed)
    assert torch.equal(temporal[:, 1:], temporal_c[:, 1:])
    assert torch.equal(spatial[:, 1:], spatial_c[:, 1:])
    assert not torch.allclose(temporal[:, 0], temporal_c[:, 0])


def test_segment_order_is_kept():
    """Swapping two whole segments of equal length swaps their blocks of channels: the segments are
    handed on in order, as the paper hands the LLM one token set per segment."""
    net = small(segments=2)
    video = torch.randn(1, 8, 16, 16)
    swapped = torch.cat([video[:, 4:], video[:, :4]], dim=1)
    with torch.no_grad():
        out, out_swapped = net(video), net(swapped)
    assert not torch.allclose(out, out_swapped, atol=1e-4)
    assert torch.allclose(out[:, :16], out_swapped[:, 16:], atol=1e-6)
    assert torch.allclose(out[:, 16:], out_swapped[:, :16], atol=1e-6)


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    net = TwoStreamEncoder(TwoStreamConfig(**SMALL, segments=2)).train()
    net(torch.rand(2, 5, 16, 16) * 2 - 1).square().sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"segments": 0}, r"segments=0: expected a positive integer"),
        ({"dim": 2.5}, r"dim=2.5: expected a positive integer"),
        ({"full_resolution_stages": 4}, r"full_resolution_stages=4: expected 0..3"),
    ],
)
def test_config_validation_messages(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TwoStreamConfig(**kwargs)
