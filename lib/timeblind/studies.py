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

from timeblind.data.dataset import shifted_stimulus

AXIS_KINDS = ("train", "options", "augment", "test")
TRAIN_SIDE = ("train", "options", "augment")
BASE = "base"  # the value label of a model or test set that changes nothing
SHAPE_KEYS = ("height", "width", "frames")  # a test set must keep the models' input shape
RESULTS = "results"
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
        return f"{RESULTS}/studies/data/{self.id}"


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
            return f"{RESULTS}/models/{self.encoder}/seed{self.seed}/model.pt"
        return f"{RESULTS}/studies/models/{self.id}/seed{self.seed}/model.pt"

    @property
    def data_dir(self) -> str:
        return f"{RESULTS}/data/stimuli" if self.table1 else self.data.path


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


def _axes(name: str, study: dict) -> list[tuple[str, str, list]]:
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
    for kind, axis, _ in _axes(name, study):
        if kind == "test" and axis.split(".")[0] in SHAPE_KEYS:
            raise StudyError(f"studies.{name}.test.{axis}: changes the clip shape, and models are scored at the "
                             f"shape they were trained on; vary it under `train` instead")
    if not _axes(name, study):
        raise StudyError(f"studies.{name}: no axis; expected at least one of {list(AXIS_KINDS)}")
    if study.get("base") and not any(kind in TRAIN_SIDE for kind, _, _ in _axes(name, study)):
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
    studies = config.get("studies", {})
    base = studies.get("base", {})
    table1_training = {k: v for k, v in config["training"].items() if k != "seeds"}
    seeds = config["training"]["seeds"]
    test_size = studies.get("test_size", 200)
    points = []
    for name in study_names(config):
        study = studies[name] or {}
        _check(name, study, config)
        axes = _axes(name, study)
        train_side = [a for a in axes if a[0] in TRAIN_SIDE]
        test_axes = [a for a in axes if a[0] == "test"]
        table1 = not train_side
        own = study.get("base", {})  # this study's own changes, on top of studies.base
        data = config["data"] if table1 else merge_config(merge_config(config["data"], base.get("data", {})),
                                                          own.get("data", {}))
        training = table1_training if table1 else merge_config(
            merge_config(table1_training, base.get("training", {})), own.get("training", {}))
        for encoder in study.get("encoders") or list(config["encoders"]):
            options = config["encoders"][encoder]
            # (train axis, value label, data, training, options) of each model: the base, then each change
            variants = [("", BASE, data, training, options)]
            for kind, axis, values in train_side:
                for value in values:
                    if kind == "train":
                        if lookup(data, axis) == value:
                            continue
                        changed = merge_config(data, nested(axis, value))
                        variants.append((axis, label(value), changed, training, options))
                    elif kind == "options":
                        if option_value(options, encoder, axis) == value:
                            continue
                        variants.append((axis, label(value), data, training, {**options, axis: value}))
                    else:  # augment: this augmentation alone
                        settings = {value: study["augment"][value]}
                        variants.append(("augment", value, data, {**training, "augment": settings}, options))
            for seed in seeds:
                for train_axis, train_value, d, t, o in variants:
                    model = model_spec(encoder, seed, d, t, o, table1)
                    own = {**{k: v for k, v in d.items() if not k.endswith("_size")}, "test_size": test_size}
                    tests = [("", BASE, own)] if not test_axes else []
                    for _, axis, values in test_axes:
                        mine = lookup(d, axis)  # each model is also scored at its own value, for the curve
                        tests.append((axis, BASE if mine is None else label(mine), own))
                        tests += [(axis, label(v), shifted_stimulus(own, nested(axis, v))) for v in values if v != mine]
                    for test_axis, test_value, test in tests:
                        points.append(Point(name, encoder, seed, train_axis, train_value, test_axis, test_value,
                                            model, test))
    return points


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
    from timeblind.data.dataset import StimulusConfig
    from timeblind.data.augment import AugmentConfig
    from timeblind.models.registry import encoder_config

    checked = set()
    for p in points:
        spec = p.model
        key = (spec.id, p.test_id)
        if key in checked:
            continue
        checked.add(key)
        where = f"studies.{p.study} ({p.train_axis or 'base'}={p.train_value}, test {p.test_axis or 'own'}={p.test_value})"
        try:
            StimulusConfig.from_pipeline(spec.data.data)
            StimulusConfig.from_pipeline(p.test)
            encoder_config(spec.kind, **spec.options)
            AugmentConfig.from_dict(spec.training.get("augment") or {})
        except (ValueError, TypeError, AssertionError) as error:
            raise StudyError(f"{where}: {error}") from None


def option_value(options: dict, encoder: str, axis: str):
    """An encoder option's effective value: as configured, else its config dataclass's default."""
    from timeblind.models.registry import encoder_config

    options = dict(options)
    kind = options.pop("encoder", encoder)
    return options[axis] if axis in options else getattr(encoder_config(kind, **options), axis, None)


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
    axes = _axes(point.study, study)
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
