"""Studies: how the config expands into models and points, scoring layout, the figure and the
MLflow parent/child runs."""

import copy
import json
import os
from pathlib import Path

import pandas as pd
import pytest
import yaml

from timeblind.evaluation.study import summarise_study
from timeblind.plan.config import fill_defaults, validate
from timeblind.plan.studies import BASE, StudyError, expand, models
from timeblind.plan.studies import validate as validate_studies
from timeblind.steps.study import placements

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow/schemas/config.schema.yaml"


def make_config(studies: dict, seeds=(0,)) -> dict:
    config = {
        "data": {"categories": ["shapes"], "height": 16, "width": 16, "frames": 4, "train_size": 64, "val_size": 16,
                 "test_size": 32},
        "training": {"seeds": list(seeds), "max_steps": 4, "batch_size": 16},
        "encoders": {"framewise": {"width": 4, "dim": 16}, "early_temporal": {"width": 4, "dim": 16},
                     "stave": {"dim": 16, "depth": 2, "heads": 2, "patch_size": 4, "image_size": 16}},
        "studies": copy.deepcopy(studies),
    }
    fill_defaults(config, yaml.safe_load(SCHEMA.read_text()))  # as the Snakefile does, before its checks
    return config


def test_test_only_study_scores_the_table1_models_at_every_value_and_their_own():
    config = make_config({"snr": {"encoders": ["framewise", "early_temporal"], "test": {"coherence": [0.5, 0.25]}}})
    points = expand(config)
    assert models(points) == {}  # nothing to train: Table 1 models
    assert {p.model.path for p in points} == {"results/models/framewise/seed0/model.pt",
                                             "results/models/early_temporal/seed0/model.pt"}
    assert [(p.test_axis, p.test_value) for p in points if p.encoder == "framewise"] == [
        ("coherence", "1.0"), ("coherence", "0.5"), ("coherence", "0.25")]
    coherences = [p.test["coherence"] for p in points if p.encoder == "framewise"]
    assert coherences == [1.0, 0.5, 0.25]
    # the test sets keep the data seed and classes, with only a test split of studies.test_size clips
    assert all(p.test["seed"] == 0 and p.test["test_size"] == 200 and "train_size" not in p.test for p in points)


def test_train_side_axes_train_from_the_study_base_and_share_identical_models():
    config = make_config({
        "base": {"data": {"train_size": 32}, "training": {"max_steps": 2}},
        "context": {"encoders": ["early_temporal"], "train": {"frames": [4, 6]}},
        "stem": {"encoders": ["early_temporal"], "options": {"stem": ["difference"]}},
        "slow": {"encoders": ["stave"], "options": {"depth": [1]}, "base": {"training": {"max_steps": 1}}},
    }, seeds=(0, 1))
    slow = [p for p in expand(config) if p.study == "slow"]
    assert {p.model.training["max_steps"] for p in slow} == {1} and slow[0].model.data.data["train_size"] == 32
    points = [p for p in expand(config) if p.study != "slow"]
    trained = models(points)
    # base (frames 4 = the data's own value, not retrained twice) + frames 6 + difference stem, two seeds each
    assert len(trained) == 3 * 2
    base = [p for p in points if p.train_value == BASE]
    assert {p.study for p in base} == {"context", "stem"}
    assert len({p.model.id for p in base}) == 1  # the two studies share one base model
    assert all(p.model.data.data["train_size"] == 32 and p.model.training["max_steps"] == 2 for p in points)
    six = next(p for p in points if p.train_axis == "frames")
    assert six.model.data.data["frames"] == 6 and six.test["frames"] == 6 and six.train_value == "6"
    assert six.model.path.startswith("results/studies/models/early_temporal-")
    assert next(p for p in points if p.train_axis == "stem").model.options["stem"] == "difference"


def test_base_model_is_drawn_on_every_train_axis_at_its_own_value():
    config = make_config({"stave": {"encoders": ["stave"], "options": {"head_scale": [0.25, 1.0], "order": ["temporal_first"]}}})
    points = expand(config)
    base = next(p for p in points if p.train_value == BASE)
    # head_scale 0.25 is the default: the base model, not a second one
    assert sorted(p.train_value for p in points) == ["1.0", BASE, "temporal_first"]
    assert placements(config, base) == [("head_scale", "0.25", "stave"), ("order", "spatial_first", "stave")]


