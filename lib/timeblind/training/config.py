"""Every training recipe as a plain, torch-free dataclass, passed whole: the plan checks a
pipeline config with them before any job starts, the steps build them from a notebook's
parameters, and the trainers read them.

TrainConfig is the pipeline config's `training` section (its seeds aside: one job per seed), with
the seed's augmentations (AugmentConfig). GroundingTrainConfig trains one stage of the grounded
decoder, VARIANTS are the rows of the grounding table and STAGES its progressive stages. A new
hyperparameter is a field here and a key of the schema (workflow/schemas/config.schema.yaml),
with the same default; tests/test_config.py checks that they agree.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

from timeblind.data.questions import KINDS

# -- the seed's augmentations -----------------------------------------------------------------

TRANSFORMS = ("noise", "blur", "temporal_filter")
FILTER_MODES = ("highpass", "lowpass", "bandstop")


def _number(name: str, v) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"{name}={v!r}: expected a number")
    return float(v)


def _probability(name: str, v) -> float:
    v = _number(name, v)
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"{name}={v}: expected a probability in [0, 1]")
    return v


def _pair(name: str, v, lo: float, hi: float, unit: str) -> tuple[float, float]:
    """A (low, high) range inside [lo, hi]; a single number means (v, v)."""
    if isinstance(v, (list, tuple)):
        if len(v) != 2:
            raise ValueError(f"{name}={v!r}: expected a number or a (low, high) pair")
        a, b = (_number(name, x) for x in v)
    else:
        a = b = _number(name, v)
    if not (lo <= a <= hi and lo <= b <= hi):
        raise ValueError(f"{name}={(a, b)}: expected values in [{lo}, {hi}] {unit}")
    if a > b:
        raise ValueError(f"{name}={(a, b)}: expected low <= high")
    return a, b


@dataclass(frozen=True)
class NoiseConfig:
    p: float = 0.0  # probability that a clip gets noise; 0 = off
    std: float = 1.4  # std of the added Gaussian, in input units (seed: 0.7 in [0, 1] grey)
    gain: float = 0.3  # signal gain about mid-grey before adding noise (seed: 0.3)

    def __post_init__(self):
        object.__setattr__(self, "p", _probability("noise.p", self.p))
        std = _number("noise.std", self.std)
        if std < 0:
            raise ValueError(f"noise.std={std}: expected a std >= 0 in input units ([-1, 1] range)")
        gain = _number("noise.gain", self.gain)
        if not 0.0 <= gain <= 1.0:
            raise ValueError(f"noise.gain={gain}: expected a signal gain in [0, 1]")
        object.__setattr__(self, "std", std)
        object.__setattr__(self, "gain", gain)


@dataclass(frozen=True)
class BlurConfig:
    p: float = 0.0  # probability that a clip is blurred; 0 = off
    sigma: tuple[float, float] = (5.0, 5.0)  # px, drawn uniformly per clip (seed: sigma=5)
    kernel_size: int = 9  # taps of the truncated Gaussian, odd (seed: 9)

    def __post_init__(self):
        object.__setattr__(self, "p", _probability("blur.p", self.p))
        object.__setattr__(self, "sigma", _pair("blur.sigma", self.sigma, 0.0, float("inf"), "px (sigma >= 0)"))
        k = self.kernel_size
        if isinstance(k, bool) or not isinstance(k, int) or k < 1 or k % 2 == 0:
            raise ValueError(f"blur.kernel_size={k!r}: expected an odd positive integer")


@dataclass(frozen=True)
class TemporalFilterConfig:
    p: float = 0.0  # probability that a clip is filtered; 0 = off
    mode: str = "highpass"  # highpass (seed: frame difference), lowpass or bandstop
    cutoff: float | None = None  # cycles/frame for highpass (keeps f >= cutoff) and lowpass (keeps
    # f <= cutoff); None = 1/6, where the seed's frame difference |2 sin(pi f)| crosses gain 1
    band: tuple[float, float] | None = None  # cycles/frame; bandstop removes low <= f <= high

    def __post_init__(self):
        object.__setattr__(self, "p", _probability("temporal_filter.p", self.p))
        if self.mode not in FILTER_MODES:
            raise ValueError(f"temporal_filter.mode={self.mode!r}: expected one of {FILTER_MODES}")
        if self.mode == "bandstop":
            if self.band is None:
                raise ValueError("temporal_filter.band: required for mode='bandstop', a (low, high) pair "
                                 "in cycles/frame within [0, 0.5]")
            if self.cutoff is not None:
                raise ValueError(f"temporal_filter.cutoff={self.cutoff!r}: not used by mode='bandstop' (give band)")
            object.__setattr__(self, "band", _pair("temporal_filter.band", self.band, 0.0, 0.5, "cycles/frame"))
            return
        if self.band is not None:
            raise ValueError(f"temporal_filter.band={self.band!r}: only used by mode='bandstop', "
                             f"not mode={self.mode!r} (which uses cutoff)")
        cutoff = 1 / 6 if self.cutoff is None else _number("temporal_filter.cutoff", self.cutoff)
        if not 0.0 <= cutoff <= 0.5:
            raise ValueError(f"temporal_filter.cutoff={cutoff}: expected cycles/frame in [0, 0.5] (0.5 = Nyquist)")
        object.__setattr__(self, "cutoff", cutoff)


_SECTIONS = {"noise": NoiseConfig, "blur": BlurConfig, "temporal_filter": TemporalFilterConfig}


@dataclass(frozen=True)
class AugmentConfig:
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    blur: BlurConfig = field(default_factory=BlurConfig)
    temporal_filter: TemporalFilterConfig = field(default_factory=TemporalFilterConfig)

    def __post_init__(self):
        for name, kind in _SECTIONS.items():
            if not isinstance(getattr(self, name), kind):
                raise ValueError(f"{name}={getattr(self, name)!r}: expected a {kind.__name__}")

    @property
    def enabled(self) -> bool:
        return any(getattr(self, name).p > 0 for name in TRANSFORMS)

    @classmethod
    def from_dict(cls, d: Mapping | None) -> AugmentConfig:
        """From a plain dict such as {"noise": {"p": 0.5, "std": 0.3}}; absent or None sections
        are off. A given section must state p, so that a section never silently does nothing."""
        if d is None:
            return cls()
        if not isinstance(d, Mapping):
            raise ValueError(f"augment={d!r}: expected a mapping of transform name to options")
        unknown = sorted(set(d) - set(TRANSFORMS))
        if unknown:
            raise ValueError(f"augment: unknown transform(s) {unknown}; expected some of {TRANSFORMS}")
        sections = {}
        for name, kind in _SECTIONS.items():
            opts = d.get(name)
            if opts is None:
                continue
            if not isinstance(opts, Mapping):
                raise ValueError(f"augment.{name}={opts!r}: expected a mapping of options, e.g. {{'p': 0.5}}")
            allowed = [f.name for f in dataclasses.fields(kind)]
            bad = sorted(set(opts) - set(allowed))
            if bad:
                raise ValueError(f"augment.{name}: unknown option(s) {bad}; expected some of {allowed}")
            if "p" not in opts:
                raise ValueError(f"augment.{name}: missing 'p' (probability in [0, 1] that a clip gets it)")
            sections[name] = kind(**opts)
        return cls(**sections)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# -- training an encoder ---------------------------------------------------------------------

DEFAULT_TASK_WEIGHTS = {"figure": 1.0, "class": 1.0, "reading": 1.0, "patterns": 1.0}  # the loss's task groups


@dataclass(frozen=True)
class ReaderTrainConfig:
    """How the figure reader is pretrained on clean masks (training/reader.py): the schema's
    `training.reader` section."""

    max_steps: int = 600  # optimiser steps
    batch_size: int = 32  # figure masks per step
    lr: float = 0.003  # AdamW peak learning rate (linear warm-up, cosine decay)
    weight_decay: float = 0.01
    val_every: int = 100  # print progress every this many steps
    words_share: float = 0.4  # share of the steps on text lines, when the data set has words and other categories

    def __post_init__(self):
        if isinstance(self.words_share, bool) or not isinstance(self.words_share, (int, float)) or not (
                0 < self.words_share < 1):
            raise ValueError(f"reader.words_share={self.words_share!r}: expected a share in (0, 1)")
        for name, low in (("max_steps", 0), ("batch_size", 1), ("val_every", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"reader.{name}={value!r}: expected a whole number, at least {low}")
        for name in ("lr", "weight_decay"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"reader.{name}={value!r}: expected a number >= 0")

    @classmethod
    def from_dict(cls, d: Mapping | None) -> ReaderTrainConfig:
        return cls(**_known(cls, d or {}, "training.reader"))


@dataclass(frozen=True)
class ReaderAdaptConfig:
    """How the reader is adapted to each trained encoder's own figure maps (training/adapt.py): the
    schema's `training.reader_adapt` section. steps 0: every encoder is read by the pretrained reader."""

    steps: int = 0  # optimiser steps (0: no adaptation)
    clips: int = 1500  # training clips of shapes, images and moving figures the encoder draws
    word_clips: int = 200  # training word clips the encoder draws (word clips are large: each costs about 8)
    batch_size: int = 64  # figure maps per step, half the encoder's and half clean masks degraded
    lr: float = 0.001  # AdamW learning rate at the start, decayed to 0 (cosine)
    above_chance_z: float | None = 3.0  # adapt only an encoder whose figures are read this far above guessing

    def __post_init__(self):
        z = self.above_chance_z
        if z is not None and (isinstance(z, bool) or not isinstance(z, (int, float))):
            raise ValueError(f"reader_adapt.above_chance_z={z!r}: expected a number or null (adapt every encoder)")
        for name, low in (("steps", 0), ("clips", 0), ("word_clips", 0), ("batch_size", 2)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"reader_adapt.{name}={value!r}: expected a whole number, at least {low}")
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)) or self.lr <= 0:
            raise ValueError(f"reader_adapt.lr={self.lr!r}: expected a number > 0")

    @classmethod
    def from_dict(cls, d: Mapping | None) -> ReaderAdaptConfig:
        return cls(**_known(cls, d or {}, "training.reader_adapt"))


