"""A closer look at small still figures: the figure's box on a map, the crop that makes it as large as
training's, the decoded video's crop keeping the motion, and scoring reading a small figure again."""

import numpy as np
import pytest
import torch
from torch import nn

from test_spookybench_io import render
from timeblind.core.zoom import FILL, MAX_ZOOM, ZOOMED, figure_box, figure_size, figure_sizes, zoom_region
from timeblind.data.torch_data import ClipDataset
from timeblind.evaluation.spookybench import score_models
from timeblind.io.export import VideoItem, export_dataset
from timeblind.io.video import decode_video
from timeblind.models.config import MotionEnergyConfig
from timeblind.models.motion_energy import MotionEnergyEncoder
from timeblind.stimuli.motion import motion_energy_mask
from timeblind.training.trainer import figure_sizes_of


def disc(H, W, cy, cx, r):
    yy, xx = np.mgrid[:H, :W]
    return ((yy - cy) ** 2 + (xx - cx) ** 2 < r ** 2).astype(np.float32)


def test_figure_box_finds_a_disc_and_ignores_a_stray_pixel():
    figure = disc(48, 72, 20, 30, 8)
    figure[2, 70] = 1.0  # one stray pixel far away: under the trimmed share of the mass
    box = figure_box(figure)
    assert abs(box.y * 48 - 20) <= 1 and abs(box.x * 72 - 30) <= 1
    assert 14 / 48 <= box.share <= 17 / 48  # the disc's diameter over the height
    assert figure_box(np.zeros((48, 72))) is None and figure_box(np.full((48, 72), 0.4)) is None


def test_the_typical_figure_size_is_the_median():
    sizes = figure_sizes({"shapes": list(np.linspace(0.3, 0.7, 41)), "videos": []})
    assert sizes == {"shapes": pytest.approx(0.5)}


def test_zoom_region_makes_a_small_figure_as_large_as_training_s():
    sizes = {"shapes": 0.5, "words": 0.2}
    top, left, bottom, right = zoom_region(disc(100, 100, 50, 50, 10), "shapes", sizes)  # a box of 0.2
    assert bottom - top == pytest.approx(0.4, abs=0.03) == right - left  # a box of ~0.2 made 0.5: typical
    assert (top + bottom) / 2 == pytest.approx(0.5, abs=0.01) == (left + right) / 2
    top, left, bottom, right = zoom_region(disc(100, 100, 8, 92, 10), "shapes", sizes)  # near a corner
    assert top == 0 and right == pytest.approx(1.0)  # the crop stays inside the frame
    top, _, bottom, _ = zoom_region(disc(100, 100, 50, 50, 1.5), "shapes", sizes)
    assert bottom - top == pytest.approx(1 / MAX_ZOOM)
    assert zoom_region(disc(100, 100, 50, 50, 30), "shapes", sizes) is None  # as large as the typical one
    assert zoom_region(disc(100, 100, 50, 50, 10), "videos", sizes) is None  # a moving figure: read whole
    assert zoom_region(disc(100, 100, 50, 50, 10), "images", sizes) is None  # no sizes known for it
    assert zoom_region(np.zeros((100, 100)), "shapes", sizes) is None


def test_a_text_is_sized_by_its_line_height_and_kept_whole_in_the_crop():
    line = np.zeros((100, 200), np.float32)
    line[45:55, 20:180] = 1.0  # one long line: letters 10% of the height, the text 80% of the width
    assert figure_size(line, "words", figure_box(line)) == pytest.approx(14 / 100)  # with its margins
    assert figure_size(line, "shapes", figure_box(line)) == pytest.approx(0.8, abs=0.04)  # its box, trimmed
    top, left, bottom, right = zoom_region(line, "words", {"words": 0.2})
    assert right - left == pytest.approx(figure_box(line).share / FILL)  # 0.2 / 0.14 would push the text out of the crop


@pytest.fixture(scope="module")
def small_disc(tmp_path_factory):
    """A 60-frame 192x320 video of a small disc (diameter 15% of the height) drawn by opposing motion."""
    root = tmp_path_factory.mktemp("small")
    frames, mask = render(60, 192, 320, 1, np.random.default_rng(0), radius=0.075)
    table = export_dataset([VideoItem(frames, "shapes", ["circle"], "disc"),
                            VideoItem(frames, "videos", ["circle moving"], "moving")], root)
    return root, root / table.Path[0], mask


def test_a_crop_of_the_decoded_video_keeps_the_motion_and_enlarges_the_figure(small_disc):
    _, path, mask = small_disc
    decoded = decode_video(path, [(8, 48, 80)])
    whole = motion_energy_mask(decoded.clip((8, 48, 80), "motion", "gray") / 255.0)
    region = (0.3, 0.3, 0.7, 0.7)
    crop, again = decoded.crop_clips([((8, 48, 80), region), ((8, 48, 80), region)], "motion", "gray")
    assert np.array_equal(crop, again)  # one more decode serves both
    crop = motion_energy_mask(crop / 255.0)

    def small(mask):
        return torch.nn.functional.interpolate(torch.from_numpy(mask[None, None].astype(np.float32)),
                                               size=(48, 80), mode="area")[0, 0].numpy() > 0.5

    true = small(mask[int(0.3 * 192):int(0.7 * 192), int(0.3 * 320):int(0.7 * 320)])
    assert (crop & true).sum() / (crop | true).sum() > 0.6  # the figure recovered from the crop's motion
    assert (crop & true).sum() > 4 * (whole & small(mask)).sum()  # 2.5x closer: about 6x the pixels


class _Heads(nn.Module):
    """Answers how large the recovered figure is: 'large' from half the height up, else 'small'."""

    class spec:
        categories = ["shapes", "videos"]

    def answers(self, out, category, lexicon=None):
        box = figure_box(out["figure"][0].mean(dim=0).numpy())
        return ["large" if box is not None and box.share >= 0.4 else "small"]


class MotionFigureModel(nn.Module):
    """A model whose figure map is the motion-energy observer's fixed front end on its input clip."""

    def __init__(self):
        super().__init__()
        self.heads = _Heads()
        self.observer = MotionEnergyEncoder(MotionEnergyConfig())

    def forward(self, video):  # (1, T, H, W) in [-1, 1]
        return {"figure": self.observer.front_end(video)}  # (1, K, H, W)


def test_scoring_reads_a_small_still_figure_again_closer_up(small_disc):
    root, _, _ = small_disc
    info = {"encoder": "motion", "extra": {"frame_shapes": {"shapes": [8, 48, 80], "videos": [8, 48, 80]},
                                           "figure_sizes": {"shapes": 0.5}}}
    log = []
    (closer, table, _), = score_models([(MotionFigureModel(), info)], root, log=log.append)
    (whole, _, _), = score_models([(MotionFigureModel(), info)], root, zoom=False, log=log.append)
    assert whole == {"shapes/disc.mp4": "small", "videos/moving.mp4": "small"}
    assert closer == {"shapes/disc.mp4": "large", "videos/moving.mp4": "small"}  # a moving figure is read whole
    assert any("1 video(s) read again closer up" in line for line in log)


def test_training_figure_sizes_are_measured_on_still_figures(tiny_data):
    sizes = figure_sizes_of(ClipDataset(str(tiny_data), "train"))
    assert sizes and set(sizes) <= set(ZOOMED)
    assert all(0 < typical <= 1 for typical in sizes.values())
