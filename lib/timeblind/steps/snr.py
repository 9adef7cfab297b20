"""The snr step (05_snr; `timeblind snr`): the SpookyBench analyzer's SNRs of a data set."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from timeblind import tracking
from timeblind.analysis.snr import METRICS, SNRConfig
from timeblind.analysis.snr_batch import analyze, snr_clips, summarize_snr
from timeblind.core.io import write_csv
from timeblind.core.layout import RESULTS, resolve


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


def measure_snr(*, source: str, table: str, split: str = "val", per_category: int = 32, workers: int = 1,
                sample_rate: int = 2, window: int = 5, results_dir: str = RESULTS, log=_stderr) -> pd.DataFrame:
    """The SpookyBench analyzer's SNRs (dB) per clip of a data set or SpookyBench folder; writes the
    per-clip table and a per-category summary (mean, 95% t-interval) beside it, logs the means.
    A folder's videos are decoded one at a time as streams (one per worker process); a video that cannot
    be measured (unreadable, too short) is reported once through ``log`` and the others are measured.
    Raises ValueError when nothing could be measured."""
    p = {k: v for k, v in locals().items() if k != "log"}
    cfg = SNRConfig(step=sample_rate, window=window)  # checked before any video is read
    if not resolve(source).is_dir():
        raise FileNotFoundError(f"{source} is not a folder; expected a generated data set (with manifest.json) or a "
                                "SpookyBench folder (with metadata.csv)")
    clips, skipped = snr_clips(resolve(source), split=split, per_category=per_category)  # a bad folder: no run
    for item in skipped:
        log(f"skipped {item.path or f'line {item.row}'}: {item.reason}")
    if not clips:
        raise ValueError(f"{source}: nothing measured ({len(skipped)} item(s) skipped)")
    table_path = resolve(table)
    table_path.parent.mkdir(parents=True, exist_ok=True)
    with tracking.step_run("snr", p, {"source": Path(source).name}, results_dir) as run:
        per_clip, failed = analyze([(name, clip) for name, _, clip in clips], cfg, workers=workers)
        for name, reason in failed:
            log(f"skipped {name}: {reason}")
        if per_clip.empty:
            raise ValueError(f"{source}: nothing measured ({len(skipped) + len(failed)} item(s) skipped)")
        category = {name: c for name, c, _ in clips}
        per_clip.insert(1, "category", [category[name] for name in per_clip.name])
        summary = pd.concat({c: summarize_snr(g) for c, g in [("all", per_clip), *per_clip.groupby("category")]},
                            names=["category"]).reset_index()
        for frame, path in ((per_clip, table_path), (summary, table_path.with_name(table_path.stem + "_summary.csv"))):
            run.log_artifact(write_csv(frame, path), "tables")
        means = summary.set_index(["category", "metric"])["mean"]
        run.log_metrics({f"{metric}.{category}": float(means[category, metric])
                         for category in summary.category.unique() for metric in METRICS})
        run.log_metrics({"clips_measured": len(per_clip), "clips_skipped": len(skipped) + len(failed)})
    return summary
