"""Ablation studies, expanded from the config into the models to train and the points to score.

A study sweeps axes one at a time around a base:
  train    data keys the models are trained with       one model per value
  options  encoder options                              one model per value
  augment  the seed's augmentations, each alone         one model per entry (the base has none)
  test     data keys of the test sets                   every model scored at every value
A study without train-side axes scores the Table 1 models as they are. One with them trains its
own models from the Table 1 setup changed by `studies.base` (the quick profile trains them on
less data, for fewer steps), and every model is scored on its own test set plus the test axes.

Everything here is a pure function of the validated config, so the Snakefile (which jobs),
the study step (what to score) and the tests agree on names and paths. Models and data sets
are content-addressed: two studies, or two points, asking for the same training share one job.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from itertools import product

from timeblind.core import layout
from timeblind.data.config import StimulusConfig, shifted_stimulus
from timeblind.models.config import encoder_config
from timeblind.training.config import TrainConfig

AXIS_KINDS = ("train", "options", "augment", "test")
TRAIN_SIDE = ("train", "options", "augment")
BASE = "base"  # the value label of a model or test set that changes nothing
SHAPE_KEYS = ("height", "width", "frames", "sizes")  # a test set must keep the models' input shape
NOT_IN_MODEL_ID = ("devices",)  # how a model is trained, not which model: the same global batches on 1 or N devices


def digest(payload) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:10]


def nested(axis: str, value) -> dict:
    """A dotted axis name as a nested override: ('placement.scale', v) -> {'placement': {'scale': v}}."""
    head, _, rest = axis.partition(".")
    return {head: nested(rest, value) if rest else value}


def lookup(data: dict, axis: str):
    head, _, rest = axis.partition(".")
    value = data.get(head)
    return lookup(value or {}, rest) if rest else value


def label(value) -> str:
    """How a value appears in tables, tags and file names."""
    if value is None:  # an option left at its default meaning (e.g. STAVE's temporal_blocks: every block)
        return "default"
    return json.dumps(value, sort_keys=True) if isinstance(value, (list, dict, bool)) else str(value)


@dataclass(frozen=True)
class DataSet:
    """A data set a study job generates: the data section with seed and split sizes."""

    data: dict = field(hash=False, compare=False)
    id: str = ""

    @classmethod
    def of(cls, data: dict) -> "DataSet":
        return cls(data, digest(data))

    @property
    def path(self) -> str:
        return layout.study_data_dir(self.id)


@dataclass(frozen=True)
class ModelSpec:
    """One training job: an encoder (a key of the encoders section), its options, data and budget."""

    encoder: str
    kind: str
    options: dict = field(hash=False, compare=False)
    data: DataSet = field(hash=False, compare=False)
    training: dict = field(hash=False, compare=False)
    seed: int = 0
    table1: bool = False  # a Table 1 model, trained by the main pipeline
    id: str = ""

    @property
    def path(self) -> str:
        if self.table1:
            return layout.model_file(self.encoder, self.seed)
        return layout.study_model_file(self.id, self.seed)

    @property
    def data_dir(self) -> str:
        return layout.DATA if self.table1 else self.data.path

    @property
    def reader(self) -> str:
        """The pretrained figure reader its heads start from, one per data set ("" when
        training.reader.max_steps is 0: the reader then learns with the encoder)."""
        if (self.training.get("reader") or {}).get("max_steps", 1) == 0:
            return ""
        return layout.reader_file(layout.TABLE1_DATA_NAME if self.table1 else self.data.id)


@dataclass(frozen=True)
class Point:
    """One score: a model (trained at train_axis = train_value) on one test set (test_axis = test_value)."""

    study: str
    encoder: str
    seed: int
    train_axis: str
    train_value: str
    test_axis: str
    test_value: str
    model: ModelSpec = field(hash=False, compare=False)
    test: dict = field(hash=False, compare=False)  # the test set's data section (seed and sizes included)

    @property
    def test_id(self) -> str:
        return digest(self.test)

    def tags(self) -> dict[str, str]:
        return {"study": self.study, "encoder": self.encoder, "seed": str(self.seed), "train_axis": self.train_axis,
                "train_value": self.train_value, "test_axis": self.test_axis, "test_value": self.test_value}


class StudyError(ValueError):
    pass


def merge_config(base: dict, change: dict) -> dict:
    """base with change laid over it, nested sections merged key by key (neither is modified)."""
    out = dict(base)
    for key, value in change.items():
        nested = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = merge_config(out[key], value) if nested else value
    return out


def study_names(config: dict) -> list[str]:
    return [name for name in config.get("studies", {}) if name not in ("base", "test_size")]


def study_axes(name: str, study: dict) -> list[tuple[str, str, list]]:
    """(kind, axis, values) of a study, in config order."""
    axes = []
    for kind in AXIS_KINDS:
        section = study.get(kind) or {}
        if kind == "augment" and section:  # one axis: which augmentation (each entry holds its settings)
            axes.append((kind, "augment", list(section)))
            continue
        for axis, values in section.items():
            if not isinstance(values, list) or not values:
                raise StudyError(f"studies.{name}.{kind}.{axis}: {values!r}; expected a non-empty list of values")
            axes.append((kind, axis, values))
    return axes


def _check(name: str, study: dict, config: dict) -> None:
    encoders = study.get("encoders") or list(config["encoders"])
    unknown = [e for e in encoders if e not in config["encoders"]]
    if unknown:
        raise StudyError(f"studies.{name}.encoders: {unknown} not in the encoders section; "
                         f"expected some of {list(config['encoders'])}")
    for kind, axis, _ in study_axes(name, study):
        if kind == "test" and axis.split(".")[0] in SHAPE_KEYS:
            raise StudyError(f"studies.{name}.test.{axis}: changes the clip shape, and models are scored at the "
                             f"shape they were trained on; vary it under `train` instead")
    if not study_axes(name, study):
        raise StudyError(f"studies.{name}: no axis; expected at least one of {list(AXIS_KINDS)}")
    if study.get("base") and not any(kind in TRAIN_SIDE for kind, _, _ in study_axes(name, study)):
        raise StudyError(f"studies.{name}.base: this study only changes test sets and scores the Table 1 models; "
                         f"a base applies to studies that train (train, options or augment axes)")
    _check_training(f"studies.{name}.base.training", study.get("base", {}).get("training", {}), config)


def _check_training(where: str, training: dict, config: dict) -> None:
    if "seeds" in training:
        raise StudyError(f"{where}.seeds: studies use training.seeds; set them there")
    unknown = sorted(set(training) - set(config["training"]) - {"augment"})
    if unknown:
        raise StudyError(f"{where}: unknown key(s) {unknown}; allowed: "
                         f"{sorted(k for k in config['training'] if k != 'seeds')}")


def model_spec(encoder: str, seed: int, data: dict, training: dict, options: dict, table1: bool) -> ModelSpec:
    """The model trained for (encoder, seed) on these data and training settings; its id hashes
    everything that changes the weights, so studies and grounding share identical models."""
    options = dict(options)
    kind = options.pop("encoder", encoder)
    dataset = DataSet.of(data if table1 else {**data, "test_size": 0})  # study test sets are made by the study step
    spec = {"kind": kind, "options": options, "data": dataset.id,
            "training": {k: v for k, v in training.items() if k not in NOT_IN_MODEL_ID}}
    return ModelSpec(encoder, kind, options, dataset, training, seed, table1, f"{encoder}-{digest(spec)}")


def expand(config: dict) -> list[Point]:
    """Every point of every study in the (validated) config."""
    return [point for name in study_names(config) for point in _study_points(config, name)]


def _study_points(config: dict, name: str) -> list[Point]:
    """A study's points: per encoder, seed and trained model (the base, then one per train-side
    value), the model on each of its test sets."""
    study = config["studies"][name] or {}
    _check(name, study, config)
    axes = study_axes(name, study)
    train_side = [a for a in axes if a[0] in TRAIN_SIDE]
    test_axes = [a for a in axes if a[0] == "test"]
    table1 = not train_side
    data, training = _study_setup(config, study, table1)
    test_size = config["studies"].get("test_size", 200)
    points = []
    for encoder in study.get("encoders") or list(config["encoders"]):
        trained = _trained(study, encoder, config["encoders"][encoder], train_side, data, training)
        for seed, (train_axis, train_value, d, t, o) in product(config["training"]["seeds"], trained):
            model = model_spec(encoder, seed, d, t, o, table1)
            points += [Point(name, encoder, seed, train_axis, train_value, test_axis, test_value, model, test)
                       for test_axis, test_value, test in _test_sets(d, test_axes, test_size)]
    return points


def _study_setup(config: dict, study: dict, table1: bool) -> tuple[dict, dict]:
    """The data and training sections of a study's base model: Table 1's, or (a study that trains)
    Table 1's changed by studies.base and then by the study's own base."""
    table1_training = {k: v for k, v in config["training"].items() if k != "seeds"}
    if table1:
        return config["data"], table1_training
    base, own = config["studies"].get("base", {}), study.get("base", {})
    data = merge_config(merge_config(config["data"], base.get("data", {})), own.get("data", {}))
    training = merge_config(merge_config(table1_training, base.get("training", {})), own.get("training", {}))
    return data, training


def _trained(study: dict, encoder: str, options: dict, train_side: list, data: dict, training: dict) -> list[tuple]:
    """(train axis, value label, data, training, options) of each model of one encoder: the base,
    then one per train-side value that differs from the base's."""
    variants = [("", BASE, data, training, options)]
    for kind, axis, values in train_side:
        for value in values:
            if kind == "train" and lookup(data, axis) != value:
                variants.append((axis, label(value), merge_config(data, nested(axis, value)), training, options))
            elif kind == "options" and option_value(options, encoder, axis) != value:
                variants.append((axis, label(value), data, training, {**options, axis: value}))
            elif kind == "augment":  # this augmentation alone
                variants.append(("augment", value, data, {**training, "augment": {value: study["augment"][value]}},
                                 options))
    return variants


