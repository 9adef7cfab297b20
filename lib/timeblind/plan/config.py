"""The pipeline config, checked before any job starts and typed: validate() -> PipelineConfig.

First the schema (workflow/schemas/config.schema.yaml: keys, types, ranges), every error named by
its key, and its defaults filled in; then what a schema cannot know, by building the configs the
jobs will build: the stimulus generator's (shape, font and object names, figures that fit the
clip), each encoder's (options and how they combine), the training recipe, the studies and the
grounding table. Those configs are plain dataclasses, so none of this loads torch.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import marshal
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import fastjsonschema
import yaml

from timeblind.data.config import StimulusConfig, shifted_stimulus
from timeblind.models.config import ENCODER_CONFIGS, check_frames, encoder_config
from timeblind.plan import grounding, studies
from timeblind.stimuli.categories import check_cache
from timeblind.training.config import TrainConfig


SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ConfigError(ValueError):
    """Every problem found, one line each (one error: one line in all)."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        if len(lines) == 1:
            super().__init__(f"invalid timeblind config: {lines[0]}")
        else:
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
    reading: dict  # how words are read: lexicon

    @classmethod
    def from_config(cls, config: dict) -> PipelineConfig:
        training = {k: v for k, v in config["training"].items() if k != "seeds"}
        return cls(config["data"], TrainConfig.from_dict(training), tuple(config["training"]["seeds"]),
                   config["encoders"], config["export"], config["studies"], config["grounding"], config["gallery"],
                   config["reading"])


def read_config_file(path: str | Path) -> dict:
    """A YAML config file as a dict; a syntax error is a ConfigError naming the file, line and column."""
    try:
        loaded = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=SAFE_LOADER)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
        raise ConfigError([f"{where}: not valid YAML: {error.problem or error.context}"]) from None
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise ConfigError([f"{path}: not valid YAML: {error}"]) from None
    if loaded is not None and not isinstance(loaded, dict):
        raise ConfigError([f"{path}: a {type(loaded).__name__} at the top level; expected keys such as data, "
                           "training, encoders"])
    return loaded or {}


def exit_on_yaml_error(*paths: str | Path) -> None:
    """Exit with one line naming the file, line and column of a YAML syntax error in any of `paths`
    that exists, before Snakemake reads them (its own message names neither file nor line)."""
    for path in paths:
        if Path(path).is_file():
            try:
                read_config_file(path)
            except ConfigError as error:
                sys.exit(str(error))


def validate(config: dict, schema: str | Path, cache: str | Path | None = None) -> PipelineConfig:
    """Check `config`, fill in its defaults (in place, as Snakemake's validate does) and type it;
    a ConfigError names every bad key and what it expects. cache: a folder where planning keeps
    what it would otherwise redo each time it plans: the schema's compiled validators, and which
    configs' classes were all drawn once (every word in every font, every moving figure)."""
    cache = Path(cache) if cache is not None else None
    schema = yaml.load(Path(schema).read_text(), Loader=SAFE_LOADER)
    check_schema(config, schema, cache)
    fill_defaults(config, schema)
    check_data_changes(config, schema["properties"]["data"], cache)
    check_option_values(config)
    with check_cache(cache / "drawing_checks" if cache is not None else None):
        _cross_check(config)
        check_frame_limits(config)
    return PipelineConfig.from_config(config)


