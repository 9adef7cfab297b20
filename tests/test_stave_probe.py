"""The STAVE probe: which stage of a STAVE model still tells figure from ground."""

import numpy as np
import pytest
import torch

from timeblind.core.tasks import TaskSpec
from timeblind.data.dataset import StimulusConfig, StimulusDataset, write_dataset
from timeblind.evaluation.stave_probe import patch_labels, probe_auc, probe_stave
from timeblind.models.registry import build_model
from timeblind.stimuli import MotionConfig

pytestmark = pytest.mark.usefixtures("one_thread")


def test_probe_finds_a_figure_whose_sign_flips_from_clip_to_clip():
    """Figure tokens stand out on one feature, positive in half the clips and negative in the other
    half: a linear probe on the raw feature could not tell, the probe on deviations can."""
    g = torch.Generator().manual_seed(0)
    B, N, F = 40, 64, 8
    labels = (torch.rand(B, N, generator=g) < 0.25).long()
    features = torch.randn(B, N, F, generator=g)
    sign = torch.where(torch.arange(B) % 4 < 2, 1.0, -1.0)[:, None]
    features[..., 0] += 3.0 * sign * labels
    assert probe_auc(features, labels) > 0.9
    assert abs(probe_auc(torch.randn(B, N, F, generator=g), labels) - 0.5) < 0.1  # nothing there: chance


def test_patch_labels_leave_outline_patches_out():
    masks = torch.zeros(1, 2, 8, 8)
    masks[..., :4, :4] = 1.0  # one whole patch of figure
    masks[..., 4:6, 4:8] = 1.0  # half a patch: the outline
    assert patch_labels(masks, (2, 2)).tolist() == [[1, 0, 0, -1]]


def test_probe_of_a_stave_model_runs_every_stage_in_order(tmp_path):
    cfg = StimulusConfig(height=32, width=32, motion=MotionConfig(frames=6), categories=("shapes",),
                         shapes=("circle", "square"))
    write_dataset(tmp_path, cfg, 0, {"test": 8}, log=lambda *_: None)
    data = StimulusDataset(tmp_path, "test")
    torch.manual_seed(0)
    model = build_model("stave", TaskSpec(("circle", "square"), ("shapes", "shapes"), ("shapes",), 6),
                        stem="conv", dim=16, depth=2, heads=2)
    table = probe_stave(model, np.stack([data.clip(i) for i in range(8)]), np.stack([data.mask(i) for i in range(8)]),
                        batch_size=4)
    assert table["stage"].tolist() == ["input", "stem", "stem pairs", "attention 1", "block 1", "attention 2",
                                       "block 2", "pooled", "figure"]
    auc = dict(zip(table["stage"], table["auc"]))
    assert auc["input"] > 0.8  # the motion is in the clips: the fixed motion-energy front end finds the figure
    assert (table["clips"] == 8).all()


def test_probe_refuses_a_model_that_is_not_stave():
    model = build_model("framewise", TaskSpec(("circle",), ("shapes",), ("shapes",), 4), width=4, dim=8)
    with pytest.raises(ValueError, match="needs a STAVE model; got FramewiseEncoder"):
        probe_stave(model, np.zeros((4, 4, 16, 16), np.uint8), np.zeros((4, 4, 16, 16), np.uint8))
