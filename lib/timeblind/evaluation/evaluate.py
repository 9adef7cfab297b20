"""Score trained classifiers on a held-out split and build the accuracy tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from timeblind.data.torch_data import ClipDataset
from timeblind.evaluation.metrics import t_interval, wilson_interval
from timeblind.models import load_model


@torch.no_grad()
def predict(model: torch.nn.Module, dataset, batch_size: int = 256) -> np.ndarray:
    preds = [model(video).argmax(dim=-1) for video, _ in DataLoader(dataset, batch_size=batch_size)]
    return torch.cat(preds).numpy()


def score_models(model_paths: list[str | Path], data_dir: str | Path, split: str = "test",
                 log=print) -> pd.DataFrame:
    """One row per model: encoder, seed, n, correct, accuracy and its Wilson 95% interval."""
    dataset = ClipDataset(str(data_dir), split)
    chance = 1 / len(dataset.manifest["classes"])
    rows = []
    for path in model_paths:
        model, info = load_model(path)
        if info["classes"] != dataset.manifest["classes"]:
            raise ValueError(f"{path} was trained on classes {info['classes']}, "
                             f"the data set has {dataset.manifest['classes']}")
        correct = int((predict(model, dataset) == dataset.labels).sum())
        low, high = wilson_interval(correct, len(dataset))
        rows.append({"encoder": info["encoder"], "seed": info["extra"].get("seed"), "n": len(dataset),
                     "correct": correct, "accuracy": correct / len(dataset), "ci_low": low, "ci_high": high,
                     "chance": chance, "model": str(path)})
        log(f"{info['encoder']} seed {rows[-1]['seed']}: {100 * correct / len(dataset):.1f}% "
            f"[{100 * low:.1f}, {100 * high:.1f}] on {len(dataset)} {split} clips")
    return pd.DataFrame(rows)


def summarise(per_model: pd.DataFrame) -> pd.DataFrame:
    """One row per encoder. Over >= 2 seeds: mean and t interval across seeds (training
    variance); with one seed: the Wilson interval of its test predictions."""
    rows = []
    for encoder, group in per_model.groupby("encoder", sort=False):
        if len(group) >= 2:
            low, high = t_interval(group["accuracy"].tolist())
            method = f"t over {len(group)} seeds"
        else:
            low, high = group["ci_low"].iloc[0], group["ci_high"].iloc[0]
            method = "Wilson, 1 seed"
        rows.append({"encoder": encoder, "seeds": " ".join(str(s) for s in group["seed"]),
                     "n_per_seed": int(group["n"].iloc[0]), "accuracy": group["accuracy"].mean(),
                     "ci_low": low, "ci_high": high, "ci_method": method, "chance": group["chance"].iloc[0]})
    return pd.DataFrame(rows)
