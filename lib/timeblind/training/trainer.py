"""Training one encoder in this process (one process per device under DDP): the data module,
the model, the callbacks, the logger and the Trainer, built from a TrainConfig; fit; export the
best validated weights; return the metrics."""

from __future__ import annotations

import os
import time
from pathlib import Path

import lightning as L
import pandas as pd
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from timeblind.core.layout import LEARNING_CURVE
from timeblind.core.tasks import TaskSpec
from timeblind.core.zoom import ZOOMED, figure_box, figure_size, figure_sizes
from timeblind.data.dataset import StimulusConfig, load_manifest
from timeblind.data.datamodule import ClipDataModule
from timeblind.data.torch_data import ClipDataset
from timeblind.models.checkpoint import load_reader, save_model
from timeblind.models.registry import build_model
from timeblind.training.adapt import adapt_reader
from timeblind.training.callbacks import HeadlessProgress, ResumeState, keeps_tracking_uri, quiet_lightning, run_logger
from timeblind.training.config import TrainConfig
from timeblind.training.module import VideoTaskModule
from timeblind.training.reader import reader_modules


def figure_sizes_of(data: ClipDataset, per_category: int = 200) -> dict[str, float]:
    """How large the model saw each category's still figures: the median of the sizes
    (core/zoom.py) of the first `per_category` clips' true masks, their mean over frames. An external
    video's figure that comes out smaller gets a closer look (evaluation/spookybench.py)."""
    sizes: dict[str, list[float]] = {}
    for i, row in enumerate(data.rows):
        kept = sizes.setdefault(row["category"], [])
        if row["category"] in ZOOMED and len(kept) < per_category:
            figure = data.targets(i)["mask"].float().mean(dim=0).numpy() / 255
            size = figure_size(figure, row["category"], figure_box(figure))
            if size is not None:
                kept.append(size)
    return figure_sizes(sizes)


def datamodule(data_dir: Path, manifest: dict, cfg: TrainConfig, seed: int) -> L.LightningDataModule:
    """Stored clips, or (cfg.stream) fresh clips from the data set's own generator, noise made on
    the device; both draw the global batch by step and give each rank its share."""
    if cfg.stream:
        from timeblind.data.streaming import StreamingDataModule

        return StreamingDataModule(str(data_dir), StimulusConfig.from_dict(manifest["config"]), seed=manifest["seed"],
                                   batch_size=cfg.batch_size)
    return ClipDataModule(str(data_dir), batch_size=cfg.batch_size, seed=seed, words_share=cfg.words_share)


def train(cfg: TrainConfig, *, data_dir: str, out_dir: str, encoder: str, encoder_options: dict | None, seed: int,
          reader: str | None = None, accelerator: str = "auto", checkpoint: str | None = None, tracking=None,
          log=print) -> dict | None:
    """Train and write out_dir/model.pt (the best validated weights). Rank 0 returns the metrics,
    other ranks None. reader: the pretrained figure reader (training/reader.py) the heads start
    from. checkpoint: a last.ckpt to continue from. tracking: the step's MLflow run (anything with
    tracking_uri and run_id), or None."""
    out_dir = Path(out_dir)
    L.seed_everything(seed, workers=True, verbose=False)
    manifest = load_manifest(data_dir)
    options = dict(encoder_options or {})
    kind = options.pop("encoder", encoder)  # a named variant of a registered encoder, or the encoder itself
    net = build_model(kind, TaskSpec.from_manifest(manifest), **options)
    frozen = ()
    if reader:
        load_reader(reader, net.heads)
        if not cfg.train_reader:  # the answers do not train the reader: it judges the figures (adapted after)
            frozen = reader_modules(net.heads)
    if cfg.torch_compile:
        net.compile()  # in place: state_dict keys stay those of the plain model
    module = VideoTaskModule(net, cfg, seed=seed, frozen=frozen)
    best = ModelCheckpoint(dirpath=out_dir / "checkpoints", filename="best", monitor="val/acc", mode="max")
    # Lightning's save_last writes only when `best` does (a new best); resuming needs every validation.
    # Listed after `best`, so the file holds best's updated state.
    latest = ModelCheckpoint(dirpath=out_dir / "checkpoints", filename="last", monitor="step", mode="max")
    resume_state = ResumeState()
    # Lightning's launcher sets LOCAL_RANK in the ranks it starts; only rank 0 writes to MLflow.
    rank0 = int(os.environ.get("LOCAL_RANK", "0")) == 0
    on_gpu = accelerator != "cpu" and torch.cuda.is_available()
    quiet_lightning()
    trainer = L.Trainer(
        max_steps=cfg.max_steps, accelerator=accelerator, devices=cfg.devices,
        strategy="ddp" if cfg.devices > 1 else "auto",  # gloo on CPU, NCCL on GPUs
        precision="bf16-mixed" if on_gpu else "32-true",
        deterministic=not on_gpu,  # bit-identical on CPU; cuDNN kernels would slow down a GPU
        # at least once, at the end: the exported weights are the best validated ones
        val_check_interval=min(cfg.val_every, cfg.max_steps), check_val_every_n_epoch=None, num_sanity_val_steps=0,
        logger=run_logger(tracking if rank0 else None), log_every_n_steps=max(1, cfg.val_every // 4),
        callbacks=[best, latest, resume_state, HeadlessProgress(log)],
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=out_dir,
        use_distributed_sampler=False,  # training batches and validation shares are already per rank
    )
    data = datamodule(Path(data_dir), manifest, cfg, seed)
    start = time.perf_counter()
    with keeps_tracking_uri():
        trainer.fit(module, datamodule=data, ckpt_path=checkpoint)
    train_seconds = time.perf_counter() - start
    if not trainer.is_global_zero:
        return None
    for proc in getattr(trainer.strategy.launcher, "procs", []):  # the ranks it started: done before we report
        proc.wait(timeout=120)
    first_step = resume_state.first_step
    pd.DataFrame(module.learning_curve).to_csv(out_dir / LEARNING_CURVE, index=False)
    best_state = torch.load(best.best_model_path, map_location="cpu", weights_only=True)
    module.load_state_dict(best_state["state_dict"])
    adapt = cfg.reader_adapt_config
    adapted = {}
    if adapt.steps and reader:  # the best validation's accuracy per category is the one to beat
        validated = next((p for p in module.learning_curve if p["step"] == best_state["global_step"]), None)
        before = {k: v for k, v in validated.items() if k not in ("step", "clips_seen")} if validated else None
        adapted = adapt_reader(net.cpu(), data_dir, adapt, before, seed, log)
    save_model(out_dir / "model.pt", net, kind,
               extra={"name": encoder, "seed": seed, "data_sha256": manifest["content_sha256"],
                      "max_steps": cfg.max_steps, "stream": cfg.stream, "augment": cfg.augment,
                      "frame_shapes": manifest["frame_shapes"], "reader": bool(reader),
                      "figure_sizes": figure_sizes_of(ClipDataset(str(data_dir), "train"))})
    return {
        "best_val_acc": float(best.best_model_score),
        "train_seconds": train_seconds,
        "seconds_per_step": train_seconds / max(1, trainer.global_step - first_step),
        "resumed_from_step": first_step,
        "parameters": sum(p.numel() for p in net.parameters()),
        "device": str(trainer.strategy.root_device),
        "devices": cfg.devices,
        "torch_compile": cfg.torch_compile,
        **adapted,
    }
