"""The study step (08_study), and compare_runs (notebooks/compare_runs.ipynb): one ablation study
scored, laid out as a tidy table, drawn, and logged as an MLflow parent run with a child run per
point; or redrawn later from those runs alone."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from timeblind import tracking
from timeblind.analysis.snr_batch import analyze_clips, snr_clips
from timeblind.core.io import write_csv
from timeblind.core.layout import RESULTS, resolve
from timeblind.core.stats import wilson_interval
from timeblind.data.dataset import StimulusConfig, write_dataset
from timeblind.evaluation.study import score_sets, summarise_study
from timeblind.plan.studies import BASE, TRAIN_SIDE, Point, expand, label, lookup, option_value, study_axes
from timeblind.plots.figures import study_figure

SNR_METRIC = "combined_snr"  # the SpookyBench analyzer's headline number
SNR_CLIPS = 16  # clips per motion-coded category measured per test set
POINT_KEYS = ["encoder", "seed", "train_axis", "train_value", "test_axis", "test_value"]


def study(*, study: str, config: dict, out_dir: str, tables_dir: str, figures_dir: str, workers: int = 1,
          results_dir: str = RESULTS) -> pd.DataFrame:
    """One ablation study (plan/studies.py): its test sets, every point scored, a tidy table
    (study_<name>.csv, one row per point and category) and its summary over seeds
    (study_<name>_summary.csv), the figure, and an MLflow parent run with one child run per point."""
    p = dict(locals())
    points = [point for point in expand(config) if point.study == study]
    settings = config["studies"][study]
    tables, out = resolve(tables_dir), resolve(out_dir)
    tables.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out, ignore_errors=True)  # test sets are regenerated with the scores: same bytes
    with tracking.step_run("study", p, {"study": study}, results_dir) as run:
        folders = write_test_sets(points, out, workers)
        snr = {tid: measure_test_snr(folder, workers) if settings.get("measure_snr", False) else math.nan
               for tid, folder in folders.items()}
        table = point_table(config, points, folders, snr)
        summary = summarise_study(table)
        for name, frame in ((f"study_{study}", table), (f"study_{study}_summary", summary)):
            run.log_artifact(write_csv(frame, tables / f"{name}.csv"), "tables")
        seeds = " ".join(str(s) for s in config["training"]["seeds"])
        budgets = sorted({int(pt.model.training["max_steps"]) for pt in points})
        title = f"study {study}: {len(points)} points, seeds {seeds}, {'/'.join(map(str, budgets))} training steps"
        for path in study_figure(summary, resolve(figures_dir) / f"study_{study}", title=title,
                                 snr_x=settings.get("measure_snr", False)):
            run.log_artifact(path, "figures")
        for _, group in table.groupby(POINT_KEYS, sort=False):
            log_point(run, study, group)
        run.log_metrics({"points": len(points)})
    return summary


def write_test_sets(points: list[Point], out_dir: Path, workers: int = 1) -> dict[str, Path]:
    """Each distinct test set once, as a data set with only a test split; returns folder by test id."""
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
    clips, _ = snr_clips(folder, split="test", per_category=SNR_CLIPS)
    if not clips:
        return math.nan
    measured = analyze_clips([(name, clip) for name, _, clip in clips], workers=workers)
    return float(measured[SNR_METRIC].mean())


def point_table(config: dict, points: list[Point], folders: dict[str, Path], snr: dict[str, float]) -> pd.DataFrame:
    """One row per point x placement x category: accuracy with its Wilson 95% interval on the
    point's test set, the measured SNR of that set and the training run's id."""
    models = {tid: list(dict.fromkeys(str(resolve(p.model.path)) for p in points if p.test_id == tid))
              for tid in folders}
    scores = score_sets(folders, models)
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


def base_value(point: Point, axis: str, kind: str) -> str:
    """The base model's value of a train-side axis, as its label on that axis's curve."""
    if kind == "augment":
        return "none"
    if kind == "options":
        return label(option_value({**point.model.options, "encoder": point.model.kind}, point.encoder, axis))
    value = lookup(point.model.data.data, axis)
    return BASE if value is None else label(value)


def placements(config: dict, point: Point) -> list[tuple[str, str, str]]:
    """Where a point is drawn: (panel, x, series). With test axes: one panel per test axis, x the
    test value, one series per model. Without: one panel per train-side axis, x the trained value,
    one series per encoder; the base model is drawn on every axis at its own value."""
    study = config["studies"][point.study]
    axes = study_axes(point.study, study)
    if any(kind == "test" for kind, _, _ in axes):
        trained = [(kind, axis) for kind, axis, _ in axes if kind in TRAIN_SIDE]
        if point.train_value != BASE:
            series = f"{point.encoder}, {point.train_axis}={point.train_value}"
        elif trained:  # the base model, named by its own value on each train-side axis
            series = f"{point.encoder}, " + ", ".join(f"{axis}={base_value(point, axis, kind)}" for kind, axis in trained)
        else:
            series = point.encoder
        return [(point.test_axis or "test", point.test_value, series)]
    if point.train_value != BASE:
        return [(point.train_axis, point.train_value, point.encoder)]
    return [(axis, base_value(point, axis, kind), point.encoder) for kind, axis, _ in axes]


def _train_run(model_path: Path) -> str:
    metrics = model_path.with_name("metrics.json")
    return json.loads(metrics.read_text()).get("mlflow_run_id", "") if metrics.exists() else ""


def log_point(run, study: str, group: pd.DataFrame) -> None:
    """A point's child run: its tags, its scores per category, and where it is drawn (so a figure
    can be redrawn from the runs alone, compare_runs)."""
    first = group.iloc[0]
    tags = {k: first[k] for k in ("study", *POINT_KEYS, "model_id", "test_id", "train_run_id")}
    tags["config_hash"] = tracking.config_hash({"model": first["model_id"], "test": first["test_id"]})
    tags["kind"] = "study_point"
    tags["placements"] = json.dumps(list(dict.fromkeys(zip(group["panel"], group["x"], group["series"]))))
    name = f"{study}-{first['encoder']}-{first['train_axis'] or 'base'}={first['train_value']}-" \
           f"{first['test_axis'] or 'test'}={first['test_value']}-seed{first['seed']}"
    per_category = group.drop_duplicates("category")
    metrics = {f"acc.{r.category}": r.accuracy for r in per_category.itertuples()}
    metrics |= {f"n.{r.category}": r.n for r in per_category.itertuples()}
    metrics |= {f"chance.{r.category}": r.chance for r in per_category.itertuples()}
    if group["snr_db"].notna().any():
        metrics["snr_db"] = float(group["snr_db"].iloc[0])
    run.child_run(name, tags, {"model": first["model"]}, metrics)


def compare_runs(*, study: str, figure: str, parent_runs: list | None = None, results_dir: str = RESULTS
                 ) -> pd.DataFrame:
    """Redraw a study from the MLflow store alone: its latest run, or the given parent runs (then
    each run is its own series), from this machine's pipeline or any other that logged to the same
    store. Returns the summary it drew."""
    store = tracking.init_store(results_dir)  # a moved or copied store's artifacts found where it is now
    table = study_from_runs(store["tracking_uri"], study, parent_runs or [])
    summary = summarise_study(table)
    study_figure(summary, resolve(figure), title=f"study {study} from MLflow: "
                 f"{table['parent_run'].nunique()} run(s), seeds {' '.join(map(str, sorted(table['seed'].unique())))}",
                 snr_x=bool(table["snr_db"].notna().all()))
    return summary


def study_from_runs(tracking_uri: str, study: str, parent_runs: list[str]) -> pd.DataFrame:
    """The tidy study table rebuilt from the child runs of a study's MLflow run(s): the latest
    parent run when none are named; with several, each run's series carry its short id."""
    clause = tracking.equals("tags.study", study)
    runs = tracking.search_runs(tracking_uri, "tags.kind = 'study_point'" + (f" and {clause}" if clause else ""))
    if not runs.empty:  # exact, also where the filter could not say the name
        runs = runs[runs["tags.study"] == study]
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
