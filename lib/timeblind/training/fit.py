"""fit(): train one encoder on one data set with one seed, and export its weights.

Resuming: every validation (every val_every steps) writes checkpoints/last.ckpt. With a
`resume_key` (a hash of what defines the training, computed by the train step), fit() records
that key and the MLflow run in out_dir/resume.json; a later fit() with the same key continues
from last.ckpt, any other key starts clean, and a finished fit() removes the record. Neither file
is a declared pipeline output, so Snakemake leaves them in place when it reruns a killed job.
Training batches are a pure function of the global step (StepBatches, StepStream) and the random
streams Lightning does not checkpoint travel in ResumeState, so on CPU a resumed run ends with
bit-identical weights to an uninterrupted one (tests/test_resume.py).

More than one device: fit() runs the training in a subprocess (timeblind.training.ddp) with
Lightning's DDP strategy, because a notebook kernel is interactive and Lightning refuses "ddp"
there."""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import zipfile
from contextlib import contextmanager
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import MLFlowLogger
from torch.utils.data import default_collate

from timeblind.data.dataset import load_manifest
from timeblind.data.torch_data import ClipDataModule
from timeblind.models import TaskSpec, build_model, save_model
from timeblind.training.module import VideoTaskModule


# Lightning advertises a hosted logger on every fit; keep logs to what the run did.
logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(lambda record: "litlogger" not in record.getMessage())

RESUME_RECORD = "resume.json"


@contextmanager
def keeps_tracking_uri():
    """Lightning's MLFlowLogger calls mlflow.set_tracking_uri, which also sets MLFLOW_TRACKING_URI
    for the whole process: every later step of the same process (a script or test calling several
    steps) would log to this run's store. Put the variable and mlflow's default back after training."""
    before = os.environ.get("MLFLOW_TRACKING_URI")
    try:
        yield
    finally:
        if os.environ.get("MLFLOW_TRACKING_URI") != before:
            import mlflow

            mlflow.set_tracking_uri(before)  # None clears both


class HeadlessProgress(Callback):
    """One plain line per validation instead of a progress bar, so headless logs stay readable."""

    def __init__(self, emit=print):
        self.emit, self.start = emit, time.perf_counter()

    def on_validation_end(self, trainer, pl_module):
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        m = trainer.callback_metrics
        shown = " · ".join(f"{name.replace('/', ' ')} {m[name]:.3f}" for name in ("train/loss", "val/loss", "val/acc")
                           if name in m)
        self.emit(f"step {trainer.global_step}/{trainer.max_steps} · {shown} · "
                  f"{time.perf_counter() - self.start:.0f} s", flush=True)


class ResumeState(Callback):
    """The random streams a Lightning checkpoint leaves out: torch's global generator and the
    module's augmentation generator (re-seeded in on_train_start). They are put back just before
    the first resumed step, after everything that runs at start-up has drawn from them.
    first_step: the step training started from (0, or the resumed checkpoint's)."""

    def __init__(self):
        self.pending, self.first_step = None, 0

    def on_save_checkpoint(self, trainer, pl_module, checkpoint):
        augment = pl_module.generator.get_state() if pl_module.generator is not None else None
        checkpoint["timeblind_rng"] = {"torch": torch.get_rng_state(), "augment": augment}

    def on_load_checkpoint(self, trainer, pl_module, checkpoint):
        self.pending, self.first_step = checkpoint.get("timeblind_rng"), checkpoint["global_step"]

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self.pending is None:
            return
        torch.set_rng_state(self.pending["torch"].cpu())
        if self.pending["augment"] is not None and pl_module.generator is not None:
            pl_module.generator.set_state(self.pending["augment"].cpu())
        self.pending = None


def _epoch_seed(seed: int, epoch: int) -> int:
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