def _test_sets(data: dict, test_axes: list, test_size: int) -> list[tuple[str, str, dict]]:
    """(test axis, value label, data section) of the sets a model trained on `data` is scored on:
    its own, or along each test axis its own value (for the curve) and every other value."""
    own = {**{k: v for k, v in data.items() if not k.endswith("_size")}, "test_size": test_size}
    if not test_axes:
        return [("", BASE, own)]
    tests = []
    for _, axis, values in test_axes:
        mine = lookup(data, axis)
        tests.append((axis, BASE if mine is None else label(mine), own))
        tests += [(axis, label(v), shifted_stimulus(own, nested(axis, v))) for v in values if v != mine]
    return tests


def models(points: list[Point]) -> dict[str, ModelSpec]:
    """Study models to train, by '<id>/seed<seed>' (Table 1 models are trained by the main pipeline)."""
    return {f"{p.model.id}/seed{p.seed}": p.model for p in points if not p.model.table1}


def datasets(points: list[Point]) -> dict[str, DataSet]:
    """Training data sets of the study models, by id."""
    return {p.model.data.id: p.model.data for p in points if not p.model.table1}


def validate(config: dict) -> None:
    """Expand every study now, so a bad axis fails before any job starts, naming the key."""
    _check_training("studies.base.training", config.get("studies", {}).get("base", {}).get("training", {}), config)
    try:
        points = expand(config)
    except StudyError:
        raise
    except (ValueError, TypeError, KeyError) as error:
        raise StudyError(f"studies: {error}") from None
    checked = set()  # each data set, test set and model once: points share them
    for p in points:
        where = (f"studies.{p.study} ({p.train_axis or 'base'}={p.train_value}, "
                 f"test {p.test_axis or 'own'}={p.test_value})")
        spec = p.model
        checks = (("data", spec.data.id, lambda: StimulusConfig.from_pipeline(spec.data.data)),
                  ("test", p.test_id, lambda: StimulusConfig.from_pipeline(p.test)),
                  ("model", spec.id, lambda: (encoder_config(spec.kind, **spec.options),
                                              TrainConfig.from_dict(spec.training))))
        for kind, id_, check in checks:
            if (kind, id_) in checked:
                continue
            checked.add((kind, id_))
            try:
                check()
            except (ValueError, TypeError, AssertionError) as error:
                raise StudyError(f"{where}: {error}") from None


def option_value(options: dict, encoder: str, axis: str):
    """An encoder option's effective value: as configured, else its config dataclass's default."""
    options = dict(options)
    kind = options.pop("encoder", encoder)
    return options[axis] if axis in options else getattr(encoder_config(kind, **options), axis, None)
