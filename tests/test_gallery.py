"""The gallery: pixel attribution maps per model through the figure it recovers, the share inside
the figure, the written files."""

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from timeblind.core.lines import ALPHABET, COLUMNS
from timeblind.core.tasks import IGNORE, TaskSpec
from timeblind.data.dataset import StimulusConfig, StimulusDataset, write_dataset
from timeblind.models.checkpoint import save_model
from timeblind.models.registry import VideoModel, build_model
from timeblind.plots.gallery import (COLUMNS as TABLE_COLUMNS, MASK, VIDEO, answer_score, attribute, figure_footprint,
                                     gallery_clips, has_lines, inside_share, sample_targets, write_gallery)
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


def first_clip(root, category: str) -> tuple[StimulusDataset, int]:
    data = StimulusDataset(root / "data", "test")
    return data, int(data.samples.index[data.samples["category"] == category][0])


class OnePixel(nn.Module):
    """An encoder that sees pixel (y, x) of every frame and nothing else: (B, T, H, W) -> (B, 8, 1, 2)."""

    def __init__(self, frames: int, y: int, x: int):
        super().__init__()
        self.y, self.x, self.out_dim = y, x, 8
        self.mix = nn.Linear(frames, 2 * self.out_dim)

    def forward(self, video):
        features = torch.tanh(self.mix(video[:, :, self.y, self.x]))  # (B, 16)
        return features.reshape(len(video), self.out_dim, 1, 2)  # two columns: the two halves of the figure differ


def test_sample_targets_are_the_stored_clips_targets(tiny):
    root, tasks, _ = tiny
    data, i = first_clip(root, "words")
    targets = sample_targets(tasks, data, i)
    assert targets["mask"].shape == (1, *data.frame_shape_of(i)) and targets["label"].tolist() == [IGNORE]
    codes = targets["line_text"][0, 0, :targets["line_length"][0, 0]].tolist()
    assert "".join(ALPHABET[k - 1] for k in codes) == data.samples.at[i, "text"].lower()
    data, i = first_clip(root, "shapes")
    assert sample_targets(tasks, data, i)["label"].tolist() == [tasks.classes.index(data.samples.at[i, "label"])]


@pytest.mark.parametrize("category", ["shapes", "words"])
def test_a_model_that_sees_one_pixel_is_attributed_to_that_pixel(tiny, category):
    root, tasks, _ = tiny
    data, i = first_clip(root, category)
    torch.manual_seed(0)
    model = VideoModel(OnePixel(tasks.frames, y=3, x=29), tasks).eval()
    video = torch.rand(1, tasks.frames, H, W) * 2 - 1
    amap, to = attribute(model, video, sample_targets(tasks, data, i), samples=8, noise=0.1)
    assert to == VIDEO and amap.shape == (H, W)
    assert amap[3, 29] > 0 and np.unravel_index(amap.argmax(), amap.shape) == (3, 29)
    footprint = np.zeros((H, W), bool)
    footprint[3, 29] = True
    assert inside_share(amap, footprint) == pytest.approx(1.0)
    assert inside_share(amap, ~footprint) == pytest.approx(0.0)


def test_attribution_follows_the_answer_through_the_recovered_figure(tiny):
    """The reader sees the figure detached, so the model's own class logits carry no gradient to the
    video; the attribution takes the same answer through the figure, not detached. Deterministic for
    a seed, and without smoothing it is the plain |gradient| summed over frames."""
    root, tasks, _ = tiny
    data, i = first_clip(root, "shapes")
    targets = sample_targets(tasks, data, i)
    torch.manual_seed(0)
    model = build_model("framewise", tasks, width=4, dim=16).eval()
    video = torch.rand(1, tasks.frames, H, W) * 2 - 1
    a, _ = attribute(model, video, targets, samples=4, noise=0.2, seed=1)
    b, _ = attribute(model, video, targets, samples=4, noise=0.2, seed=1)
    plain, _ = attribute(model, video, targets, samples=1, noise=0.0)
    np.testing.assert_array_equal(a, b)
    video.requires_grad_(True)
    out = model(video)
    detached = model.heads.restricted_logits(out["logits"], targets["category"]).log_softmax(-1)[0, targets["label"][0]]
    (grad,) = torch.autograd.grad(detached, video, allow_unused=True, retain_graph=True)
    assert grad is None or grad.eq(0).all()  # the answer itself does not reach the video
    heads = model.heads
    logits = heads.classify_figure(heads.reader(torch.sigmoid(out["figure_logits"])))
    score = heads.restricted_logits(logits, targets["category"]).log_softmax(-1)[0, targets["label"][0]]
    assert answer_score(model, out, targets).item() == pytest.approx(score.item())
    score.backward()
    assert plain.sum() > 0
    np.testing.assert_allclose(plain, video.grad[0].abs().sum(0).numpy(), rtol=1e-5, atol=1e-7)


class Spells(nn.Module):
    """A line reader that reads every line as the given per-column labels, confidently."""

    def __init__(self, labels: torch.Tensor):
        super().__init__()
        self.labels = labels  # (L, COLUMNS)

    def forward(self, bands):
        return (5.0 * F.one_hot(self.labels, len(ALPHABET) + 1).float()).log_softmax(dim=-1)


