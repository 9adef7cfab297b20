"""Score the points of one study: generate its test sets, score every model on the sets it is
paired with, and lay the scores out as a tidy table (one row per point, placement and category)
plus a summary over seeds, ready to plot."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from timeblind.evaluation.evaluate import ANSWER, score_models
from timeblind.evaluation.metrics import t_interval
from timeblind.studies import Point, placements

SNR_METRIC = "combined_snr_db"  # the SpookyBench analyzer's headline number
SNR_CLIPS = 16  # clips per motion-coded category measured per test set


def write_test_sets(points: list[Point], out_dir: Path, workers: int = 1) -> dict[str, Path]:
    """Each distinct test set once, as a data set with only a test split; returns folder by test id."""
    from timeblind.data.dataset import StimulusConfig, write_dataset

    folders = {}
    for point in points:
        if point.test_id in folders:
            continue
        data = point.test
        folder = out_dir / point.test_id
        write_dataset(folder, StimulusConfig.from_pipeline(data), data["seed"], {"test": data["test_size"]},
                      workers=workers)
        folders[point.test_id] = folder
    return folders


def measure_test_snr(folder: Path, workers: int = 1) -> float:
    """Mean SNR (dB) of the first clips of each motion-coded category of a test set."""
    from timeblind.analysis.snr import analyze_clips, snr_clips

    clips, _ = snr_clips(folder, split="test", per_category=SNR_CLIPS)
    if not clips:
        return math.nan
    measured = analyze_clips([(name, clip) for name, _, clip in clips], workers=workers)
    return float(measured[SNR_METRIC].mean())


def _train_run(model_path: Path) -> str:
    metrics = model_path.with_name("metrics.json")
    return json.loads(metrics.read_text()).get("mlflow_run_id", "") if metrics.exists() else ""


def score_points(config: dict, points: list[Point], out_dir: Path, resolve, *, measure_snr: bool = False,
                 workers: int = 1, log=print) -> pd.DataFrame:
    """One row per point x placement x category: accuracy with its Wilson 95% interval on the
    point's test set, the measured SNR of that set (when asked) and the training run's id."""
    folders = write_test_sets(points, out_dir, workers)
    snr = {tid: measure_test_snr(folder, workers) if measure_snr else math.nan for tid, folder in folders.items()}
    scores = {}  # (test id, model path) -> its answer rows, one per category
    for tid, folder in folders.items():
        paths = list(dict.fromkeys(str(resolve(p.model.path)) for p in points if p.test_id == tid))
        per_model = score_models(paths, folder, "test", log=log)
        for r in per_model[per_model.task == ANSWER].itertuples():
            scores.setdefault((tid, r.model), []).append(r)
    rows = []
    for point in points:
        path = resolve(point.model.path)
        train_run = _train_run(path)
        for panel, x, series in placements(config, point):
            for r in scores[(point.test_id, str(path))]:
                rows.append({"study": point.study, "panel": panel, "x": x, "series": series, **point.tags(),
                             "category": r.category, "n": r.n, "correct": r.correct, "accuracy": r.accuracy,
                             "ci_low": r.ci_low, "ci_high": r.ci_high, "chance": r.chance,
                             "snr_db": snr[point.test_id], "model": point.model.path, "model_id": point.model.id,
                             "test_id": point.test_id, "train_run_id": train_run})
    return pd.DataFrame(rows)


def summarise_study(table: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds per panel x x x series x category, with a t interval over >= 2 seeds, else
    the single seed's Wilson interval."""
    keys = ["study", "panel", "x", "series", "category"]
    rows = []
    for key, group in table.groupby(keys, sort=False):
        if len(group) >= 2:
            low, high = t_interval(group["accuracy"].tolist())
            method = f"t over {len(group)} seeds"
        else:
            low, high, method = group["ci_low"].iloc[0], group["ci_high"].iloc[0], "Wilson, 1 seed"
        rows.append({**dict(zip(keys, key)), "accuracy": group["accuracy"].mean(), "ci_low": low, "ci_high": high,
                     "interval": method, "seeds": " ".join(str(s) for s in group["seed"]),
                     "n_per_seed": int(group["n"].iloc[0]), "chance": group["chance"].iloc[0],
                     "snr_db": group["snr_db"].mean() if group["snr_db"].notna().any() else np.nan})
    return pd.DataFrame(rows)


def _search_runs(tracking_uri: str, filter_string: str) -> pd.DataFrame:
    """mlflow.search_runs' table (tags.*, metrics.*, start_time) through a client: the module-level
    call would set MLFLOW_TRACKING_URI for the whole process, and every later step would log there."""
    from mlflow.tracking import MlflowClient

    from timeblind.tracking import EXPERIMENT

    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    rows, token = [], None
    while experiment is not None:
        page = client.search_runs([experiment.experiment_id], filter_string, page_token=token)
        rows += [{"run_id": r.info.run_id, "start_time": r.info.start_time,
                  **{f"tags.{k}": v for k, v in r.data.tags.items()},
                  **{f"metrics.{k}": v for k, v in r.data.metrics.items()}} for r in page]
        token = page.token
        if not token:
            break
    return pd.DataFrame(rows)


def study_from_runs(tracking_uri: str, study: str, parent_runs: list[str]) -> pd.DataFrame:
    """The tidy study table rebuilt from the child runs of a study's MLflow run(s): the latest
    parent run when none are named; with several, each run's series carry its short id."""
    from timeblind.evaluation.metrics import wilson_interval

    runs = _search_runs(tracking_uri, f"tags.kind = 'study_point' and tags.study = '{study}'")
    if runs.empty:
        raise ValueError(f"no runs of study {study!r} in {tracking_uri}; run the pipeline first")
    parents = runs["tags.mlflow.parentRunId"]
    if not parent_runs:
        latest = runs.sort_values("start_time").iloc[-1]["tags.mlflow.parentRunId"]
        parent_runs = [latest]
    missing = sorted(set(parent_runs) - set(parents))
    if missing:
        raise ValueError(f"parent run(s) {missing} have no points of study {study!r}; "
                         f"its runs are {sorted(set(parents))}")
    runs = runs[parents.isin(parent_runs)].sort_values("start_time")  # logging order: the config's order of values
    categories = sorted(c.removeprefix("metrics.acc.") for c in runs.columns
                        if c.startswith("metrics.acc.") and runs[c].notna().any())
    rows = []
    for get in runs.to_dict("records"):
        parent = get["tags.mlflow.parentRunId"]
        for panel, x, series in json.loads(get["tags.placements"]):
            if len(parent_runs) > 1:
                series = f"{series} [{parent[:7]}]"
            for category in categories:
                accuracy, n = get[f"metrics.acc.{category}"], get[f"metrics.n.{category}"]
                if pd.isna(accuracy):
                    continue
                low, high = wilson_interval(round(accuracy * n), int(n))
                rows.append({"study": study, "panel": panel, "x": x, "series": series, "category": category,
                             "encoder": get["tags.encoder"], "seed": int(get["tags.seed"]), "n": int(n),
                             "accuracy": accuracy, "ci_low": low, "ci_high": high,
                             "chance": get[f"metrics.chance.{category}"], "snr_db": get.get("metrics.snr_db", np.nan),
                             "parent_run": parent})
    return pd.DataFrame(rows)
