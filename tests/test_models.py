"""Encoders: output shapes, where time enters, and safe model files."""

import argparse

import pytest
import torch

from timeblind.models import ENCODERS, build_classifier, load_model, save_model


SMALL = {  # a few-thousand-parameter version of every encoder
    "framewise": {"width": 4, "dim": 16},
    "early_temporal": {"width": 4, "dim": 16},
    "seed_temporal": {"width": 4, "feature_dim": 16, "hidden_dim": 16, "heads": 4, "temporal_layers": 1,
                      "feedforward": 32},
    "stave": {"patch_size": 4, "dim": 16, "depth": 2, "heads": 2, "image_size": 16},
}


def test_every_registered_encoder_is_covered():
    assert set(SMALL) == set(ENCODERS)


@pytest.mark.parametrize("encoder", sorted(ENCODERS))
@pytest.mark.parametrize("frames", [2, 5, 12])
def test_logits_shape_for_any_clip_length(encoder, frames):
    model = build_classifier(encoder, num_classes=8, **SMALL[encoder]).eval()
    with torch.no_grad():
        logits = model(torch.randn(3, frames, 16, 24))
    assert logits.shape == (3, 8)
    assert torch.isfinite(logits).all()


def test_framewise_spatial_features_never_mix_frames():
    """Each frame's embedding depends on that frame alone: time only enters after pooling."""
    net = build_classifier("framewise", 4, width=4, dim=16).eval().encoder.frame_encoder
    video = torch.randn(2, 6, 16, 16)
    changed = video.clone()
    changed[:, 3] = torch.randn(2, 16, 16)
    with torch.no_grad():
        a = net(video.reshape(12, 1, 16, 16)).reshape(2, 6, -1)
        b = net(changed.reshape(12, 1, 16, 16)).reshape(2, 6, -1)
    untouched = [0, 1, 2, 4, 5]
    assert torch.allclose(a[:, untouched], b[:, untouched])
    assert not torch.allclose(a[:, 3], b[:, 3])


def test_early_temporal_stem_responds_to_motion_direction():
    """The 3-D stem sees frame pairs, so the same frames played backwards give another motion map."""
    stem = build_classifier("early_temporal", 4, width=4, dim=16).eval().encoder.stem
    video = torch.randn(1, 1, 6, 16, 16)  # (B, C, T, H, W)
    with torch.no_grad():
        forward, backward = stem(video).mean(dim=2), stem(video.flip(2)).mean(dim=2)  # (B, C, H, W)
    assert (forward - backward).abs().mean() > 0.05 * forward.abs().mean()


def test_unknown_encoder_and_option_are_named():
    with pytest.raises(ValueError, match="unknown encoder 'vit3000'.*early_temporal"):
        build_classifier("vit3000", 4)
    with pytest.raises(ValueError, match=r"unknown options \['depth'\]"):
        build_classifier("framewise", 4, depth=3)


def test_model_file_round_trip_is_weights_only(tmp_path):
    model = build_classifier("early_temporal", 8, width=4, dim=16).eval()
    save_model(tmp_path / "m.pt", model, "early_temporal", [f"c{i}" for i in range(8)], {"seed": 3})
    torch.load(tmp_path / "m.pt", weights_only=True)  # plain tensors and builtins only
    loaded, info = load_model(tmp_path / "m.pt")
    video = torch.randn(2, 4, 16, 16)
    with torch.no_grad():
        assert torch.equal(model(video), loaded(video))
    assert info["extra"] == {"seed": 3}


def test_wrong_files_get_clear_messages(tmp_path):
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="expected a 'timeblind.classifier/1' file"):
        load_model(tmp_path / "other.pt")
    model = build_classifier("framewise", 8, width=4, dim=16)
    save_model(tmp_path / "m.pt", model, "framewise", list("abcdefgh"))
    payload = torch.load(tmp_path / "m.pt", weights_only=True)
    payload["encoder_config"]["dim"] = 32  # weights no longer fit the architecture
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="weights do not fit encoder 'framewise'"):
        load_model(tmp_path / "bad.pt")

    # an arbitrary pickled object: weights-only loading refuses it instead of unpickling it
    torch.save(argparse.Namespace(encoder="framewise"), tmp_path / "code.pt")
    with pytest.raises(ValueError, match="not a timeblind model file"):
        load_model(tmp_path / "code.pt")
