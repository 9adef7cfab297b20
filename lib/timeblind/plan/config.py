"""The pipeline config, checked before any job starts and typed: validate() -> PipelineConfig.

First the schema (workflow/schemas/config.schema.yaml: keys, types, ranges), every error named by
its key, and its defaults filled in; then what a schema cannot know, by building the configs the
jobs will build: the stimulus generator's (shape, font and object names, figures that fit the
clip), each encoder's (options and how they combine), the training recipe, the studies and the
grounding table. Those configs are plain dataclasses, so none of this loads torch.
"""

from __future__ import annotations

import copy
import hashlib
import json
import marshal
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import fastjsonschema
import yaml

from timeblind.data.dataset import StimulusConfig, shifted_stimulus
from timeblind.models.config import encoder_config
from timeblind.plan import grounding, studies
from timeblind.stimuli.categories import check_cache
from timeblind.training.config import TrainConfig


class ConfigError(ValueError):
    def __init__(self, lines: list[str]):
        super().__init__("invalid timeblind config:\n" + "\n".join(f"  {line}" for line in lines))


@dataclass(frozen=True)
class PipelineConfig:
    """The validated config, every default filled in."""

    data: dict  # the stimulus generator's controls (StimulusConfig.from_pipeline), data seed, split sizes
    training: TrainConfig  # how every encoder is trained
    seeds: tuple[int, ...]  # one training job per encoder and seed
    encoders: dict[str, dict]  # name -> options; a variant's options name its encoder
    export: dict  # the official-format export: shift, test_size, seed, scale
    studies: dict  # the ablation studies (plan/studies.py)
    grounding: dict  # the grounding table (plan/grounding.py)
    gallery: dict  # the attribution gallery: per_category, samples, noise

    @classmethod
    def from_config(cls, config: dict) -> PipelineConfig:
        training = {k: v for k, v in config["training"].items() if k != "seeds"}
        return cls(config["data"], TrainConfig.from_dict(training), tuple(config["training"]["seeds"]),
                   config["encoders"], config["export"], config["studies"], config["grounding"], config["gallery"])


def validate(config: dict, schema: str | Path, cache: str | Path | None = None) -> PipelineConfig:
    """Check `config`, fill in its defaults (in place, as Snakemake's validate does) and type it;
    a ConfigError names every bad key and what it expects. cache: a folder where planning keeps
    what it would otherwise redo each time it plans: the schema's compiled validator, and which
    configs' classes were all drawn once (every word in every font, every moving figure)."""
    cache = Path(cache) if cache is not None else None
    schema = yaml.load(Path(schema).read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    check_schema(config, schema, cache)
    fill_defaults(config, schema)
    with check_cache(cache / "drawing_checks" if cache is not None else None):
        _cross_check(config)
    return PipelineConfig.from_config(config)


def _cross_check(config: dict) -> None:
    """What the schema cannot know: each section built as its jobs will build it."""
    shifted = partial(shifted_stimulus, config["data"], config["export"]["shift"])
    checks = [("data", partial(StimulusConfig.from_pipeline, config["data"])),
              ("export.shift", lambda: StimulusConfig.from_pipeline(shifted())),
              ("training.stream", partial(_streamable, config)),
              ("training", partial(PipelineConfig.from_config, config)),
              *((f"encoders.{name}", partial(_encoder, name, options)) for name, options in config["encoders"].items())]
    for where, check in checks:
        try:
            check()
        except (ValueError, TypeError, AssertionError) as error:
            raise ConfigError([f"{where}: {error}"]) from None
    for plan in (studies, grounding):
        try:
            plan.validate(config)
        except ValueError as error:
            raise ConfigError([str(error)]) from None


def _streamable(config: dict) -> None:
    """Streaming renders clips on the training device, which not every data option allows."""
    reason = config["training"].get("stream") and StimulusConfig.from_pipeline(config["data"]).streamable()
    if reason:
        raise ValueError(reason)


def _encoder(name: str, options: dict):
    options = dict(options)
    return encoder_config(options.pop("encoder", name), **options)


def _schema_validator(schema: dict, cache: Path | None):
    """fastjsonschema's validator of `schema`. Its generated code is large (every error message
    carries its part of the schema), so compiling it is kept in `cache`, as bytecode of this Python
    named by the schema and fastjsonschema's version."""
    key = hashlib.sha256(json.dumps([schema, fastjsonschema.VERSION, sys.version], sort_keys=True).encode())
    stored = cache / f"schema_{key.hexdigest()[:32]}.marshal" if cache is not None else None
    if stored is not None and stored.exists():
        code = marshal.loads(stored.read_bytes())
    else:
        code = compile(fastjsonschema.compile_to_code(schema), "<config schema>", "exec")
        if stored is not None:
            stored.parent.mkdir(parents=True, exist_ok=True)
            partial_file = stored.with_suffix(f".{id(code)}.tmp")
            partial_file.write_bytes(marshal.dumps(code))
            partial_file.replace(stored)  # whole or absent, when two plans write at once
    namespace: dict = {}
    exec(code, namespace)
    return namespace["validate"]


def check_schema(config: dict, schema: dict, cache: Path | None = None) -> None:
    """The schema's verdict. A compiled validator passes a valid config in milliseconds; only a
    config it refuses is read again by jsonschema, which names every error with its key (jsonschema
    takes seconds to load, so planning a valid config goes without it)."""
    try:
        _schema_validator(schema, cache)(copy.deepcopy(config))
        return
    except fastjsonschema.JsonSchemaException:
        pass
    import jsonschema

    lines = []
    for error in sorted(jsonschema.Draft202012Validator(schema).iter_errors(config), key=lambda e: list(e.path)):
        key = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        if error.validator == "required" and list(error.absolute_path)[:1] == ["encoders"]:
            known = sorted(schema["properties"]["encoders"]["properties"])
            lines.append(f"{key}: not an encoder; expected one of {known}, or a variant naming its encoder "
                         f"(e.g. {{encoder: early_temporal, stem: difference}})")
        elif error.validator == "additionalProperties":
            allowed = sorted(error.schema.get("properties", {}))
            unexpected = sorted(set(error.instance) - set(allowed))
            lines.append(f"{key}: unknown key(s) {unexpected}; allowed: {allowed}")
        else:
            lines.append(f"{key}: {error.message}")
    if lines:
        raise ConfigError(lines)


def fill_defaults(config: dict, schema: dict) -> None:
    """Every default the schema gives, set where the config leaves the key out, then the same
    inside each section (a section that was itself a default included), as Snakemake's
    validate(set_default=True) does."""
    properties = schema.get("properties", {})
    for key, sub in properties.items():
        if "default" in sub:
            config.setdefault(key, copy.deepcopy(sub["default"]))
    others = schema.get("additionalProperties")
    for key, value in config.items():
        sub = properties.get(key, others if isinstance(others, dict) else None)
        if sub is not None and isinstance(value, dict):
            fill_defaults(value, sub)
