"""Multi-device training: Lightning DDP with two CPU processes (gloo), launched as a subprocess."""

import pytest
import torch

from timeblind.models.checkpoint import load_model


@pytest.fixture(scope="module")
def tiny_data(tiny_shapes):
    return tiny_shapes({"train": 64, "val": 16, "test": 8})


JOB = {"encoder": "early_temporal", "seed": 3, "encoder_options": {"width": 4, "dim": 16}}
TRAINING = {"max_steps": 4, "batch_size": 16, "lr": 2e-3, "weight_decay": 0.05, "val_every": 2, "devices": 2}


@pytest.mark.slow
def test_two_gloo_processes_train_log_once_and_repeat_exactly(tiny_data, tmp_path, monkeypatch, logged_runs):
    from timeblind.steps.train import train
    from timeblind.training.config import TrainConfig
    from timeblind.training.fit import fit

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # the step's accelerator "auto" must find CPUs only
    lines = []
    metrics = train(data_dir=str(tiny_data), out_dir=str(tmp_path / "a"), training=TRAINING,
                    results_dir=str(tmp_path / "results"), **JOB)
    again = fit(tiny_data, tmp_path / "b", TrainConfig.from_dict(TRAINING), accelerator="cpu",
                log=lambda line, **_: lines.append(line), **JOB)
    output = "\n".join(lines)
    assert "MEMBER: 2/2" in output, output[-3000:]  # two processes; without CUDA, the gloo backend
    assert metrics["devices"] == 2 and metrics["device"] == "cpu"
    assert again["best_val_acc"] == metrics["best_val_acc"]
    first, second = (load_model(tmp_path / name / "model.pt")[0].state_dict() for name in ("a", "b"))
    assert all(torch.equal(first[k], second[k]) for k in first)
    # the exported weights are the best validated ones: the final ones must match too
    first, second = (torch.load(tmp_path / name / "checkpoints" / "last.ckpt", weights_only=True)
                     for name in ("a", "b"))
    assert first["global_step"] == second["global_step"] == 4
    assert all(torch.equal(first["state_dict"][k], second["state_dict"][k]) for k in first["state_dict"])
    # rank 0 alone logged into the step's run: one value per logged step
    client, (run,) = logged_runs(tmp_path / "results")
    assert run.info.status == "FINISHED" and run.data.params["devices"] == "2"
    history = client.get_metric_history(run.info.run_id, "train/loss")
    assert history and len({m.step for m in history}) == len(history)
    assert run.data.metrics["devices"] == 2
