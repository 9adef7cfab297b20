"""Adapting the pretrained reader to a trained encoder's own figure maps (training/adapt.py)."""

import dataclasses

import pandas as pd
import pytest
import torch

from timeblind.core.tasks import TaskSpec
from timeblind.data.dataset import load_manifest
from timeblind.data.torch_data import ClipDataset
from timeblind.models.checkpoint import load_model, save_reader
from timeblind.models.registry import build_model
from timeblind.training.adapt import EncoderDrawings, adapt_reader, figures_above_chance, sample_ids
from timeblind.training.config import ReaderAdaptConfig, ReaderTrainConfig, TrainConfig
from timeblind.training.fit import fit
from timeblind.training.reader import READER_PARTS, pretrain_reader

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = {"width": 4, "dim": 16}
QUIET = {"log": lambda *a, **k: None}
ADAPT = ReaderAdaptConfig(steps=4, clips=24, word_clips=6, batch_size=8, lr=0.01, above_chance_z=None)


def weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_drawings_hold_the_encoders_maps_beside_the_clean_masks_of_the_chosen_clips(tiny_data):
    torch.manual_seed(0)
    data = ClipDataset(str(tiny_data), "train")
    net = build_model("motion_energy", data.tasks, **SMALL).eval()
    ids = sample_ids(data, ("shapes",), 10, torch.Generator().manual_seed(0))
    assert len(ids) == 10 and all(data.rows[i]["category"] == "shapes" for i in ids)
    drawings = EncoderDrawings(net, data, ids, 4, text=False)
    K = net.heads.spec.windows
    assert drawings.drawn.shape == drawings.clean.shape == (10, K, 16, 40)
    assert sorted(drawings.targets["label"].tolist()) == sorted(data.targets(i)["label"].item() for i in ids)
    with torch.no_grad():  # the encoder's own figure map of the first chosen clip, in the same order
        first = net(data[ids[0]][0][None])["figure"][0].half()
    assert torch.equal(drawings.drawn[0], first)
    words = EncoderDrawings(net, data, sample_ids(data, ("words",), 3, torch.Generator()), 4, text=True)
    assert words.drawn.shape[1] == 1 and len(words) == 3  # text is read off the windows' mean


def test_adaptation_trains_the_reader_alone_and_keeps_it_only_if_validation_rises(tiny_data):
    torch.manual_seed(0)
    net = build_model("motion_energy", TaskSpec.from_manifest(load_manifest(tiny_data)), **SMALL)
    start = weights(net)
    metrics = adapt_reader(net, str(tiny_data), ADAPT, None, seed=0, **QUIET)
    after = weights(net)
    reader_keys = [k for k in start if k.startswith("heads.") and k[len("heads."):].startswith(READER_PARTS)]
    assert reader_keys and {"val_acc_before_adapt_shapes", "val_acc_adapted_words"} <= set(metrics)
    assert all(torch.equal(start[k], after[k]) for k in start if k not in reader_keys)  # the encoder is frozen
    changed = any(not torch.equal(start[k], after[k]) for k in reader_keys)
    assert changed is metrics["adapted"]
    # a validation that cannot be beaten: the adapted reader is dropped, the one it started from kept
    perfect = {k[len("val_acc_adapted_"):]: 1.0 for k in metrics if k.startswith("val_acc_adapted_")}
    again = adapt_reader(net, str(tiny_data), ADAPT, perfect, seed=0, **QUIET)
    assert again["adapted"] is False and again["adapt_steps"] == ADAPT.steps
    assert all(torch.equal(after[k], v) for k, v in weights(net).items())


