"""Training without storage: layouts stream from CPU workers, noise is made on the training device.

A layout (class, mask, direction) and its targets (core/tasks.clip_targets: the figure mask,
text lines, pattern targets) cost a fraction of a millisecond on a CPU; the noise, which is the
bulk of the pixels, is rendered by torch_render on the device the batch lands on (the
DataModule's on_after_batch_transfer hook), seeded per batch from (seed, first sample index).
Validation still reads the stored split, in batches of one frame size, so model selection sees
fixed data.
"""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from timeblind.core.tasks import TaskSpec, clip_targets, to_model_input
from timeblind.data.dataset import StimulusConfig
from timeblind.data.samplers import StepStream
from timeblind.data.torch_data import ClipDataset, rank_batches
from timeblind.stimuli.torch_render import render_batch


class LayoutStream(IterableDataset):
    """Endless samples seed, split, index = start, start + 1, ...: the targets of a clip whose noise
    is still to be rendered from its figure mask (targets["mask"], uint8 0/255 (T, H, W)), or
    (patterns, whose signal is brightness, not motion) the finished grey clip."""

    def __init__(self, cfg: StimulusConfig, tasks: TaskSpec, seed: int, split: str = "train", start: int = 0):
        reason = cfg.streamable()
        if reason:
            raise ValueError(reason)
        self.cfg, self.tasks, self.seed, self.split, self.start = cfg, tasks, seed, split, start

    def __iter__(self):
        info = get_worker_info()
        step, offset = (1, 0) if info is None else (info.num_workers, info.id)
        T, H, W = self.cfg.motion.frames, self.cfg.height, self.cfg.width
        i = self.start + offset
        while True:
            pattern = {"length": -1, "next_bit": -1, "bits": None}
            if self.cfg.classes[self.cfg.class_of(i, self.split)].category == "patterns":
                # brightness-coded, no motion to render: cheap on a CPU, identical to the stored sample
                grey, layout, pattern = self.cfg.sample(self.seed, self.split, i)
            else:
                layout = self.cfg.layout(self.seed, self.split, i)
                grey = np.zeros((T, H, W), np.uint8)
            mask = self.cfg.figure_mask(layout)  # (T, H, W) uint8 0/255 as stored (streaming: render_scale 1)
            label = layout.text if layout.category == "words" else self.cfg.classes[layout.label].name
            targets = clip_targets(self.tasks, layout.category, label, np.ascontiguousarray(mask),
                                   layout.glyphs, pattern["bits"], pattern["length"], pattern["next_bit"])
            yield {"grey": torch.from_numpy(grey), "rendered": layout.mask is None, "angle": layout.angle,
                   "index": i, "targets": {k: torch.as_tensor(v) for k, v in targets.items()}}
            i += step


class StreamingDataModule(L.LightningDataModule):
    """Fresh training clips every step (rendered on the device), drawn by the trainer's global
    step from the data set's own generator (StepStream, each DDP rank its share, its own noise
    seeds from their indices); stored validation clips."""

    def __init__(self, data_dir: str, cfg: StimulusConfig, seed: int, batch_size: int = 64):
        super().__init__()
        self.data_dir, self.cfg, self.seed, self.batch_size = data_dir, cfg, seed, batch_size

    def setup(self, stage: str | None = None):
        self.val_set = ClipDataset(self.data_dir, "val")

    def train_dataloader(self):
        t = self.trainer
        samples = lambda start: iter(LayoutStream(self.cfg, self.val_set.tasks, self.seed, start=start))  # noqa: E731
        return StepStream(samples, self.batch_size, lambda: t.global_step, t.global_rank, t.world_size)

    def val_dataloader(self):
        return DataLoader(self.val_set, batch_sampler=rank_batches(self.val_set, self.batch_size, self.trainer))

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        if not isinstance(batch, dict):  # a validation batch: (clips, targets)
            return batch
        targets = batch["targets"]
        device = targets["mask"].device
        generator = torch.Generator(device=device)
        generator.manual_seed(int(np.random.SeedSequence([self.seed, int(batch["index"][0])]).generate_state(1)[0]))
        clips = render_batch(targets["mask"] >= 128, batch["angle"], self.cfg.motion, generator)
        rendered = batch["rendered"][:, None, None, None]
        return torch.where(rendered, to_model_input(batch["grey"]), clips), targets
