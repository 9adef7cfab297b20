"""The reading-or-motion probe: masks as static frames, the clips themselves, and its checks."""

import json

import pytest
import torch

from probe import _split, main, probe
from timeblind.data.dataset import StimulusConfig, write_dataset
from timeblind.data.torch_data import ClipDataset
from timeblind.stimuli import MotionConfig


@pytest.fixture(scope="module")
def two_shapes(tiny_shapes):
    return tiny_shapes({"train": 96, "val": 32}, shapes=("circle", "cross"))


def test_masks_are_the_figure_in_every_frame_and_clips_are_noise(two_shapes):
    masks, labels, classes = _split(str(two_shapes), "val", "masks")
    clips, same_labels, _ = _split(str(two_shapes), "val", "clips")
    assert classes == 2
    assert masks.shape == clips.shape == (32, 4, 16, 16)
    assert torch.equal(labels, same_labels) and set(labels.tolist()) == {0, 1}
    assert torch.equal(masks, masks[:, :1].expand_as(masks))  # static
    assert set(masks.unique().tolist()) == {-1.0, 1.0}  # binary figure masks (render_scale 1): 0 or 255
    stored = torch.from_numpy(ClipDataset(str(two_shapes), "val").data.mask(3))
    assert torch.equal(masks[3], stored.float() / 127.5 - 1)
    assert not torch.equal(clips[:, 0], clips[:, 1])  # the noise moves


@pytest.mark.slow
def test_a_frame_wise_model_reads_masks_not_clips_and_runs_repeat_exactly(two_shapes):
    options = {"width": 4, "dim": 8}
    runs = [probe(str(two_shapes), encoder="framewise", options=options, inputs=inputs, steps=60, every=30,
                  log=lambda *_: None) for inputs in ("masks", "masks", "clips")]
    assert runs[0] == runs[1]
    assert runs[0][-1]["val_acc"] >= 0.8  # circle against cross, drawn clean: chance is 0.5
    assert runs[2][-1]["val_acc"] <= 0.7  # the same figures in noise: time-blind


def test_bad_input_is_named(two_shapes, tmp_path, capsys):
    with pytest.raises(ValueError, match="inputs='pixels'.*clips.*masks"):
        probe(str(two_shapes), encoder="framewise", inputs="pixels")
    mixed = tmp_path / "mixed"
    cfg = StimulusConfig(height=16, width=16, motion=MotionConfig(frames=4), categories=("shapes", "patterns"))
    write_dataset(mixed, cfg, 0, {"train": 8, "val": 8}, log=lambda *_: None)
    with pytest.raises(SystemExit, match=r"one category .* found \['patterns', 'shapes'\]"):
        main([str(mixed), "--encoder", "framewise"])
    with pytest.raises(SystemExit, match="unknown encoder 'vit'"):
        main([str(two_shapes), "--encoder", "vit", "--steps", "1"])


def test_command_line_prints_one_json_result(two_shapes, capsys):
    main([str(two_shapes), "--encoder", "framewise", "--options", '{"width": 4, "dim": 8}', "--steps", "2"])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["input"] == "clips" and result["seed"] == 0 and len(result["history"]) == 1
