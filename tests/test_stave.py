"""STAVE encoder: shapes, where time enters, identity start, RoPE, config checks, gradients."""

import copy

import pytest
import torch

from timeblind.models.config import StaveConfig
from timeblind.models.stave import SpatialAttention, StaveEncoder, apply_rotary, rotary_tables


def _randomise_temporal_out(model: StaveEncoder) -> None:
    """Leave the identity start so the temporal branch actually does something."""
    for block in model.blocks:
        if block.temporal is not None:
            torch.nn.init.normal_(block.temporal.attn.proj.weight, std=0.2)


@pytest.mark.parametrize(("frames", "size"), [(8, 32), (5, 48)])
def test_output_shape(frames, size):
    torch.manual_seed(0)
    model = StaveEncoder(StaveConfig()).eval()
    with torch.no_grad():
        out = model(torch.rand(2, frames, size, size) * 2 - 1)
    assert model.out_dim == 4 * 64  # the patch tokens of 4 temporal windows, in order
    assert out.shape == (2, 4 * 64, size // 4, size // 4)
    assert torch.isfinite(out).all()


def test_non_square_and_non_divisible_frames():
    model = StaveEncoder(StaveConfig(dim=16, depth=2)).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 16, 26)).shape == (1, 4 * 16, 4, 6)  # the 4x6 patch grid


def test_map_is_the_patch_grid_of_window_averaged_tokens():
    """map[:, k * D:(k + 1) * D, i, j] is the token of the patch in row i, column j (row-major),
    averaged over the frames of temporal window k."""
    torch.manual_seed(0)
    model = StaveEncoder(StaveConfig(dim=16, depth=2, windows=2)).eval()
    video = torch.randn(2, 5, 12, 20)  # a 3x5 patch grid; windows: frames 0-2, 3-4
    with torch.no_grad():
        tokens, out = model.tokens(video), model(video).unflatten(1, (2, 16))  # (B, T, N, D), (B, K, D, 3, 5)
    assert torch.allclose(out[:, 0, :, 1, 4], tokens[:, :3, 1 * 5 + 4].mean(dim=1), atol=1e-6)
    assert torch.allclose(out[:, 1, :, 2, 0], tokens[:, 3:, 2 * 5 + 0].mean(dim=1), atol=1e-6)


def test_temporal_blocks_zero_keeps_frames_independent():
    torch.manual_seed(0)
    model = StaveEncoder(StaveConfig(temporal_blocks=0, dim=32, depth=2, time_embedding=False)).eval()
    assert all(b.temporal is None for b in model.blocks)
    video = torch.randn(2, 6, 16, 16)
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    with torch.no_grad():
        tokens, tokens_perm = model.tokens(video), model.tokens(video[:, perm])
        assert torch.allclose(tokens[:, perm], tokens_perm, atol=1e-5)
        # the map keeps the order of its 4 windows (frames 0-1, 2-3, 4, 5), not of the frames inside one
        within = torch.tensor([1, 0, 3, 2, 4, 5])
        assert torch.allclose(model(video), model(video[:, within]), atol=1e-5)
        assert not torch.allclose(model(video), model(video.flip(1)), atol=1e-5)


def test_temporal_attention_makes_output_depend_on_frame_order():
    torch.manual_seed(0)
    model = StaveEncoder(StaveConfig(dim=32, depth=2)).eval()
    _randomise_temporal_out(model)
    video = torch.randn(2, 6, 16, 16)
    with torch.no_grad():
        a, b = model(video), model(video.flip(1))
    assert (a - b).abs().max() > 1e-3


def test_temporal_blocks_selects_last_blocks():
    model = StaveEncoder(StaveConfig(depth=4, temporal_blocks=2))
    assert [b.temporal is not None for b in model.blocks] == [False, False, True, True]
    assert all(b.temporal is not None for b in StaveEncoder(StaveConfig(depth=3)).blocks)