def test_augment_and_test_axes_make_one_series_per_trained_model():
    config = make_config({"augment": {"encoders": ["early_temporal"], "augment": {"noise": {"p": 0.5}},
                                      "test": {"noise": ["gaussian"]}}})
    points = expand(config)
    noise = [p for p in points if p.train_value == "noise"]
    assert noise[0].model.training["augment"] == {"noise": {"p": 0.5}}
    assert [p.test_value for p in noise] == ["binary", "gaussian"]
    series = {placements(config, p)[0][2] for p in points}
    assert series == {"early_temporal, augment=none", "early_temporal, augment=noise"}


def test_nested_axes_and_bad_studies_are_named():
    config = make_config({"size": {"encoders": ["framewise"], "test": {"placement.scale": [[0.3, 0.4]]}}})
    point = expand(config)[-1]
    assert point.test["placement"] == {"scale": [0.3, 0.4]} and point.test_value == "[0.3, 0.4]"
    with pytest.raises(StudyError, match=r"studies.bad.encoders: \['nope'\] not in the encoders section"):
        validate_studies(make_config({"bad": {"encoders": ["nope"], "test": {"speed": [2]}}}))
    with pytest.raises(StudyError, match=r"studies.bad.test.frames: changes the clip shape"):
        validate_studies(make_config({"bad": {"test": {"frames": [8]}}}))
    with pytest.raises(StudyError, match=r"studies.bad: no axis"):
        validate_studies(make_config({"bad": {"encoders": ["framewise"]}}))
    with pytest.raises(StudyError, match=r"studies.bad \(order=sideways.*order='sideways'"):
        validate_studies(make_config({"bad": {"encoders": ["stave"], "options": {"order": ["sideways"]}}}))
    with pytest.raises(StudyError, match=r"studies.bad .*speed=-1"):
        validate_studies(make_config({"bad": {"encoders": ["framewise"], "test": {"speed": [-1]}}}))
    with pytest.raises(StudyError, match=r"studies.x.base: this study only changes test sets"):
        validate_studies(make_config({"x": {"test": {"speed": [2]}, "base": {"training": {"max_steps": 2}}}}))
    with pytest.raises(StudyError, match=r"studies.base.training: unknown key\(s\) \['steps'\]"):
        validate_studies(make_config({"base": {"training": {"steps": 3}}, "x": {"test": {"speed": [2]}}}))


def test_summary_over_seeds_uses_a_t_interval():
    rows = [{"study": "s", "panel": "speed", "x": "1", "series": "e", "category": "shapes", "seed": seed,
             "accuracy": acc, "ci_low": 0.0, "ci_high": 1.0, "n": 10, "chance": 0.25, "snr_db": float("nan")}
            for seed, acc in ((0, 0.5), (1, 0.7))]
    summary = summarise_study(pd.DataFrame(rows))
    row = summary.iloc[0]
    assert row.accuracy == pytest.approx(0.6) and row.interval == "t over 2 seeds"
    assert row.ci_low < 0.5 and row.ci_high > 0.7  # t with 1 dof is wide
    one = summarise_study(pd.DataFrame(rows[:1])).iloc[0]
    assert (one.ci_low, one.ci_high, one.interval) == (0.0, 1.0, "Wilson, 1 seed")


def test_study_figure_writes_png_and_svg(tmp_path):
    from timeblind.plots.figures import study_figure

    summary = pd.DataFrame([{"panel": "coherence", "x": x, "series": s, "category": "shapes", "accuracy": a,
                             "ci_low": a - 0.1, "ci_high": a + 0.1, "chance": 0.25, "snr_db": db}
                            for s in ("framewise", "early_temporal") for x, a, db in (("1.0", 0.9, -5.0),
                                                                                     ("0.5", 0.5, -9.0))])
    paths = study_figure(summary, tmp_path / "study_snr", title="snr", snr_x=True)
    assert [p.suffix for p in paths] == [".png", ".svg"] and all(p.stat().st_size > 1000 for p in paths)
    assert "measured SNR (dB)" in paths[1].read_text()


