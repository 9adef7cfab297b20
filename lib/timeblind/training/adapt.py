"""Adapting the pretrained reader to one trained encoder's own figure maps, after its training.

The reader is pretrained on clean masks degraded by hand (training/reader.py). A trained encoder
draws its figures its own way (rounded corners, soft edges, its own blur), and the pretrained
reader misreads a good part of figures the encoder recovered well. So, with the encoder frozen,
the reader parts are trained on what the encoder draws for a sample of training clips, each batch
beside the same clips' clean masks degraded as in pretraining (so the reader keeps reading figures
drawn any other way: the shifted export's). Every encoder gets the same rule; a frame-wise
encoder, whose maps hold no figure, has nothing to adapt to: an encoder whose figures the pretrained
reader reads no better than guessing is not adapted at all. The adapted reader is kept only if it
validates better than the pretrained one.
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F

from timeblind.core.tasks import TaskSpec, window_means
from timeblind.data.torch_data import ClipDataset, size_batches
from timeblind.models.heads import MIRRORED
from timeblind.models.registry import VideoModel
from timeblind.training.config import ReaderAdaptConfig
from timeblind.training.losses import reading_loss
from timeblind.training.module import answers_correct
from timeblind.training.reader import (READER_PARTS, degrade, figure_class_clips, mirror, reader_modules,
                                      zoom_out)

FIGURES = ("shapes", "images", "videos")  # categories read as a class off the figure
WORDS_PER_STEP = 4  # text lines per step from each source: a word clip's map is about 8 figure clips'


class EncoderDrawings:
    """Figure maps an encoder draws for `ids` clips of a split (float16, kept in memory), beside the
    clips' clean masks reduced to the same windows and their targets (mask dropped): (B, K, H, W)
    each, or (B, 1, H, W) for text, which is read off the windows' mean."""

    def __init__(self, net: VideoModel, data: ClipDataset, ids: list[int], batch_size: int, text: bool):
        drawn, clean, targets = [], [], []
        chosen = set(ids)
        windows = net.heads.spec.windows
        for batch in size_batches(data, batch_size):
            batch = [i for i in batch if i in chosen]
            if not batch:
                continue
            items = [data[i] for i in batch]
            with torch.no_grad():
                figure = net(torch.stack([video for video, _ in items]))["figure"].cpu()  # (b, K, H, W)
            masks = window_means(torch.stack([t["mask"] for _, t in items]).float() / 255, windows)  # (b, K, H, W)
            if text:
                figure, masks = figure.mean(dim=1, keepdim=True), masks.mean(dim=1, keepdim=True)
            drawn.append(figure.half())
            clean.append(masks.half())
            targets += [{k: v for k, v in t.items() if k != "mask"} for _, t in items]
        self.drawn, self.clean = torch.cat(drawn), torch.cat(clean)
        self.targets = torch.utils.data.default_collate(targets)

    def __len__(self) -> int:
        return len(self.drawn)

    def batch(self, size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, dict]:
        pick = torch.randint(len(self), (size,), generator=generator)
        return self.drawn[pick].float(), self.clean[pick].float(), {k: v[pick] for k, v in self.targets.items()}


def sample_ids(data: ClipDataset, categories: tuple[str, ...], count: int, generator: torch.Generator) -> list[int]:
    """Up to `count` clips of the given categories, drawn without replacement."""
    ids = [i for i, row in enumerate(data.rows) if row["category"] in categories]
    order = torch.randperm(len(ids), generator=generator)[:count].tolist()
    return sorted(ids[k] for k in order)


@torch.no_grad()
def validation_accuracy(net: VideoModel, data: ClipDataset, batch_size: int,
                        categories: tuple[str, ...] | None = None) -> dict[str, float]:
    """Share of each category's validation clips answered right (classes and words): every
    category, or only `categories`."""
    net.eval()
    hits: dict[str, list[torch.Tensor]] = {}
    for batch in size_batches(data, batch_size):
        batch = [i for i in batch if categories is None or data.rows[i]["category"] in categories]
        if not batch:
            continue
        items = [data[i] for i in batch]
        targets = torch.utils.data.default_collate([t for _, t in items])
        correct = answers_correct(net, net(torch.stack([video for video, _ in items])), targets).cpu()
        for name, ok in zip((data.rows[i]["category"] for i in batch), correct):
            hits.setdefault(name, []).append(ok)
    return {name: torch.stack(ok).float().mean().item() for name, ok in hits.items()}


def figures_above_chance(spec: TaskSpec, accuracy: dict[str, float], counts: dict[str, int]) -> float | None:
    """How far the right answers on the figure categories lie above guessing among each category's
    classes, in standard deviations of the guesses' count (binomial z); None without figure clips."""
    right = expected = variance = 0.0
    for category in FIGURES:
        n, classes = counts.get(category, 0), spec.class_categories.count(category)
        if category not in accuracy or not n or not classes:
            continue
        chance = 1 / classes
        right += accuracy[category] * n
        expected += chance * n
        variance += chance * (1 - chance) * n
    return (right - expected) / math.sqrt(variance) if variance else None