def test_head_scale_sets_bottleneck_heads():
    for scale, heads in [(0.25, 1), (0.5, 2), (1.0, 4)]:
        model = StaveEncoder(StaveConfig(head_scale=scale))
        attn = model.blocks[0].temporal.attn
        assert (attn.heads, attn.head_dim) == (heads, 16)
        assert attn.proj.in_features == heads * 16


@pytest.mark.parametrize("order", ["spatial_first", "temporal_first"])
def test_fresh_temporal_sublayer_is_identity(order):
    torch.manual_seed(0)
    model = StaveEncoder(StaveConfig(dim=32, depth=2, order=order)).eval()
    block = model.blocks[0]
    x = torch.randn(2, 5, 16, 32)  # (B, T, N, D)
    rope = (model.rope_cos[:5], model.rope_sin[:5])
    with torch.no_grad():
        assert torch.equal(block.temporal(block.norm3(x), rope), torch.zeros_like(x))
        without = copy.deepcopy(block)
        without.temporal = None
        assert torch.allclose(block(x, rope), without(x, rope))
        # the whole fresh encoder equals its purely spatial twin
        spatial = copy.deepcopy(model)
        for b in spatial.blocks:
            b.temporal = None
        video = torch.randn(2, 5, 16, 16)
        assert torch.allclose(model(video), spatial(video), atol=1e-6)


def test_rope_scores_depend_only_on_frame_offset():
    torch.manual_seed(0)
    cos, sin = rotary_tables(64, 16)
    q, k = torch.randn(16), torch.randn(16)

    def score(i, j):
        return (apply_rotary(q, cos[i], sin[i]) * apply_rotary(k, cos[j], sin[j])).sum()

    for i, j, s in [(0, 3, 7), (5, 2, 20), (10, 10, 33)]:
        assert torch.allclose(score(i, j), score(i + s, j + s), atol=1e-4)
    assert not torch.allclose(score(0, 3), score(0, 5), atol=1e-3)
    # rotation keeps the norm
    assert torch.allclose(apply_rotary(q, cos[9], sin[9]).norm(), q.norm(), atol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"order": "sideways"}, r"order='sideways'.*spatial_first.*temporal_first"),
        ({"dim": 30, "heads": 4}, r"dim=30 .*heads=4"),
        ({"dim": 36, "heads": 4}, r"head dim .* 9 .*even"),
        ({"temporal_blocks": 5, "depth": 4}, r"temporal_blocks=5.*0\.\.depth=4"),
        ({"temporal_blocks": -1}, r"temporal_blocks=-1"),
        ({"head_scale": 0.0}, r"head_scale=0.0"),
        ({"image_size": 30, "patch_size": 4}, r"image_size=30.*patch_size=4"),
    ],
)
def test_config_validation_messages(kwargs, message):
    with pytest.raises(ValueError, match=message):
        StaveConfig(**kwargs)


def test_too_many_frames_is_named():
    model = StaveEncoder(StaveConfig(dim=16, depth=1, max_frames=4))
    with pytest.raises(ValueError, match="5 frames.*max_frames=4"):
        model(torch.randn(1, 5, 8, 8))


def test_gradient_reaches_zero_initialised_temporal_attention():
    torch.manual_seed(0)
    model = StaveEncoder(StaveConfig(dim=32, depth=2))
    model(torch.randn(2, 4, 16, 16)).pow(2).sum().backward()
    for block in model.blocks:
        proj = block.temporal.attn.proj
        assert proj.weight.grad is not None and proj.weight.grad.abs().sum() > 0
        assert proj.bias.grad.abs().sum() > 0
    # after one step away from zero, gradient reaches q, k, v too
    model.zero_grad()
    _randomise_temporal_out(model)
    model(torch.randn(2, 4, 16, 16)).pow(2).sum().backward()
    assert model.blocks[0].temporal.attn.qkv.weight.grad.abs().sum() > 0


