"""Accuracy with 95% confidence intervals."""

from __future__ import annotations

import math

import numpy as np
# scipy.stats computes its normal and t quantiles with these two, and takes a second to import
from scipy.special import ndtri, stdtrit


def wilson_interval(correct: int, total: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion; well-behaved near 0 and 1."""
    if total <= 0:
        raise ValueError(f"total={total}: need at least one prediction")
    z = ndtri(0.5 + confidence / 2)
    p = correct / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    # p lies inside exactly; in floating point 0/3 gave a lower bound of 6e-17, a negative error bar
    return min(p, max(0.0, centre - half)), max(p, min(1.0, centre + half))


def t_interval(values: list[float], confidence: float = 0.95) -> tuple[float, float]:
    """Student-t interval of the mean over independent runs (e.g. seeds)."""
    values = np.asarray(values, float)
    if len(values) < 2:
        raise ValueError("a t interval needs at least two runs")
    half = stdtrit(len(values) - 1, 0.5 + confidence / 2) * values.std(ddof=1) / math.sqrt(len(values))
    return float(values.mean() - half), float(values.mean() + half)
