"""The grounding table's plan: the encoder models, the event-video data set and the decoder runs
the config's `grounding` section asks for.

The frame tokens come from encoders trained like the studies' (studies.base on top of the Table 1
setup), so a grounding encoder and a study's base model with the same settings are one job. The
first encoder listed runs every variant; the others run the `best` variant (encoder swaps).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from timeblind.core import layout
from timeblind.data.grounding import split_classes, stimulus_config
from timeblind.data.questions import MAX_EVENTS, WindowGrid
from timeblind.models.config import GroundedDecoderConfig
from timeblind.plan import studies
from timeblind.plan.studies import ModelSpec
from timeblind.stimuli.events import EventConfig
from timeblind.training.config import STAGES, VARIANTS, time_recipe


class GroundingError(ValueError):
    pass


@dataclass(frozen=True)
class GroundingRun:
    """One row of the table for one seed: a decoder variant over one encoder's frame tokens."""

    variant: str
    encoder: str
    seed: int
    model: ModelSpec = field(hash=False, compare=False)

    @property
    def name(self) -> str:
        return f"{self.variant}-{self.encoder}"

    def stage_dir(self, stage: str) -> str:
        if stage == "align":  # what appears, text only: the same for every variant of an encoder
            return layout.grounding_align_dir(self.encoder, self.seed)
        if stage == "time":  # preference optimisation starts after it: FPO variants share their base's
            return layout.grounding_stage_dir(f"{time_recipe(self.variant)}-{self.encoder}", self.seed, "time")
        return layout.grounding_stage_dir(self.name, self.seed, stage)


def enabled(config: dict) -> bool:
    return bool(config.get("grounding", {}).get("encoders"))


def encoder_data(config: dict) -> dict:
    return studies.merge_config(config["data"], config.get("studies", {}).get("base", {}).get("data", {}))


def data_section(config: dict) -> dict:
    """The event videos' data section: the encoders' stimulus settings, the grounding sizes and seed."""
    stimulus = {k: v for k, v in encoder_data(config).items() if k != "seed" and not k.endswith("_size")}
    return {**stimulus, **config["grounding"]["data"]}


def encoder_model(config: dict, encoder: str, seed: int) -> ModelSpec:
    training = studies.merge_config({k: v for k, v in config["training"].items() if k != "seeds"},
                                    config.get("studies", {}).get("base", {}).get("training", {}))
    return studies.model_spec(encoder, seed, encoder_data(config), training, config["encoders"][encoder], False)


def runs(config: dict) -> list[GroundingRun]:
    if not enabled(config):
        return []
    g = config["grounding"]
    first, *swaps = g["encoders"]
    rows = [(v, first) for v in g["variants"]] + [(g["best"], e) for e in swaps]
    return [GroundingRun(v, e, s, encoder_model(config, e, s)) for s in g["seeds"] for v, e in rows]


def models(config: dict) -> dict[str, ModelSpec]:
    return {f"{r.model.id}/seed{r.seed}": r.model for r in runs(config)}


def datasets(config: dict) -> dict:
    return {r.model.data.id: r.model.data for r in runs(config)}


def validate(config: dict) -> None:
    """Everything a grounding job would trip over, named before any job starts."""
    if not enabled(config):
        return
    g = config["grounding"]
    unknown = [e for e in g["encoders"] if e not in config["encoders"]]
    if unknown:
        raise GroundingError(f"grounding.encoders: {unknown} are not in the encoders section {sorted(config['encoders'])}")
    bad = [v for v in g["variants"] if v not in VARIANTS]
    if bad or g["best"] not in VARIANTS:
        raise GroundingError(f"grounding.variants / best: {bad or [g['best']]} unknown; expected some of {list(VARIANTS)}")
    if g["best"] not in g["variants"]:  # the swapped encoders would run a row the first encoder never ran
        raise GroundingError(f"grounding.best: {g['best']!r} is not one of grounding.variants {g['variants']}; "
                             "expected the variant the other encoders are compared on")
    try:
        events = EventConfig.from_dict(g["events"])
        data = data_section(config)
        stim = stimulus_config(data, events)
        WindowGrid(events.frames, encoder_data(config)["frames"], g["window_stride"])
        GroundedDecoderConfig(video_dim=1, vocab_size=1, frame_tokens=1, **g["decoder"])
    except (ValueError, TypeError) as error:
        raise GroundingError(f"grounding: {error}") from None
    if events.events[1] > MAX_EVENTS:
        raise GroundingError(f"grounding.events.events: up to {events.events[1]} events; the decoder holds "
                             f"at most {MAX_EVENTS}")
    for split in ("train", "val", "test"):
        n = len(split_classes(stim, split))
        if data[f"{split}_size"] and n < events.events[1]:
            raise GroundingError(f"grounding: the {split} split has {n} classes for up to {events.events[1]} "
                                 "distinct events per video; use more classes or fewer events")


__all__ = ["STAGES", "VARIANTS", "GroundingError", "GroundingRun", "time_recipe", "enabled", "data_section",
           "encoder_model", "runs", "models", "datasets", "validate"]
