"""The figure reader: pretrained once on clean masks, saved, and put into every encoder's heads."""

import pytest
import torch

from timeblind.core.tasks import TaskSpec
from timeblind.data.dataset import StimulusConfig, write_dataset
from timeblind.data.torch_data import ClipDataset
from timeblind.models.checkpoint import load_reader, save_model, save_reader
from timeblind.models.heads import TaskHeads
from timeblind.models.registry import build_model
from timeblind.stimuli import MotionConfig
from timeblind.stimuli.categories import WordOptions
from timeblind.training.config import ReaderTrainConfig
from timeblind.training.reader import READER_PARTS, degrade, pretrain_reader, reader_accuracy, recovered_look

pytestmark = pytest.mark.usefixtures("one_thread")

SPEC = TaskSpec(("circle", "star", "spikes"), ("shapes", "shapes", "patterns"), ("shapes", "words", "patterns"), 6)
QUIET = {"log": lambda *a, **k: None}


def reader_weights(heads: TaskHeads) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in heads.state_dict().items() if k.startswith(READER_PARTS)}


def test_degrade_keeps_the_shape_and_range_and_is_seeded():
    figure = torch.zeros(8, 4, 16, 24)
    figure[..., 4:12, 6:18] = 1.0
    a = degrade(figure, torch.Generator().manual_seed(0))
    b = degrade(figure, torch.Generator().manual_seed(0))
    c = degrade(figure, torch.Generator().manual_seed(1))
    assert a.shape == figure.shape and a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert not torch.equal(a, figure)
    inside, outside = a[..., 4:12, 6:18].mean(), a[..., :3, :].mean()
    assert inside > 0.4 > outside  # faded (by at most half) and speckled, still the figure


def test_recovered_look_rounds_corners_and_keeps_the_figure():
    figure = torch.zeros(64, 1, 24, 32)
    figure[..., 6:18, 8:24] = 1.0  # a square: sharp corners a figure head rarely draws
    a = recovered_look(figure, torch.Generator().manual_seed(0))
    assert torch.equal(a, recovered_look(figure, torch.Generator().manual_seed(0)))
    assert a.shape == figure.shape and a.min() >= 0 and a.max() <= 1
    corner, centre = a[..., 6, 8], a[..., 12, 16]
    assert corner.mean() < 0.9 and centre.mean() > 0.9  # corners soften, the inside stays
    assert (a[..., :3, :] < 0.5).float().mean() > 0.95  # the ground stays ground
    changed = (a - figure).abs().flatten(1).amax(dim=1) > 0.05
    assert 0.3 < changed.float().mean() < 1.0  # clips differ: some untouched (cells of 1 px, no blur, no ragging)


def test_reader_file_round_trip_fills_only_the_reader(tmp_path):
    torch.manual_seed(0)
    trained = TaskHeads(8, SPEC)
    weights = reader_weights(trained)
    assert weights and all(k.startswith(READER_PARTS) for k in weights)
    assert any(k.startswith("lines.") for k in weights) and not any(k.startswith("figure.") for k in weights)
    save_reader(tmp_path / "reader.pt", weights, SPEC, {"val_acc_clean": 0.9})
    torch.load(tmp_path / "reader.pt", weights_only=True)  # plain tensors and builtins only
    torch.manual_seed(1)
    model = build_model("framewise", SPEC, width=4, dim=16)
    before = {k: v.clone() for k, v in model.heads.state_dict().items()}
    assert load_reader(tmp_path / "reader.pt", model.heads) == {"val_acc_clean": 0.9}
    after = model.heads.state_dict()
    for k, v in after.items():
        if k.startswith(READER_PARTS):
            assert torch.equal(v, weights[k]), k
        else:  # the encoder's side of the heads (figure head, pattern heads) keeps its own weights
            assert torch.equal(v, before[k]), k
    assert not torch.equal(before["reader.trunk.proj.weight"], after["reader.trunk.proj.weight"])


