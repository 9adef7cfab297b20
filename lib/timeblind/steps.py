"""One function per pipeline step. Notebooks call these; this is the only module that wires
stimuli, data, models, training, evaluation, plots and tracking together."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from timeblind import tracking
from timeblind.paths import resolve


def _write_json(path: Path, payload: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    os.replace(tmp, path)


def build_shapes_dataset(out_dir: Path, preview: Path, cfg, seed: int, sizes: dict[str, int]) -> dict:
    """The generate step's work without tracking: the data set, then one validation clip per
    class drawn as frame / mean / motion-energy mask. Returns the manifest and figure paths."""
    from timeblind.data.shapes import load_split, unpack, write_dataset
    from timeblind.plots.figures import stimulus_preview
    from timeblind.stimuli import motion_energy_mask

    manifest = write_dataset(out_dir, cfg, seed, sizes)
    packed, labels = load_split(out_dir, "val")
    shown = [next(i for i in range(len(labels)) if labels[i] == c) for c in range(len(cfg.classes))]
    clips = [unpack(packed[i], cfg.width) for i in shown]
    masks = [motion_energy_mask(c, cfg.motion.speed) for c in clips]
    return {"manifest": manifest, "figures": stimulus_preview(clips, labels[shown], list(cfg.classes), masks, preview)}


def generate(*, out_dir: str, preview: str, seed: int, height: int, width: int, frames: int, speed: int,
             density: float, coherence: float, train_size: int, val_size: int, test_size: int,
             results_dir: str = "results") -> dict:
    """Write the shapes data set (train/val/test) and a preview figure; returns the manifest
    and the figure paths."""
    p = dict(locals())
    from timeblind.data.shapes import ShapesConfig

    cfg = ShapesConfig.from_dict({
        "height": height, "width": width,
        "motion": {"frames": frames, "speed": speed, "density": density, "coherence": coherence},
    })
    sizes = {"train": train_size, "val": val_size, "test": test_size}
    with tracking.step_run("generate", p, {"dataset": "shapes"}, results_dir) as run:
        result = build_shapes_dataset(resolve(out_dir), resolve(preview), cfg, seed, sizes)
        run.log_metrics({f"clips_{k}": v for k, v in sizes.items()})
        run.log_artifact(resolve(out_dir) / "manifest.json")
        for path in result["figures"]:
            run.log_artifact(path, "figures")
    return result


def train(*, data_dir: str, out_dir: str, encoder: str, seed: int, max_steps: int, batch_size: int, lr: float,
          weight_decay: float, val_every: int, encoder_options: dict, results_dir: str = "results") -> dict:
    """Train one encoder with one seed; writes model.pt and metrics.json into out_dir."""
    p = dict(locals())
    from timeblind.training.fit import fit

    out_dir = resolve(p["out_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    with tracking.step_run("train", p, {"encoder": p["encoder"], "seed": p["seed"]}, p["results_dir"]) as run:
        metrics = fit(resolve(p["data_dir"]), out_dir, encoder=p["encoder"], seed=p["seed"],
                      max_steps=p["max_steps"], batch_size=p["batch_size"], lr=p["lr"],
                      weight_decay=p["weight_decay"], val_every=p["val_every"],
                      encoder_options=p["encoder_options"], tracking=run)
        run.log_metrics({k: v for k, v in metrics.items() if isinstance(v, (int, float))})
        _write_json(out_dir / "metrics.json", {**metrics, "mlflow_run_id": run.run_id})
    return metrics


def evaluate(*, data_dir: str, models: list[str], tables_dir: str, split: str = "test",
             results_dir: str = "results") -> pd.DataFrame:
    """Score every model on the held-out split; writes the per-model and summary tables."""
    p = dict(locals())
    from timeblind.evaluation.evaluate import score_models, summarise

    tables = resolve(p["tables_dir"])
    tables.mkdir(parents=True, exist_ok=True)
    with tracking.step_run("evaluate", p, {"split": p["split"]}, p["results_dir"]) as run:
        per_model = score_models([resolve(m) for m in p["models"]], resolve(p["data_dir"]), p["split"])
        summary = summarise(per_model)
        for name, table in (("accuracy_by_model", per_model), ("accuracy", summary)):
            path = tables / f"{name}.csv"
            table.to_csv(path.with_suffix(".tmp"), index=False, float_format="%.4f")
            os.replace(path.with_suffix(".tmp"), path)
            run.log_artifact(path, "tables")
        run.log_metrics({f"test_acc.{r.encoder}": r.accuracy for r in summary.itertuples()})
    return summary


def plot(*, tables_dir: str, figure: str, results_dir: str = "results") -> list[Path]:
    """Draw the accuracy figure from the tables (no model is loaded)."""
    p = dict(locals())
    from timeblind.plots.figures import accuracy_figure

    tables = resolve(p["tables_dir"])
    with tracking.step_run("plot", p, {"figure": "accuracy"}, p["results_dir"]) as run:
        paths = accuracy_figure(pd.read_csv(tables / "accuracy.csv"), pd.read_csv(tables / "accuracy_by_model.csv"),
                                resolve(p["figure"]))
        for path in paths:
            run.log_artifact(path, "figures")
    return paths
