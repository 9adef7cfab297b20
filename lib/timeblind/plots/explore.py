"""Interactive stimulus explorer for JupyterLab (notebooks/explore_stimuli.ipynb)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from timeblind.data.dataset import StimulusConfig
from timeblind.plots.figures import gallery_html, recovered_view, stimulus_preview, write_animation


def show_stimulus(category: str = "shapes", index: int = 0, size: int = 64, frames: int = 16, speed: float = 1.0,
                  angle: float = -1.0, noise: str = "binary", density: float = 0.5, coherence: float = 1.0,
                  contrast: float = 1.0, fps: float = 10.0, seed: int = 0) -> str:
    """HTML: sample `index` of a one-category data set with these controls, playing, next to one
    frame, the mean of frames and the figure recovered from motion. angle < 0 = random per clip."""
    cfg = StimulusConfig.from_dict({
        "height": size, "width": size, "categories": [category],
        "motion": {"frames": frames, "speed": speed, "angle": None if angle < 0 else angle, "noise": noise,
                   "density": density, "coherence": coherence, "contrast": contrast, "fps": fps},
    })
    clip, layout, _ = cfg.sample(seed, "train", index)
    label = cfg.classes[layout.label].name
    recovered = recovered_view(clip, category, speed)
    with tempfile.TemporaryDirectory() as tmp:
        gif = write_animation(clip, Path(tmp) / "clip.gif", fps=fps, scale=max(1, 256 // size))
        panels = stimulus_preview([clip], [f"{label} ({layout.angle:.0f} deg)"], [recovered], Path(tmp) / "panels")
        return gallery_html([gif, panels[0]], [f"{category}: {label}", "frame / mean / recovered"], width=256)