def test_reader_files_are_checked(tmp_path):
    torch.manual_seed(0)
    heads = TaskHeads(8, SPEC)
    save_reader(tmp_path / "reader.pt", reader_weights(heads), SPEC)
    other = TaskSpec(("circle", "square"), ("shapes", "shapes"), ("shapes",), 6)
    with pytest.raises(ValueError, match="trained for other tasks"):
        load_reader(tmp_path / "reader.pt", TaskHeads(8, other))
    save_reader(tmp_path / "extra.pt", {**reader_weights(heads), "reader.unknown": torch.zeros(1)}, SPEC)
    with pytest.raises(ValueError, match=r"\['reader.unknown'\] have no place"):
        load_reader(tmp_path / "extra.pt", TaskHeads(8, SPEC))
    save_model(tmp_path / "model.pt", build_model("framewise", SPEC, width=4, dim=16), "framewise")
    with pytest.raises(ValueError, match="expected a 'timeblind.reader/1' file, found 'timeblind.model/3'"):
        load_reader(tmp_path / "model.pt", TaskHeads(8, SPEC))


def test_pretraining_teaches_the_reader_to_read_clean_masks(tiny_shapes):
    data = tiny_shapes({"train": 96, "val": 48}, shapes=("circle", "star", "cross"))
    val = ClipDataset(str(data), "val")
    torch.manual_seed(0)
    untrained = reader_accuracy(TaskHeads(1, val.tasks), val, 16)["shapes"]
    cfg = ReaderTrainConfig(max_steps=80, batch_size=16, lr=0.003, val_every=80)
    weights, metrics = pretrain_reader(str(data), cfg, seed=0, **QUIET)
    assert metrics["steps"] == 80 and metrics["loss_class"] < 1.0  # chance: ln 3 = 1.1
    assert metrics["val_acc_clean_shapes"] >= 0.75 and metrics["val_acc_clean_shapes"] > untrained + 0.3  # chance: 1/3
    heads = TaskHeads(1, val.tasks)
    heads.load_state_dict(weights, strict=False)
    assert reader_accuracy(heads, val, 16)["shapes"] == metrics["val_acc_clean_shapes"]  # the weights are the trained reader
    again, _ = pretrain_reader(str(data), cfg, seed=0, **QUIET)
    assert all(torch.equal(weights[k], again[k]) for k in weights)  # deterministic for a seed


def test_pretraining_trains_the_line_reader_on_words(tmp_path):
    cfg = StimulusConfig(height=16, width=40, motion=MotionConfig(frames=4), categories=("shapes", "words"),
                         shapes=("circle", "star"), words=WordOptions(vocabulary=4, held_out=0))
    write_dataset(tmp_path, cfg, 0, {"train": 32, "val": 8}, log=lambda *_: None)
    weights, metrics = pretrain_reader(str(tmp_path), ReaderTrainConfig(max_steps=3, batch_size=8, val_every=3),
                                       seed=0, **QUIET)
    assert {"loss_class", "loss_reading"} <= set(metrics) and metrics["loss_reading"] > 0
    torch.manual_seed(0)
    initial = reader_weights(TaskHeads(1, ClipDataset(str(tmp_path), "train").tasks))  # as pretraining starts
    assert set(weights) == set(initial)
    assert not torch.equal(weights["lines.columns.2.weight"], initial["lines.columns.2.weight"])
    assert not torch.equal(weights["classify_figure.weight"], initial["classify_figure.weight"])


def test_clean_accuracy_counts_only_clips_read_off_a_figure(tmp_path):
    cfg = StimulusConfig(height=16, width=16, motion=MotionConfig(frames=4), categories=("shapes", "patterns"),
                         shapes=("circle", "star"))
    write_dataset(tmp_path, cfg, 0, {"val": 24}, log=lambda *_: None)
    val = ClipDataset(str(tmp_path), "val")
    heads = TaskHeads(1, val.tasks)
    with torch.no_grad():  # the reader answers "circle" for every shape: right on half of them
        heads.classify_figure.weight.zero_()
        heads.classify_figure.bias.copy_(torch.tensor([1.0 if c == "circle" else 0.0 for c in val.tasks.classes]))
    assert reader_accuracy(heads, val, 8) == {"shapes": 0.5}