@dataclass(frozen=True)
class TrainConfig:
    """How an encoder is trained (the schema's `training` section, less `seeds`)."""

    max_steps: int = 600  # optimiser steps, the same budget for every encoder
    batch_size: int = 64  # clips per step: the global batch, split over the devices
    lr: float = 0.002  # AdamW peak learning rate (linear warm-up, cosine decay)
    weight_decay: float = 0.05  # AdamW weight decay
    val_every: int = 100  # validate, checkpoint and print progress every this many steps
    stream: bool = False  # fresh clips every step, their noise rendered on the training device
    words_share: float | None = None  # share of the steps on the words' own frame size (None: by their clips)
    train_reader: bool = False  # true: the answers also train the pretrained reader on the recovered figures
    torch_compile: bool = False  # compile the model with torch.compile (`make bench` says where it pays)
    devices: int = 1  # more than 1: Lightning DDP in a subprocess (gloo on CPU, NCCL on GPUs)
    task_weights: dict = field(default_factory=lambda: dict(DEFAULT_TASK_WEIGHTS))  # weight of each task group
    figure_change_weight: float = 0.0  # extra weight of the figure loss where the figure's mask changes over time
    augment: dict = field(default_factory=dict)  # the seed's augmentations (AugmentConfig.from_dict); none by default
    reader: dict = field(default_factory=dict)  # pretraining of the figure reader (ReaderTrainConfig)
    reader_adapt: dict = field(default_factory=dict)  # the reader adapted to the trained encoder (ReaderAdaptConfig)

    def __post_init__(self):
        for name in ("max_steps", "batch_size", "val_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r}: expected a whole number, at least 1")
        if isinstance(self.devices, bool) or not isinstance(self.devices, int) or self.devices < 1:
            raise ValueError(f"devices={self.devices!r}: expected a whole number of devices, at least 1")
        if self.batch_size % self.devices:
            raise ValueError(f"batch_size={self.batch_size} does not split over devices={self.devices}: "
                             f"use a multiple of {self.devices}")
        unknown = sorted(set(self.task_weights) - set(DEFAULT_TASK_WEIGHTS))
        if unknown:
            raise ValueError(f"task_weights: unknown group(s) {unknown}; expected some of {list(DEFAULT_TASK_WEIGHTS)}")
        if isinstance(self.figure_change_weight, bool) or not isinstance(self.figure_change_weight, (int, float)) \
                or self.figure_change_weight < 0:
            raise ValueError(f"figure_change_weight={self.figure_change_weight!r}: expected a number, at least 0")
        if self.words_share is not None and (isinstance(self.words_share, bool) or not isinstance(
                self.words_share, (int, float)) or not 0 < self.words_share < 1):
            raise ValueError(f"words_share={self.words_share!r}: expected a share in (0, 1), or null")
        self.augmentations  # noqa: B018  (a bad augmentation is named now, not mid-training)
        self.reader_config  # noqa: B018
        self.reader_adapt_config  # noqa: B018

    @property
    def reader_config(self) -> ReaderTrainConfig:
        return ReaderTrainConfig.from_dict(self.reader)

    @property
    def reader_adapt_config(self) -> ReaderAdaptConfig:
        return ReaderAdaptConfig.from_dict(self.reader_adapt)

    @property
    def augmentations(self) -> AugmentConfig:
        return AugmentConfig.from_dict(self.augment)

    @property
    def loss_weights(self) -> dict[str, float]:
        """Every task group's weight, the unset ones at their defaults."""
        return {**DEFAULT_TASK_WEIGHTS, **self.task_weights}

    @classmethod
    def from_dict(cls, d: Mapping) -> TrainConfig:
        return cls(**_known(cls, d, "training"))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _known(cls, d: Mapping, where: str) -> dict:
    """d's keys, each a field of the dataclass cls (an unknown one is named)."""
    allowed = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(d) - set(allowed))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; expected some of {allowed}")
    return dict(d)


