"""Training is deterministic on CPU and exports a loadable model."""

import dataclasses

import pytest
import torch

from timeblind.models.checkpoint import load_model
from timeblind.training.config import TrainConfig
from timeblind.training.fit import fit

SMALL = {"width": 4, "dim": 16}
QUIET = {"log": lambda *a, **k: None}


@pytest.mark.slow
def test_same_seed_gives_the_same_metrics_and_weights(tiny_data, tmp_path):
    runs = []
    for name in ("a", "b"):
        cfg = TrainConfig(max_steps=6, batch_size=16, lr=2e-3, weight_decay=0.05, val_every=3)
        metrics = fit(tiny_data, tmp_path / name, cfg, encoder="early_temporal", seed=3, encoder_options=SMALL, **QUIET)
        runs.append((metrics, load_model(tmp_path / name / "model.pt")[0].state_dict()))
    (m_a, w_a), (m_b, w_b) = runs
    assert m_a["best_val_acc"] == m_b["best_val_acc"]
    assert all(torch.equal(w_a[k], w_b[k]) for k in w_a)
    assert (tmp_path / "a" / "checkpoints" / "last.ckpt").exists()


@pytest.mark.slow
def test_streaming_training_renders_fresh_clips_and_is_deterministic(tiny_data, tmp_path):
    runs = []
    for name in ("a", "b"):
        cfg = TrainConfig(max_steps=4, batch_size=8, lr=2e-3, weight_decay=0.05, val_every=2, stream=True)
        metrics = fit(tiny_data, tmp_path / name, cfg, encoder="early_temporal", seed=3, encoder_options=SMALL, **QUIET)
        runs.append(metrics["best_val_acc"])
        assert load_model(tmp_path / name / "model.pt")[1]["extra"]["stream"] is True
    assert runs[0] == runs[1]


@pytest.mark.slow
def test_augmentations_change_training_and_are_recorded(tiny_data, tmp_path):
    def weights(name, augment):
        # val_every > max_steps: validated once, at the end, so there are best weights to export
        cfg = TrainConfig(max_steps=3, batch_size=16, lr=2e-3, weight_decay=0.05, val_every=10, augment=augment)
        fit(tiny_data, tmp_path / name, cfg, encoder="early_temporal", seed=3, encoder_options=SMALL, **QUIET)
        model, info = load_model(tmp_path / name / "model.pt")
        return model.state_dict(), info["extra"]["augment"]

    plain, recorded = weights("plain", {})
    noisy, recorded_noisy = weights("noisy", {"blur": {"p": 1.0, "sigma": [1.0, 2.0]}})
    assert recorded == {} and recorded_noisy == {"blur": {"p": 1.0, "sigma": [1.0, 2.0]}}
    assert not all(torch.equal(plain[k], noisy[k]) for k in plain)


@pytest.mark.slow
def test_training_starts_from_the_pretrained_reader(tiny_data, tmp_path):
    """fit(reader=...) puts the pretrained reader into the heads before the first step: with a
    learning rate of 0 the exported reader is the pretrained one (batch-norm statistics aside),
    here under the motion-energy observer, whose trainable part learns the figure alone."""
    from timeblind.core.tasks import TaskSpec
    from timeblind.data.dataset import load_manifest
    from timeblind.models.checkpoint import save_reader
    from timeblind.training.config import ReaderTrainConfig
    from timeblind.data.torch_data import ClipDataset
    from timeblind.training.reader import pretrain_reader
    from timeblind.training.trainer import figure_sizes_of

    weights, _ = pretrain_reader(str(tiny_data), ReaderTrainConfig(max_steps=2, batch_size=8, val_every=2), seed=1,
                                 **QUIET)
    save_reader(tmp_path / "reader.pt", weights, TaskSpec.from_manifest(load_manifest(tiny_data)))
    cfg = TrainConfig(max_steps=2, batch_size=16, lr=0.0, weight_decay=0.0, val_every=2)
    fit(tiny_data, tmp_path / "me", cfg, encoder="motion_energy", seed=0, encoder_options=SMALL,
        reader=str(tmp_path / "reader.pt"), **QUIET)
    model, info = load_model(tmp_path / "me" / "model.pt")
    assert info["encoder"] == "motion_energy" and info["extra"]["reader"] is True
    assert info["extra"]["figure_sizes"] == figure_sizes_of(ClipDataset(str(tiny_data), "train"))  # for a closer look
    state = model.heads.state_dict()
    learned = [k for k in weights if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert learned and all(torch.equal(state[k], weights[k]) for k in learned)
    # with a learning rate, the reader stays as pretrained, batch-norm statistics included, unless
    # train_reader asks the answers to train it too
    for train_reader in (False, True):
        trained = dataclasses.replace(cfg, lr=0.01, train_reader=train_reader)
        out = tmp_path / f"me_{train_reader}"
        fit(tiny_data, out, trained, encoder="motion_energy", seed=0, encoder_options=SMALL,
            reader=str(tmp_path / "reader.pt"), **QUIET)
        state = load_model(out / "model.pt")[0].heads.state_dict()
        same = all(torch.equal(state[k], weights[k]) for k in weights if not k.endswith("num_batches_tracked"))
        assert same is not train_reader, train_reader


@pytest.mark.slow
def test_compiled_training_matches_eager_and_exports_plain_weights(tiny_data, tmp_path, monkeypatch):
    from torch._dynamo.utils import counters

    # Dynamo traces the model as in production; the aot_eager backend skips inductor's C++ build,
    # which takes minutes on 2 cores (make bench times the real thing).
    plain_compile = torch.nn.Module.compile
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, **kw: plain_compile(self, backend="aot_eager", **kw))

    cfg = TrainConfig(max_steps=4, batch_size=16, lr=2e-3, weight_decay=0.05, val_every=4)
    args = dict(encoder="early_temporal", seed=3, encoder_options=SMALL, **QUIET)
    eager = fit(tiny_data, tmp_path / "eager", cfg, **args)
    graphs = counters["stats"]["unique_graphs"]
    compiled = fit(tiny_data, tmp_path / "compiled", dataclasses.replace(cfg, torch_compile=True), **args)
    assert counters["stats"]["unique_graphs"] > graphs  # dynamo traced the model
    assert compiled["torch_compile"] and not eager["torch_compile"]
    w_eager = load_model(tmp_path / "eager" / "model.pt")[0].state_dict()
    w_compiled = load_model(tmp_path / "compiled" / "model.pt")[0].state_dict()  # no "_orig_mod." prefixes
    assert w_compiled.keys() == w_eager.keys()
    # The same training: traced kernels round differently, and Adam turns a rounding difference in a
    # near-zero gradient into up to lr per step (4 steps of 2e-3 here), so the bound is a quarter of that.
    for name in w_eager:
        torch.testing.assert_close(w_compiled[name], w_eager[name], rtol=0.0, atol=2e-3)