def _cross_check(config: dict) -> None:
    """What the schema cannot know: each section built as its jobs will build it."""
    shifted = partial(shifted_stimulus, config["data"], config["export"]["shift"])
    checks = [("data", partial(StimulusConfig.from_pipeline, config["data"])),
              ("export.shift", lambda: StimulusConfig.from_pipeline(shifted())),
              ("export.shift", lambda: _unseen_fonts(config["data"], shifted())),
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


def _unseen_fonts(data: dict, shifted: dict) -> None:
    """The export reads words in fonts training never saw (groups such as bold-sans expanded), so a
    model's score there is about reading motion, not recognising a typeface."""
    from timeblind.stimuli.text import expand_fonts

    if "words" not in data.get("categories", ()):
        return
    trained = expand_fonts(data.get("words", {}).get("fonts"))
    shared = [f for f in expand_fonts(shifted.get("words", {}).get("fonts")) if f in trained]
    if shared:
        raise ValueError(f"words.fonts {shared} are also training's (data.words.fonts expands to {list(trained)}): "
                         "the export's fonts must be ones training never saw")


def _streamable(config: dict) -> None:
    """Streaming renders clips on the training device, which not every data option allows."""
    reason = config["training"].get("stream") and StimulusConfig.from_pipeline(config["data"]).streamable()
    if reason:
        raise ValueError(reason)


def data_changes(config: dict) -> Iterator[tuple[str, dict, str | None]]:
    """(key, the data section as it changes there, the key it changes in turn) for every place the config
    changes data keys: the export's shift, the study bases and each value of a study's train and test axes."""
    data = config["data"]
    yield "export.shift", studies.merge_config(data, config["export"]["shift"]), None
    base = ((config["studies"].get("base") or {}).get("data")) or {}
    yield "studies.base.data", studies.merge_config(data, base), None
    for name in studies.study_names(config):
        study = config["studies"][name] or {}
        own = ((study.get("base") or {}).get("data")) or {}
        changed = studies.merge_config(studies.merge_config(data, base), own)
        parent = "studies.base.data"
        if own:
            yield f"studies.{name}.base.data", changed, parent
            parent = f"studies.{name}.base.data"
        for kind in ("train", "test"):
            for axis, values in (study.get(kind) or {}).items():
                for i, value in enumerate(values if isinstance(values, list) else []):
                    yield (f"studies.{name}.{kind}.{axis}[{i}]",
                           studies.merge_config(changed, studies.nested(axis, value)), parent)


def check_data_changes(config: dict, data_schema: dict, cache: Path | None = None) -> None:
    """Every changed data section against the data schema, each error named by the key that changed it
    (not by a study that happens to use it, nor again by every axis of a study whose base has it); the
    compiled validator is kept in `cache` as the whole schema's is."""
    valid = _schema_validator(data_schema, cache)
    found: dict[str, dict] = {}
    lines = []
    for key, data, parent in data_changes(config):
        try:
            valid(copy.deepcopy(data))
            continue
        except fastjsonschema.JsonSchemaException:
            pass
        import jsonschema

        errors = {(tuple(e.absolute_path), e.message): e for e in jsonschema.Draft202012Validator(data_schema)
                  .iter_errors(data)}
        found[key] = errors
        lines += [_data_error(key, e) for k, e in errors.items() if k not in found.get(parent, {})]
    if lines:
        raise ConfigError(list(dict.fromkeys(lines)))


def _data_error(key: str, error) -> str:
    path = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unexpected = sorted(set(error.instance) - set(allowed))
        section = f"data.{path}" if path else "data"
        if key.endswith("]"):  # an axis naming a key the data section does not have
            return f"{key.rsplit('[', 1)[0]}: {unexpected} not keys of {section}; allowed: {allowed}"
        return f"{key}{'.' + path if path else ''}: unknown key(s) {unexpected}; allowed: {allowed}"
    if key.endswith("]"):  # a value of a study's axis: the axis names the key
        return f"{key}: {error.message}"
    return f"{key}.{path}: {error.message}" if path else f"{key}: {error.message}"


def check_option_values(config: dict) -> None:
    """Each value of a study's options axis has the type of the option (a string where a number goes
    would otherwise surface as a comparison error inside the encoder's config)."""
    lines = []
    for name in studies.study_names(config):
        study = config["studies"][name] or {}
        for encoder in study.get("encoders") or list(config["encoders"]):
            options = dict(config["encoders"].get(encoder) or {})
            kind = options.pop("encoder", encoder)
            if kind not in ENCODER_CONFIGS:
                continue  # the studies' own check names an encoder that is not in the encoders section
            defaults = {f.name: f.default for f in dataclasses.fields(ENCODER_CONFIGS[kind])}
            for axis, values in (study.get("options") or {}).items():
                for i, value in enumerate(values if isinstance(values, list) else []):
                    expected = _type_of(defaults.get(axis, value))
                    if expected and not _fits(value, expected):
                        lines.append(f"studies.{name}.options.{axis}[{i}]: {value!r} is a {type(value).__name__}; "
                                     f"{encoder}'s {axis} takes a {expected.__name__} (default {defaults[axis]!r})")
    if lines:
        raise ConfigError(list(dict.fromkeys(lines)))


def _type_of(default) -> type | None:
    return None if default is None or default is dataclasses.MISSING else type(default)


def _fits(value, expected: type) -> bool:
    if expected is bool or isinstance(value, bool):
        return isinstance(value, bool) and expected is bool
    if expected is float:
        return isinstance(value, (int, float))
    return value is None or isinstance(value, expected)


def check_frame_limits(config: dict) -> None:
    """Every frame count a model will see against its encoder's limits (the config dataclasses'
    check_frames, the rule the models apply at run time), each named by the key that sets it."""
    lines = []
    frames = config["data"]["frames"]
    for encoder, options in config["encoders"].items():
        lines += _frame_limit(f"data.frames={frames}", encoder, options, frames)
        for category, size in (config["data"].get("sizes") or {}).items():
            if "frames" in size and category in config["data"]["categories"]:
                lines += _frame_limit(f"data.sizes.{category}.frames={size['frames']}", encoder, options, size["frames"])
    shifted = config["export"]["shift"].get("frames", frames)
    if shifted < frames:
        lines.append(f"export.shift.frames={shifted}: fewer than the {frames} frames every Table 1 model takes "
                     f"(data.frames): each exported video would be skipped; expected at least {frames}")
    for point in studies.expand(config):
        spec = point.model
        if spec.table1:
            continue
        where = _frames_key(config, point.study, point.train_axis, point.train_value, spec.data.data["frames"])
        if point.train_axis and point.train_axis != "frames":
            where += f" with {_train_key(config, point)}"
        lines += _frame_limit(where, spec.encoder, spec.options, spec.data.data["frames"])
    for run in grounding.runs(config):
        frames_key = _frames_key(config, None, "", "", run.model.data.data["frames"])  # as the study base's
        lines += _frame_limit(frames_key, run.encoder, run.model.options, run.model.data.data["frames"])
    if lines:
        raise ConfigError(list(dict.fromkeys(lines)))


def _frame_limit(where: str, encoder: str, options: dict, frames: int) -> list[str]:
    try:
        check_frames(_encoder(encoder, options), frames)
    except ValueError as error:
        kind = options.get("encoder", encoder)
        return [f"{where}: encoders.{encoder}{f' ({kind})' if kind != encoder else ''}: {error}"]
    return []


def _frames_key(config: dict, study: str | None, train_axis: str, train_value: str, frames: int) -> str:
    """The key that sets a study or grounding model's frame count."""
    if train_axis == "frames":
        return f"studies.{study}.train.frames={train_value}"
    own = (((config["studies"].get(study) or {}).get("base") or {}).get("data") or {}) if study else {}
    base = ((config["studies"].get("base") or {}).get("data")) or {}
    key = (f"studies.{study}.base.data.frames" if "frames" in own else
           "studies.base.data.frames" if "frames" in base else "data.frames")
    return f"{key}={frames}"


def _train_key(config: dict, point) -> str:
    """The key and value of a study model's train-side point, e.g. studies.stave.options.head_scale=1.0."""
    if point.train_axis == "augment":
        return f"studies.{point.study}.augment.{point.train_value}"
    study = config["studies"][point.study] or {}
    kind = next((k for k in ("train", "options") if point.train_axis in (study.get(k) or {})), "train")
    return f"studies.{point.study}.{kind}.{point.train_axis}={point.train_value}"


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