# -- training the grounded decoder -----------------------------------------------------------

@dataclass(frozen=True)
class GroundingTrainConfig:
    """How one stage of the grounded decoder is trained: the schema's `grounding.training`
    section, and the stage's steps from `grounding.steps`."""

    max_steps: int  # optimiser steps of this stage
    batch_size: int = 32  # questions per step
    lr: float = 0.002  # AdamW peak learning rate
    weight_decay: float = 0.01  # AdamW weight decay
    val_every: int = 100  # validate every this many steps
    beta: float = 0.1  # FPO's beta

    @classmethod
    def from_dict(cls, d: Mapping) -> GroundingTrainConfig:
        return cls(**_known(cls, d, "grounding training"))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Variant:
    """One row of the grounding table: how the decoder answers and what it is trained with."""

    fmt: str  # coupled | factorised
    evidence_embedding: bool = False  # answer-phase <evi> carries its span's mean frame state
    consistency: bool = False  # L1 between evi_head of the two appearances of each event
    reject: tuple[str, ...] = ()  # FPO's perturbations of the rejected responses (instruct stage)


VARIANTS = {
    "coupled": Variant("coupled"),
    "factorised": Variant("factorised"),
    "evidence": Variant("factorised", evidence_embedding=True),
    "consistency": Variant("factorised", evidence_embedding=True, consistency=True),
    "fpo_grounding": Variant("factorised", True, True, ("grounding",)),
    "fpo_text": Variant("factorised", True, True, ("text",)),
    "fpo_both": Variant("factorised", True, True, ("grounding", "text", "both")),
}


@dataclass(frozen=True)
class Stage:
    """One step of Grounded-VideoLLM's progressive training."""

    kinds: tuple[str, ...]  # the question kinds it trains on
    text_only: bool = False  # answers without time tokens or evidence
    preference: bool = False  # FPO, for the variants that have it


STAGES = {
    "align": Stage(("what",), text_only=True),
    "time": Stage(("what", "when")),
    "instruct": Stage(KINDS, preference=True),
}


def time_recipe(variant: str) -> str:
    """The variant whose time stage `variant` shares: the same one without preference optimisation."""
    base = dataclasses.replace(VARIANTS[variant], reject=())
    return next(name for name, recipe in VARIANTS.items() if recipe == base)
