"""A study's scores: every model on the test sets it is paired with, and the summary over seeds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from timeblind.core.layout import project_relative
from timeblind.core.stats import t_interval
from timeblind.evaluation.evaluate import ANSWER, score_models


def score_sets(folders: dict[str, Path], models: dict[str, list[str]], log=print) -> dict[tuple[str, str], list]:
    """(test id, model path) -> the model's answer rows on that test set, one per category.
    folders: test id -> a data set with a test split; models: test id -> the model files it scores."""
    scores = {}
    for tid, folder in folders.items():
        per_model = score_models(models[tid], folder, "test", log=log)
        given = {project_relative(m): str(m) for m in models[tid]}  # the table records project-relative paths
        for r in per_model[per_model.task == ANSWER].itertuples():
            scores.setdefault((tid, given[r.model]), []).append(r)
    return scores


def summarise_study(table: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds per panel x x x series x category, with a t interval over >= 2 seeds, else
    the single seed's Wilson interval."""
    keys = ["study", "panel", "x", "series", "category"]
    rows = []
    for key, group in table.groupby(keys, sort=False):
        if len(group) >= 2:
            low, high = t_interval(group["accuracy"].tolist())
            method = f"t over {len(group)} seeds"
        else:
            low, high, method = group["ci_low"].iloc[0], group["ci_high"].iloc[0], "Wilson, 1 seed"
        rows.append({**dict(zip(keys, key)), "accuracy": group["accuracy"].mean(), "ci_low": low, "ci_high": high,
                     "interval": method, "seeds": " ".join(str(s) for s in group["seed"]),
                     "n_per_seed": int(group["n"].iloc[0]), "chance": group["chance"].iloc[0],
                     "snr_db": group["snr_db"].mean() if group["snr_db"].notna().any() else np.nan})
    return pd.DataFrame(rows)
