"""Parallel jobs never lose an MLflow run on the embedded SQLite store."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

WRITER = textwrap.dedent("""
    import sys, time
    from timeblind import tracking
    results_dir, index, start_at = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    time.sleep(max(0.0, start_at - time.time()))  # all writers hit the fresh store together
    with tracking.step_run("train", {"encoder": "e", "seed": index}, {"encoder": "e", "seed": index},
                           results_dir) as run:
        for step in range(25):  # sustained contention: many small writes
            run.log_metrics({"loss": 1.0 / (step + 1), "acc": step / 25}, step=step)
""")


def run_writers(results_dir, env, n=8):
    import time

    start_at = time.time() + 4.0  # after every interpreter has imported mlflow
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(results_dir), str(i), str(start_at)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(n)]
    return [(p.wait(timeout=240), p.stderr.read()) for p in procs]


@pytest.mark.slow
@pytest.mark.parametrize("initialised_first", [True, False], ids=["pipeline-init-first", "no-init"])
def test_eight_parallel_writers_on_a_fresh_store_lose_nothing(tmp_path, env, initialised_first, logged_runs):
    results = tmp_path / "results"
    if initialised_first:  # what the pipeline's init_tracking rule does before fanning out
        subprocess.run([sys.executable, "-m", "timeblind", "init-tracking", "--results-dir", str(results)],
                       env=env, check=True, capture_output=True)
    outcomes = run_writers(results, env)
    assert [code for code, _ in outcomes] == [0] * 8, [err[-2000:] for code, err in outcomes if code]
    client, runs = logged_runs(results)
    assert len(runs) == 8
    assert sorted(int(r.data.params["seed"]) for r in runs) == list(range(8))
    for run in runs:
        assert run.info.status == "FINISHED"
        assert len(client.get_metric_history(run.info.run_id, "loss")) == 25
        assert {"step", "git_commit", "config_hash", "encoder", "seed"} <= set(run.data.tags)
        assert "version.torch" in run.data.params


def test_store_uri_is_absolute_and_overridable(tmp_path, monkeypatch):
    from timeblind import tracking

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    uri = tracking.tracking_uri("results")
    assert uri == f"sqlite:///{tmp_path / 'results' / 'mlflow.db'}" and uri.startswith("sqlite:////")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert tracking.tracking_uri("results") == "http://127.0.0.1:5999"


def test_init_writes_store_description(tmp_path, env):
    out = tmp_path / "tracking.json"
    subprocess.run([sys.executable, "-m", "timeblind", "init-tracking", "--results-dir", str(tmp_path / "r"),
                    "--output", str(out)], env=env, check=True, capture_output=True)
    store = json.loads(out.read_text())
    assert store["experiment"] == "timeblind" and store["tracking_uri"].endswith("/r/mlflow.db")
    experiment = MlflowClient(store["tracking_uri"]).get_experiment_by_name("timeblind")
    assert experiment.artifact_location == (tmp_path / "r" / "mlartifacts").as_uri()


def test_a_step_in_process_does_not_redirect_the_next_steps_logging(tiny_shapes, tmp_path, monkeypatch,
                                                                      logged_runs):
    """Lightning's MLFlowLogger sets MLFLOW_TRACKING_URI for the whole process (through
    mlflow.set_tracking_uri): without the guard, a second step called from the same process with
    another results folder logged its run into the first step's store."""
    from timeblind.steps.train import train

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    data = tiny_shapes({"train": 16, "val": 8})
    for name in ("first", "second"):
        train(data_dir=str(data), out_dir=str(tmp_path / name / "model"), encoder="framewise", seed=0,
              training={"max_steps": 2, "batch_size": 8, "lr": 1e-3, "weight_decay": 0.0, "val_every": 2},
              encoder_options={"width": 4, "dim": 8}, results_dir=str(tmp_path / name / "results"))
        assert "MLFLOW_TRACKING_URI" not in os.environ
    for name in ("first", "second"):
        assert len(logged_runs(tmp_path / name / "results", "tags.step = 'train'")[1]) == 1, name


def test_every_experiment_keeps_its_artifacts_in_the_results_folder(tmp_path, monkeypatch):
    """MLflow's Default experiment would point at mlruns/0 in whatever directory first opened the store."""
    from timeblind import tracking

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    results = tmp_path / "results"
    tracking.init_store(str(results))
    experiments = MlflowClient(tracking.tracking_uri(str(results))).search_experiments()
    assert {e.name: e.artifact_location for e in experiments} == {
        "Default": (results / "mlartifacts" / "0").as_uri(), "timeblind": (results / "mlartifacts").as_uri()}
    assert not (tmp_path / "mlruns").exists()


@pytest.mark.parametrize("original", ["deleted", "changed"])
def test_a_copied_results_folder_serves_its_own_artifacts(tmp_path, monkeypatch, original):
    """Copy results/ elsewhere, then delete the original or change its files: opening the copy
    (any step, init-tracking, make mlflow) points MLflow at the copy's own artifacts."""
    import shutil

    from timeblind import tracking

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    first, second = tmp_path / "a" / "results", tmp_path / "b" / "results"
    note = tmp_path / "note.txt"
    note.write_text("as logged")
    with tracking.step_run("generate", {"seed": 0}, {}, str(first)) as run:
        run.log_artifact(note, "tables")
    shutil.copytree(first, second)
    if original == "deleted":
        shutil.rmtree(first)
    else:
        next((first / "mlartifacts").rglob("note.txt")).write_text("changed in the original")
    tracking.init_store(str(second))
    client = MlflowClient(tracking.tracking_uri(str(second)))
    got = client.get_run(run.run_id)
    assert got.info.artifact_uri == f"{(second / 'mlartifacts').as_uri()}/{run.run_id}/artifacts"
    local = client.download_artifacts(run.run_id, "tables/note.txt", str(tmp_path / "download"))
    assert Path(local).read_text() == "as logged"
    assert all(e.artifact_location.startswith((second / "mlartifacts").as_uri()) for e in client.search_experiments())
