"""Figures are reproducible: the same figure is the same bytes in two separate runs."""

import subprocess
import sys

DRAW = """
import sys
from pathlib import Path
import numpy as np
from timeblind.plots.figures import stimulus_preview
rng = np.random.default_rng(0)
clips = [(rng.random((4, 16, 16)) < 0.5).astype(np.uint8) * 255 for _ in range(3)]
stimulus_preview(clips, ["circle", "star", "heart"], [c.mean(axis=0) for c in clips], Path(sys.argv[1]) / "stimuli")
"""


def test_the_stimulus_figure_is_byte_identical_across_runs(tmp_path, env):
    for run in ("first", "second"):  # separate processes: matplotlib's SVG ids are random per process unless salted
        subprocess.run([sys.executable, "-c", DRAW, str(tmp_path / run)], env=env, check=True)
    for suffix in (".svg", ".png"):
        first, second = ((tmp_path / run / "stimuli").with_suffix(suffix).read_bytes() for run in ("first", "second"))
        assert first == second, suffix