def test_child_runs_nest_under_the_study_run_with_shared_tags(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    from timeblind import tracking

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with tracking.step_run("study", {"study": "snr"}, {"study": "snr"}, str(tmp_path)) as run:
        child = run.child_run("snr-framewise", {"encoder": "framewise", "seed": 0}, {"model": "m.pt"},
                              {"acc.shapes": 0.5})
    client = MlflowClient(tracking.tracking_uri(str(tmp_path)))
    got = client.get_run(child)
    assert got.data.tags["mlflow.parentRunId"] == run.run_id
    assert got.data.tags["study"] == "snr" and got.data.tags["git_commit"] and got.data.tags["encoder"] == "framewise"
    assert got.data.metrics == {"acc.shapes": 0.5} and got.info.status == "FINISHED"


def test_quick_config_studies_expand_and_validate():
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    validate(config, schema=SCHEMA)  # the studies included
    points = expand(config)
    assert {p.study for p in points} == {"snr", "context", "stave", "seed_parts", "augment", "generalisation"}


def test_compare_runs_redraws_a_study_from_the_store_alone(tmp_path, monkeypatch):
    """Two pipeline runs of one study logged to one store: the latest is drawn by default, both
    side by side when named, and an unknown run id is refused with the known ones."""
    from timeblind import tracking
    from timeblind.steps.study import compare_runs

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("TIMEBLIND_PROJECT_DIR", str(tmp_path))
    parents = []
    for run_index, accuracy in enumerate((0.25, 0.75)):
        with tracking.step_run("study", {"study": "speedy", "run": run_index}, {"study": "speedy"}, str(tmp_path)) as run:
            for speed in ("1", "2"):
                run.child_run(f"speedy-{speed}", {"kind": "study_point", "encoder": "early_temporal", "seed": 0,
                                                  "placements": json.dumps([["speed", speed, "early_temporal"]])},
                              {}, {"acc.shapes": accuracy, "n.shapes": 40, "chance.shapes": 0.25})
        parents.append(run.run_id)
    latest = compare_runs(study="speedy", figure="figures/latest", results_dir=str(tmp_path))
    assert list(latest.x) == ["1", "2"] and (latest.accuracy == 0.75).all()
    assert (latest.ci_low < 0.75).all() and (latest.ci_high > 0.75).all()  # Wilson on 30/40
    both = compare_runs(study="speedy", figure="figures/both", parent_runs=parents, results_dir=str(tmp_path))
    assert sorted(both.series.unique()) == sorted(f"early_temporal [{p[:7]}]" for p in parents)
    assert (tmp_path / "figures/both.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="have no points of study 'speedy'"):
        compare_runs(study="speedy", figure="figures/x", parent_runs=["nope"], results_dir=str(tmp_path))
    with pytest.raises(ValueError, match="no runs of study 'other'"):
        compare_runs(study="other", figure="figures/x", results_dir=str(tmp_path))
    assert "MLFLOW_TRACKING_URI" not in os.environ  # reading a store does not redirect later steps' logging


@pytest.mark.parametrize("name", ["it's", 'say "hi"', "both ' and \""])
def test_compare_runs_finds_a_study_whose_name_has_quotes(tmp_path, monkeypatch, name):
    """The study's name goes into an MLflow filter; quoted with a quote it does not contain, and
    matched after the search where it holds both kinds. Another study's runs are never drawn."""
    from timeblind import tracking
    from timeblind.steps.study import compare_runs

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("TIMEBLIND_PROJECT_DIR", str(tmp_path))
    for study, accuracy in ((name, 0.75), ("other", 0.25)):
        with tracking.step_run("study", {"study": study}, {"study": study}, str(tmp_path)) as run:
            run.child_run(f"{study}-1", {"kind": "study_point", "encoder": "early_temporal", "seed": 0,
                                         "placements": json.dumps([["speed", "1", "early_temporal"]])},
                          {}, {"acc.shapes": accuracy, "n.shapes": 40, "chance.shapes": 0.25})
    summary = compare_runs(study=name, figure="figures/quoted", results_dir=str(tmp_path))
    assert list(summary.study) == [name] and list(summary.accuracy) == [0.75]
