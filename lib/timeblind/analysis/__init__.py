"""Analysis of generated stimuli: measured signal-to-noise ratios (SpookyBench SNR analyzer)."""

from timeblind.analysis.snr import SNRConfig, analyze_clips, snr_metrics, summarize_snr

__all__ = ["SNRConfig", "analyze_clips", "snr_metrics", "summarize_snr"]
