"""Analysis of generated stimuli: measured signal-to-noise ratios (SpookyBench SNR analyzer)."""

from timeblind.analysis.snr import SNRConfig, snr_metrics
from timeblind.analysis.snr_batch import analyze_clips, summarize_snr

__all__ = ["SNRConfig", "analyze_clips", "snr_metrics", "summarize_snr"]
