"""The grounding_data step (09_grounding_data): the event videos of the grounding table."""

from __future__ import annotations

from timeblind import tracking
from timeblind.core.layout import RESULTS, resolve
from timeblind.data.grounding import write_grounding_dataset


def grounding_data(*, out_dir: str, data: dict, events: dict, workers: int = 1, results_dir: str = RESULTS) -> dict:
    """The event videos (train/val/test) of the grounding table: long noise videos in which one to
    three figures appear, each only through opposing motion during its own span."""
    p = dict(locals())
    with tracking.step_run("grounding_data", p, {"categories": ",".join(data["categories"])}, results_dir) as run:
        manifest = write_grounding_dataset(resolve(out_dir), data, events, workers=workers)
        run.log_metrics({f"videos_{k}": v for k, v in manifest["counts"].items()})
        run.log_artifact(resolve(out_dir) / "manifest.json")
    return manifest
