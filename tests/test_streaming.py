"""Streaming training data: the same targets as the stored clips, noise rendered on the device,
stored validation clips in batches of one frame size."""

import itertools

import pytest
import torch
from torch.utils.data import default_collate

from timeblind.core.tasks import to_model_input
from timeblind.data.dataset import StimulusConfig, write_dataset
from timeblind.data.streaming import LayoutStream, StreamingDataModule
from timeblind.data.torch_data import ClipDataset
from timeblind.stimuli import MotionConfig
from timeblind.stimuli.categories import WordOptions

pytestmark = pytest.mark.usefixtures("one_thread")

CFG = StimulusConfig(height=16, width=40, motion=MotionConfig(frames=4), categories=("shapes", "words", "patterns"),
                     shapes=("circle", "star"), words=WordOptions(vocabulary=6, held_out=2))


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    root = tmp_path_factory.mktemp("stream")
    write_dataset(root, CFG, 0, {"train": 12, "val": 6}, log=lambda *_: None)
    return root


def test_streamed_targets_are_the_stored_clips_targets(stored):
    train = ClipDataset(str(stored), "train")
    streamed = list(itertools.islice(iter(LayoutStream(CFG, train.tasks, seed=0)), len(train)))
    assert [s["index"] for s in streamed] == list(range(len(train)))
    kinds = set()
    for i, sample in enumerate(streamed):
        expected = train.targets(i)
        assert set(sample["targets"]) == set(expected)
        for key, value in expected.items():
            assert torch.equal(sample["targets"][key], value), (i, key)
        kinds.add(train.rows[i]["category"])
        assert sample["rendered"] == (train.rows[i]["category"] == "patterns")
    assert kinds == {"shapes", "words", "patterns"}
    words = [s for s, row in zip(streamed, train.rows) if row["category"] == "words"]
    assert all(s["targets"]["line_length"].sum() > 0 for s in words)  # their text lines are found
    assert streamed[0]["targets"]["mask"].dtype == torch.uint8 and streamed[0]["targets"]["mask"].max() == 255


def test_the_noise_is_rendered_after_the_transfer_from_the_figure_mask(stored):
    module = StreamingDataModule(str(stored), CFG, seed=0, batch_size=6)
    module.setup()
    samples = list(itertools.islice(iter(LayoutStream(CFG, module.val_set.tasks, seed=0, start=3)), 6))
    batch = default_collate(samples)
    masks = batch["targets"]["mask"].clone()
    clips, targets = module.on_after_batch_transfer(batch, 0)
    again, _ = module.on_after_batch_transfer(default_collate(samples), 0)
    assert clips.shape == (6, 4, 16, 40) and clips.min() >= -1 and clips.max() <= 1
    assert torch.equal(clips, again)  # seeded by (seed, first index)
    assert torch.equal(targets["mask"], masks) and targets["mask"].dtype == torch.uint8  # the figure loss's target
    rendered = batch["rendered"]
    assert rendered.any() and (~rendered).any()
    assert torch.equal(clips[rendered], to_model_input(batch["grey"][rendered]))  # patterns: as made on the CPU
    low, high = (level / 127.5 - 1 for level in CFG.motion.binary_levels)
    motion = clips[~rendered]
    assert torch.isin(motion, torch.tensor([low, high])).all()  # binary dots, rendered on the device
    assert not torch.equal(motion[:, 0], motion[:, 1])  # that move
    validation = module.val_set[0][0][None], {"label": torch.zeros(1)}
    assert module.on_after_batch_transfer(validation, 0) is validation


def test_validation_batches_hold_clips_of_one_size(tmp_path):
    cfg = StimulusConfig.from_dict({"height": 16, "width": 16, "categories": ["shapes", "patterns"],
                                    "shapes": ["circle", "star"], "motion": {"frames": 4},
                                    "sizes": {"patterns": {"width": 24}}})
    write_dataset(tmp_path, cfg, 0, {"val": 10}, log=lambda *_: None)
    with pytest.raises(ValueError, match="streaming batches clips of one shape"):
        LayoutStream(cfg, ClipDataset(str(tmp_path), "val").tasks, seed=0)
    module = StreamingDataModule(str(tmp_path), cfg, seed=0, batch_size=4)
    module.setup()
    shapes = [tuple(video.shape[1:]) for video, _ in module.val_dataloader()]
    assert sorted(set(shapes)) == [(4, 16, 16), (4, 16, 24)]
    sizes = [len(video) for video, _ in module.val_dataloader()]
    assert sum(sizes) == 10 and max(sizes) <= 4
    assert all(len(set(t["category"].tolist())) == 1 for _, t in module.val_dataloader())  # one category each here
