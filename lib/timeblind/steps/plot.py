"""The plot step (04_plot): the accuracy figure, drawn from the tables alone."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from timeblind import tracking
from timeblind.core.layout import RESULTS, resolve
from timeblind.plots.curves import learning_curve_figure, read_curves
from timeblind.plots.figures import accuracy_figure


def plot(*, tables_dir: str, figure: str, curves: list[str] = (), curves_figure: str = "",
         results_dir: str = RESULTS) -> list[Path]:
    """Draw the accuracy figure from the tables and, given the models' learning_curve.csv files,
    the learning curves (no model is loaded)."""
    p = dict(locals())
    tables = resolve(tables_dir)
    with tracking.step_run("plot", p, {"figure": "accuracy"}, results_dir) as run:
        summary = pd.read_csv(tables / "accuracy.csv")
        paths = accuracy_figure(summary, pd.read_csv(tables / "accuracy_by_model.csv"), resolve(figure))
        if curves:
            chance = summary.drop_duplicates("category").set_index("category")["chance"].to_dict()
            paths += learning_curve_figure(read_curves([resolve(c) for c in curves]), chance, resolve(curves_figure))
        for path in paths:
            run.log_artifact(path, "figures")
    return paths
