"""The plot step (04_plot): the accuracy figure, drawn from the tables alone."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from timeblind import tracking
from timeblind.core.layout import RESULTS, resolve
from timeblind.plots.figures import accuracy_figure


def plot(*, tables_dir: str, figure: str, results_dir: str = RESULTS) -> list[Path]:
    """Draw the accuracy figure from the tables (no model is loaded)."""
    p = dict(locals())
    tables = resolve(tables_dir)
    with tracking.step_run("plot", p, {"figure": "accuracy"}, results_dir) as run:
        paths = accuracy_figure(pd.read_csv(tables / "accuracy.csv"), pd.read_csv(tables / "accuracy_by_model.csv"),
                                resolve(figure))
        for path in paths:
            run.log_artifact(path, "figures")
    return paths
