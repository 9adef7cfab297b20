"""fit(): train one encoder on one data set with one seed, and export its weights."""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import MLFlowLogger

from timeblind.data.dataset import load_manifest
from timeblind.data.torch_data import ClipDataModule
from timeblind.models import TaskSpec, build_model, save_model
from timeblind.training.module import VideoTaskModule


# Lightning advertises a hosted logger on every fit; keep logs to what the run did.
logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(lambda record: "litlogger" not in record.getMessage())


class HeadlessProgress(Callback):
    """One plain line per validation instead of a progress bar, so headless logs stay readable."""

    def __init__(self, emit=print):
        self.emit, self.start = emit, time.perf_counter()

    def on_validation_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        m = trainer.callback_metrics
        self.emit(f"step {trainer.global_step}/{trainer.max_steps} · train loss {m['train/loss']:.3f} · "
                  f"val loss {m['val/loss']:.3f} · val acc {m['val/acc']:.3f} · "
                  f"{time.perf_counter() - self.start:.0f} s", flush=True)


def fit(data_dir: str | Path, out_dir: str | Path, *, encoder: str, seed: int, max_steps: int, batch_size: int,
        lr: float, weight_decay: float, val_every: int, encoder_options: dict | None = None,
        stream: bool = False, augment: dict | None = None, tracking=None, log=print) -> dict:
    """Train and write out_dir/model.pt (best validation accuracy). Returns summary metrics.

    An encoder that reads masks (the motion-energy observer) is trained on the clean figure masks
    and validated on the noise clips, through its fixed front end."""
    out_dir = Path(out_dir)
    L.seed_everything(seed, workers=True, verbose=False)
    manifest = load_manifest(data_dir)
    options = dict(encoder_options or {})
    kind = options.pop("encoder", encoder)  # a named variant of a registered encoder, or the encoder itself
    net = build_model(kind, TaskSpec.from_manifest(manifest), **options)
    on_masks = hasattr(net.encoder, "read_masks")
    module = VideoTaskModule(net, lr=lr, weight_decay=weight_decay, max_steps=max_steps, train_on_masks=on_masks,
                             augment=augment, seed=seed)
    checkpoints = out_dir / "checkpoints"
    shutil.rmtree(checkpoints, ignore_errors=True)  # a rerun with other parameters starts clean
    best = ModelCheckpoint(dirpath=checkpoints, filename="best", monitor="val/acc", mode="max", save_last=True)
    logger = (MLFlowLogger(tracking_uri=tracking.tracking_uri, run_id=tracking.run_id)  # URI passed explicitly
              if tracking is not None else False)
    on_gpu = torch.cuda.is_available()
    trainer = L.Trainer(
        max_steps=max_steps, accelerator="auto", devices=1,
        precision="bf16-mixed" if on_gpu else "32-true",
        deterministic=not on_gpu,  # bit-identical on CPU; cuDNN kernels would slow down a GPU
        # at least once, at the end: the exported weights are the best validated ones
        val_check_interval=min(val_every, max_steps), check_val_every_n_epoch=None, num_sanity_val_steps=0,
        logger=logger, log_every_n_steps=max(1, val_every // 4), callbacks=[best, HeadlessProgress(log)],
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=out_dir,
    )
    if stream:  # fresh clips every step from the data set's own generator, noise made on the device
        from timeblind.data.dataset import StimulusConfig
        from timeblind.data.streaming import StreamingDataModule

        cfg = StimulusConfig.from_dict(manifest["config"])
        datamodule = StreamingDataModule(str(data_dir), cfg, seed=manifest["seed"], batch_size=batch_size)
    else:
        datamodule = ClipDataModule(str(data_dir), batch_size=batch_size, train_masks=on_masks)
    start = time.perf_counter()
    trainer.fit(module, datamodule=datamodule)
    train_seconds = time.perf_counter() - start
    state = torch.load(best.best_model_path, map_location="cpu", weights_only=True)["state_dict"]
    module.load_state_dict(state)
    save_model(out_dir / "model.pt", net, kind,
               extra={"name": encoder, "seed": seed, "data_sha256": manifest["content_sha256"], "max_steps": max_steps,
                      "stream": stream, "augment": augment or {},
                      "frame_shape": manifest["frame_shape"]})
    return {
        "best_val_acc": float(best.best_model_score),
        "train_seconds": train_seconds,
        "seconds_per_step": train_seconds / max_steps,
        "parameters": sum(p.numel() for p in net.parameters()),
        "device": str(trainer.strategy.root_device),
    }
