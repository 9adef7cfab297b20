"""The spookybench_export step (06_spookybench_export), and `timeblind export-spookybench`:
stored clips written in the official SpookyBench layout."""

from __future__ import annotations

import ast
import json
import re
import shutil

import pandas as pd

from timeblind import tracking
from timeblind.core.io import write_csv
from timeblind.core.layout import RESULTS, resolve
from timeblind.data.dataset import StimulusConfig, StimulusDataset, shifted_stimulus, write_dataset
from timeblind.evaluation.evaluate import ANSWER, category_chance, reproduction_table, summarise
from timeblind.evaluation.spookybench import score_folder, write_predictions
from timeblind.io.spookybench import VideoItem, export_dataset, pattern_folder
from timeblind.models.checkpoint import load_model


def export_split(*, data_dir: str, out_dir: str, split: str = "test", limit: int | None = None,
                 scale: int = 4, fps: float | None = None) -> pd.DataFrame:
    """Write a stored split in the official SpookyBench layout (metadata.csv, category folders,
    H.264 mp4); returns the metadata table."""
    data = StimulusDataset(resolve(data_dir), split)
    count = len(data) if limit is None else min(limit, len(data))
    rows = data.samples

    def items():
        for i in range(count):
            name = re.sub(r"[^a-z0-9]+", "_", rows.label[i].lower()).strip("_")
            yield VideoItem(frames=data.clip(i), category=rows.category[i], answers=ast.literal_eval(rows.answers[i]),
                            name=f"{i:05d}_{name}")

    rate = fps or data.manifest["config"]["motion"]["fps"]
    return export_dataset(items(), resolve(out_dir), fps=rate, scale=scale)


def spookybench_export(*, data: dict, shift: dict, out_dir: str, models: list[str], tables_dir: str,
                       seed: int, test_size: int, scale: int = 4, results_dir: str = RESULTS) -> pd.DataFrame:
    """Table 1 again, on an official-format folder made with settings training never used: a test
    split generated with the config's data section changed by `shift`, written as SpookyBench's
    layout (H.264 mp4 at `scale`x), then every model scored on it with eval-spookybench's code
    (motion-preserving resampling to the model's input, the official substring rule)."""
    p = dict(locals())
    cfg = StimulusConfig.from_pipeline(shifted_stimulus(data, shift))
    out, tables = resolve(out_dir), resolve(tables_dir)
    tables.mkdir(parents=True, exist_ok=True)
    with tracking.step_run("spookybench_export", p, {"shift": json.dumps(shift, sort_keys=True)}, results_dir) as run:
        shutil.rmtree(out, ignore_errors=True)
        write_dataset(out / "generated", cfg, seed, {"test": test_size})
        export_split(data_dir=str(out / "generated"), out_dir=str(out / "official"), split="test", scale=scale)
        chance = category_chance([c.category for c in cfg.classes])
        rows = []
        for path in models:
            model, info = load_model(resolve(path))
            encoder, model_seed = info["extra"].get("name", info["encoder"]), info["extra"].get("seed")
            # The official folder, then the patterns the export keeps in a folder of their own.
            folders = {"": out / "official", "_patterns": pattern_folder(out / "official")}
            scored = [(suffix, *score_folder(model, info, folder)) for suffix, folder in folders.items() if folder]
            for suffix, predictions, _, _ in scored:
                write_predictions(predictions, out / "predictions" / f"{encoder}_seed{model_seed}{suffix}.json")
            table = pd.concat([t for _, _, t, _ in scored])
            skipped = [item for *_, items in scored for item in items]
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
