"""One config: the schema and the training dataclasses name the same hyperparameters with the
same defaults, validate() types the pipeline config, and planning loads neither torch, Lightning
nor MLflow."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from snakemake.utils import update_config

from timeblind.plan.config import ConfigError, PipelineConfig, validate
from timeblind.training.config import GroundingTrainConfig, TrainConfig

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow/schemas/config.schema.yaml"


def schema_section(*keys: str) -> dict:
    section = yaml.safe_load(SCHEMA.read_text())
    for key in keys:
        section = section["properties"][key]
    return section["properties"]


def defaults(cls) -> dict:
    return {f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()
            for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING
            or f.default_factory is not dataclasses.MISSING}


def test_train_config_and_the_schema_name_the_same_hyperparameters_with_the_same_defaults():
    section = schema_section("training")
    assert {f.name for f in dataclasses.fields(TrainConfig)} == set(section) - {"seeds"}
    assert defaults(TrainConfig) == {key: spec["default"] for key, spec in section.items() if key != "seeds"}


def test_grounding_train_config_is_the_schemas_grounding_training_and_a_stages_steps():
    section = schema_section("grounding", "training")
    assert {f.name for f in dataclasses.fields(GroundingTrainConfig)} == set(section) | {"max_steps"}
    assert defaults(GroundingTrainConfig) == {key: spec["default"] for key, spec in section.items()}
    assert set(schema_section("grounding", "steps")) == {"align", "time", "instruct"}


def test_a_train_config_names_what_it_cannot_take():
    with pytest.raises(ValueError, match=r"training: unknown key\(s\) \['steps'\]"):
        TrainConfig.from_dict({"steps": 3})
    with pytest.raises(ValueError, match="batch_size=30 does not split over devices=4: use a multiple of 4"):
        TrainConfig(batch_size=30, devices=4)
    with pytest.raises(ValueError, match="augment.noise: missing 'p'"):
        TrainConfig(augment={"noise": {"std": 0.3}})
    with pytest.raises(ValueError, match=r"task_weights: unknown group\(s\) \['words'\]"):
        TrainConfig(task_weights={"words": 1.0})
    cfg = TrainConfig.from_dict({"max_steps": 5, "task_weights": {"reading": 1.0}})
    assert cfg.loss_weights == {"class": 1.0, "reading": 1.0, "patterns": 1.0} and cfg.batch_size == 64
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg  # travels as JSON (DDP, MLflow)


@pytest.mark.parametrize("profiles", [["config.yaml"], ["config.yaml", "paper.yaml"], ["config.yaml", "smoke.yaml"]])
def test_the_profiles_validate_into_a_typed_config(profiles):
    config = {}
    for name in profiles:  # as Snakemake lays --configfile over the default
        update_config(config, yaml.safe_load((REPO / "config" / name).read_text()))
    pipeline = validate(config, schema=SCHEMA)
    assert isinstance(pipeline, PipelineConfig) and isinstance(pipeline.training, TrainConfig)
    assert pipeline.training.to_dict() == {k: v for k, v in config["training"].items() if k != "seeds"}
    assert pipeline.seeds == tuple(config["training"]["seeds"]) and set(pipeline.encoders) == set(config["encoders"])


def test_validation_fills_defaults_and_names_every_bad_key():
    config = {"encoders": {"framewise": {}}, "training": {"max_steps": 0}, "data": {"noise": "pink"}}
    with pytest.raises(ConfigError) as error:
        validate(config, schema=SCHEMA)
    assert "data.noise: 'pink' is not one of" in str(error.value)
    assert "training.max_steps: 0 is less than the minimum of 1" in str(error.value)
    config = {"encoders": {"framewise": {}}}
    pipeline = validate(config, schema=SCHEMA)
    assert config["training"]["lr"] == pipeline.training.lr == 0.002  # filled in place, as Snakemake's validate
    assert pipeline.training == TrainConfig()


def test_planning_loads_neither_torch_nor_lightning_nor_mlflow():
    """What the Snakefile does to plan (validate, expand the studies and the grounding runs, name
    every path), in a fresh interpreter."""
    code = f"""
import sys, yaml
from timeblind.core import layout
from timeblind.plan import grounding, studies
from timeblind.plan.config import validate
config = yaml.safe_load(open({str(REPO / "config/config.yaml")!r}))
validate(config, schema={str(SCHEMA)!r})
assert studies.expand(config) and grounding.runs(config)
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "lightning", "mlflow", "torchmetrics"))
print(heavy)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "[]"
