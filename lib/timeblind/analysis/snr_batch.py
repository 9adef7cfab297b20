"""The SNR analyzer (analysis/snr.py) over many clips or videos: where they come from (a stored split or a
SpookyBench folder, its videos decoded one at a time by the worker that measures them), a process pool
that keeps input order, a reason for each item that cannot be measured, and the per-metric summary.
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from timeblind.analysis.snr import METRICS, SNRConfig, snr_metrics, snr_of_video
from timeblind.core.stats import t_interval
from timeblind.io.video import VideoError


def _analyze_one(item: tuple[str, np.ndarray | Path], cfg: SNRConfig) -> dict[str, object]:
    name, source = item
    metrics = snr_metrics(source, cfg) if isinstance(source, np.ndarray) else snr_of_video(source, cfg)
    return {"name": name, **metrics}


def _try_one(item: tuple[str, np.ndarray | Path], cfg: SNRConfig) -> dict[str, object] | str:
    """The row of one item, or why it cannot be measured (a video too short, unreadable...)."""
    try:
        return _analyze_one(item, cfg)
    except (VideoError, ValueError) as error:
        return getattr(error, "reason", None) or str(error)


def analyze_clips(
    clips: Iterable[tuple[str, np.ndarray]], cfg: SNRConfig = SNRConfig(), workers: int = 1
) -> pd.DataFrame:
    """One row per ``(name, frames)`` clip: ``name`` plus the five metrics, in input order. Raises on a
    clip it cannot measure (see :func:`analyze` for items that may fail).

    ``workers > 1`` runs the clips in a spawn-started process pool, so a calling script needs the usual
    ``if __name__ == "__main__":`` guard. Results are identical to a serial run.
    """
    _check_workers(workers)
    items = list(clips)
    if workers == 1 or len(items) < 2:
        rows = [_analyze_one(item, cfg) for item in items]
    else:
        with _pool(workers, len(items)) as pool:
            rows = list(pool.map(_analyze_one, items, itertools.repeat(cfg)))  # map keeps input order
    return pd.DataFrame(rows, columns=["name", *METRICS])


def analyze(items: Iterable[tuple[str, np.ndarray | Path]], cfg: SNRConfig = SNRConfig(), workers: int = 1,
            ) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """The metrics of every item that can be measured, in input order, and (name, reason) for each one
    that cannot; an item is a clip ``(T, H, W)`` or a video file, which its worker decodes as a stream
    (one video per process at a time, as the official ``--processes``)."""
    _check_workers(workers)
    items = list(items)
    if workers == 1 or len(items) < 2:
        results = [_try_one(item, cfg) for item in items]
    else:
        with _pool(workers, len(items)) as pool:
            results = list(pool.map(_try_one, items, itertools.repeat(cfg)))
    rows = [r for r in results if isinstance(r, dict)]
    failed = [(name, r) for (name, _), r in zip(items, results) if isinstance(r, str)]
    return pd.DataFrame(rows, columns=["name", *METRICS]), failed


def _check_workers(workers) -> None:
    if not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")


def _pool(workers: int, items: int) -> ProcessPoolExecutor:
    # spawn: fresh children instead of forks of a parent whose cv2/BLAS threads may already run.
    return ProcessPoolExecutor(max_workers=min(workers, items), mp_context=multiprocessing.get_context("spawn"))


def summarize_snr(df: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Per metric: n, mean, std (ddof 1) and the two-sided Student-t interval of the mean, indexed by metric.

    NaN entries are dropped; with n < 2 the std and the interval are NaN.
    """
    present = [m for m in METRICS if m in df.columns]
    if not present:
        raise ValueError(f"df has none of the metric columns {METRICS}; got {list(df.columns)}")
    rows = []
    for metric in present:
        x = df[metric].dropna().to_numpy(dtype=np.float64)
        n = int(x.size)
        mean = float(x.mean()) if n else math.nan
        std = float(x.std(ddof=1)) if n > 1 else math.nan
        low, high = t_interval(x, confidence) if n > 1 else (math.nan, math.nan)  # scipy.stats.t
        rows.append({"metric": metric, "n": n, "mean": mean, "std": std, "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows).set_index("metric")


def snr_clips(source: Path, *, split: str = "val", per_category: int = 32):
    """(name, category, clip or video file) to measure: the first `per_category` clips of each category
    of a stored split, or every video of a SpookyBench folder at its own size (decoded one at a time when
    measured), with the folder's skipped rows. Patterns are brightness-coded, not motion-coded: left out."""
    from timeblind.data.dataset import StimulusDataset

    if (source / "manifest.json").exists():
        data = StimulusDataset(source, split)
        wanted = [i for c in data.manifest["categories"] if c != "patterns"
                  for i in data.samples.index[data.samples.category == c][:per_category]]
        return [(f"{split}/{i}", data.samples.category[i], data.clip(int(i))) for i in wanted], []
    from timeblind.io.folder import SpookyBenchFolder

    folder = SpookyBenchFolder(source)
    return [(entry.rel, entry.category, entry.path) for entry in folder.entries], folder.skipped
