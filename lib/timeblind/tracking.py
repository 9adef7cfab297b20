"""MLflow setup and run helpers. Only the steps (timeblind.steps) and the command line call this module.

Defaults follow what keeps parallel jobs safe on SQLite: an absolute URI, the store and the
experiment created once under a file lock beside the database (not in /tmp, which does not
span nodes), WAL journaling, and retries when SQLite still reports a lock under contention.
Every experiment's artifacts live in the results folder's mlartifacts/, and opening the store
points them at the folder it is opened in, so a moved or copied results folder serves its own
files. MLFLOW_TRACKING_URI, when set, points everything at a team's tracking server instead.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import random
import sqlite3
import subprocess
import time
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlparse

from filelock import FileLock

from timeblind.core.layout import RESULTS, resolve

EXPERIMENT = "timeblind"
RUN_RECORD_ENV = "TIMEBLIND_RUN_RECORD"  # the notebook runner reads the run id from this file


def tracking_uri(results_dir: str | os.PathLike = RESULTS) -> str:
    if env := os.environ.get("MLFLOW_TRACKING_URI"):
        return env
    return f"sqlite:///{resolve(results_dir) / 'mlflow.db'}"  # absolute: four slashes


def _sqlite_path(uri: str) -> Path | None:
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def _client(uri: str):
    from mlflow.tracking import MlflowClient  # imported lazily: mlflow is slow to import

    return MlflowClient(tracking_uri=uri)


def with_retries(call, *args, attempts: int = 8, **kwargs):
    """Call an MLflow client method, retrying while SQLite reports a lock."""
    for attempt in range(attempts):
        try:
            return call(*args, **kwargs)
        except Exception as err:  # MlflowException or sqlalchemy OperationalError
            if "database is locked" not in str(err) or attempt == attempts - 1:
                raise
            time.sleep(0.2 * 2**attempt * (1 + random.random()))


def init_store(results_dir: str | os.PathLike = RESULTS, experiment: str = EXPERIMENT) -> dict:
    """Create the store and the experiment once; safe to call from many processes at once."""
    uri = tracking_uri(results_dir)
    # A tracking server keeps artifacts in its own store (mlflow-artifacts:/, uploaded through
    # it); a folder on this machine would be out of other machines' and the server's reach.
    server = uri.startswith(("http://", "https://"))
    artifacts = None if server else (resolve(results_dir) / "mlartifacts").as_uri()
    db = _sqlite_path(uri)
    if db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(db) + ".lock") if db is not None else None
    if lock:
        lock.acquire(timeout=300)
    try:
        client = _client(uri)  # runs the schema migrations on a fresh SQLite file
        found = with_retries(client.get_experiment_by_name, experiment)
        experiment_id = found.experiment_id if found else with_retries(
            client.create_experiment, experiment, artifact_location=artifacts)
        if db is not None:
            with sqlite3.connect(db) as con:  # WAL lets readers (the UI) and one writer overlap
                con.execute("PRAGMA journal_mode=WAL")
            with_retries(keep_artifacts_inside, db, resolve(results_dir) / "mlartifacts")
    finally:
        if lock:
            lock.release()
    return {"tracking_uri": uri, "experiment": experiment, "experiment_id": experiment_id}


def _local_path(location: str) -> Path | None:
    """The folder of a local artifact location (a file: URI or a plain absolute path), else None."""
    if location.startswith("file:"):
        return Path(unquote(urlparse(location).path))
    return Path(location) if location.startswith("/") else None


def keep_artifacts_inside(db: str | os.PathLike, root: Path) -> None:
    """Point every experiment of the SQLite store `db` whose artifacts are local into `root`, and
    each of its runs at <experiment location>/<run id>/artifacts, as MLflow places them.

    MLflow stores absolute locations (a relative one is resolved against the working directory
    when the experiment is created), so a results folder that was copied would serve the
    original's files, and a moved one none. A location under some `mlartifacts` folder keeps its
    place below it; any other (MLflow's Default experiment: mlruns/0 in the working directory it
    was created from) becomes root/<experiment id>. Remote locations (a server's
    mlflow-artifacts:, s3:) are left as they are."""
    with closing(sqlite3.connect(db)) as con, con:
        experiments = con.execute("SELECT experiment_id, artifact_location FROM experiments").fetchall()
        for experiment_id, location in experiments:
            path = _local_path(location or "")
            if path is None:
                continue
            if "mlartifacts" in path.parts:
                last = len(path.parts) - 1 - path.parts[::-1].index("mlartifacts")
                below = path.parts[last + 1:]
            else:
                below = (str(experiment_id),)
            wanted = root.joinpath(*below).as_uri()
            if location == wanted:
                continue
            con.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?", (wanted, experiment_id))
            con.execute("UPDATE runs SET artifact_uri = ? || '/' || run_uuid || '/artifacts' WHERE experiment_id = ?",
                        (wanted, experiment_id))


def git_commit() -> str:
    here = Path(__file__).parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def config_hash(params: dict) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:12]


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in ("timeblind", "torch", "lightning", "mlflow", "numpy", "papermill", "snakemake"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


@dataclass
class StepRun:
    """An open MLflow run of one pipeline step."""

    client: object
    run_id: str
    tracking_uri: str
    opened: object = field(default=None, repr=False)  # this run as stored, once a child run needed it

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step or 0) for k, v in metrics.items()]
        with_retries(self.client.log_batch, self.run_id, metrics=batch)

    def log_artifact(self, path: str | os.PathLike, artifact_path: str | None = None) -> None:
        with_retries(self.client.log_artifact, self.run_id, str(path), artifact_path)

    def _parent(self):
        if self.opened is None:  # read once: its tags are fixed once the run is open
            self.opened = with_retries(self.client.get_run, self.run_id)
        return self.opened

    def child_run(self, name: str, tags: dict, params: dict, metrics: dict[str, float]) -> str:
        """A finished nested run under this one (MLflow's UI shows it inside its parent), carrying
        the parent's provenance tags, so runs compare across studies and pipeline runs."""
        from mlflow.entities import Metric, Param

        parent = self._parent()
        inherited = {k: v for k, v in parent.data.tags.items() if k in ("git_commit", "step", "study")}
        run = with_retries(self.client.create_run, parent.info.experiment_id, run_name=name,
                           tags={**inherited, **{k: str(v) for k, v in tags.items()}, "mlflow.runName": name,
                                 "mlflow.parentRunId": self.run_id})
        now = int(time.time() * 1000)
        with_retries(self.client.log_batch, run.info.run_id,
                     metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()],
                     params=[Param(k, str(v)[:6000]) for k, v in params.items()])
        with_retries(self.client.set_terminated, run.info.run_id, "FINISHED")
        return run.info.run_id