def test_the_words_score_is_the_likelihood_of_the_true_text(tiny):
    root, tasks, _ = tiny
    data, i = first_clip(root, "words")
    targets = sample_targets(tasks, data, i)
    torch.manual_seed(0)
    model = build_model("framewise", tasks, width=4, dim=16).eval()
    out = model(torch.rand(1, tasks.frames, H, W) * 2 - 1)
    present = targets["line_length"] > 0
    truth = targets["line_labels"][present].clamp(min=0)  # (L, COLUMNS): the true text, glyph by glyph
    model.heads.lines = Spells(truth)
    right = answer_score(model, out, targets)
    model.heads.lines = Spells(truth.roll(7, dims=1))  # the same letters, elsewhere: another alignment, still likely
    shifted = answer_score(model, out, targets)
    model.heads.lines = Spells(torch.where(truth > 0, truth % len(ALPHABET) + 1, truth))  # every letter the next one
    wrong = answer_score(model, out, targets)
    assert right.shape == (1,) and torch.isfinite(torch.cat([right, shifted, wrong])).all()
    assert right.item() == pytest.approx(shifted.item(), abs=1e-3) and right > wrong + 5
    model.heads.lines = None
    with pytest.raises(ValueError, match="no line reader"):
        answer_score(model, out, targets)


def test_a_fixed_front_end_is_attributed_through_its_maps(tiny):
    root, tasks, _ = tiny
    data, i = first_clip(root, "shapes")
    targets = sample_targets(tasks, data, i)
    torch.manual_seed(0)
    model = build_model("motion_energy", tasks, width=4, dim=16).eval()
    video = torch.rand(1, tasks.frames, H, W) * 2 - 1
    amap, to = attribute(model, video, targets, samples=1, noise=0.0)
    assert to == MASK and amap.shape == (H, W) and amap.sum() > 0
    maps = model.encoder.front_end(video).requires_grad_(True)
    answer_score(model, model.heads(model.encoder.reader(maps), (H, W)), targets).sum().backward()
    np.testing.assert_allclose(amap, maps.grad[0].abs().sum(0).numpy(), rtol=1e-5, atol=1e-7)


class Blind(nn.Module):
    """An encoder whose map never depends on the video, with no front end to attribute to."""

    out_dim = 8

    def __init__(self):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, 8, 1, 1))

    def forward(self, video):
        return self.bias.expand(len(video), -1, 4, 10)


def test_a_model_blind_to_its_input_is_named(tiny):
    root, tasks, _ = tiny
    data, i = first_clip(root, "shapes")
    model = VideoModel(Blind(), tasks).eval()
    with pytest.raises(ValueError, match="Blind: its answer does not depend differentiably on the video"):
        attribute(model, torch.rand(1, tasks.frames, H, W), sample_targets(tasks, data, i), samples=1)


def test_gallery_clips_are_those_with_text_lines_to_read(tiny):
    root, _, _ = tiny
    data = StimulusDataset(root / "data", "test")
    clips = gallery_clips(data.samples, data.manifest["categories"], per_category=2)
    assert [data.samples.category[i] for i in clips] == ["shapes", "shapes", "words", "words"]  # no patterns
    assert all(has_lines(data, i) for i in range(len(data)))
    first_word = clips[2]
    data.samples.at[first_word, "glyphs"] = ""  # as if its lines had not been recorded
    assert not has_lines(data, first_word)
    kept = gallery_clips(data.samples, data.manifest["categories"], 2, keep=lambda i: has_lines(data, i))
    assert first_word not in kept and [data.samples.category[i] for i in kept] == ["shapes"] * 2 + ["words"] * 2


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
    frame, written = write_gallery(root / "data", paths, tmp_path / "fig/gallery", tmp_path / "tables/gallery.csv",
                                   per_category=2, samples=2)
    assert [p.name for p in written] == ["gallery.png", "gallery.svg", "gallery.csv"]
    assert all(p.stat().st_size > 1000 for p in written[:2])
    table = pd.read_csv(tmp_path / "tables/gallery.csv")
    assert list(table.columns) == TABLE_COLUMNS and len(table) == len(clips) * 2
    assert sorted(set(table.encoder)) == ["framewise", "motion_energy"]
    assert set(table.loc[table.encoder == "motion_energy", "attributed_to"]) == {MASK}
    assert set(table.loc[table.encoder == "framewise", "attributed_to"]) == {VIDEO}
    assert table.attribution_inside_figure.between(0, 1).all() and table.figure_area.between(0, 1).all()
    assert (table.figure_area > 0).all()  # every motion-coded clip has a figure


def test_models_of_another_data_set_are_rejected(tiny, tmp_path):
    root, _, _ = tiny
    other = TaskSpec(("circle", "square"), ("shapes", "shapes"), ("shapes",), 4)
    save_model(tmp_path / "other.pt", build_model("framewise", other, width=4, dim=16), "framewise")
    with pytest.raises(ValueError, match="trained on other classes"):
        write_gallery(root / "data", [tmp_path / "other.pt"], tmp_path / "g", tmp_path / "g.csv")
