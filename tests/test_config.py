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
    assert cfg.loss_weights == {"figure": 1.0, "class": 1.0, "reading": 1.0, "patterns": 1.0} and cfg.batch_size == 64
    assert TrainConfig(task_weights={"figure": 0.5}).loss_weights["figure"] == 0.5
    with pytest.raises(ValueError, match=r"reader.max_steps=-1: expected a whole number, at least 0"):
        TrainConfig(reader={"max_steps": -1})
    with pytest.raises(ValueError, match=r"training.reader: unknown key\(s\) \['epochs'\]"):
        TrainConfig(reader={"epochs": 3})
    assert TrainConfig(reader={"max_steps": 7}).reader_config.max_steps == 7
    with pytest.raises(ValueError, match=r"reader_adapt.clips=-5: expected a whole number, at least 0"):
        TrainConfig(reader_adapt={"steps": 10, "clips": -5})
    with pytest.raises(ValueError, match=r"reader_adapt.lr=0: expected a number > 0"):
        TrainConfig(reader_adapt={"lr": 0})
    with pytest.raises(ValueError, match=r"training.reader_adapt: unknown key\(s\) \['epochs'\]"):
        TrainConfig(reader_adapt={"epochs": 3})
    assert TrainConfig().reader_adapt_config.steps == 0  # off unless asked for
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


def quick_config(**changes) -> dict:
    """The quick profile with sections changed (nested sections merged key by key)."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    update_config(config, changes)
    return config


def refusal(config) -> str:
    with pytest.raises(ConfigError) as error:
        validate(config, schema=SCHEMA)
    return str(error.value)


@pytest.mark.parametrize("changes, message", [
    ({"encoders": {"two_stream": {"segments": 5}}},  # the patterns' 8 frames (data.sizes), not data.frames=12
     "data.sizes.patterns.frames=8: encoders.two_stream: clip has 8 frames: two_stream with segments=5 needs at "
     "least 2 * segments = 10"),
    ({"encoders": {"two_stream": {"segments": 7}}},
     "data.frames=12: encoders.two_stream: clip has 12 frames: two_stream with segments=7 needs at least "
     "2 * segments = 14"),
    ({"encoders": {"framewise": {"max_frames": 6}}},
     "data.frames=12: encoders.framewise: clip has 12 frames, encoder supports at most max_frames=6"),
    ({"encoders": {"long_seed": {"encoder": "seed_temporal", "max_frames": 4}}},
     "data.frames=12: encoders.long_seed (seed_temporal): clip has 12 frames, encoder supports at most max_frames=4"),
    ({"encoders": {"stave": {"max_frames": 3, "temporal_patch": 2}}},
     "encoders.stave: clip has 12 frames, encoder supports at most max_frames=3 temporal patches of 2"),
    ({"export": {"shift": {"frames": 6}}},
     "export.shift.frames=6: fewer than the 12 frames every Table 1 model takes (data.frames)"),
    ({"studies": {"context": {"encoders": ["two_stream"], "train": {"frames": [6]}}},
      "encoders": {"two_stream": {"segments": 4}}},
     "studies.context.train.frames=6: encoders.two_stream: clip has 6 frames: two_stream with segments=4"),
    ({"studies": {"base": {"data": {"frames": 2}}}, "encoders": {"early_temporal": {"stem": "difference"}}},
     "studies.base.data.frames=2: encoders.early_temporal: clip has 2 frames: early_temporal "
     "with stem='difference' needs at least 3"),
    ({"studies": {"seg": {"encoders": ["two_stream"], "options": {"segments": [5]}}}},
     "data.frames=8 with studies.seg.options.segments=5: encoders.two_stream: clip has 8 frames"),
])
def test_frame_limits_are_named_by_key_and_encoder_before_any_job(changes, message):
    assert message in refusal(quick_config(**changes))


@pytest.mark.parametrize("changes, message", [
    ({"studies": {"base": {"data": {"heigth": 32}}}}, "invalid timeblind config: studies.base.data: unknown key(s) "
     "['heigth']; allowed: ['angle',"),
    ({"studies": {"stave": {"base": {"data": {"widht": 32}}}}}, "studies.stave.base.data: unknown key(s) ['widht']"),
    ({"export": {"shift": {"heigth": 40}}}, "export.shift: unknown key(s) ['heigth']; allowed: ['angle',"),
    ({"studies": {"context": {"train": {"frames": [4, "8"]}}}},
     "invalid timeblind config: studies.context.train.frames[1]: '8' is not of type 'integer'"),
    ({"studies": {"generalisation": {"test": {"sped": [1]}}}},
     "studies.generalisation.test.sped: ['sped'] not keys of data; allowed:"),
    ({"studies": {"stave": {"options": {"head_scale": ["1.0"]}}}},
     "studies.stave.options.head_scale[0]: '1.0' is a str; stave's head_scale takes a float (default 0.25)"),
    ({"grounding": {"variants": ["coupled", "factorised"], "best": "evidence"}},
     "grounding.best: 'evidence' is not one of grounding.variants ['coupled', 'factorised']"),
])
def test_a_change_to_the_data_or_a_study_value_is_named_by_its_own_key(changes, message):
    error = refusal(quick_config(**changes))
    assert message in error and error.count("\n") <= 1, error  # one line: not repeated for every study using it


def test_a_yaml_syntax_error_names_the_file_and_line(tmp_path):
    from timeblind.plan.config import read_config_file

    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  height: 32\n  width: [40\n  frames: 8\n")
    with pytest.raises(ConfigError, match=rf"{bad}, line 4, column 9: not valid YAML: did not find expected"):
        read_config_file(bad)
    bad.write_text("- data\n")
    with pytest.raises(ConfigError, match="a list at the top level; expected keys such as data"):
        read_config_file(bad)
