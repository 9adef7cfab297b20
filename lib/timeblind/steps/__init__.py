"""The pipeline's steps, one module per notebook (generate, pretrain_reader, train, evaluate, plot,
snr, export, gallery, study, grounding_data, grounding_stage, grounding_table): each function wires
the parts together for its step and logs it to MLflow. Notebooks and the command line import from
here alone; `resolve` finds a step's outputs (relative paths point into the project directory);
`preview_jpeg` is how a notebook shows a large figure."""

import logging
import sys

from timeblind.core.layout import resolve

__all__ = ["preview_jpeg", "resolve"]

if "ipykernel" in sys.modules and not logging.getLogger("timeblind").handlers:
    # In a notebook, timeblind's warnings print with the step's own lines, on one stream: on two, the
    # notebook would keep them in whatever order the kernel happened to flush them.
    _handler = logging.StreamHandler(sys.stdout)
    _handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    logging.getLogger("timeblind").addHandler(_handler)


def preview_jpeg(path, longest: int = 1200) -> bytes:
    """plots.figures.preview_jpeg, imported when called: importing a step must not load matplotlib."""
    from timeblind.plots.figures import preview_jpeg as preview

    return preview(path, longest)
