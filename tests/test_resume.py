"""A training job killed halfway resumes from its last checkpoint into the same MLflow run."""

import json
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from timeblind.models.checkpoint import load_model

# The train step in its own process, as a notebook kernel runs it; `slow_step_s` stretches each
# step so the test can kill it between two checkpoints.
TRAIN = textwrap.dedent("""
    import json, sys, time
    from timeblind.steps.train import train
    from timeblind.training.module import VideoTaskModule

    args = json.loads(sys.argv[1])
    slow = args.pop("slow_step_s", 0)
    if slow:
        step = VideoTaskModule.training_step
        def slowed(self, batch, batch_idx):
            time.sleep(slow)
            return step(self, batch, batch_idx)
        VideoTaskModule.training_step = slowed
    train(**args)
""")


@pytest.fixture(scope="module")
def tiny_data(tiny_shapes):
    return tiny_shapes({"train": 48, "val": 16, "test": 8})


def train_args(data, tmp_path, **changes):
    # 48 clips in batches of 16: 3 steps an epoch, so the checkpoints (every 8 steps) fall mid-epoch too
    return {"data_dir": str(data), "out_dir": str(tmp_path / "model"), "encoder": "early_temporal", "seed": 3,
            "encoder_options": {"width": 4, "dim": 16}, "results_dir": str(tmp_path / "results"),
            "training": {"max_steps": 24, "batch_size": 16, "lr": 2e-3, "weight_decay": 0.05, "val_every": 8,
                         **changes}}


def final_weights(path):
    if path.suffix == ".ckpt":
        checkpoint = torch.load(path, weights_only=True)
        assert checkpoint["global_step"] == 24
        return checkpoint["state_dict"]
    return load_model(path)[0].state_dict()


@pytest.mark.slow
def test_killed_training_resumes_into_the_same_run(tiny_data, tmp_path, env, capsys, logged_runs):
    out, results = tmp_path / "model", tmp_path / "results"
    args = train_args(tiny_data, tmp_path)
    # 1. a real kill: SIGKILL just after the second checkpoint (step 16 of 24). Validation accuracy
    # does not improve after step 8 on this data, so this also checks that checkpoints do not wait
    # for a new best (Lightning's save_last alone would have left last.ckpt at step 8).
    proc = subprocess.Popen([sys.executable, "-c", TRAIN, json.dumps({**args, "slow_step_s": 0.15})], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    first_log, last = [], out / "checkpoints" / "last.ckpt"
    for line in proc.stdout:
        first_log.append(line)
        if line.startswith("step 16/24"):  # printed just before that step's checkpoint is written
            break
    before, deadline = last.stat().st_mtime_ns, time.time() + 30
    while last.stat().st_mtime_ns == before and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # a step or so further: lost, and redone by the resumed run
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL, "training ended before the kill:\n" + "".join(first_log)
    proc.stdout.close()
    record = json.loads((out / "resume.json").read_text())
    killed_at = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]
    assert killed_at == 16 and not (out / "model.pt").exists()
    assert torch.load(out / "checkpoints" / "best.ckpt", weights_only=True)["global_step"] == 8  # as said above
    client, runs = logged_runs(results, "tags.step = 'train'")
    assert [r.info.run_id for r in runs] == [record["run_id"]] and runs[0].info.status == "RUNNING"
    shutil.copytree(out, tmp_path / "copy")  # the interrupted state, for the changed-parameters case below

    # 2. started again with the same parameters: continues from last.ckpt, into the same run
    second = subprocess.run([sys.executable, "-c", TRAIN, json.dumps(args)], env=env, capture_output=True, text=True,
                            timeout=120)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert f"resuming from {out / 'checkpoints' / 'last.ckpt'} at step {killed_at}/24" in second.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["mlflow_run_id"] == record["run_id"] and metrics["resumed_from_step"] == killed_at
    assert not (out / "resume.json").exists()  # finished: the next run is a new training
    client, runs = logged_runs(results, "tags.step = 'train'")
    assert len(runs) == 1
    run = client.get_run(record["run_id"])
    assert run.info.status == "FINISHED" and run.data.tags["resumed"] == "1"
    loss_steps = {m.step for m in client.get_metric_history(run.info.run_id, "train/loss")}
    assert min(loss_steps) < killed_at < max(loss_steps)  # both parts logged into the one run
    assert {"best_val_acc", "resumed_from_step"} <= set(run.data.metrics)

    # 3. the same training uninterrupted ends with the same weights (CPU, deterministic)
    from timeblind.training.config import TrainConfig
    from timeblind.training.fit import fit

    reference = fit(tiny_data, tmp_path / "reference", TrainConfig.from_dict(args["training"]), encoder=args["encoder"],
                    seed=args["seed"], encoder_options=args["encoder_options"], log=lambda *a, **k: None)
    assert reference["best_val_acc"] == metrics["best_val_acc"]
    # model.pt holds the best validated weights (step 8 here): compare the final ones too
    for name in ("model.pt", "checkpoints/last.ckpt"):
        resumed, uninterrupted = (final_weights(folder / name) for folder in (out, tmp_path / "reference"))
        assert resumed.keys() == uninterrupted.keys()
        assert all(torch.equal(resumed[k], uninterrupted[k]) for k in resumed), name

    # 4. the interrupted state again (copied before step 2), started with another learning rate: clean
    from timeblind.steps.train import train

    capsys.readouterr()
    changed = train(**{**train_args(tiny_data, tmp_path, lr=1e-3), "out_dir": str(tmp_path / "copy")})
    assert f"starting clean in {tmp_path / 'copy'}" in capsys.readouterr().out
    assert changed["resumed_from_step"] == 0
    client, runs = logged_runs(results, "tags.step = 'train'")
    new = [r for r in runs if r.info.run_id != record["run_id"]]
    assert len(runs) == 2 and len(new) == 1 and "resumed" not in new[0].data.tags
