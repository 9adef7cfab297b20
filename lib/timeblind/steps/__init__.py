"""The pipeline's steps, one module per notebook (generate, pretrain_reader, train, evaluate, plot,
snr, export, gallery, study, grounding_data, grounding_stage, grounding_table): each function wires
the parts together for its step and logs it to MLflow. Notebooks and the command line import from
here alone; `resolve` finds a step's outputs (relative paths point into the project directory);
`preview_jpeg` is how a notebook shows a large figure."""

from timeblind.core.layout import resolve

__all__ = ["preview_jpeg", "resolve"]


def preview_jpeg(path, longest: int = 1200) -> bytes:
    """plots.figures.preview_jpeg, imported when called: importing a step must not load matplotlib."""
    from timeblind.plots.figures import preview_jpeg as preview

    return preview(path, longest)
