"""Score a trained classifier on a folder in the official SpookyBench layout.

Writes the official results format (a JSON object mapping each metadata Path to the predicted
text) and scores it with the official rule: a prediction is correct when any accepted label is
a case-insensitive substring of it. The model answers each video's category (from metadata.csv)
as the official per-category prompts ask: the word it reads, or a class of that category.
Videos that already have the model's input shape are used as they are; others are resampled so
their motion survives (io.resample), frame by frame as they decode (io.video), so memory stays
bounded whatever the video's length.
"""

from __future__ import annotations

import json
import os
import re
from datetime import datetime
from pathlib import Path

import pandas as pd
import torch

from timeblind.core.io import write_text
from timeblind.core.lexicon import ENGLISH_WORDS, reading_lexicon
from timeblind.core.stats import wilson_interval
from timeblind.core.tasks import category_ids, to_model_input
from timeblind.core.zoom import zoom_region
from timeblind.io.folder import SpookyBenchFolder
from timeblind.io.metadata import Skipped
from timeblind.io.spookybench import is_correct, parse_categories
from timeblind.io.video import DecodedVideo, VideoError, decode_video
from timeblind.models.checkpoint import frame_shapes, load_model


def input_shape(info: dict, frames: int | None, height: int | None, width: int | None,
                category: str | None = None) -> tuple[int, int, int]:
    """The (T, H, W) a model was trained on for a category (stored in its file), unless given explicitly."""
    for name, value in (("frames", frames), ("height", height), ("width", width)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{name}={value!r}: expected a positive integer")
    shapes = frame_shapes("the model file", info)
    stored = shapes.get(category) or next(iter(shapes.values()), (None, None, None))
    shape = tuple(kept if given is None else given for given, kept in zip((frames, height, width), stored))
    if None in shape:
        raise ValueError("this model file does not record its input size (older file): pass --frames, --height "
                         "and --width")
    return shape


def evaluate_folder(model_path: str | Path, dataset: str | Path, *, csv: str | Path | None = None,
                    categories: list[str] | None = None, frames: int | None = None, height: int | None = None,
                    width: int | None = None, method: str = "motion", zoom: bool = True,
                    lexicon: int = ENGLISH_WORDS, log=print) -> tuple[dict, pd.DataFrame, list]:
    """Predictions {Path: text}, a per-category accuracy table (Wilson 95%) and the skipped items."""
    model, info = load_model(model_path)
    return score_folder(model, info, dataset, csv=csv, categories=categories, frames=frames, height=height,
                        width=width, method=method, zoom=zoom, lexicon=lexicon, log=log)


def score_folder(model, info: dict, dataset: str | Path, **options) -> tuple[dict, pd.DataFrame, list]:
    """evaluate_folder for a model already loaded (model, info = load_model(path)); options as score_models."""
    return score_models([(model, info)], dataset, **options)[0]


@torch.no_grad()
def score_models(models: list[tuple], dataset: str | Path, *, csv: str | Path | None = None,
                 categories: list[str] | None = None, frames: int | None = None, height: int | None = None,
                 width: int | None = None, method: str = "motion", zoom: bool = True,
                 lexicon: int = ENGLISH_WORDS, log=print) -> list[tuple[dict, pd.DataFrame, list]]:
    """Several loaded models (model, info) scored on one folder: per model, the predictions, the
    accuracy table and the skipped items. Each video is decoded once, as a stream, for all of them
    (large videos take far longer to decode than a small model takes to answer), into each model's
    input for its category (io.video). With ``zoom``, a still figure the model finds smaller than
    its training figures is read again from a crop of the video around it (core/zoom.py). Words are
    read against the `lexicon` most frequent English words (0: letter by letter). Each
    skipped item is reported once through ``log``, as it happens, and so is each category a model
    cannot answer."""
    for _, info in models:
        input_shape(info, frames, height, width)  # refused before any video is read
    words = reading_lexicon(lexicon)
    wanted = parse_categories(categories) if categories else None  # any case; objects, dynamics as aliases
    folder = SpookyBenchFolder(Path(dataset), Path(csv) if csv else None)
    log(f"metadata: {folder.csv_path}")
    if wanted:
        folder.entries = [e for e in folder.entries if e.category in wanted]
    for item in folder.skipped:  # rows of metadata.csv that name no usable video
        log(f"skipped {item.path or f'line {item.row}'}: {item.reason}")
    for model, _ in models:
        spec = model.heads.spec
        for category in sorted({e.category for e in folder.entries} - set(spec.categories)):
            count = sum(e.category == category for e in folder.entries)
            log(f"note: this model has no answer for category {category!r} (trained on {', '.join(spec.categories)}): "
                f"its {count} video(s) get an empty answer, scored wrong")
    predictions = [{} for _ in models]
    rows = [[] for _ in models]
    skipped = [list(folder.skipped) for _ in models]
    closer = [0] * len(models)
    for entry in folder.entries:
        shapes = [input_shape(info, frames, height, width, entry.category) for _, info in models]
        try:
            decoded = decode_video(entry.path, list(dict.fromkeys(shapes)), method=method)
        except VideoError as e:
            decoded = Skipped(entry.row, entry.rel, f"unreadable video: {e.reason}")  # length is checked per clip
            log(f"skipped {decoded.path}: {decoded.reason}")
        clips, outputs, regions = {}, {}, {}
        for k, ((model, info), shape) in enumerate(zip(models, shapes)):
            if isinstance(decoded, Skipped):
                skipped[k].append(decoded)
                continue
            if shape not in clips:
                clips[shape] = _model_clip(decoded, entry, shape, method)
            if isinstance(clips[shape], Skipped):  # too short for the model
                skipped[k].append(clips[shape])
                log(f"skipped {clips[shape].path}: {clips[shape].reason}")
                continue
            outputs[k] = model(to_model_input(torch.from_numpy(clips[shape]))[None])
            region = zoom_region(outputs[k]["figure"][0].mean(dim=0).cpu().numpy(), entry.category,
                                 info["extra"].get("figure_sizes") or {}) if zoom else None
            if region is not None:
                regions[k] = (shape, region)
        if regions:  # a closer look: each crop around a figure, at its model's input size, from one more decode
            for k, crop in zip(regions, decoded.crop_clips(list(regions.values()), method, "gray")):
                outputs[k] = models[k][0](to_model_input(torch.from_numpy(crop))[None])
                closer[k] += 1
        for k, out in outputs.items():
            category = category_ids(models[k][0].heads.spec, [entry.category])  # the category's question
            text = models[k][0].heads.answers(out, category, words)[0]
            predictions[k][entry.rel] = text
            rows[k].append({"category": entry.category, "correct": is_correct(text, entry.answers)})
    if zoom:
        for (_, info), count in zip(models, closer):
            log(f"{model_label(info)}: {count} video(s) read again closer up (a still figure smaller than its typical training one)")
    return [(p, accuracy_table(pd.DataFrame(r, columns=["category", "correct"])), s)
            for p, r, s in zip(predictions, rows, skipped)]


def _model_clip(decoded: DecodedVideo, entry, shape: tuple[int, int, int], method: str):
    """The model's (T, H, W) clip of an entry's decoded video, or why there is none (a Skipped)."""
    try:
        return decoded.clip(shape, method, "gray")
    except VideoError as e:
        return Skipped(entry.row, entry.rel, e.reason)


def accuracy_table(scored: pd.DataFrame) -> pd.DataFrame:
    """Per category and overall: n, correct, accuracy and its Wilson 95% interval."""
    rows = []
    groups = [*scored.groupby("category", sort=True), ("all", scored)] if len(scored) else []
    for category, group in groups:
        n, correct = len(group), int(group["correct"].sum())
        low, high = wilson_interval(correct, n)
        rows.append({"category": category, "n": n, "correct": correct, "accuracy": correct / n,
                     "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows, columns=["category", "n", "correct", "accuracy", "ci_low", "ci_high"])


def write_predictions(predictions: dict, path: str | Path) -> Path:
    """The official results format, written atomically (a temp file beside it, renamed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text(path, json.dumps(predictions, indent=1))


# --output as the official runners take it: a folder that receives {model}_{cot|direct}_{timestamp}.json.
# Our prompts are the per-category ones, the runners' "direct" prompts.
PROMPT_KIND = "direct"


def output_is_folder(output: str | Path) -> bool:
    """An existing folder, a path ending in a separator, or one without a file suffix (the runners'
    "./results") names a folder; anything else names the results file itself."""
    text = str(output)
    return text.endswith(("/", os.sep)) or Path(text).expanduser().is_dir() or not Path(text).suffix


def check_folder(folder: str | Path, expected: str, option: str = "--output") -> None:
    """ValueError, in one line, when files could not be written in `folder` (made if missing): the
    nearest existing folder on its path must be one and writable. Creates nothing, so a bad path fails
    before any work; `expected` says what the option takes."""
    existing = Path(folder).expanduser()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"{option} {folder}: {existing} is a file, not a folder; expected {expected}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{option} {folder}: cannot write in {existing} (permission denied)")


def check_output(output: str | Path) -> None:
    """ValueError, in one line, when results could not be written at `output`; creates nothing, so a
    bad path fails before any scoring."""
    target = Path(output).expanduser()
    folder = target if output_is_folder(output) else target.parent
    check_folder(folder, f"a folder for {{model}}_{PROMPT_KIND}_{{timestamp}}.json or a .json file path")


def model_label(info: dict) -> str:
    """A model file's name for file names: its configured name (or encoder), and its seed."""
    extra = info.get("extra", {})
    name = str(extra.get("name") or info.get("encoder") or "model")
    if extra.get("seed") is not None:
        name += f"-seed{extra['seed']}"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name)


def results_path(output: str | Path, label: str, now: datetime | None = None) -> Path:
    """Where results go: inside a folder under the official runners' naming, or the file given."""
    if not output_is_folder(output):
        return Path(output).expanduser()
    stamp = (now or datetime.now()).strftime("%Y%m%d_%H%M%S")
    return Path(output).expanduser() / f"{label}_{PROMPT_KIND}_{stamp}.json"


__all__ = ["evaluate_folder", "score_folder", "score_models", "accuracy_table", "write_predictions", "input_shape", "check_folder",
           "check_output", "model_label", "output_is_folder", "results_path"]
