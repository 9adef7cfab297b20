"""The pipeline's steps, one module per notebook (generate, train, evaluate, plot, snr, export,
gallery, study, grounding_data, grounding_stage, grounding_table): each function wires the parts
together for its step and logs it to MLflow. Notebooks and the command line import from here
alone; `resolve` finds a step's outputs (relative paths point into the project directory)."""

from timeblind.core.layout import resolve

__all__ = ["resolve"]
