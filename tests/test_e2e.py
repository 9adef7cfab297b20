"""Real Snakemake runs of the whole pipeline on the smoke profile (config/smoke.yaml on top of
config/config.yaml, as `make reproduce PROFILE=smoke` reads them), in a temporary directory."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from snakemake.utils import update_config
from timeblind.plan import grounding as grounding_plan
from timeblind.plan import studies as study_plan
from timeblind.plan.config import validate
from report_check import check_report

REPO = Path(__file__).resolve().parents[1]
SMOKE = [REPO / "config" / "config.yaml", REPO / "config" / "smoke.yaml"]  # the default, then the smoke profile
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]


def smoke_config() -> dict:
    """The configuration the smoke profile runs: the default with smoke.yaml on top, as Snakemake
    merges them, validated (defaults filled in)."""
    config = yaml.safe_load(SMOKE[0].read_text())
    update_config(config, yaml.safe_load(SMOKE[1].read_text()))
    validate(config, schema=REPO / "workflow/schemas/config.schema.yaml")
    return config


def snakemake(workdir, env, *args, configfiles=SMOKE):
    return subprocess.run(SNAKEMAKE + ["--directory", str(workdir), "--configfile", *map(str, configfiles), *args],
                          env=env, capture_output=True, text=True, timeout=1500)


def planned_jobs(workdir, env, configfiles=SMOKE) -> set[str]:
    out = snakemake(workdir, env, "--dry-run", "--quiet", "rules", configfiles=configfiles)
    assert out.returncode == 0, out.stderr[-3000:]
    rules = {"init_tracking", "generate", "snr", "train", "evaluate", "plot", "spookybench_export", "gallery",
             "stave_probe", "study_data", "study_train", "study", "grounding_data", "grounding_align", "grounding_stage",
             "grounding_table", "all"}
    return {line.split()[0] for line in out.stdout.splitlines() if line.split() and line.split()[0] in rules}


@pytest.mark.e2e
def test_smoke_profile_runs_every_rule_end_to_end(tmp_path, env, logged_runs):
    run = snakemake(tmp_path, env, "--cores", "2")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
    results = tmp_path / "results"
    config = smoke_config()
    data, encoders, seeds = config["data"], list(config["encoders"]), config["training"]["seeds"]
    categories = data["categories"]
    motion_coded = [c for c in categories if c != "patterns"]  # patterns carry brightness, not motion

    # Outputs: data with a manifest, one model per encoder, tables, figures, notebooks.
    manifest = yaml.safe_load((results / "data/stimuli/manifest.json").read_text())
    assert manifest["counts"] == {split: data[f"{split}_size"] for split in ("train", "val", "test")}
    assert manifest["categories"] == categories
    assert len(list((results / "figures/stimuli_animations").glob("*.gif"))) == 3 * len(categories)
    snr = pd.read_csv(results / "tables/snr_summary.csv")
    assert set(snr["category"]) == {"all", *motion_coded}
    for encoder in encoders:
        for seed in seeds:
            assert (results / f"models/{encoder}/seed{seed}/model.pt").stat().st_size > 0
    summary = pd.read_csv(results / "tables/accuracy.csv")
    answers = summary[summary.task == "answer"]
    assert list(answers["encoder"]) == [e for e in encoders for _ in categories]
    assert list(answers["category"]) == categories * len(encoders)
    assert set(summary.task) == {"answer", "pattern bits", "pattern length", "pattern next bit"}
    assert ((summary["ci_low"] <= summary["accuracy"]) & (summary["accuracy"] <= summary["ci_high"])).all()
    per_model = pd.read_csv(results / "tables/accuracy_by_model.csv")
    assert (per_model["n"] == data["test_size"] // len(categories)).all()  # the test split, even per category
    assert per_model["model"].str.startswith("results/models/").all()  # relative: the same wherever cloned
    table1 = pd.read_csv(results / "tables/table1.csv")
    assert list(table1.columns) == ["encoder", *categories] and list(table1["encoder"]) == [*encoders, "chance"]
    # The same on an official-format export at other settings.
    export = results / "data/spookybench_export"
    # official/ holds the release's own categories, official/patterns/ the patterns, each scored per model.
    official, patterns = (pd.read_csv(export / f"official/{m}metadata.csv") for m in ("", "patterns/"))
    assert "patterns" not in set(official.Category) and set(patterns.Category) == {"patterns"}
    assert len(official) + len(patterns) == config["export"]["test_size"]
    assert sorted(p.name for p in (export / "predictions").iterdir()) == sorted(
        f"{e}_seed{s}{suffix}.json" for e in encoders for s in seeds for suffix in ("", "_patterns"))
    exported = pd.read_csv(results / "tables/spookybench_export_by_model.csv")
    assert set(exported.category) <= set(categories) and (exported.skipped == 0).all()
    assert exported.n.sum() == len(encoders) * len(seeds) * config["export"]["test_size"]
    for name in ("accuracy.png", "accuracy.svg", "learning_curves.png", "learning_curves.svg", "stimuli.png",
                 "stimuli.svg", "gallery.png", "gallery.svg", "stave_probe.png", "stave_probe.svg"):
        assert (results / "figures" / name).stat().st_size > 1000
    probe = pd.read_csv(results / "tables/stave_probe.csv")  # every stage of the STAVE model, in order
    assert probe["stage"].tolist() == ["input", "stem", "stem pairs", *[f"{part} {k}" for k in range(
        1, config["encoders"]["stave"]["depth"] + 1) for part in ("attention", "block")], "pooled", "figure"]
    gallery = pd.read_csv(results / "tables/gallery.csv")  # clips of each motion-coded category, every model
    assert len(gallery) == config["gallery"]["per_category"] * len(motion_coded) * len(encoders)
    assert set(gallery.encoder) == set(encoders) and gallery["model"].str.startswith("results/models/").all()
    for step in ("generate", "snr", "evaluate", "plot", *(f"train_{e}_seed{s}" for e in encoders for s in seeds)):
        assert "<html" in (results / f"notebooks/{step}.html").read_text()[:2000].lower()
        assert (results / f"logs/{step}.ipynb").exists()
    assert f"step {config['training']['max_steps']}/{config['training']['max_steps']}" in (
        results / "logs/train_early_temporal_seed0.log").read_text()

    # MLflow: every step's run arrived, finished, with provenance, metrics and its notebook.
    client, every_run = logged_runs(results)
    runs = [r for r in every_run if "mlflow.parentRunId" not in r.data.tags]  # one per step
    points = [r for r in every_run if r.data.tags.get("kind") == "study_point"]
    study_points, grounding_runs = study_plan.expand(config), grounding_plan.runs(config)
    study_models = {**study_plan.models(study_points), **grounding_plan.models(config)}
    study_data = {**study_plan.datasets(study_points), **grounding_plan.datasets(config)}
    studies = study_plan.study_names(config)
    stages = {("align", r.encoder, r.seed) for r in grounding_runs} | {
        ("time", grounding_plan.time_recipe(r.variant), r.encoder, r.seed) for r in grounding_runs} | {
        ("instruct", r.variant, r.encoder, r.seed) for r in grounding_runs}
    assert sorted(r.data.tags["step"] for r in runs) == sorted([
        "evaluate", "gallery", "stave_probe", *["generate"] * (1 + len(study_data)), "plot", "snr", "spookybench_export",
        *["study"] * len(studies), *["train"] * (len(encoders) * len(seeds) + len(study_models)), "grounding_data",
        *["grounding_stage"] * len(stages), "grounding_table",
        *["pretrain_reader"] * (1 + len({m.data.id for m in study_models.values() if not m.table1}))])
    for r in runs:
        assert r.info.status == "FINISHED"
        assert r.data.tags["config_hash"] and r.data.tags["git_commit"]
        assert "version.torch" in r.data.params and "results_dir" in r.data.params
        attached = {Path(a.path).suffix for a in client.list_artifacts(r.info.run_id, "notebook")}
        assert attached == {".ipynb", ".html"}, r.info.run_name
    train = [r for r in runs if r.data.tags["step"] == "train"]
    assert all("train/loss" in r.data.metrics and "val/acc" in r.data.metrics for r in train)
    evaluate = next(r for r in runs if r.data.tags["step"] == "evaluate")
    assert {f"test_acc.{e}.{c}" for e in encoders for c in categories} <= set(evaluate.data.metrics)

    # Studies: a table, a summary and a figure each; a parent run with one child run per point.
    study_runs = {r.data.tags["study"]: r.info.run_id for r in runs if r.data.tags["step"] == "study"}
    assert sorted(study_runs) == sorted(studies)
    for study, run_id in study_runs.items():
        mine = [p for p in study_points if p.study == study]
        children = [r for r in points if r.data.tags["mlflow.parentRunId"] == run_id]
        assert len(children) == len(mine), study
        assert all(r.data.tags["kind"] == "study_point" and r.data.tags["config_hash"] and r.data.tags["git_commit"]
                   for r in children)
        table = pd.read_csv(results / f"tables/study_{study}.csv")
        assert len(table) >= len(mine) and set(table.category) <= set(categories)
        assert (results / f"figures/study_{study}.png").stat().st_size > 1000
    snr_points = pd.read_csv(results / "tables/study_snr.csv", dtype={"x": str})  # Table 1 models, SNR measured per test set
    assert set(snr_points.model) == {f"results/models/{e}/seed{s}/model.pt" for e in encoders for s in seeds}
    assert snr_points.snr_db.notna().all()
    for point in (p for p in study_points if p.train_axis == "augment"):  # scored on every test set of its study
        scored = {r.data.tags["test_value"] for r in points if r.data.tags["train_value"] == point.train_value
                  and r.data.tags["study"] == point.study}
        assert point.test_value in scored

    # Grounding: every stage of every run, the table with a chance row, the figures, a child run per row.
    stage_runs = [r for r in runs if r.data.tags["step"] == "grounding_stage"]
    assert sorted((r.data.tags["stage"], r.data.tags["encoder"]) for r in stage_runs) == sorted(
        (stage[0], stage[-2]) for stage in stages)
    assert all("test.r1_iou0.5" in r.data.metrics for r in stage_runs if r.data.tags["stage"] == "instruct")
    grounding = pd.read_csv(results / "tables/grounding_summary.csv")
    assert list(zip(grounding.variant, grounding.encoder.fillna(""))) == [
        *((r.variant, r.encoder) for r in grounding_runs), ("chance", "")]
    assert grounding["r1_iou0.5"].between(0, 1).all() and grounding["miou"].between(0, 1).all()
    table_run = next(r for r in runs if r.data.tags["step"] == "grounding_table")
    rows = [r for r in every_run if r.data.tags.get("mlflow.parentRunId") == table_run.info.run_id]
    assert sorted(r.data.tags["encoder"] for r in rows) == sorted(r.encoder for r in grounding_runs)
    for name in ("grounding.png", "grounding_spans.png"):
        assert (results / "figures" / name).stat().st_size > 1000
    last = grounding_runs[-1]
    predictions = json.loads((tmp_path / last.stage_dir("instruct") / "predictions.json").read_text())
    assert {r["kind"] for r in predictions["records"]} <= {"what", "when", "refer", "order"}

    # The report holds the figures, the tables and the notebooks.
    report = snakemake(tmp_path, env, "--report", str(tmp_path / "report.html"))
    assert report.returncode == 0, report.stderr[-3000:]
    html = (tmp_path / "report.html").read_text()
    for name in ("accuracy.png", "learning_curves.png", "stimuli.png", "table1.csv", "spookybench_export_table1.csv", "accuracy.csv",
                 "accuracy_by_model.csv", "evaluate.html",
                 "snr_summary.csv", ".gif", "grounding.png", "grounding_table.csv"):
        assert name in html, name

    # Nothing changed: nothing to do. One parameter changed: only the jobs it affects.
    assert planned_jobs(tmp_path, env) == set()
    changed = yaml.safe_load(SMOKE[1].read_text())
    changed["training"]["batch_size"] += 8
    changed_file = tmp_path / "changed.yaml"
    changed_file.write_text(yaml.safe_dump(changed))
    # (study models, the grounding encoders among them, start from the Table 1 training section, so they
    # retrain too; the test-only snr study scores the Table 1 models)
    assert planned_jobs(tmp_path, env, [SMOKE[0], changed_file]) == {
        "train", "evaluate", "plot", "spookybench_export", "gallery", "stave_probe", "study_train", "study",
        "grounding_align", "grounding_stage", "grounding_table", "all"}
    check_report(tmp_path, env)  # what a reader sees in the report, rendered in headless Chromium


@pytest.mark.e2e
def test_failing_step_keeps_its_notebook_and_leaves_no_outputs(tmp_path, env, logged_runs):
    config = smoke_config()
    config["encoders"] = {"framewise": {**config["encoders"]["framewise"], "heads": 3}}
    assert config["encoders"]["framewise"]["dim"] % 3  # not divisible by 3
    del config["studies"], config["grounding"]  # both name encoders this config drops
    configfile = tmp_path / "failing.yaml"
    configfile.write_text(yaml.safe_dump(config))
    run = snakemake(tmp_path, env, "--cores", "2", configfiles=[configfile])
    assert run.returncode != 0
    results = tmp_path / "results"
    assert (results / "data/stimuli/manifest.json").exists()  # finished work is kept
    assert not (results / "models/framewise/seed0/model.pt").exists()
    assert not (results / "notebooks/train_framewise_seed0.html").exists()
    notebook = (results / "logs/train_framewise_seed0.ipynb").read_text()
    assert "divisible by num_heads" in notebook and "papermill-error-cell-tag" in notebook
    assert "divisible by num_heads" in (results / "logs/train_framewise_seed0.html").read_text()
    assert "failed in cell" in (results / "logs/train_framewise_seed0.log").read_text()
    client, runs = logged_runs(results)
    statuses = {r.data.tags["step"]: r.info.status for r in runs}
    assert statuses.pop("snr", "FINISHED") == "FINISHED"  # may run beside the failing job
    assert statuses == {"generate": "FINISHED", "pretrain_reader": "FINISHED", "train": "FAILED"}