class StepBatches:
    """Training batches of a stored split as a pure function of the global step: batch g is slice
    g mod n of the permutation of epoch g // n (seeded by the training seed and the epoch), and a
    DDP rank takes every world-th clip of it. So a resumed run sees exactly the batches the killed
    one would have, without loader state in the checkpoint, and N devices train on the same global
    batches as one. Incomplete last batches are dropped, so every rank gets the same share."""

    def __init__(self, dataset, batch_size: int, seed: int, global_step, rank: int = 0, world: int = 1):
        self.dataset, self.batch_size, self.seed = dataset, batch_size, seed
        self.global_step, self.rank, self.world = global_step, rank, world
        self.per_epoch = len(dataset) // batch_size
        if self.per_epoch == 0:
            raise ValueError(f"batch_size={batch_size} is larger than the {len(dataset)} training clips")

    def __len__(self) -> int:
        return self.per_epoch

    def __iter__(self):
        # Lightning iterates once per epoch, and each batch is one optimiser step
        epoch, first = divmod(self.global_step(), self.per_epoch)
        generator = torch.Generator().manual_seed(_epoch_seed(self.seed, epoch))
        order = torch.randperm(len(self.dataset), generator=generator)
        for b in range(first, self.per_epoch):
            share = order[b * self.batch_size:(b + 1) * self.batch_size][self.rank::self.world]
            yield default_collate([self.dataset[int(i)] for i in share])

    # Stateful for Lightning (no "not resumable" warning); the position is the trainer's global step.
    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class StepStream:
    """The streaming counterpart: global batch g is samples g*B ... g*B+B-1 of the data set's
    generator, a DDP rank takes every world-th of them (its own noise seeds, from their indices)."""

    def __init__(self, cfg, tasks, seed: int, batch_size: int, global_step, rank: int = 0, world: int = 1):
        self.cfg, self.tasks, self.seed, self.batch_size = cfg, tasks, seed, batch_size
        self.global_step, self.rank, self.world = global_step, rank, world

    def __iter__(self):
        from timeblind.data.streaming import LayoutStream

        samples = iter(LayoutStream(self.cfg, self.tasks, self.seed, start=self.global_step() * self.batch_size))
        while True:
            batch = [next(samples) for _ in range(self.batch_size)]
            yield default_collate(batch[self.rank::self.world])

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def _datamodule(data_dir: Path, manifest: dict, *, stream: bool, batch_size: int, seed: int, on_masks: bool):
    """The project's DataModules with their training batches drawn by global step (StepBatches,
    StepStream); validation is unchanged (Lightning shards it over DDP ranks)."""
    if stream:  # fresh clips every step from the data set's own generator, noise made on the device
        from timeblind.data.dataset import StimulusConfig
        from timeblind.data.streaming import StreamingDataModule

        class Streaming(StreamingDataModule):
            def train_dataloader(self):
                t = self.trainer
                return StepStream(self.cfg, self.val_set.tasks, self.seed, self.batch_size, lambda: t.global_step,
                                  t.global_rank, t.world_size)

        cfg = StimulusConfig.from_dict(manifest["config"])
        return Streaming(str(data_dir), cfg, seed=manifest["seed"], batch_size=batch_size)

    class Clips(ClipDataModule):
        def train_dataloader(self):
            t = self.trainer
            return StepBatches(self.train_set, self.batch_size, seed, lambda: t.global_step, t.global_rank,
                               t.world_size)

    return Clips(str(data_dir), batch_size=batch_size, train_masks=on_masks)


# --- the resume record ------------------------------------------------------------------------

def last_checkpoint(out_dir: str | Path) -> Path:
    return Path(out_dir) / "checkpoints" / "last.ckpt"


def resumable(out_dir: str | Path, key: str) -> dict | None:
    """The resume record of out_dir if it was written under `key` and its last.ckpt is whole
    (torch checkpoints are zip files: a truncated one has no end record), else None."""
    record_path, last = Path(out_dir) / RESUME_RECORD, last_checkpoint(out_dir)
    try:
        record = json.loads(record_path.read_text())
    except (OSError, ValueError):
        return None
    if record.get("key") != key or not last.exists() or not zipfile.is_zipfile(last):
        return None
    return record