def adapt_reader(net: VideoModel, data_dir: str, cfg: ReaderAdaptConfig, before: dict[str, float] | None,
                 seed: int, log=print) -> dict:
    """Train the reader parts of net's heads on the encoder's own drawings of training clips (the
    encoder frozen), keep them if the mean validation accuracy over categories rises above
    `before` (the same per category with the pretrained reader; None: measured here); an encoder
    whose figures are read less than cfg.above_chance_z above guessing is left as it is. Returns
    metrics (before, after, kept, steps run, the z of `before`)."""
    start = time.perf_counter()
    heads = net.heads
    train, val = ClipDataset(data_dir, "train"), ClipDataset(data_dir, "val")
    generator = torch.Generator().manual_seed(seed)
    net.eval()

    def drawings(categories: tuple[str, ...], count: int, text: bool) -> EncoderDrawings | None:
        ids = sample_ids(train, categories, count, generator) if count else []
        return EncoderDrawings(net, train, ids, cfg.batch_size, text) if ids else None

    if heads.classify_figure is None and heads.lines is None:
        return {"adapted": False, "adapt_seconds": time.perf_counter() - start, "adapt_steps": 0}
    before = before or validation_accuracy(net, val, cfg.batch_size)
    counts = {c: sum(row["category"] == c for row in val.rows) for c in FIGURES}
    z = figures_above_chance(heads.spec, before, counts)
    if cfg.above_chance_z is not None and z is not None and z < cfg.above_chance_z:
        log(f"reader not adapted: the encoder's figures are read {z:.1f} standard deviations above guessing, "
            f"under {cfg.above_chance_z} (its maps hold no figure to adapt to)", flush=True)
        return {"adapted": False, "adapt_seconds": time.perf_counter() - start, "adapt_steps": 0,
                "above_chance_z": z, **{f"val_acc_before_adapt_{c}": a for c, a in before.items()}}
    figures = drawings(FIGURES, cfg.clips, text=False) if heads.classify_figure is not None else None
    words = drawings(("words",), cfg.word_clips, text=True) if heads.lines is not None else None
    if figures is None and words is None:
        return {"adapted": False, "adapt_seconds": time.perf_counter() - start, "adapt_steps": 0}
    kept = {k: v.detach().clone() for k, v in heads.state_dict().items() if k.startswith(READER_PARTS)}
    parameters = [p for name, p in heads.named_parameters() if name.startswith(READER_PARTS)]
    optimizer = torch.optim.AdamW(parameters, lr=cfg.lr, weight_decay=0.01)
    # decayed to 0: at a constant rate the reader ended wherever its last batches left it, with
    # pairs of classes tipped one way
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, cfg.steps)
    mirrored_ids = torch.tensor([k for k, c in enumerate(heads.spec.categories) if c in MIRRORED])
    # only the categories whose reading is trained can change (a word clip costs about 8 others)
    trained = (FIGURES if figures is not None else ()) + (("words",) if words is not None else ())
    mean = lambda acc: sum(acc.values()) / len(acc)  # noqa: E731  (each category counts the same)

    def train_reader() -> None:  # validation puts the whole model in eval mode
        for name in reader_modules(heads):
            getattr(heads, name).requires_grad_(True).train()

    train_reader()
    for _ in range(cfg.steps):
        loss = 0.0
        if figures is not None:
            drawn, clean, targets = figures.batch(cfg.batch_size // 2, generator)
            figure = torch.cat([drawn, degrade(clean, generator)])  # (B, K, H, W): the encoder's, then clean ones
            label, category = targets["label"].repeat(2), targets["category"].repeat(2)
            figure = mirror(figure, torch.isin(category, mirrored_ids), generator)
            figure = zoom_out(figure, figure_class_clips(heads, label), generator)
            logits = heads.restricted_logits(heads.classify_figure(heads.reader(figure)), category)
            loss = loss + F.cross_entropy(logits, label)
        if words is not None:
            drawn, clean, targets = words.batch(WORDS_PER_STEP, generator)
            both = {k: torch.cat([v, v]) for k, v in targets.items()}
            reading = reading_loss(heads, torch.cat([drawn, degrade(clean, generator)]), both)
            loss = loss + (reading if reading is not None else 0.0)  # None: these clips' lines run together
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    after = {**before, **validation_accuracy(net, val, cfg.batch_size, trained)}
    net.eval()
    adapted = mean(after) > mean(before)
    if not adapted:
        heads.load_state_dict({**heads.state_dict(), **kept})
    seconds = time.perf_counter() - start
    log(f"reader adapted on {len(figures) if figures else 0} figure and {len(words) if words else 0} word clips "
        f"in {seconds:.0f} s: validation {mean(before):.3f} -> {mean(after):.3f}, "
        + ("kept" if adapted else "dropped (the pretrained reader is kept)"), flush=True)
    return {"adapted": adapted, "adapt_seconds": seconds, "adapt_steps": cfg.steps, "above_chance_z": z,
            **{f"val_acc_before_adapt_{c}": a for c, a in before.items()},
            **{f"val_acc_adapted_{c}": a for c, a in after.items()}}
