"""Evaluation: predictions, accuracy with confidence intervals, result tables."""
