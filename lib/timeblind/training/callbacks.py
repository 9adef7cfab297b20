"""What a Trainer is given besides the model and the data: progress lines, the random streams a
checkpoint leaves out, and the logger of the step's MLflow run."""

from __future__ import annotations

import logging
import os
import time
import warnings
from contextlib import contextmanager

import torch
from lightning.pytorch.callbacks import Callback

# Lightning advertises a hosted logger on every fit; keep logs to what the run did.
logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(lambda record: "litlogger" not in record.getMessage())


def quiet_lightning() -> None:
    """Lightning's start-up notes (devices, 'fit stopped') and a deprecation warning from its own
    code, off: HeadlessProgress and the step's metrics say the same, and these lines would reach
    the notebook or only the job's log depending on whether the kernel imported Lightning itself
    or was forked from the warm server that had, so the same run would not give the same notebook."""
    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")


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


def run_logger(tracking):
    """Lightning's logger for the step's MLflow run (anything with tracking_uri and run_id, given
    to rank 0 only), or False for none. The URI is passed explicitly: Lightning's default is read
    from the environment when Lightning is imported."""
    if tracking is None:
        return False
    from lightning.pytorch.loggers import MLFlowLogger

    return MLFlowLogger(tracking_uri=tracking.tracking_uri, run_id=tracking.run_id)


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