def _reopen(client, run_id: str, experiment_id: str):
    """The run `run_id` of this experiment set RUNNING again, or None when the store lacks it."""
    from mlflow.exceptions import MlflowException

    try:
        run = with_retries(client.get_run, run_id)
    except MlflowException as err:
        if err.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        return None
    if run.info.experiment_id != experiment_id or run.info.lifecycle_stage != "active":
        return None
    with_retries(client.update_run, run_id, status="RUNNING")
    with_retries(client.set_tag, run_id, "resumed", str(int(run.data.tags.get("resumed", "0")) + 1))
    return run


@contextmanager
def step_run(step: str, params: dict, tags: dict | None = None, results_dir: str = RESULTS,
             experiment: str = EXPERIMENT, resume_run_id: str | None = None):
    """Open a run for one step with its parameters and provenance; closes it FINISHED or FAILED.

    resume_run_id: reopen that run (an interrupted step continuing) instead of creating one, when
    the store still has it; its tag `resumed` counts the reopenings. Only parameters it lacks are
    logged, since MLflow refuses to change a logged parameter."""
    from mlflow.entities import Param

    store = init_store(results_dir, experiment)
    client = _client(store["tracking_uri"])
    run = _reopen(client, resume_run_id, store["experiment_id"]) if resume_run_id else None
    existing = run.data.params if run is not None else {}
    if run is None:
        all_tags = {"step": step, "git_commit": git_commit(), "config_hash": config_hash(params),
                    **{k: str(v) for k, v in (tags or {}).items()}}
        run_name = "-".join([step] + [str(v) for k, v in (tags or {}).items()])
        run = with_retries(client.create_run, store["experiment_id"], run_name=run_name,
                           tags={**all_tags, "mlflow.runName": run_name})
    run_id = run.info.run_id
    if record := os.environ.get(RUN_RECORD_ENV):
        Path(record).write_text(json.dumps({"run_id": run_id, "tracking_uri": store["tracking_uri"],
                                            "artifact_uri": run.info.artifact_uri}))
    logged = {**{k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in params.items()},
              **{f"version.{k}": v for k, v in package_versions().items()}}
    with_retries(client.log_batch, run_id, params=[Param(k, str(v)[:6000]) for k, v in logged.items()
                                                   if k not in existing])
    try:
        yield StepRun(client, run_id, store["tracking_uri"])
    except BaseException:
        with_retries(client.set_terminated, run_id, "FAILED")
        raise
    with_retries(client.set_terminated, run_id, "FINISHED")


def equals(key: str, value: str) -> str | None:
    """An MLflow filter clause `key = value`, or None where the filter syntax cannot say it. MLflow
    takes a string literal as the text between its quotes, without escapes, so a value is quoted
    with a quote it does not contain; one with both kinds has to be matched after the search."""
    for quote in ("'", '"'):
        if quote not in value:
            return f"{key} = {quote}{value}{quote}"
    return None


def search_runs(uri: str, filter_string: str, experiment: str = EXPERIMENT):
    """mlflow.search_runs' table (run_id, start_time, tags.*, metrics.*) through a client: the
    module-level call would set MLFLOW_TRACKING_URI for the whole process, and every later step
    would log there."""
    import pandas as pd

    client = _client(uri)
    found = client.get_experiment_by_name(experiment)
    rows, token = [], None
    while found is not None:
        page = client.search_runs([found.experiment_id], filter_string, page_token=token)
        rows += [{"run_id": r.info.run_id, "start_time": r.info.start_time,
                  **{f"tags.{k}": v for k, v in r.data.tags.items()},
                  **{f"metrics.{k}": v for k, v in r.data.metrics.items()}} for r in page]
        token = page.token
        if not token:
            break
    return pd.DataFrame(rows)