def test_time_embedding_tells_the_values_which_frame_they_come_from():
    """Without a frame-index signal, a STAVE without temporal attention and with one temporal window
    is a per-frame model averaged over frames: reversing time changes nothing. The time embedding
    breaks that tie."""
    torch.manual_seed(0)
    video = torch.randn(2, 5, 16, 16)
    outputs = {}
    for flag in (False, True):
        encoder = StaveEncoder(StaveConfig(patch_size=4, dim=16, depth=1, heads=2, image_size=16,
                                           temporal_blocks=0, time_embedding=flag, windows=1)).eval()
        with torch.no_grad():
            outputs[flag] = encoder(video), encoder(video.flip(1))
    assert torch.allclose(*outputs[False], atol=1e-5)
    assert not torch.allclose(*outputs[True], atol=1e-5)


@pytest.mark.parametrize("patch_size", [2, 4, 8])
def test_conv_stem_keeps_the_patch_grid_and_frame_independence(patch_size):
    """The conv stem reads each frame alone: without temporal attention (and one temporal window),
    frame order is invisible."""
    torch.manual_seed(0)
    model = StaveEncoder(StaveConfig(stem="conv", patch_size=patch_size, dim=16, depth=1, heads=2,
                                     image_size=32, temporal_blocks=0, windows=1)).eval()
    video = torch.randn(2, 4, 32, 24)
    with torch.no_grad():
        out = model(video)
        assert out.shape == (2, 16, 32 // patch_size, 24 // patch_size)
        odd = model(torch.randn(1, 2, 30, 18))  # each stride-2 stage rounds up
        assert odd.shape[-2:] == (-(-30 // patch_size), -(-18 // patch_size))
        assert torch.allclose(out, model(video.flip(1)), atol=1e-5)


@pytest.mark.parametrize("stem", ["patch", "conv"])
def test_temporal_patch_reads_frame_pairs_and_pads_an_odd_clip(stem):
    """temporal_patch=2 (Qwen2-VL's tubelets): order inside a pair matters even with no temporal
    attention (one temporal window), the order of whole pairs does not; 5 frames become 3 tokens
    per position."""
    torch.manual_seed(0)
    model = StaveEncoder(StaveConfig(stem=stem, temporal_patch=2, dim=16, depth=1, heads=2, image_size=16,
                                     temporal_blocks=0, windows=1)).eval()
    video = torch.randn(2, 6, 16, 16)
    with torch.no_grad():
        out = model(video)
        pairs_swapped = model(video[:, [2, 3, 0, 1, 4, 5]])
        inside_swapped = model(video[:, [1, 0, 2, 3, 4, 5]])
        assert model.tokens(video[:, :5]).shape == (2, 3, 16, 16)
    assert torch.allclose(out, pairs_swapped, atol=1e-5)
    assert not torch.allclose(out, inside_swapped, atol=1e-4)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"stem": "resnet"}, r"stem='resnet'.*patch.*conv"),
        ({"stem": "conv", "patch_size": 6, "image_size": 36}, r"patch_size=6.*power of 2"),
        ({"temporal_patch": 0}, r"temporal_patch=0"),
    ],
)
def test_stem_validation_messages(kwargs, message):
    with pytest.raises(ValueError, match=message):
        StaveConfig(**kwargs)


def test_too_many_temporal_patches_is_named():
    model = StaveEncoder(StaveConfig(dim=16, depth=1, max_frames=2, temporal_patch=2))
    model(torch.randn(1, 4, 8, 8))  # two pairs fit
    with pytest.raises(ValueError, match="5 frames.*max_frames=2 temporal patches of 2"):
        model(torch.randn(1, 5, 8, 8))


# ----------------------------------------------------------------------------- spatial window attention