def _write_record(out_dir: Path, record: dict) -> None:
    tmp = out_dir / (RESUME_RECORD + ".tmp")
    tmp.write_text(json.dumps(record, indent=2))
    os.replace(tmp, out_dir / RESUME_RECORD)


# --- training ---------------------------------------------------------------------------------

def fit(data_dir: str | Path, out_dir: str | Path, *, encoder: str, seed: int, max_steps: int, batch_size: int,
        lr: float, weight_decay: float, val_every: int, encoder_options: dict | None = None,
        stream: bool = False, augment: dict | None = None, devices: int = 1, accelerator: str = "auto",
        torch_compile: bool = False, task_weights: dict | None = None, resume_key: str | None = None, tracking=None,
        log=print) -> dict:
    """Train and write out_dir/model.pt (best validation accuracy). Returns summary metrics.

    An encoder that reads masks (the motion-energy observer) is trained on the clean figure masks
    and validated on the noise clips, through its fixed front end.
    batch_size is the global batch: with devices > 1 each device takes batch_size / devices clips.
    task_weights: the weight of each task group in the loss (heads.objective; unset groups keep
    their defaults).
    torch_compile: compile the model's forward with torch.compile (Module.compile, so the exported
    weights keep their names); it pays where kernel launches dominate, see `make bench`.
    resume_key: continue from out_dir/checkpoints/last.ckpt if out_dir/resume.json was written
    under this key (an interrupted run of the same training); otherwise, and without a key, start
    clean. tracking: the step's open MLflow run (anything with tracking_uri and run_id)."""
    if not isinstance(devices, int) or devices < 1:
        raise ValueError(f"devices={devices!r}: expected a whole number of devices, at least 1")
    if batch_size % devices:
        raise ValueError(f"batch_size={batch_size} does not split over devices={devices}: "
                         f"use a multiple of {devices}")
    out_dir = Path(out_dir).resolve()  # absolute: the checkpoint callback restores its state only in the same folder
    out_dir.mkdir(parents=True, exist_ok=True)
    record = resumable(out_dir, resume_key) if resume_key else None
    ckpt_path = None
    if record is not None:
        ckpt_path = last_checkpoint(out_dir)
        step = torch.load(ckpt_path, map_location="cpu", weights_only=True, mmap=True)["global_step"]
        log(f"resuming from {ckpt_path} at step {step}/{max_steps} (MLflow run {record.get('run_id')})", flush=True)
    else:  # a rerun with other parameters, or a first run, starts clean
        (out_dir / RESUME_RECORD).unlink(missing_ok=True)
        shutil.rmtree(out_dir / "checkpoints", ignore_errors=True)
        if resume_key:
            log(f"starting clean in {out_dir}", flush=True)
    if resume_key:
        _write_record(out_dir, {"key": resume_key, "run_id": tracking.run_id if tracking is not None else None})
    args = dict(data_dir=str(Path(data_dir).resolve()), out_dir=str(out_dir), encoder=encoder, seed=seed,
                max_steps=max_steps, batch_size=batch_size, lr=lr, weight_decay=weight_decay, val_every=val_every,
                encoder_options=encoder_options, stream=stream, augment=augment, devices=devices,
                accelerator=accelerator, torch_compile=torch_compile, task_weights=task_weights,
                ckpt_path=str(ckpt_path) if ckpt_path else None)
    if devices > 1:
        from timeblind.training.ddp import launch

        metrics = launch(args, tracking, log=log)
    else:
        metrics = train_here(**args, tracking=tracking, log=log)
    (out_dir / RESUME_RECORD).unlink(missing_ok=True)  # finished: a later run is a new training
    return metrics