def test_pretraining_a_reader_of_words_alone(tmp_path):
    cfg = StimulusConfig(height=16, width=40, motion=MotionConfig(frames=4), categories=("words",),
                         words=WordOptions(vocabulary=4, held_out=0))
    write_dataset(tmp_path, cfg, 0, {"train": 8, "val": 4}, log=lambda *_: None)
    weights, metrics = pretrain_reader(str(tmp_path), ReaderTrainConfig(max_steps=1, batch_size=4, val_every=1),
                                       seed=0, **QUIET)
    assert "loss_reading" in metrics and not any(k.startswith("classify_figure.") for k in weights)


def test_pretraining_passes_over_a_frame_size_that_holds_only_bit_patterns(tmp_path):
    """The seed's bit patterns at a frame size of their own carry no figure to read: their batches
    would give the reader no loss at all."""
    cfg = StimulusConfig(height=16, width=16, motion=MotionConfig(frames=4), categories=("shapes", "patterns"),
                         shapes=("circle", "star"), sizes=(("patterns", (6, 8, 8)),))
    write_dataset(tmp_path, cfg, 0, {"train": 32, "val": 8}, log=lambda *_: None)
    assert len(ClipDataset(str(tmp_path), "train").size_groups()) == 2
    weights, metrics = pretrain_reader(str(tmp_path), ReaderTrainConfig(max_steps=6, batch_size=4, val_every=6),
                                       seed=0, **QUIET)
    assert metrics["steps"] == 6 and metrics["loss_class"] > 0 and set(metrics) >= {"val_acc_clean_shapes"}


def test_zoom_out_shrinks_about_half_the_figures_it_may_and_no_other():
    from timeblind.training.reader import zoom_out

    figure = torch.zeros(64, 2, 32, 48)
    figure[..., 8:24, 16:32] = 1.0
    allowed = torch.arange(64) < 48
    shrunk = zoom_out(figure, allowed, torch.Generator().manual_seed(0))
    area = shrunk.sum(dim=(1, 2, 3)) / figure.sum(dim=(1, 2, 3))
    changed = (shrunk != figure).flatten(1).any(dim=1)
    assert 12 <= changed[allowed].sum() <= 36 and not changed[~allowed].any()
    assert ((area[changed] > 0.2) & (area[changed] < 0.99)).all()  # a factor in [0.5, 1] per side


def test_the_reader_is_shown_each_mask_as_window_means_and_words_alone_as_one(tmp_path):
    from timeblind.training.reader import _ReaderInputs

    cfg = StimulusConfig.from_dict({"height": 16, "width": 16, "categories": ["shapes", "words"],
                                    "shapes": ["circle", "star"], "motion": {"frames": 4},
                                    "words": {"vocabulary": 4, "held_out": 0}, "sizes": {"words": {"width": 40}}})
    write_dataset(tmp_path, cfg, 0, {"train": 8}, log=lambda *_: None)
    data = ClipDataset(str(tmp_path), "train")
    inputs = _ReaderInputs(data, data.size_groups(), windows=2)
    for i in range(len(data)):
        mask = data.targets(i)["mask"].float() / 255  # (T, H, W)
        shown = inputs[i][1]["mask"].float()
        if data.rows[i]["category"] == "words":  # a frame size of words alone: one window
            assert torch.allclose(shown, mask.mean(dim=0, keepdim=True), atol=1e-3)
        else:
            assert torch.allclose(shown, torch.stack([mask[:2].mean(0), mask[2:].mean(0)]), atol=1e-3)
        assert inputs[i][1] is inputs[i][1]  # kept, not loaded again
    mixed = _ReaderInputs(data, [list(range(len(data)))], windows=2)  # words beside shapes: the figures' windows
    assert all(mixed[i][1]["mask"].shape[0] == 2 for i in range(len(data)))