def test_spatial_window_covering_the_grid_is_global_attention():
    """A window at least the size of the patch grid (per axis) is one unpadded window: the same
    computation as global spatial attention, so the same weights give the same outputs."""
    torch.manual_seed(0)
    base = dict(dim=16, depth=2, heads=2, image_size=16)
    global_model = StaveEncoder(StaveConfig(**base)).eval()
    _randomise_temporal_out(global_model)
    video = torch.randn(2, 3, 16, 24)  # a 4x6 patch grid
    with torch.no_grad():
        expected = global_model(video)
        for window in ([8, 8], (4, 100), [4, 6]):
            windowed = StaveEncoder(StaveConfig(**base, spatial_window=window)).eval()
            windowed.load_state_dict(global_model.state_dict())
            assert torch.equal(windowed(video), expected), window
        # a window smaller than the grid does change the outputs
        split = StaveEncoder(StaveConfig(**base, spatial_window=[2, 3])).eval()
        split.load_state_dict(global_model.state_dict())
        assert not torch.allclose(split(video), expected, atol=1e-4)


def _window_attention(grid=(5, 7), window=(3, 4)) -> SpatialAttention:
    torch.manual_seed(0)
    attn = SpatialAttention(16, 2, window).eval()
    torch.nn.init.normal_(attn.attn.qkv.bias, std=1.0)  # padded (zero) tokens would give keys of weight
    return attn


def test_spatial_window_attention_stays_inside_its_window():
    """Grid 5x7, window 3x4: windows rows {0-2, 3-4} x columns {0-3, 4-6} (the last ones padded).
    Perturbing the patches of one window changes that window's outputs and no other's."""
    attn = _window_attention()
    x = torch.randn(2, 3, 35, 16)  # (B, T, N, D)
    rows, cols = torch.arange(35) // 7, torch.arange(35) % 7
    window_of = (rows >= 3) * 2 + (cols >= 4)  # 0..3, row-major
    with torch.no_grad():
        out = attn(x, (5, 7))
        for w in range(4):
            inside = window_of == w
            x2 = x.clone()
            x2[:, :, inside] += torch.randn_like(x2[:, :, inside])
            out2 = attn(x2, (5, 7))
            assert torch.equal(out2[:, :, ~inside], out[:, :, ~inside]), w
            assert (out2[:, :, inside] - out[:, :, inside]).norm(dim=-1).gt(1e-3).all(), w  # every token


def test_padded_spatial_windows_equal_plain_attention_on_each_window():
    """Each window's outputs are plain attention over its real patches only: the padding tokens of
    the bottom and right windows are never attended to."""
    attn = _window_attention()
    x = torch.randn(2, 3, 35, 16)
    grid = x.reshape(6, 5, 7, 16)  # (B*T, gh, gw, D)
    with torch.no_grad():
        out = attn(x, (5, 7)).reshape(6, 5, 7, 16)
        for r0, r1 in [(0, 3), (3, 5)]:
            for c0, c1 in [(0, 4), (4, 7)]:
                tokens = grid[:, r0:r1, c0:c1].reshape(6, -1, 16)  # the window's real patches, row-major
                expected = attn.attn(tokens).reshape(6, r1 - r0, c1 - c0, 16)
                assert torch.allclose(out[:, r0:r1, c0:c1], expected, atol=1e-6), (r0, c0)


def test_spatial_window_runs_through_the_encoder_and_trains():
    torch.manual_seed(0)
    model = StaveEncoder(StaveConfig(dim=16, depth=2, heads=2, image_size=16, spatial_window=[3, 4]))
    out = model(torch.randn(2, 3, 20, 28))  # a 5x7 patch grid: padded windows
    assert out.shape == (2, 4 * 16, 5, 7) and torch.isfinite(out).all()
    out.pow(2).sum().backward()
    assert model.blocks[0].spatial.attn.qkv.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("window", [[0, 4], [4], "x", [4, 2.5], [4, 4, 4], [True, 4], 4])
def test_bad_spatial_window_is_named(window):
    with pytest.raises(ValueError, match=r"spatial_window=.*expected None or two positive integers"):
        StaveConfig(spatial_window=window)


def test_spatial_window_accepts_a_tuple_or_a_list():
    assert StaveConfig(spatial_window=(12, 18)).spatial_window == StaveConfig(spatial_window=[12, 18]).spatial_window
    assert StaveConfig().spatial_window is None
