"""The spookybench_export step (06_spookybench_export), and `timeblind export-spookybench`:
stored clips written in the official SpookyBench layout."""

from __future__ import annotations

import ast
import json
import re
import shutil

import numpy as np
import pandas as pd

from timeblind import tracking
from timeblind.core.io import write_csv
from timeblind.core.layout import RESULTS, resolve
from timeblind.core.lexicon import ENGLISH_WORDS
from timeblind.data.config import StimulusConfig, shifted_stimulus
from timeblind.data.dataset import StimulusDataset
from timeblind.data.writer import write_dataset
from timeblind.evaluation.evaluate import ANSWER, category_chance, reproduction_table, summarise
from timeblind.evaluation.spookybench import score_models, write_predictions
from timeblind.io.export import VideoItem, export_dataset, pattern_folder
from timeblind.models.checkpoint import load_model


def export_split(*, data_dir: str, out_dir: str, split: str = "test", limit: int | None = None,
                 scale: int = 4, fps: float | None = None, frames: tuple[int, int] | None = None,
                 rates: tuple[float, float] | None = None, seed: int = 0) -> pd.DataFrame:
    """Write a stored split in the official SpookyBench layout (metadata.csv, category folders,
    H.264 mp4); returns the metadata table.

    frames: [low, high] frames each video keeps, as the release's videos run 46 to 273 frames: the first
    n of its clip, n drawn per video (at most the clip's length). rates: [low, high] mean frame rate drawn
    per video, its frames at irregular intervals (a variable frame rate, as in the release); None: every
    video at `fps` (default: the data set's). Both draws come from (seed, clip index).
    """
    data = StimulusDataset(resolve(data_dir), split)
    count = len(data) if limit is None else min(limit, len(data))
    rows = data.samples

    def items():
        for i in range(count):
            name = re.sub(r"[^a-z0-9]+", "_", rows.label[i].lower()).strip("_")
            rng = np.random.default_rng([seed, i])
            length, timestamps = video_timing(data.frame_shape_of(i)[0], frames, rates, rng)
            yield VideoItem(frames=data.clip(i, length), category=rows.category[i], timestamps=timestamps,
                            answers=ast.literal_eval(rows.answers[i]), name=f"{i:05d}_{name}")

    rate = fps or data.manifest["config"]["motion"]["fps"]
    return export_dataset(items(), resolve(out_dir), fps=rate, scale=scale)


JITTER = 0.25  # a variable-rate video's frame intervals: its mean interval x U(1 - JITTER, 1 + JITTER)


def video_timing(available: int, frames: tuple[int, int] | None, rates: tuple[float, float] | None,
                 rng: np.random.Generator) -> tuple[int, np.ndarray | None]:
    """How many of a clip's `available` frames a video keeps, and its frame times in seconds (None: a
    constant rate). The length is drawn before the rate, each only when asked for."""
    length = available
    if frames is not None:
        low, high = int(frames[0]), int(frames[1])
        if not 2 <= low <= high:
            raise ValueError(f"frames={list(frames)}: expected [low, high] with 2 <= low <= high")
        length = min(available, int(rng.integers(low, high + 1)))
    if rates is None:
        return length, None
    low, high = float(rates[0]), float(rates[1])
    if not 0 < low <= high:
        raise ValueError(f"rates={list(rates)}: expected [low, high] frames per second with 0 < low <= high")
    mean = float(rng.uniform(low, high))
    intervals = rng.uniform(1 - JITTER, 1 + JITTER, length - 1) / mean
    return length, np.concatenate([[0.0], np.cumsum(intervals)])


SHARD_BYTES = 1 << 26  # the export's generated clips are large: shards of at most ~64 MB bound its memory


def spookybench_export(*, data: dict, shift: dict, out_dir: str, models: list[str], tables_dir: str,
                       seed: int, test_size: int, scale: int = 4, frames: list | None = None,
                       fps: list | None = None, lexicon: int = ENGLISH_WORDS, results_dir: str = RESULTS
                       ) -> pd.DataFrame:
    """Table 1 again, on an official-format folder made with settings training never used: a test
    split generated with the config's data section changed by `shift`, written as SpookyBench's
    layout (H.264 Constrained Baseline mp4 at `scale`x, each video keeping `frames` [low, high] of its
    clip's frames at a variable rate of `fps` [low, high] on average), then every model scored on it
    with eval-spookybench's code (motion-preserving resampling to the model's input, the official
    substring rule; words read against the `lexicon` most frequent English words, 0: letter by letter).
    Each video is decoded once for every model.
    The generated split keeps its manifest and samples.csv, not its clips (the videos are the clips)."""
    p = dict(locals())
    shifted = shifted_stimulus(data, shift)
    cfg = StimulusConfig.from_pipeline(shifted)
    largest = max(t * h * w for t, h, w in cfg.frame_shapes.values())
    cfg = StimulusConfig.from_pipeline({**shifted, "shard_size": max(1, min(cfg.shard_size, SHARD_BYTES // largest))})
    out, tables = resolve(out_dir), resolve(tables_dir)
    tables.mkdir(parents=True, exist_ok=True)
    with tracking.step_run("spookybench_export", p, {"shift": json.dumps(shift, sort_keys=True)}, results_dir) as run:
        shutil.rmtree(out, ignore_errors=True)
        write_dataset(out / "generated", cfg, seed, {"test": test_size})
        export_split(data_dir=str(out / "generated"), out_dir=str(out / "official"), split="test", scale=scale,
                     frames=frames, rates=fps, seed=seed)
        # The clips live on as the videos; their shards (2.6 GB of bits and masks for 100 clips of 960x540)
        # go. generated/ keeps manifest.json and test/samples.csv: each clip's class, speed, density, text.
        for shard in (out / "generated").rglob("*.npy"):
            shard.unlink()
        chance = category_chance([c.category for c in cfg.classes])
        loaded = [load_model(resolve(path)) for path in models]
        # The official folder, then the patterns the export keeps in a folder of their own; each video is
        # decoded once for every model, and a small still figure is read again closer up (core/zoom.py).
        folders = {"": out / "official", "_patterns": pattern_folder(out / "official")}
        scored = {suffix: score_models(loaded, folder, lexicon=lexicon) for suffix, folder in folders.items() if folder}
        rows = []
        for k, (path, (_, info)) in enumerate(zip(models, loaded)):
            encoder, model_seed = info["extra"].get("name", info["encoder"]), info["extra"].get("seed")
            for suffix, results in scored.items():
                write_predictions(results[k][0], out / "predictions" / f"{encoder}_seed{model_seed}{suffix}.json")
            table = pd.concat([results[k][1] for results in scored.values()])
            skipped = [item for results in scored.values() for item in results[k][2]]
            for r in table[table.category != "all"].itertuples():
                rows.append({"encoder": encoder, "seed": model_seed, "category": r.category, "task": ANSWER,
                             "n": r.n, "correct": r.correct, "accuracy": r.accuracy, "ci_low": r.ci_low,
                             "ci_high": r.ci_high, "chance": chance[r.category], "skipped": len(skipped),
                             "model": path})
        per_model = pd.DataFrame(rows)
        table1 = reproduction_table(summarise(per_model))
        for name, frame in (("spookybench_export_by_model", per_model), ("spookybench_export_table1", table1)):
            run.log_artifact(write_csv(frame, tables / f"{name}.csv"), "tables")
        run.log_metrics({f"export_acc.{r.encoder}.{r.category}": r.accuracy for r in per_model.itertuples()})
    return table1
