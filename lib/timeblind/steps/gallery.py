"""The gallery step (07_gallery): which pixels drive each model's answer."""

from __future__ import annotations

from pathlib import Path

from timeblind import tracking
from timeblind.core.layout import RESULTS, resolve
from timeblind.core.lexicon import ENGLISH_WORDS
from timeblind.plots.gallery import write_gallery


def gallery(*, data_dir: str, models: list[str], figure: str, table: str, split: str = "test",
            per_category: int = 2, samples: int = 16, noise: float = 0.1, lexicon: int = ENGLISH_WORDS,
            results_dir: str = RESULTS) -> list[Path]:
    """The gallery: a few clips per motion-coded category as a single frame, the mean of frames and
    the true figure, beside each model's pixel attribution map (SmoothGrad of the right answer's
    log-probability); writes the figure (.png, .svg) and a per clip x model table of the share of
    attribution inside the figure."""
    p = dict(locals())
    with tracking.step_run("gallery", p, {"split": split}, results_dir) as run:
        frame, paths = write_gallery(resolve(data_dir), [resolve(m) for m in models], resolve(figure), resolve(table),
                                     split=split, per_category=per_category, samples=samples, noise=noise,
                                     lexicon=lexicon)
        for path in paths:
            run.log_artifact(path, "tables" if path.suffix == ".csv" else "figures")
        means = frame.groupby(["encoder", "category"])["attribution_inside_figure"].mean()
        run.log_metrics({f"attribution_inside.{e}.{c}": v for (e, c), v in means.items() if v == v}  # NaN: all-zero map
                        | {f"figure_area.{c}": v for c, v in frame.groupby("category")["figure_area"].mean().items()})
    return paths
