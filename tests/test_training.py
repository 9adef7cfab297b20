"""Training is deterministic on CPU and exports a loadable model."""

import pytest
import torch

from timeblind.data.dataset import StimulusConfig, write_dataset
from timeblind.models import load_model
from timeblind.stimuli import MotionConfig
from timeblind.stimuli.categories import WordOptions
from timeblind.training.fit import fit


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    # every kind of task: closed classes, words read letter by letter, pattern heads
    cfg = StimulusConfig(height=16, width=40, motion=MotionConfig(frames=4), categories=("shapes", "words", "patterns"),
                         shapes=("circle", "star"), words=WordOptions(vocabulary=6, held_out=2))
    write_dataset(out, cfg, 0, {"train": 64, "val": 16, "test": 16}, log=lambda *_: None)
    return out


@pytest.mark.slow
def test_same_seed_gives_the_same_metrics_and_weights(tiny_data, tmp_path):
    runs = []
    for name in ("a", "b"):
        metrics = fit(tiny_data, tmp_path / name, encoder="early_temporal", seed=3, max_steps=6, batch_size=16,
                      lr=2e-3, weight_decay=0.05, val_every=3, encoder_options={"width": 4, "dim": 16},
                      log=lambda *a, **k: None)
        runs.append((metrics, load_model(tmp_path / name / "model.pt")[0].state_dict()))
    (m_a, w_a), (m_b, w_b) = runs
    assert m_a["best_val_acc"] == m_b["best_val_acc"]
    assert all(torch.equal(w_a[k], w_b[k]) for k in w_a)
    assert (tmp_path / "a" / "checkpoints" / "last.ckpt").exists()


@pytest.mark.slow
def test_streaming_training_renders_fresh_clips_and_is_deterministic(tiny_data, tmp_path):
    runs = []
    for name in ("a", "b"):
        metrics = fit(tiny_data, tmp_path / name, encoder="early_temporal", seed=3, max_steps=4, batch_size=8,
                      lr=2e-3, weight_decay=0.05, val_every=2, encoder_options={"width": 4, "dim": 16},
                      stream=True, log=lambda *a, **k: None)
        runs.append(metrics["best_val_acc"])
        assert load_model(tmp_path / name / "model.pt")[1]["extra"]["stream"] is True
    assert runs[0] == runs[1]
