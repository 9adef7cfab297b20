"""The STAVE probe step (13_stave_probe): where a trained STAVE model loses the figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from timeblind import tracking
from timeblind.core.io import write_csv
from timeblind.core.layout import RESULTS, resolve
from timeblind.data.dataset import StimulusDataset
from timeblind.evaluation.stave_probe import probe_stave
from timeblind.models.checkpoint import load_model
from timeblind.plots.probe import stave_probe_figure

FIGURE_CATEGORIES = ("shapes", "images", "videos")  # one frame size, one figure that moves against the ground


def stave_probe(*, data_dir: str, model: str, figure: str, table: str, split: str = "test", clips: int = 96,
                results_dir: str = RESULTS) -> tuple[pd.DataFrame, list[Path]]:
    """Probe the STAVE model on up to `clips` clips of the split's figure categories (as many of each);
    writes the per-stage table and its figure."""
    p = dict(locals())
    data = StimulusDataset(resolve(data_dir), split)
    samples = data.samples
    categories = [c for c in FIGURE_CATEGORIES if (samples.category == c).any()]
    if not categories:
        raise ValueError(f"{data_dir} ({split}): no clips of {list(FIGURE_CATEGORIES)} to probe")
    per_category = max(1, clips // len(categories))
    chosen = [int(i) for c in categories for i in samples.index[samples.category == c][:per_category]]
    net, info = load_model(resolve(model))
    with tracking.step_run("stave_probe", p, {"encoder": info.get("encoder", "stave")}, results_dir) as run:
        result = probe_stave(net, np.stack([data.clip(i) for i in chosen]), np.stack([data.mask(i) for i in chosen]))
        write_csv(result, resolve(table))
        paths = stave_probe_figure(result, resolve(figure), f"{model} on {len(chosen)} {split} clips "
                                                            f"({', '.join(categories)})")
        run.log_metrics({f"auc.{s.replace(' ', '_')}": a for s, a in zip(result["stage"], result["auc"])})
        for path in [resolve(table), *paths]:
            run.log_artifact(path, "tables" if path.suffix == ".csv" else "figures")
    return result, paths
