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
from timeblind.core.stats import wilson_interval
from timeblind.core.tasks import category_ids, to_model_input
from timeblind.io.folder import SpookyBenchFolder
from timeblind.io.metadata import Skipped
from timeblind.io.spookybench import is_correct, parse_categories
from timeblind.io.video import VideoError, read_clips
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
                    width: int | None = None, method: str = "motion", log=print) -> tuple[dict, pd.DataFrame, list]:
    """Predictions {Path: text}, a per-category accuracy table (Wilson 95%) and the skipped items."""
    model, info = load_model(model_path)
    return score_folder(model, info, dataset, csv=csv, categories=categories, frames=frames, height=height,
                        width=width, method=method, log=log)


@torch.no_grad()
def score_folder(model, info: dict, dataset: str | Path, *, csv: str | Path | None = None,
                 categories: list[str] | None = None, frames: int | None = None, height: int | None = None,
                 width: int | None = None, method: str = "motion", log=print,
                 cache: dict | None = None) -> tuple[dict, pd.DataFrame, list]:
    """evaluate_folder for a model already loaded (model, info = load_model(path)). Each video is decoded
    as a stream into the model's input for its category (io.video.read_clips); each skipped item is
    reported once through ``log``, as it happens, and so is each category the model cannot answer.
    cache: a dict kept across calls, so that scoring several models on one folder decodes each video
    once per input shape (large videos take far longer to decode than a small model takes to answer)."""
    input_shape(info, frames, height, width)  # refused before any video is read
    wanted = parse_categories(categories) if categories else None  # any case; objects, dynamics as aliases
    folder = SpookyBenchFolder(Path(dataset), Path(csv) if csv else None)
    log(f"metadata: {folder.csv_path}")
    if wanted:
        folder.entries = [e for e in folder.entries if e.category in wanted]
    for item in folder.skipped:  # rows of metadata.csv that name no usable video
        log(f"skipped {item.path or f'line {item.row}'}: {item.reason}")
    spec = model.heads.spec
    for category in sorted({e.category for e in folder.entries} - set(spec.categories)):
        count = sum(e.category == category for e in folder.entries)
        log(f"note: this model has no answer for category {category!r} (trained on {', '.join(spec.categories)}): "
            f"its {count} video(s) get an empty answer, scored wrong")
    predictions, rows = {}, []
    for entry in folder.entries:
        T, H, W = input_shape(info, frames, height, width, entry.category)
        key = (str(entry.path), T, H, W, method)
        clip = cache.get(key) if cache is not None else None
        if clip is None:
            clip = _model_clip(entry, T, H, W, method)
            if cache is not None:
                cache[key] = clip
        if isinstance(clip, Skipped):  # unreadable, or too short for the model
            folder.skipped.append(clip)
            log(f"skipped {clip.path}: {clip.reason}")
            continue
        category = category_ids(spec, [entry.category])  # the category's question, as a prompt
        text = model.answer(to_model_input(torch.from_numpy(clip))[None], category)[0]
        predictions[entry.rel] = text
        rows.append({"category": entry.category, "correct": is_correct(text, entry.answers)})
    return predictions, accuracy_table(pd.DataFrame(rows, columns=["category", "correct"])), folder.skipped


def _model_clip(entry, T: int, H: int, W: int, method: str):
    """The model's (T, H, W) clip of an entry's video, decoded as a stream, or why there is none (a Skipped)."""
    try:
        (clip,) = read_clips(entry.path, [(T, H, W)], method=method)
    except VideoError as e:
        return Skipped(entry.row, entry.rel, e.reason if "needs at least" in e.reason else f"unreadable video: {e.reason}")
    return clip


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


__all__ = ["evaluate_folder", "score_folder", "accuracy_table", "write_predictions", "input_shape", "check_folder",
           "check_output", "model_label", "output_is_folder", "results_path"]
