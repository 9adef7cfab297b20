"""The shared tracking server: a real PostgreSQL and MLflow on loopback, started and stopped by
workflow/scripts/tracking_server.sh; pipeline jobs running in parallel log to it and lose nothing."""

import glob
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "workflow" / "scripts" / "tracking_server.sh"
SMOKE = [REPO / "config" / "config.yaml", REPO / "config" / "smoke.yaml"]  # make reproduce PROFILE=smoke
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env() -> dict:
    e = dict(os.environ)
    e["PATH"] = f"{BIN}{os.pathsep}{e.get('PATH', '')}"
    e["PYTHONPATH"] = f"{REPO / 'lib'}{os.pathsep}{e.get('PYTHONPATH', '')}"
    e.pop("MLFLOW_TRACKING_URI", None)
    return e


@pytest.fixture(scope="module")
def server():
    if not (shutil.which("initdb") or glob.glob("/usr/lib/postgresql/*/bin/initdb")):
        pytest.fail("PostgreSQL's server binaries are missing: apt-get install postgresql")
    # Not pytest's tmp_path: run as root, PostgreSQL runs as `postgres`, which cannot enter the
    # mode-700 /tmp/pytest-of-root.
    base = Path(tempfile.mkdtemp(prefix="timeblind-tracking-"))
    base.chmod(0o755)
    mlflow_port = free_port()
    pg_port = next(p for p in iter(free_port, None) if p != mlflow_port)
    env = {**base_env(), "TRACKING_DIR": str(base / "server"), "MLFLOW_ARTIFACTS": str(base / "mlartifacts"),
           "MLFLOW_PORT": str(mlflow_port), "PG_PORT": str(pg_port), "MLFLOW_WORKERS": "2"}
    try:
        start = time.perf_counter()
        out = subprocess.run([str(SCRIPT), "start"], env=env, capture_output=True, text=True, timeout=240)
        seconds = time.perf_counter() - start
        assert out.returncode == 0, out.stdout + out.stderr
        print(f"\ntracking server up in {seconds:.1f} s:\n{out.stdout}")
        status = subprocess.run([str(SCRIPT), "status"], env=env, capture_output=True, text=True)
        assert status.returncode == 0, status.stdout + status.stderr
        uri = subprocess.run([str(SCRIPT), "uri"], env=env, capture_output=True, text=True, check=True).stdout.strip()
        assert uri == f"http://127.0.0.1:{env['MLFLOW_PORT']}"
        yield {"uri": uri, "artifacts": base / "mlartifacts", "env": env, "start_seconds": seconds}
    finally:
        stop = subprocess.run([str(SCRIPT), "stop"], env=env, capture_output=True, text=True, timeout=120)
        status = subprocess.run([str(SCRIPT), "status"], env=env, capture_output=True, text=True)
        shutil.rmtree(base, ignore_errors=True)
        assert stop.returncode == 0, stop.stdout + stop.stderr
        assert status.returncode == 3 and "PostgreSQL not running" in status.stdout, status.stdout


