"""The snr step (05_snr; `timeblind snr`): the SpookyBench analyzer's SNRs of a data set."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from timeblind import tracking
from timeblind.analysis.snr import METRICS, analyze_clips, snr_clips, summarize_snr
from timeblind.core.io import write_csv
from timeblind.core.layout import RESULTS, resolve


def measure_snr(*, source: str, table: str, split: str = "val", per_category: int = 32, workers: int = 1,
                results_dir: str = RESULTS) -> pd.DataFrame:
    """The SpookyBench analyzer's SNRs (dB) per clip of a data set or SpookyBench folder; writes the
    per-clip table and a per-category summary (mean, 95% t-interval) beside it, logs the means."""
    p = dict(locals())
    if not resolve(source).is_dir():
        raise FileNotFoundError(f"{source}: expected a generated data set (with manifest.json) or a SpookyBench "
                                "folder (with metadata.csv)")
    table_path = resolve(table)
    table_path.parent.mkdir(parents=True, exist_ok=True)
    with tracking.step_run("snr", p, {"source": Path(source).name}, results_dir) as run:
        clips, skipped = snr_clips(resolve(source), split=split, per_category=per_category)
        for item in skipped:
            print(f"skipped {item.path}: {item.reason}")
        per_clip = analyze_clips([(name, clip) for name, _, clip in clips], workers=workers)
        per_clip.insert(1, "category", [category for _, category, _ in clips])
        summary = pd.concat({c: summarize_snr(g) for c, g in [("all", per_clip), *per_clip.groupby("category")]},
                            names=["category"]).reset_index()
        for frame, path in ((per_clip, table_path), (summary, table_path.with_name(table_path.stem + "_summary.csv"))):
            run.log_artifact(write_csv(frame, path), "tables")
        means = summary.set_index(["category", "metric"])["mean"]
        run.log_metrics({f"{metric}.{category}": float(means[category, metric])
                         for category in summary.category.unique() for metric in METRICS})
        run.log_metrics({"clips_measured": len(per_clip), "clips_skipped": len(skipped)})
    return summary