def test_fit_adapts_the_reader_from_the_best_validation_and_records_both(tiny_data, tmp_path):
    reader, _ = pretrain_reader(str(tiny_data), ReaderTrainConfig(max_steps=2, batch_size=8, val_every=2), seed=1,
                                **QUIET)
    save_reader(tmp_path / "reader.pt", reader, TaskSpec.from_manifest(load_manifest(tiny_data)))
    cfg = TrainConfig(max_steps=2, batch_size=16, val_every=2, reader_adapt=dataclasses.asdict(ADAPT))
    metrics = fit(tiny_data, tmp_path / "me", cfg, encoder="motion_energy", seed=0, encoder_options=SMALL,
                  reader=str(tmp_path / "reader.pt"), **QUIET)
    curve = pd.read_csv(tmp_path / "me" / "learning_curve.csv")
    assert metrics["val_acc_before_adapt_shapes"] == pytest.approx(curve["shapes"].iloc[-1])  # the validated model's
    assert "val_acc_adapted_shapes" in metrics and isinstance(metrics["adapted"], bool)
    model, _ = load_model(tmp_path / "me" / "model.pt")
    state = model.heads.state_dict()
    same = all(torch.equal(state[k], reader[k]) for k in reader if not k.endswith("num_batches_tracked"))
    assert same is not metrics["adapted"]  # the saved reader is the adapted one exactly when it was kept
    # without a pretrained reader there is nothing to adapt: the reader already learnt with the encoder
    plain = fit(tiny_data, tmp_path / "plain", cfg, encoder="motion_energy", seed=0, encoder_options=SMALL, **QUIET)
    assert "adapted" not in plain


def test_without_word_clips_the_line_reader_and_the_words_score_stay_as_they_were(tiny_data):
    torch.manual_seed(0)
    net = build_model("motion_energy", TaskSpec.from_manifest(load_manifest(tiny_data)), **SMALL)
    lines = {k: v.clone() for k, v in net.heads.lines.state_dict().items()}
    before = {"shapes": 0.0, "words": 0.25, "patterns": 0.5}  # words kept as given: they are not validated again
    metrics = adapt_reader(net, str(tiny_data), dataclasses.replace(ADAPT, word_clips=0), before, seed=0, **QUIET)
    assert metrics["val_acc_adapted_words"] == 0.25 and metrics["val_acc_adapted_patterns"] == 0.5
    assert metrics["val_acc_adapted_shapes"] > 0 and metrics["adapted"]  # from 0, any reading rises
    assert all(torch.equal(lines[k], v) for k, v in net.heads.lines.state_dict().items())


def test_the_chance_z_counts_right_answers_against_guessing_among_each_categorys_classes():
    spec = TaskSpec(classes=tuple("abcdefgh") + ("x", "y"), class_categories=("shapes",) * 8 + ("videos",) * 2,
                    categories=("shapes", "videos", "words"), frames=4)
    # 20 of 80 shapes right where guessing among 8 gets 10: (20 - 10) / sqrt(80 * 1/8 * 7/8)
    assert figures_above_chance(spec, {"shapes": 0.25}, {"shapes": 80}) == pytest.approx(10 / (70 / 8) ** 0.5)
    both = figures_above_chance(spec, {"shapes": 0.125, "videos": 0.5, "words": 0.9}, {"shapes": 80, "videos": 40})
    assert both == pytest.approx(0.0)  # each category at its own chance; words are not figures
    assert figures_above_chance(spec, {"words": 0.5}, {}) is None


def test_an_encoder_read_no_better_than_guessing_is_not_adapted(tiny_data):
    torch.manual_seed(0)
    net = build_model("motion_energy", TaskSpec.from_manifest(load_manifest(tiny_data)), **SMALL)
    start = weights(net)
    gated = dataclasses.replace(ADAPT, above_chance_z=2.0)
    guessing = {"shapes": 0.5, "words": 0.0, "patterns": 0.5}  # two shapes: a half is chance
    metrics = adapt_reader(net, str(tiny_data), gated, guessing, seed=0, **QUIET)
    assert metrics["adapt_steps"] == 0 and metrics["adapted"] is False
    assert metrics["above_chance_z"] == pytest.approx(0.0)
    assert all(torch.equal(start[k], v) for k, v in weights(net).items())
    reading = adapt_reader(net, str(tiny_data), gated, {**guessing, "shapes": 1.0}, seed=0, **QUIET)
    assert reading["adapt_steps"] == ADAPT.steps and reading["above_chance_z"] > 2.0
