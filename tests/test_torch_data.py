"""Torch views of a stored data set whose categories have their own frame sizes: clips with their
targets, batches of one size for training, validation and evaluation."""

import numpy as np
import pytest
import torch

from timeblind.core.tasks import IGNORE
from timeblind.data.dataset import StimulusConfig, write_dataset
from timeblind.data.torch_data import ClipDataset, size_batches

pytestmark = pytest.mark.usefixtures("one_thread")

SHAPES = {"shapes": (4, 16, 16), "words": (4, 16, 40), "patterns": (4, 16, 24)}


@pytest.fixture(scope="module")
def sized(tmp_path_factory):
    root = tmp_path_factory.mktemp("sized")
    cfg = StimulusConfig.from_dict({"height": 16, "width": 16, "categories": ["shapes", "words", "patterns"],
                                    "shapes": ["circle", "star"], "motion": {"frames": 4},
                                    "words": {"vocabulary": 4, "held_out": 0},
                                    "sizes": {"words": {"width": 40}, "patterns": {"width": 24}}})
    write_dataset(root, cfg, 0, {"train": 12, "val": 9, "test": 9}, log=lambda *_: None)
    return root


def test_clips_come_with_their_targets_at_their_own_size(sized):
    data = ClipDataset(str(sized), "val")
    assert len(data) == 9 and data.tasks.classes == ("circle", "star", "spikes", "morse", "timeseries")
    for i in range(len(data)):
        video, targets = data[i]
        category = data.rows[i]["category"]
        assert video.shape == SHAPES[category] and video.min() >= -1 and video.max() <= 1
        assert torch.equal(targets["mask"], torch.from_numpy(data.data.mask(i)))
        assert targets["mask"].dtype == torch.uint8 and targets["mask"].shape == SHAPES[category]
        assert targets["category"] == data.tasks.categories.index(category)
        assert (targets["label"] == IGNORE) == (category == "words")
        assert (targets["line_length"].sum() > 0) == (category == "words")
        assert (targets["length"] != IGNORE) == (category == "patterns")
        assert all(torch.equal(v, data.targets(i)[k]) for k, v in targets.items())  # the same targets alone
    assert (data.targets(0)["mask"] == 255).any()  # a figure, as 0-255 shares


def test_batches_hold_clips_of_one_size(sized):
    data = ClipDataset(str(sized), "val")
    groups = data.size_groups()
    assert [sorted({data.rows[i]["category"] for i in g}) for g in groups] == [["shapes"], ["patterns"], ["words"]]
    assert sorted(i for g in groups for i in g) == list(range(len(data)))
    batches = size_batches(data, 2)
    assert [len(b) for b in batches] == [2, 1, 2, 1, 2, 1]
    assert all(len({data.data.frame_shape_of(i) for i in b}) == 1 for b in batches)
    assert sorted(i for b in batches for i in b) == list(range(len(data)))


def test_batches_of_larger_clips_hold_fewer_clips(sized, monkeypatch):
    data = ClipDataset(str(sized), "val")
    monkeypatch.setattr(data, "group_batch_sizes", lambda batch_size: [batch_size, 1, 2])  # size_groups' order
    assert [len(b) for b in size_batches(data, 3)] == [3, 1, 1, 1, 2, 1]


def test_the_data_module_validates_in_batches_of_one_size(sized):
    from timeblind.data.datamodule import ClipDataModule

    module = ClipDataModule(str(sized), batch_size=4)
    module.setup()
    shapes = [tuple(video.shape[1:]) for video, _ in module.val_dataloader()]
    assert sorted(set(shapes)) == sorted(SHAPES.values()) and len(shapes) == 3


def test_evaluation_answers_every_clip_in_batches_of_one_size(sized):
    from timeblind.evaluation.evaluate import predict
    from timeblind.models.registry import build_model

    data = ClipDataset(str(sized), "test")
    torch.manual_seed(0)
    model = build_model("early_temporal", data.tasks, width=4, dim=8).eval()
    texts, predicted, targets = predict(model, data, batch_size=2)
    categories = [row["category"] for row in data.rows]
    assert len(texts) == len(data)
    assert all(t in ("circle", "star") for t, c in zip(texts, categories) if c == "shapes")
    assert all(t in ("spikes", "morse", "timeseries") for t, c in zip(texts, categories) if c == "patterns")
    is_pattern = np.array(categories) == "patterns"
    assert (targets["length"][is_pattern] == [row["length"] for row in data.rows if row["category"] == "patterns"]).all()
    assert (targets["length"][~is_pattern] == IGNORE).all() and predicted["bits"].shape == (len(data), 4)


def test_words_step_shares_give_the_words_their_share_and_the_rest_by_clips():
    from timeblind.data.samplers import words_step_shares

    shares = words_step_shares([False, True, False], [300, 100, 100], 0.4)
    assert shares == pytest.approx([0.45, 0.4, 0.15]) and sum(shares) == pytest.approx(1.0)
    assert words_step_shares([False, True], [300, 100], None) is None  # by clips, StepBatches' default
    assert words_step_shares([True], [100], 0.4) is None and words_step_shares([False], [100], 0.4) is None


def test_the_data_module_spends_words_share_of_the_steps_on_words(sized):
    from types import SimpleNamespace

    from timeblind.data.datamodule import ClipDataModule

    steps = {}
    for share in (None, 0.5):
        module = ClipDataModule(str(sized), batch_size=1, words_share=share)
        module.setup()
        module.trainer = SimpleNamespace(global_step=0, global_rank=0, world_size=1)
        batches = module.train_dataloader()
        words = sum(module.train_set.rows[int(batch[0])]["category"] == "words"
                    for batch in (batches._batch(0, slot) for slot in range(len(batches))))
        steps[share] = words / len(batches)
    assert steps[None] == pytest.approx(1 / 3, abs=0.05)  # 4 of the 12 training clips are words
    assert steps[0.5] == pytest.approx(0.5, abs=0.05)