def train_here(*, data_dir: str, out_dir: str, encoder: str, seed: int, max_steps: int, batch_size: int, lr: float,
               weight_decay: float, val_every: int, encoder_options: dict | None, stream: bool, augment: dict | None,
               devices: int, accelerator: str, ckpt_path: str | None, torch_compile: bool = False,
               task_weights: dict | None = None, tracking=None, log=print) -> dict | None:
    """fit()'s training in this process (one process per device under DDP). Rank 0 exports the
    model and returns the metrics, other ranks return None."""
    out_dir = Path(out_dir)
    L.seed_everything(seed, workers=True, verbose=False)
    manifest = load_manifest(data_dir)
    options = dict(encoder_options or {})
    kind = options.pop("encoder", encoder)  # a named variant of a registered encoder, or the encoder itself
    net = build_model(kind, TaskSpec.from_manifest(manifest), **options)
    on_masks = hasattr(net.encoder, "read_masks")
    if torch_compile:
        net.compile()  # in place: state_dict keys stay those of the plain model
    module = VideoTaskModule(net, lr=lr, weight_decay=weight_decay, max_steps=max_steps, train_on_masks=on_masks,
                             augment=augment, seed=seed, task_weights=task_weights)
    best = ModelCheckpoint(dirpath=out_dir / "checkpoints", filename="best", monitor="val/acc", mode="max")
    # Lightning's save_last writes only when `best` does (a new best); resuming needs every validation.
    # Listed after `best`, so the file holds best's updated state.
    latest = ModelCheckpoint(dirpath=out_dir / "checkpoints", filename="last", monitor="step", mode="max")
    # Lightning's launcher sets LOCAL_RANK in the ranks it starts; only rank 0 writes to MLflow.
    rank0 = int(os.environ.get("LOCAL_RANK", "0")) == 0
    logger = (MLFlowLogger(tracking_uri=tracking.tracking_uri, run_id=tracking.run_id)  # URI passed explicitly
              if tracking is not None and rank0 else False)
    on_gpu = accelerator != "cpu" and torch.cuda.is_available()
    trainer = L.Trainer(
        max_steps=max_steps, accelerator=accelerator, devices=devices,
        strategy="ddp" if devices > 1 else "auto",  # gloo on CPU, NCCL on GPUs
        precision="bf16-mixed" if on_gpu else "32-true",
        deterministic=not on_gpu,  # bit-identical on CPU; cuDNN kernels would slow down a GPU
        # at least once, at the end: the exported weights are the best validated ones
        val_check_interval=min(val_every, max_steps), check_val_every_n_epoch=None, num_sanity_val_steps=0,
        logger=logger, log_every_n_steps=max(1, val_every // 4),
        callbacks=[best, latest, resume_state := ResumeState(), HeadlessProgress(log)],
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=out_dir,
    )
    # the global batch: the training batches give each rank its share, validation batches are per rank
    datamodule = _datamodule(Path(data_dir), manifest, stream=stream, batch_size=batch_size, seed=seed,
                             on_masks=on_masks)
    start = time.perf_counter()
    with keeps_tracking_uri():
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    train_seconds = time.perf_counter() - start
    if not trainer.is_global_zero:
        return None
    for proc in getattr(trainer.strategy.launcher, "procs", []):  # the ranks it started: done before we report
        proc.wait(timeout=120)
    first_step = resume_state.first_step
    state = torch.load(best.best_model_path, map_location="cpu", weights_only=True)["state_dict"]
    module.load_state_dict(state)
    save_model(out_dir / "model.pt", net, kind,
               extra={"name": encoder, "seed": seed, "data_sha256": manifest["content_sha256"], "max_steps": max_steps,
                      "stream": stream, "augment": augment or {},
                      "frame_shape": manifest["frame_shape"]})
    return {
        "best_val_acc": float(best.best_model_score),
        "train_seconds": train_seconds,
        "seconds_per_step": train_seconds / max(1, trainer.global_step - first_step),
        "resumed_from_step": first_step,
        "parameters": sum(p.numel() for p in net.parameters()),
        "device": str(trainer.strategy.root_device),
        "devices": devices,
        "torch_compile": torch_compile,
    }
