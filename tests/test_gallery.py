"""The gallery: pixel attribution maps per model, the share inside the figure, the written files."""

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from timeblind.core.tasks import TaskSpec, targets_for
from timeblind.data.dataset import StimulusConfig, StimulusDataset, write_dataset
from timeblind.models.checkpoint import save_model
from timeblind.models.registry import VideoModel, build_model
from timeblind.plots.gallery import (COLUMNS, MASK, VIDEO, attribute, figure_footprint, gallery_clips, inside_share,
                                     write_gallery)
from timeblind.stimuli import MotionConfig
from timeblind.stimuli.categories import WordOptions

H, W = 16, 40


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A data set with closed classes, words and patterns, and two tiny untrained models."""
    root = tmp_path_factory.mktemp("gallery")
    cfg = StimulusConfig(height=H, width=W, motion=MotionConfig(frames=4), categories=("shapes", "words", "patterns"),
                         shapes=("circle", "star"), words=WordOptions(vocabulary=6, held_out=2))
    manifest = write_dataset(root / "data", cfg, 0, {"test": 9}, log=lambda *_: None)
    tasks = TaskSpec.from_manifest(manifest)
    paths = []
    for encoder, options in (("framewise", {"width": 4, "dim": 16}), ("motion_energy", {"width": 4, "dim": 16})):
        torch.manual_seed(0)
        path = root / f"{encoder}.pt"
        save_model(path, build_model(encoder, tasks, **options).eval(), encoder, extra={"name": encoder, "seed": 0})
        paths.append(path)
    return root, tasks, paths


class OnePixel(nn.Module):
    """An encoder that sees pixel (y, x) of every frame and nothing else: (B, T, H, W) -> (B, 8, 1, 2)."""

    def __init__(self, frames: int, y: int, x: int):
        super().__init__()
        self.y, self.x, self.out_dim = y, x, 8
        self.mix = nn.Linear(frames, 2 * self.out_dim)

    def forward(self, video):
        features = torch.tanh(self.mix(video[:, :, self.y, self.x]))  # (B, 16)
        return features.reshape(len(video), self.out_dim, 1, 2)  # two columns, so the reading head has a layout


@pytest.mark.parametrize("category", ["shapes", "words"])
def test_a_model_that_sees_one_pixel_is_attributed_to_that_pixel(tiny, category):
    _, tasks, _ = tiny
    torch.manual_seed(0)
    model = VideoModel(OnePixel(tasks.frames, y=3, x=29), tasks).eval()
    label = tasks.class_categories.index(category)
    targets = {k: torch.from_numpy(v) for k, v in targets_for(tasks, np.array([label])).items()}
    video = torch.rand(1, tasks.frames, H, W) * 2 - 1
    amap, to = attribute(model, video, targets, samples=8, noise=0.1)
    assert to == VIDEO and amap.shape == (H, W)
    assert amap[3, 29] > 0 and np.unravel_index(amap.argmax(), amap.shape) == (3, 29)
    footprint = np.zeros((H, W), bool)
    footprint[3, 29] = True
    assert inside_share(amap, footprint) == pytest.approx(1.0)
    assert inside_share(amap, ~footprint) == pytest.approx(0.0)


def test_attribution_is_deterministic_and_noise_free_without_smoothing(tiny):
    _, tasks, _ = tiny
    torch.manual_seed(0)
    model = build_model("framewise", tasks, width=4, dim=16).eval()
    targets = {k: torch.from_numpy(v) for k, v in targets_for(tasks, np.array([0])).items()}
    video = torch.rand(1, tasks.frames, H, W) * 2 - 1
    a, _ = attribute(model, video, targets, samples=4, noise=0.2, seed=1)
    b, _ = attribute(model, video, targets, samples=4, noise=0.2, seed=1)
    plain, _ = attribute(model, video, targets, samples=1, noise=0.0)
    video.requires_grad_(True)
    out = model(video)
    score = model.heads.restricted_logits(out["logits"], targets["category"]).log_softmax(-1)[0, targets["label"][0]]
    score.backward()
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(plain, video.grad[0].abs().sum(0).numpy(), rtol=1e-5, atol=1e-7)


def test_a_fixed_front_end_is_attributed_through_its_recovered_mask(tiny):
    _, tasks, _ = tiny
    torch.manual_seed(0)
    model = build_model("motion_energy", tasks, width=4, dim=16).eval()
    targets = {k: torch.from_numpy(v) for k, v in targets_for(tasks, np.array([1])).items()}
    amap, to = attribute(model, torch.rand(1, tasks.frames, H, W) * 2 - 1, targets, samples=2)
    assert to == MASK and amap.shape == (H, W) and amap.sum() > 0


def test_footprint_of_static_moving_and_missing_masks():
    static = np.zeros((4, 5), bool)
    static[1, 2] = True
    moving = np.zeros((3, 4, 5), bool)
    moving[0, 0, 0] = moving[2, 3, 4] = True
    assert (figure_footprint(static, (4, 5)) == static).all()
    assert figure_footprint(moving, (4, 5)).sum() == 2
    assert not figure_footprint(None, (4, 5)).any()


def test_gallery_writes_figure_and_one_row_per_clip_and_model(tiny, tmp_path):
    root, _, paths = tiny
    data = StimulusDataset(root / "data", "test")
    clips = gallery_clips(data.samples, data.manifest["categories"], per_category=2)
    assert [data.samples.category[i] for i in clips] == ["shapes", "shapes", "words", "words"]  # no patterns
    frame, written = write_gallery(root / "data", paths, tmp_path / "fig/gallery", tmp_path / "tables/gallery.csv",
                                   per_category=2, samples=2)
    assert [p.name for p in written] == ["gallery.png", "gallery.svg", "gallery.csv"]
    assert all(p.stat().st_size > 1000 for p in written[:2])
    table = pd.read_csv(tmp_path / "tables/gallery.csv")
    assert list(table.columns) == COLUMNS and len(table) == len(clips) * 2
    assert sorted(set(table.encoder)) == ["framewise", "motion_energy"]
    assert set(table.loc[table.encoder == "motion_energy", "attributed_to"]) == {MASK}
    assert set(table.loc[table.encoder == "framewise", "attributed_to"]) == {VIDEO}
    assert table.attribution_inside_figure.between(0, 1).all() and table.figure_area.between(0, 1).all()
    assert (table.figure_area > 0).all()  # every motion-coded clip has a figure


def test_models_of_another_data_set_are_rejected(tiny, tmp_path):
    root, _, _ = tiny
    other = TaskSpec(("circle", "square"), ("shapes", "shapes"), 4)
    save_model(tmp_path / "other.pt", build_model("framewise", other, width=4, dim=16), "framewise")
    with pytest.raises(ValueError, match="trained on other classes"):
        write_gallery(root / "data", [tmp_path / "other.pt"], tmp_path / "g", tmp_path / "g.csv")
