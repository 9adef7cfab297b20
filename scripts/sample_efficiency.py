"""Sample efficiency: the training clips each encoder needs to first reach 90% validation accuracy
on shapes (one category, one seed, a capped budget), beside the frame-wise encoder's in the same
run. `make bench` prints one JSON line per encoder; run alone:
python scripts/sample_efficiency.py [--steps N] [--encoders a,b].

The data are Table 1's (config/config.yaml's data section) restricted to shapes, each encoder with
its Table 1 options and training settings, its heads starting from a reader pretrained once on
the clean masks of the same data. An encoder that never reaches the target is reported at the
cap (value null, `reached` false): the number to drive down is clips, not steps or seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lib"))
TARGET = 0.9  # validation accuracy on shapes
BASELINE_ENCODER = "framewise"


def _print(name, value, unit, baseline, baseline_name, **extra):
    print(json.dumps({"name": name, "value": value, "unit": unit, "baseline": baseline,
                      "baseline_name": baseline_name, **extra}), flush=True)


def clips_to_target(curve_csv: Path, target: float = TARGET) -> int | None:
    """Clips seen at the first validation at or above target on shapes, None if none was."""
    import pandas as pd

    curve = pd.read_csv(curve_csv)
    hit = curve[curve["shapes"] >= target]
    return int(hit["clips_seen"].iloc[0]) if len(hit) else None


def best_accuracy(curve_csv: Path) -> float:
    """The best validation accuracy on shapes within the cap: how far short an encoder fell."""
    import pandas as pd

    return round(float(pd.read_csv(curve_csv)["shapes"].max()), 4)


def sample_efficiency(workdir: Path, *, steps: int = 400, val_every: int = 25, train_size: int = 2000,
                      encoders: list[str] | None = None, emit=_print) -> dict[str, int | None]:
    from timeblind.core.tasks import TaskSpec
    from timeblind.data.dataset import StimulusConfig, load_manifest, write_dataset
    from timeblind.models.checkpoint import save_reader
    from timeblind.plan.config import validate
    from timeblind.training.config import TrainConfig
    from timeblind.training.fit import fit
    from timeblind.training.reader import pretrain_reader

    config = validate(yaml.safe_load((REPO / "config/config.yaml").read_text()),
                      REPO / "workflow/schemas/config.schema.yaml")
    data = dict(config.data)
    stimulus = {k: v for k, v in data.items() if k != "seed" and not k.endswith("_size")}
    stimulus["categories"] = ["shapes"]
    stimulus.pop("sizes", None)
    data_dir = workdir / "shapes"
    write_dataset(data_dir, StimulusConfig.from_pipeline(stimulus), data["seed"],
                  {"train": train_size, "val": 200, "test": 8}, workers=1)
    training = config.training.to_dict()
    weights, _ = pretrain_reader(str(data_dir), config.training.reader_config, 0, log=lambda *a, **k: None)
    reader = workdir / "reader.pt"
    save_reader(reader, weights, TaskSpec.from_manifest(load_manifest(data_dir)))
    # the curve during training is what is measured: the reader's adaptation after it would only cost time
    cfg = TrainConfig.from_dict({**training, "max_steps": steps, "val_every": val_every, "reader_adapt": {"steps": 0}})
    clips, best = {}, {}
    for encoder in encoders or list(config.encoders):
        out = workdir / "models" / encoder / "seed0"
        fit(data_dir, out, cfg, encoder=encoder, seed=0, encoder_options=config.encoders[encoder],
            reader=str(reader), accelerator="cpu", log=lambda *a, **k: None)
        clips[encoder] = clips_to_target(out / "learning_curve.csv")
        best[encoder] = best_accuracy(out / "learning_curve.csv")
    baseline = clips.get(BASELINE_ENCODER)
    for encoder, value in clips.items():
        emit(f"clips_to_90pct_shapes.{encoder}", value, "clips", baseline, f"clips_to_90pct_shapes.{BASELINE_ENCODER}",
             reached=value is not None, best_val_acc=best[encoder], cap_clips=steps * cfg.batch_size, seed=0,
             encoder=encoder)
    return clips


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python scripts/sample_efficiency.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=400, help="the cap, in optimiser steps")
    parser.add_argument("--encoders", default="", help="comma-separated (default: every encoder of the config)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        sample_efficiency(Path(tmp), steps=args.steps, encoders=[e for e in args.encoders.split(",") if e] or None)


if __name__ == "__main__":
    main()
