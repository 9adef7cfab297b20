"""Real Snakemake runs of the whole pipeline on a tiny configuration, in a temporary directory."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from timeblind.plan.config import validate
from report_check import check_report

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "config" / "tiny.yaml"
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]


def snakemake(workdir, env, *args, configfile=TINY):
    return subprocess.run(SNAKEMAKE + ["--directory", str(workdir), "--configfile", str(configfile), *args],
                          env=env, capture_output=True, text=True, timeout=900)


def planned_jobs(workdir, env, configfile=TINY) -> set[str]:
    out = snakemake(workdir, env, "--dry-run", "--quiet", "rules", configfile=configfile)
    assert out.returncode == 0, out.stderr[-3000:]
    rules = {"init_tracking", "generate", "snr", "train", "evaluate", "plot", "spookybench_export", "gallery",
             "study_data", "study_train", "study", "grounding_data", "grounding_align", "grounding_stage",
             "grounding_table", "all"}
    return {line.split()[0] for line in out.stdout.splitlines() if line.split() and line.split()[0] in rules}


@pytest.mark.e2e
def test_tiny_pipeline_end_to_end(tmp_path, env, logged_runs):
    run = snakemake(tmp_path, env, "--cores", "2")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
    results = tmp_path / "results"

    # Outputs: data with a manifest, one model per encoder, tables, figures, notebooks.
    manifest = yaml.safe_load((results / "data/stimuli/manifest.json").read_text())
    assert manifest["counts"] == {"train": 64, "val": 16, "test": 32}
    assert manifest["categories"] == ["shapes", "patterns"] and manifest["storage"] == "uint8"
    assert len(list((results / "figures/stimuli_animations").glob("*.gif"))) == 6  # 3 per category
    snr = pd.read_csv(results / "tables/snr_summary.csv")
    assert set(snr["category"]) == {"all", "shapes"}  # patterns carry brightness, not motion
    for encoder in ("framewise", "early_temporal"):
        assert (results / f"models/{encoder}/seed0/model.pt").stat().st_size > 0
    summary = pd.read_csv(results / "tables/accuracy.csv")
    answers = summary[summary.task == "answer"]
    assert list(answers["encoder"]) == ["framewise", "framewise", "early_temporal", "early_temporal"]
    assert list(answers["category"]) == ["shapes", "patterns"] * 2
    assert set(summary.task) == {"answer", "pattern bits", "pattern length", "pattern next bit"}
    assert ((summary["ci_low"] <= summary["accuracy"]) & (summary["accuracy"] <= summary["ci_high"])).all()
    per_model = pd.read_csv(results / "tables/accuracy_by_model.csv")
    assert (per_model["n"] == 16).all()  # 32 test clips, half per category
    table1 = pd.read_csv(results / "tables/table1.csv")
    assert list(table1.columns) == ["encoder", "shapes", "patterns"]
    assert list(table1["encoder"]) == ["framewise", "early_temporal", "chance"]
    # The same on an official-format export at other settings (24x20 px, 6 frames, any direction).
    export = results / "data/spookybench_export"
    official, patterns = (pd.read_csv(export / f"official/{m}metadata.csv") for m in ("", "patterns/"))
    assert set(official.Category) == {"shapes"} and set(patterns.Category) == {"patterns"}  # the release's own
    assert len(official) + len(patterns) == 8
    assert sorted(p.name for p in (export / "predictions").iterdir()) == [
        "early_temporal_seed0.json", "early_temporal_seed0_patterns.json", "framewise_seed0.json",
        "framewise_seed0_patterns.json"]
    exported = pd.read_csv(results / "tables/spookybench_export_by_model.csv")
    assert set(exported.category) == {"shapes", "patterns"} and (exported.skipped == 0).all()
    assert exported.n.sum() == 2 * 8
    for name in ("accuracy.png", "accuracy.svg", "stimuli.png", "stimuli.svg", "gallery.png", "gallery.svg"):
        assert (results / "figures" / name).stat().st_size > 1000
    gallery = pd.read_csv(results / "tables/gallery.csv")  # 2 shapes clips (patterns left out) x 2 encoders
    assert len(gallery) == 2 * 2 and set(gallery.encoder) == {"framewise", "early_temporal"}
    for step in ("generate", "snr", "evaluate", "plot", "train_framewise_seed0", "train_early_temporal_seed0"):
        assert "<html" in (results / f"notebooks/{step}.html").read_text()[:2000].lower()
        assert (results / f"logs/{step}.ipynb").exists()
    assert "step 4/4" in (results / "logs/train_early_temporal_seed0.log").read_text()

    # MLflow: every step's run arrived, finished, with provenance, metrics and its notebook.
    client, every_run = logged_runs(results)
    runs = [r for r in every_run if "mlflow.parentRunId" not in r.data.tags]  # one per step
    points = [r for r in every_run if r.data.tags.get("kind") == "study_point"]
    # 2 study data sets (base, 6 frames), 4 study models (base, 6 frames, difference stem, noise), 3 studies
    # grounding: its data, align per encoder, time and instruct per run, the table; framewise's base model
    assert sorted(r.data.tags["step"] for r in runs) == sorted([
        "evaluate", "gallery", *["generate"] * 3, "plot", "snr", "spookybench_export", *["study"] * 3,
        *["train"] * 7, "grounding_data", *["grounding_stage"] * 6, "grounding_table"])
    for r in runs:
        assert r.info.status == "FINISHED"
        assert r.data.tags["config_hash"] and r.data.tags["git_commit"]
        assert "version.torch" in r.data.params and "results_dir" in r.data.params
        attached = {Path(a.path).suffix for a in client.list_artifacts(r.info.run_id, "notebook")}
        assert attached == {".ipynb", ".html"}, r.info.run_name
    train = [r for r in runs if r.data.tags["step"] == "train"]
    assert sorted(r.data.tags["encoder"] for r in train) == ["early_temporal"] * 5 + ["framewise"] * 2
    assert all("train/loss" in r.data.metrics and "val/acc" in r.data.metrics for r in train)
    assert "test_acc.early_temporal.shapes" in next(r for r in runs if r.data.tags["step"] == "evaluate").data.metrics

    # Studies: a table, a summary and a figure each; a parent run with one child run per point.
    from timeblind.plan.studies import expand

    config = yaml.safe_load(TINY.read_text())
    validate(config, schema=REPO / "workflow/schemas/config.schema.yaml")
    expected = expand(config)
    study_runs = {r.data.tags["study"]: r.info.run_id for r in runs if r.data.tags["step"] == "study"}
    assert sorted(study_runs) == ["augment", "context", "snr"]
    for study, run_id in study_runs.items():
        mine = [p for p in expected if p.study == study]
        children = [r for r in points if r.data.tags["mlflow.parentRunId"] == run_id]
        assert len(children) == len(mine), study
        assert all(r.data.tags["kind"] == "study_point" and r.data.tags["config_hash"] and r.data.tags["git_commit"]
                   and "acc.shapes" in r.data.metrics for r in children)
        table = pd.read_csv(results / f"tables/study_{study}.csv")
        assert len(table) >= len(mine) and set(table.category) <= {"shapes", "patterns"}
        assert (results / f"figures/study_{study}.png").stat().st_size > 1000
    snr_points = pd.read_csv(results / "tables/study_snr.csv", dtype={"x": str})  # Table 1 models, SNR measured per test set
    assert set(snr_points.model) == {"results/models/framewise/seed0/model.pt",
                                     "results/models/early_temporal/seed0/model.pt"}
    assert snr_points.snr_db.notna().all() and set(snr_points.x) == {"1.0", "0.5"}
    noisy = [r for r in points if r.data.tags["train_value"] == "noise"]  # scored at its own speed and at 2
    assert sorted(r.data.tags["test_value"] for r in noisy) == ["1", "2"]
    context = pd.read_csv(results / "tables/study_context_summary.csv", dtype={"x": str})
    assert sorted(zip(context.panel, context.x)) == [("frames", "4"), ("frames", "6"), ("stem", "conv3d"),
                                                      ("stem", "difference")]

    # Grounding: every stage of every run, the table with a chance row, the figures, a child run per row.
    stages = [r for r in runs if r.data.tags["step"] == "grounding_stage"]
    assert sorted((r.data.tags["stage"], r.data.tags["encoder"]) for r in stages) == sorted(
        (stage, encoder) for stage in ("align", "time", "instruct") for encoder in ("early_temporal", "framewise"))
    assert all("test.r1_iou0.5" in r.data.metrics for r in stages if r.data.tags["stage"] == "instruct")
    grounding = pd.read_csv(results / "tables/grounding_summary.csv")
    assert list(grounding.variant) == ["fpo_both", "fpo_both", "chance"]
    assert list(grounding.encoder.fillna("")) == ["early_temporal", "framewise", ""]
    assert grounding["r1_iou0.5"].between(0, 1).all() and grounding["miou"].between(0, 1).all()
    table_run = next(r for r in runs if r.data.tags["step"] == "grounding_table")
    rows = [r for r in every_run if r.data.tags.get("mlflow.parentRunId") == table_run.info.run_id]
    assert sorted(r.data.tags["encoder"] for r in rows) == ["early_temporal", "framewise"]
    for name in ("grounding.png", "grounding_spans.png"):
        assert (results / "figures" / name).stat().st_size > 1000
    predictions = yaml.safe_load((results / "grounding/runs/fpo_both-framewise/seed0/instruct/predictions.json").read_text())
    assert {r["kind"] for r in predictions["records"]} <= {"what", "when", "refer", "order"}

    # The report holds the figures, the tables and the notebooks.
    report = snakemake(tmp_path, env, "--report", str(tmp_path / "report.html"))
    assert report.returncode == 0, report.stderr[-3000:]
    html = (tmp_path / "report.html").read_text()
    for name in ("accuracy.png", "stimuli.png", "table1.csv", "spookybench_export_table1.csv", "accuracy.csv",
                 "accuracy_by_model.csv", "evaluate.html",
                 "snr_summary.csv", ".gif", "grounding.png", "grounding_table.csv"):
        assert name in html, name

    # Nothing changed: nothing to do. One parameter changed: only the jobs it affects.
    assert planned_jobs(tmp_path, env) == set()
    changed = yaml.safe_load(TINY.read_text())
    changed["training"]["max_steps"] = 5
    changed_file = tmp_path / "changed.yaml"
    changed_file.write_text(yaml.safe_dump(changed))
    # (study models start from the Table 1 training section, so they retrain too)
    assert planned_jobs(tmp_path, env, changed_file) == {"train", "evaluate", "plot", "spookybench_export",
                                                         "gallery", "study_train", "study", "grounding_align",
                                                         "grounding_stage", "grounding_table", "all"}
    check_report(tmp_path, env)  # what a reader sees in the report, rendered in headless Chromium


@pytest.mark.e2e
def test_failing_step_keeps_its_notebook_and_leaves_no_outputs(tmp_path, env, logged_runs):
    config = yaml.safe_load(TINY.read_text())
    config["encoders"] = {"framewise": {"width": 4, "dim": 16, "heads": 3}}  # 16 is not divisible by 3
    del config["studies"], config["grounding"]  # both name early_temporal, which this config drops
    configfile = tmp_path / "failing.yaml"
    configfile.write_text(yaml.safe_dump(config))
    run = snakemake(tmp_path, env, "--cores", "2", configfile=configfile)
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
    assert statuses == {"generate": "FINISHED", "train": "FAILED"}
