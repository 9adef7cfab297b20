"""The train step (02_train; also the studies' and the grounding table's encoders)."""

from __future__ import annotations

from timeblind import tracking
from timeblind.core.io import file_sha256, write_json
from timeblind.core.layout import RESULTS, resolve
from timeblind.data.dataset import load_manifest
from timeblind.training.config import TrainConfig
from timeblind.training.fit import fit
from timeblind.training.resume import resumable


def train(*, data_dir: str, out_dir: str, encoder: str, encoder_options: dict, seed: int, training: dict,
          reader: str = "", results_dir: str = RESULTS) -> dict:
    """Train one encoder with one seed under `training` (the config's training section less its
    seeds, checked into a TrainConfig), its heads starting from the pretrained `reader` ("" : the
    reader learns with the encoder); writes model.pt and metrics.json into out_dir.

    A job killed halfway continues from its last checkpoint into the same MLflow run when it runs
    again with the same parameters, data and commit (training/resume.py); devices > 1 trains with
    DDP in a subprocess."""
    cfg = TrainConfig.from_dict(training)
    job = {"encoder": encoder, "encoder_options": encoder_options, "seed": seed}
    reader_path = resolve(reader) if reader else None
    out = resolve(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # what a checkpoint may be resumed under: not where files go, but what the data and code are
    key = tracking.config_hash({**job, **cfg.to_dict(), "data": load_manifest(resolve(data_dir))["content_sha256"],
                                "reader": file_sha256(reader_path) if reader_path else None,
                                "git_commit": tracking.git_commit()})
    previous = resumable(out, key)
    # every hyperparameter its own MLflow parameter, as the runs compare by them
    params = {"data_dir": data_dir, "out_dir": out_dir, **job, "reader": reader, **cfg.to_dict(),
              "results_dir": results_dir}
    with tracking.step_run("train", params, {"encoder": encoder, "seed": seed}, results_dir,
                           resume_run_id=previous["run_id"] if previous else None) as run:
        metrics = fit(resolve(data_dir), out, cfg, **job, reader=reader_path, resume_key=key, tracking=run)
        run.log_metrics({k: v for k, v in metrics.items() if isinstance(v, (int, float))})
        write_json(out / "metrics.json", {**metrics, "mlflow_run_id": run.run_id})
    return metrics