def test_parallel_pipeline_jobs_all_arrive_on_the_server(server, tmp_path):
    # The smoke profile's init_tracking, generate and two of its training jobs, run side by side.
    config = yaml.safe_load(SMOKE[0].read_text())
    expected = {(e, s) for e in list(config["encoders"])[:2] for s in config["training"]["seeds"][:1]}
    assert len(expected) == 2
    targets = [f"results/models/{e}/seed{s}/model.pt" for e, s in sorted(expected)]
    env = {**base_env(), "MLFLOW_TRACKING_URI": server["uri"]}
    run = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
                          "--directory", str(tmp_path), "--configfile", *map(str, SMOKE), "--cores", "2", *targets],
                         env=env, capture_output=True, text=True, timeout=600)
    results = tmp_path / "results"
    assert run.returncode == 0, run.stderr[-3000:] + failed_job_logs(results / "logs")
    assert not (results / "mlflow.db").exists() and not (results / "mlartifacts").exists()  # nothing stayed local

    client = MlflowClient(server["uri"])
    experiment = client.get_experiment_by_name("timeblind")
    assert experiment.artifact_location.startswith("mlflow-artifacts:"), experiment.artifact_location
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    assert sorted(r.data.tags["step"] for r in runs) == ["generate", "pretrain_reader"] + ["train"] * len(expected)
    train = [r for r in runs if r.data.tags["step"] == "train"]
    assert {(r.data.tags["encoder"], int(r.data.tags["seed"])) for r in train} == expected
    for r in runs:
        assert r.info.status == "FINISHED", r.info.run_name
        assert r.data.tags["config_hash"] and r.data.tags["git_commit"] and "version.torch" in r.data.params
        attached = {Path(a.path).suffix for a in client.list_artifacts(r.info.run_id, "notebook")}
        assert attached == {".ipynb", ".html"}, r.info.run_name
    for r in train:  # Lightning's logger wrote through the server too
        assert "train/loss" in r.data.metrics and "val/acc" in r.data.metrics
        metrics = json.loads((results / f"models/{r.data.tags['encoder']}/seed{r.data.tags['seed']}/metrics.json")
                             .read_text())
        assert metrics["mlflow_run_id"] == r.info.run_id
    generate = next(r for r in runs if r.data.tags["step"] == "generate")
    assert "manifest.json" in {a.path for a in client.list_artifacts(generate.info.run_id)}
    # The uploads are in the server's artifact store, one folder per run.
    assert len(list(server["artifacts"].rglob("*.ipynb"))) == len(runs)
    # The training jobs ran side by side. Snakemake's log says so for certain; the MLflow run spans
    # would only say so when neither job happened to finish before the other's kernel had started.
    assert most_at_once(run.stderr, "train") == len(expected), run.stderr[-5000:]


def failed_job_logs(logs: Path) -> str:
    """The last lines of every job log that reports an error."""
    tails = []
    for log in sorted(logs.rglob("*.log")):
        text = log.read_text(errors="replace")
        if "Traceback" in text or "Error" in text:
            tails.append(f"\n--- {log.name} ---\n{text[-4000:]}")
    return "".join(tails)


def most_at_once(snakemake_log: str, rule: str) -> int:
    """The largest number of `rule` jobs running at the same time, read from Snakemake's log."""
    running = peak = 0
    for line in map(str.strip, snakemake_log.splitlines()):
        if re.fullmatch(rf"(local)?rule {rule}:", line):
            running += 1
            peak = max(peak, running)
        elif re.fullmatch(rf"Finished jobid: \d+ \(Rule: {rule}\)", line):
            running -= 1
    return peak


WRITER = textwrap.dedent("""
    import sys, tempfile, time
    from pathlib import Path
    from timeblind import tracking
    index, start_at = int(sys.argv[1]), float(sys.argv[2])
    time.sleep(max(0.0, start_at - time.time()))  # every writer starts at once
    with tracking.step_run("train", {"encoder": "e", "seed": index}, {"encoder": "e", "seed": index},
                           experiment="stress") as run:
        for step in range(25):  # sustained contention: many small writes
            run.log_metrics({"loss": 1.0 / (step + 1), "acc": step / 25}, step=step)
        note = Path(tempfile.mkdtemp()) / f"writer{index}.txt"
        note.write_text(str(index))
        run.log_artifact(note, "notes")
""")


def test_eight_concurrent_writers_lose_nothing(server, tmp_path):
    n = 8
    env = {**base_env(), "MLFLOW_TRACKING_URI": server["uri"]}
    init = subprocess.run(  # what the pipeline's init_tracking does before jobs fan out
        [sys.executable, "-c", "from timeblind import tracking; tracking.init_store(experiment='stress')"],
        env=env, cwd=tmp_path, capture_output=True, text=True)
    assert init.returncode == 0, init.stderr
    start_at = time.time() + 5.0  # after every interpreter has imported mlflow
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(i), str(start_at)], env=env, cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(n)]
    outcomes = [(p.wait(timeout=240), p.stderr.read()) for p in procs]
    assert [code for code, _ in outcomes] == [0] * n, [err[-2000:] for code, err in outcomes if code]
    client = MlflowClient(server["uri"])
    experiment = client.get_experiment_by_name("stress")
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    assert sorted(int(r.data.params["seed"]) for r in runs) == list(range(n))
    for run in runs:
        assert run.info.status == "FINISHED"
        assert len(client.get_metric_history(run.info.run_id, "loss")) == 25
        assert [a.path for a in client.list_artifacts(run.info.run_id, "notes")] == [
            f"notes/writer{run.data.params['seed']}.txt"]
