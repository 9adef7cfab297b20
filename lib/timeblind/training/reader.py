"""Pretraining the figure reader on clean figure masks, once, for every encoder.

The reader (models/reader.py) learns what a circle, an anchor or a word looks like from the
true figure masks of the training split, degraded the way a recovered figure is (blocky,
blurred, ragged, faded, speckled) and at smaller sizes, so it can read an imperfect figure. Every
encoder is then read by the same reader: what separates them is only how well they recover the
figure from the noise.
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F

from timeblind.core.tasks import true_texts, window_means
from timeblind.data.samplers import StepBatches, words_step_shares
from timeblind.data.torch_data import ClipDataset, size_batches
from timeblind.models.heads import MIRRORED, TaskHeads
from timeblind.models.layers import box_mean
from timeblind.training.config import ReaderTrainConfig
from timeblind.training.losses import reading_loss

READER_PARTS = ("reader.", "classify_figure.", "lines.")  # the heads' parameters the pretraining trains


def reader_modules(heads: TaskHeads) -> tuple[str, ...]:
    """The names of the heads' modules that READER_PARTS covers and these heads have."""
    names = (part.rstrip(".") for part in READER_PARTS)
    return tuple(name for name in names if getattr(heads, name, None) is not None)


def _per_clip(B: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return torch.empty(B, 1, 1, 1).uniform_(low, high, generator=generator)


def _choose(options: list[torch.Tensor], generator: torch.Generator) -> torch.Tensor:
    """Per clip, one of the same-shaped (B, K, H, W) options, drawn uniformly."""
    pick = torch.randint(len(options), (options[0].shape[0],), generator=generator)
    return torch.stack(options)[pick, torch.arange(len(pick))]


def recovered_look(figure: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Figure maps (B, K, H, W) in [0, 1] drawn the way an encoder's figure head draws them: averaged
    over cells of 1, 2 or 4 px and interpolated back (a map at stride 4 spells out its cells), blurred
    by 0 to 3 passes of a 3 x 3 box, and, for 60% of them, outlines made ragged by a smooth random
    field and re-sharpened by a sigmoid of random slope around 0.5 (rounded corners, blobby limbs)."""
    B, _, H, W = figure.shape
    cells = [figure] + [F.interpolate(F.avg_pool2d(figure, s, ceil_mode=True), size=(H, W), mode="bilinear",
                                      align_corners=False) for s in (2, 4)]
    figure = _choose(cells, generator)
    blurs = [figure]
    for _ in range(3):
        blurs.append(box_mean(blurs[-1], 3))
    figure = _choose(blurs, generator)
    field = torch.randn(B, 1, max(2, H // 4), max(2, W // 4), generator=generator)
    field = F.interpolate(field, size=(H, W), mode="bilinear", align_corners=False)  # (B, 1, H, W), smooth
    ragged = torch.sigmoid(_per_clip(B, 4, 20, generator) * (figure + field * _per_clip(B, 0, 0.25, generator) - 0.5))
    return torch.where(_per_clip(B, 0, 1, generator) < 0.6, ragged, figure)


def degrade(figure: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Figure maps (B, K, H, W) in [0, 1] made to look recovered: half of them drawn as an encoder
    draws them (recovered_look), then half of all blurred (3 x 3 box), all faded by a factor in
    [0.5, 1] and speckled with Gaussian noise of std in [0, 0.3]."""
    B = figure.shape[0]
    drawn = (torch.rand(B, generator=generator) < 0.5).nonzero().squeeze(1)
    figure = figure.index_copy(0, drawn, recovered_look(figure[drawn], generator)) if len(drawn) else figure
    figure = torch.where(_per_clip(B, 0, 1, generator) < 0.5, box_mean(figure, 3), figure)
    noise = torch.randn(figure.shape, generator=generator) * _per_clip(B, 0.0, 0.3, generator)
    return (figure * _per_clip(B, 0.5, 1.0, generator) + noise).clamp(0.0, 1.0)


def mirror(figure: torch.Tensor, mirrored: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Figure maps (B, K, H, W) flipped left-right and upside down, each with probability 1/2, where
    `mirrored` (B,) allows it: more views of each class than the training clips hold."""
    B = figure.shape[0]
    for dim in (-1, -2):
        flip = (torch.rand(B, generator=generator) < 0.5) & mirrored
        figure = torch.where(flip[:, None, None, None], figure.flip(dim), figure)
    return figure


ZOOM = (0.5, 1.0)  # half the class figures are also shown this many times their size: the release's are smaller


def zoom_out(figure: torch.Tensor, zoomed: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Figure maps (B, K, H, W), each that `zoomed` (B,) allows shrunk with probability 1/2 by a
    factor drawn from ZOOM and moved by up to the margin that frees: a shape is a shape at any size."""
    B = figure.shape[0]
    zoomed = zoomed & (torch.rand(B, generator=generator) < 0.5)
    factor = torch.empty(B).uniform_(*ZOOM, generator=generator)
    factor = torch.where(zoomed, factor, torch.ones(B))
    shift = (torch.rand(B, 2, generator=generator) * 2 - 1) * (1 - factor)[:, None]  # in [-1, 1] grid units
    theta = torch.zeros(B, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1 / factor
    theta[:, :, 2] = -shift / factor[:, None]
    grid = F.affine_grid(theta, list(figure.shape), align_corners=False)
    shrunk = F.grid_sample(figure, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return torch.where(zoomed[:, None, None, None], shrunk, figure)


def figure_class_clips(heads: TaskHeads, label: torch.Tensor) -> torch.Tensor:
    """(B,) bool: the clip's class is read off a figure (not a pattern kind, not IGNORE)."""
    if not len(heads.spec.classes):
        return torch.zeros_like(label, dtype=torch.bool)
    return (label >= 0) & torch.from_numpy(heads.spec.figure_classes)[label.clamp(min=0)]


def reader_losses(heads: TaskHeads, figure: torch.Tensor, targets: dict[str, torch.Tensor]) -> dict:
    """Class and reading losses of the reader on figure maps (B, K, H, W)."""
    losses = {}
    closed = figure_class_clips(heads, targets["label"])
    if heads.classify_figure is not None and closed.any():
        logits = heads.classify_figure(heads.reader(figure[closed]))
        losses["class"] = F.cross_entropy(heads.restricted_logits(logits, targets["category"][closed]),
                                          targets["label"][closed])
    if heads.lines is not None:
        reading = reading_loss(heads, figure, targets)
        if reading is not None:
            losses["reading"] = reading
    return losses


@torch.no_grad()
def reader_accuracy(heads: TaskHeads, data: ClipDataset, batch_size: int) -> dict[str, float]:
    """Share of each category's clips of a split whose class or text the reader gets right on the
    clean masks (categories without a figure left out)."""
    heads.eval()
    hits = {c: [] for c in heads.spec.categories}
    for batch in size_batches(data, batch_size):
        targets = torch.utils.data.default_collate([data.targets(i) for i in batch])
        figure = window_means(targets["mask"].float() / 255, heads.spec.windows)
        names = [heads.spec.categories[k] for k in targets["category"].tolist()]
        closed = figure_class_clips(heads, targets["label"]).tolist()
        if heads.classify_figure is not None and any(closed):
            logits = heads.restricted_logits(heads.classify_figure(heads.reader(figure)), targets["category"])
            right = (logits.argmax(dim=-1) == targets["label"]).tolist()
            for name, ok, is_closed in zip(names, right, closed):
                if is_closed:
                    hits[name].append(ok)
        words = targets["line_length"].sum(dim=1) > 0
        if heads.lines is not None and words.any():
            read = heads.read(figure[words])
            truth = [t for t, w in zip(true_texts(targets), words.tolist()) if w]
            hits["words"] += [r == t for r, t in zip(read, truth)]
    heads.train()
    return {c: sum(h) / len(h) for c, h in hits.items() if h}


class _ReaderInputs:
    """A split's targets without its clips, each figure mask reduced once to the windows the reader
    is shown (their means over frames) and kept in memory (float16): the reader sees each clip many
    times, and loading a mask costs more than a step. A frame size holding only words gets one
    window, the mean: text does not move."""

    def __init__(self, data: ClipDataset, groups: list[list[int]], windows: int):
        self.data, self.kept = data, {}
        self.windows = {i: 1 if all(data.rows[j]["category"] == "words" for j in g) else windows
                        for g in groups for i in g}

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int):
        if i not in self.kept:
            targets = self.data.targets(i)
            targets["mask"] = window_means(targets["mask"][None].float() / 255, self.windows[i])[0].half()  # (K, H, W)
            self.kept[i] = targets
        return torch.zeros(0), self.kept[i]


def pretrain_reader(data_dir: str, cfg: ReaderTrainConfig, seed: int, log=print) -> tuple[dict, dict]:
    """Train the reader parts of the heads on the training split's clean masks; returns their
    weights (state-dict entries under READER_PARTS) and metrics, validated on the val split."""
    torch.manual_seed(seed)
    train, val = ClipDataset(data_dir, "train"), ClipDataset(data_dir, "val")
    heads = TaskHeads(1, train.tasks)  # the encoder side (dim) is not trained here
    parameters = [p for name, p in heads.named_parameters() if name.startswith(READER_PARTS)]
    optimizer = torch.optim.AdamW(parameters, lr=cfg.lr, weight_decay=cfg.weight_decay)
    warmup = max(1, cfg.max_steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (
        1 + math.cos(math.pi * min(s, cfg.max_steps) / max(1, cfg.max_steps))))
    step = 0
    # the reader learns from figures: a frame size holding only the seed's bit patterns has none
    groups = [g for g in train.size_groups() if any(train.rows[i]["category"] != "patterns" for i in g)]
    # reading letters takes more steps than telling classes apart: lines get words_share of the steps
    shares = words_step_shares([train.rows[g[0]]["category"] == "words" for g in groups], [len(g) for g in groups],
                               cfg.words_share)
    batches = StepBatches(_ReaderInputs(train, groups, heads.spec.windows), cfg.batch_size, seed, lambda: step,
                          groups=groups, shares=shares)
    generator = torch.Generator().manual_seed(seed)
    mirrored_ids = torch.tensor([k for k, c in enumerate(train.tasks.categories) if c in MIRRORED])
    start, losses, last = time.perf_counter(), {}, {}  # last: each loss at its latest step
    while step < cfg.max_steps:
        for _, targets in batches:
            figure = degrade(targets["mask"].float(), generator)  # (B, K, H, W)
            mirrored, zoomed = torch.isin(targets["category"], mirrored_ids), figure_class_clips(heads, targets["label"])
            if mirrored.any():  # words never are: a batch of them skips the work
                figure = mirror(figure, mirrored, generator)
            if zoomed.any():
                figure = zoom_out(figure, zoomed, generator)
            losses = reader_losses(heads, figure, targets)
            if not losses:  # no figure class and no readable line in this batch (text lines run together)
                continue
            last.update(losses)
            loss = sum(losses.values())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
            if step % cfg.val_every == 0 or step == cfg.max_steps:
                log(f"reader step {step}/{cfg.max_steps} · " + " · ".join(f"{k} {v.item():.3f}" for k, v in losses.items())
                    + f" · {time.perf_counter() - start:.0f} s", flush=True)
            if step == cfg.max_steps:
                break
    accuracy = reader_accuracy(heads, val, cfg.batch_size)
    metrics = {**{f"val_acc_clean_{c}": a for c, a in accuracy.items()}, "steps": step,
               "train_seconds": time.perf_counter() - start, **{f"loss_{k}": v.item() for k, v in last.items()}}
    weights = {k: v.detach().clone() for k, v in heads.state_dict().items() if k.startswith(READER_PARTS)}
    return weights, metrics
