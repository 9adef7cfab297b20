"""The generate step (01_generate; also the studies' data sets): a stimulus data set and its preview."""

from __future__ import annotations

from pathlib import Path

from timeblind import tracking
from timeblind.core.layout import RESULTS, resolve
from timeblind.data.dataset import StimulusConfig, StimulusDataset, write_dataset
from timeblind.plots.figures import gallery_html, recovered_view, stimulus_preview, write_animation


def build_dataset(out_dir: Path, preview: Path | None, cfg: StimulusConfig, seed: int, sizes: dict[str, int],
                  workers: int = 1, per_category: int = 3) -> dict:
    """The generate step's work without tracking: the data set, then a few validation clips per
    category drawn as frame / mean / recovered figure and written as GIF animations."""
    manifest = write_dataset(out_dir, cfg, seed, sizes, workers=workers)
    if preview is None:  # a study's data set: no figures
        return {"manifest": manifest, "figures": [], "animations": [], "titles": []}
    val = StimulusDataset(out_dir, "val")
    samples = val.samples
    shown = [int(i) for c in cfg.categories for i in samples.index[samples.category == c][:per_category]]
    clips = [val.clip(i) for i in shown]
    titles = [f"{samples.category[i]}: {samples.label[i]}" for i in shown]
    recovered = [recovered_view(c, samples.category[i], cfg.motion.step) for i, c in zip(shown, clips)]
    animations = [write_animation(c, preview.with_name(f"{preview.name}_animations") / f"{k:02d}_{i}.gif",
                                  fps=cfg.motion.fps, scale=max(1, 128 // cfg.width))
                  for k, (i, c) in enumerate(zip(shown, clips))]
    return {"manifest": manifest, "figures": stimulus_preview(clips, titles, recovered, preview),
            "animations": animations, "titles": titles}


def generate(*, out_dir: str, preview: str, seed: int, train_size: int, val_size: int, test_size: int,
             stimulus: dict, workers: int = 1, results_dir: str = RESULTS) -> dict:
    """Write the stimulus data set (train/val/test), a preview figure and GIF animations; returns
    the manifest, the figure paths and the animations as one HTML gallery. `stimulus` is the
    config's data section without seed and sizes (StimulusConfig.from_pipeline)."""
    p = dict(locals())
    cfg = StimulusConfig.from_pipeline(stimulus)
    sizes = {"train": train_size, "val": val_size, "test": test_size}
    with tracking.step_run("generate", p, {"categories": ",".join(cfg.categories)}, results_dir) as run:
        result = build_dataset(resolve(out_dir), resolve(preview) if preview else None, cfg, seed, sizes, workers)
        run.log_metrics({f"clips_{k}": v for k, v in sizes.items()} | {"classes": len(cfg.classes)})
        run.log_artifact(resolve(out_dir) / "manifest.json")
        for path in result["figures"] + result["animations"]:
            run.log_artifact(path, "figures")
    return {**result, "animations_html": gallery_html(result["animations"], result["titles"])}
