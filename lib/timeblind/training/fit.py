"""fit(): train one encoder on one data set with one seed, resumably, and export its weights.

A killed training continues where it stopped (resume.py): training batches are a pure function of
the global step (data/samplers.py) and the random streams Lightning does not checkpoint travel in
callbacks.ResumeState, so on CPU a resumed run ends with bit-identical weights to an
uninterrupted one (tests/test_resume.py). With more than one device the training runs in a
subprocess (ddp.py): a notebook kernel is interactive, and Lightning refuses "ddp" there.
"""

from __future__ import annotations

from pathlib import Path

from timeblind.training import resume
from timeblind.training.config import TrainConfig
from timeblind.training.ddp import launch
from timeblind.training.trainer import train


def fit(data_dir: str | Path, out_dir: str | Path, cfg: TrainConfig, *, encoder: str, seed: int,
        encoder_options: dict | None = None, reader: str | None = None, accelerator: str = "auto",
        resume_key: str | None = None, tracking=None, log=print) -> dict:
    """Train and write out_dir/model.pt (best validation accuracy); returns summary metrics.

    encoder: a key of the config's encoders section; encoder_options: its options (with
    `encoder` naming the registered encoder of a variant). reader: the pretrained figure reader
    the heads start from. resume_key: continue from
    out_dir/checkpoints/last.ckpt if out_dir/resume.json was written under this key (an
    interrupted run of the same training); otherwise, and without a key, start clean.
    tracking: the step's open MLflow run (anything with tracking_uri and run_id)."""
    out_dir = Path(out_dir).resolve()  # absolute: the checkpoint callback restores its state only in the same folder
    out_dir.mkdir(parents=True, exist_ok=True)
    run_id = tracking.run_id if tracking is not None else None
    checkpoint = resume.start(out_dir, resume_key, run_id, cfg.max_steps, log)
    job = dict(data_dir=str(Path(data_dir).resolve()), out_dir=str(out_dir), encoder=encoder,
               encoder_options=encoder_options, seed=seed, reader=str(reader) if reader else None,
               accelerator=accelerator,
               checkpoint=str(checkpoint) if checkpoint else None)
    if cfg.devices > 1:
        metrics = launch(cfg, job, tracking, log=log)
    else:
        metrics = train(cfg, **job, tracking=tracking, log=log)
    resume.finish(out_dir)
    return metrics
