"""Gallery: which pixels drive each encoder's answer, beside what a single frame shows.

For a few test clips per motion-coded category, every model gets a pixel attribution map:
SmoothGrad (the gradient averaged over noisy copies of the input) of the log-probability of the
clip's right answer, as absolute values summed over frames -> (H, W). A model answers through the
figure it recovers (models/heads.py): its reader sees that figure detached, so that the answers
never train the encoder, but the attribution follows the answer back through the figure (the
sigmoid of the figure logits, not detached) to the video. The right answer's log-probability is
the reader's log-softmax of the true class among the classes of the clip's category, or for
words the CTC log-likelihood of the true text of each line, read on the lines of the true figure
(training/losses.py reads them the same way). The share of a map's mass inside the true figure,
set against the figure's share of the frame's area, makes the picture a number: an encoder that
recovers the figure puts more mass on it than its area; one that cannot see it (frame-wise: every
frame alone is noise) spreads its mass like the noise, near the area share.

Models whose input cannot be differentiated (the motion-energy observer: a fixed front end run
under torch.no_grad, with thresholds and an argmax) are attributed with respect to what their
trainable part sees, the front end's maps (one per temporal window); the figure says so.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from timeblind.core.io import write_csv
from timeblind.core.layout import project_relative
from timeblind.core.lexicon import ENGLISH_WORDS, reading_lexicon
from timeblind.core.lines import line_targets
from timeblind.core.tasks import TaskSpec, category_ids, clip_targets, to_model_input, true_bands
from timeblind.data.dataset import StimulusDataset
from timeblind.io.spookybench import is_correct
from timeblind.models.checkpoint import load_model
from timeblind.plots import style
from timeblind.plots.figures import _save, plt

MOTION_CODED = ("words", "shapes", "images", "videos")  # patterns are brightness-coded: nothing to locate
CMAP = "viridis"  # perceptually uniform, colour-blind safe
VIDEO, MASK = "video", "front-end maps"  # what an attribution map is taken with respect to
COLUMNS = ["clip", "category", "label", "encoder", "seed", "answer", "correct", "attributed_to",
           "attribution_inside_figure", "figure_area", "model"]


def gallery_clips(samples: pd.DataFrame, categories, per_category: int, keep=None) -> list[int]:
    """The first `per_category` clips of each motion-coded category, in the data set's category
    order; with keep (clip index -> bool), only clips it keeps."""
    clips = []
    for c in categories:
        if c not in MOTION_CODED:
            continue
        chosen = [int(i) for i in samples.index[samples["category"] == c] if keep is None or keep(int(i))]
        clips += chosen[:per_category]
    return clips


def has_lines(data: StimulusDataset, i: int) -> bool:
    """Whether clip i's text lines can be told apart on its true figure (always true for a clip
    without text): a words clip whose lines run together has no right reading to attribute."""
    if data.samples.at[i, "category"] != "words":
        return True
    glyphs = data.samples.at[i, "glyphs"] if "glyphs" in data.samples else ""
    if not glyphs:
        return False
    figure = data.mask(i).astype(np.float32).mean(axis=0) / 255
    return bool(line_targets(figure, [tuple(g) for g in json.loads(glyphs)]))


def sample_targets(tasks: TaskSpec, data: StimulusDataset, i: int) -> dict[str, torch.Tensor]:
    """The targets of stored clip i (core/tasks.clip_targets on its sample row and figure mask),
    each with a batch axis of 1."""
    row = data.samples.loc[i]
    targets = clip_targets(tasks, row["category"], str(row["label"]), data.mask(i), row.get("glyphs", ""))
    return {k: torch.as_tensor(v)[None] for k, v in targets.items()}


def figure_footprint(layout_mask: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray:
    """Where the figure is at any frame: (H, W) bool from a mask (H, W) or (T, H, W)."""
    if layout_mask is None:
        return np.zeros(shape, bool)
    mask = np.asarray(layout_mask, bool)
    return mask.any(axis=0) if mask.ndim == 3 else mask


def reading_score(heads, figure: torch.Tensor, targets: dict[str, torch.Tensor]) -> torch.Tensor:
    """CTC log-likelihood of the true text per clip (B,): each true line (targets' bands) read off
    the figure maps (B, K, H, W), its log-likelihood summed over the clip's lines."""
    bands = true_bands(targets)
    if not all(bands):
        raise ValueError("a words clip without a text line on its true figure: no right reading to attribute")
    log_probs, owners = heads.read_lines(figure, bands)  # (L, COLUMNS, classes), lines clip by clip
    present = targets["line_length"] > 0  # (B, MAX_LINES): the lines read_lines returns, in its order
    steps = torch.full((len(log_probs),), log_probs.shape[1], dtype=torch.long)
    nll = F.ctc_loss(log_probs.transpose(0, 1), targets["line_text"][present], steps, targets["line_length"][present],
                     reduction="none", zero_infinity=True)  # (L,)
    owners = torch.tensor(owners, device=nll.device)
    return torch.zeros(len(bands), dtype=nll.dtype, device=nll.device).index_add(0, owners, -nll)


def answer_score(model, out: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> torch.Tensor:
    """Log-probability of the right answer per clip (B,), through the figure the model recovered,
    not detached (torch.sigmoid(out["figure_logits"])): for words the CTC log-likelihood of the
    true text on the true lines (reading_score), else the reader's log-softmax of the true class
    among the classes of the clip's category (classes not read off a figure, the pattern kinds:
    the model's own class logits)."""
    heads = model.heads
    figure = torch.sigmoid(out["figure_logits"])  # what the reader sees, with its gradient kept
    if bool((targets["line_length"].sum(dim=1) > 0).any()):
        if heads.lines is None:
            raise ValueError("a words clip, but the model has no line reader")
        return reading_score(heads, figure, targets)
    if heads.classify_figure is None or bool((targets["label"] < 0).any()):
        raise ValueError("a clip without a class the model answers (and no text line to read)")
    logits = heads.classify_figure(heads.reader(figure))  # (B, classes)
    if "logits" in out:
        logits = torch.where(heads.from_figure, logits, out["logits"])
    logits = heads.restricted_logits(logits, targets["category"])
    return logits.log_softmax(dim=-1).gather(1, targets["label"][:, None])[:, 0]


def _smoothgrad(score_of, x: torch.Tensor, samples: int, noise: float, generator: torch.Generator):
    """Gradient of score_of w.r.t. x (1, ...) averaged over `samples` copies with Gaussian noise of
    std `noise` x the input's range (SmoothGrad); None when x does not reach the score."""
    spread = noise * float(x.max() - x.min())
    noisy = x.expand(samples, *x.shape[1:]).clone()  # (n, ...)
    if spread > 0:
        noisy += spread * torch.randn(noisy.shape, generator=generator)
    noisy.requires_grad_(True)
    score = score_of(noisy).sum()
    if not score.requires_grad:  # nothing on the way to the score is differentiable
        return None
    (grad,) = torch.autograd.grad(score, noisy, allow_unused=True)
    return None if grad is None else grad.mean(dim=0)  # (...)


def attribute(model, video: torch.Tensor, targets: dict[str, torch.Tensor], *, samples: int = 16,
              noise: float = 0.1, seed: int = 0) -> tuple[np.ndarray, str]:
    """Attribution map (H, W) >= 0 of one model input `video` (1, T, H, W) and what it was taken
    with respect to: the video, or (a non-differentiable front end) the maps (1, K, H, W) the
    encoder's trainable part (`reader`) is given by its fixed `front_end`."""
    if video.dim() != 4 or video.shape[0] != 1:
        raise ValueError(f"video of shape {tuple(video.shape)}: expected one clip (1, T, H, W)")
    targets = {k: v.expand(samples, *v.shape[1:]) for k, v in targets.items()}  # one row per noisy copy
    with torch.enable_grad():
        grad = _smoothgrad(lambda x: answer_score(model, model(x), targets), video, samples, noise,
                           torch.Generator().manual_seed(seed))
        to = VIDEO
        if grad is None:
            encoder = model.encoder
            if not (hasattr(encoder, "front_end") and hasattr(encoder, "reader")):
                raise ValueError(f"{type(encoder).__name__}: its answer does not depend differentiably on the video "
                                 "and it has no front_end/reader split to attribute to instead")
            maps = encoder.front_end(video)  # (1, K, H, W): fixed, so no gradient to the video
            grad = _smoothgrad(lambda m: answer_score(model, model.heads(encoder.reader(m), m.shape[-2:]), targets),
                               maps, samples, noise, torch.Generator().manual_seed(seed))
            to = MASK
            if grad is None:
                raise ValueError(f"{type(encoder).__name__}: no gradient reaches its front end's maps either")
    return grad.abs().sum(dim=0).numpy(), to  # (H, W): summed over frames (or windows)


def inside_share(amap: np.ndarray, footprint: np.ndarray) -> float:
    """Share of the attribution mass (H, W) that lies inside the figure footprint (H, W); NaN for an all-zero map."""
    total = float(amap.sum())
    return float(amap[footprint].sum()) / total if total > 0 else float("nan")


def model_names(infos: list[dict]) -> list[str]:
    """Column names: the encoder's config name, with its seed when several models share it."""
    names = [info["extra"].get("name", info["encoder"]) for info in infos]
    return [f"{n} s{info['extra'].get('seed')}" if names.count(n) > 1 else n for n, info in zip(names, infos)]


def attribution_table(models: list, infos: list[dict], data, clips: list[int], *, samples: int = 16,
                      noise: float = 0.1, seed: int = 0, lexicon: int = ENGLISH_WORDS) -> tuple[pd.DataFrame, dict]:
    """One row per clip x model (COLUMNS) and the maps {(clip, column): (H, W)}. `data` is a
    StimulusDataset; models and infos come from load_model; words are read as evaluation reads them."""
    words = reading_lexicon(lexicon)
    expected = TaskSpec.from_manifest(data.manifest)
    samples_table = data.samples
    names = model_names(infos)
    rows, maps = [], {}
    for model, info, name in zip(models, infos, names):
        spec = model.heads.spec
        if (spec.classes, spec.categories) != (expected.classes, expected.categories):
            raise ValueError(f"{info.get('path') or name}: trained on other classes than the data set at "
                             f"{data.root} (its classes {list(spec.classes)[:4]}... of {list(spec.categories)}, "
                             f"the data set's {list(expected.classes)[:4]}... of {list(expected.categories)})")
    for i in clips:
        row = samples_table.loc[i]
        video = to_model_input(torch.from_numpy(data.clip(i)))[None]  # (1, T, H, W), as evaluation feeds clips
        footprint = figure_footprint(data.mask(i) >= 128, video.shape[-2:])
        answers = ast.literal_eval(row["answers"])
        for model, info, name in zip(models, infos, names):
            spec = model.heads.spec
            targets = sample_targets(spec, data, i)
            text = model.answer(video, category_ids(spec, [row["category"]]), words)[0]
            amap, to = attribute(model, video, targets, samples=samples, noise=noise, seed=seed + i)
            maps[i, name] = amap
            rows.append({"clip": i, "category": row["category"], "label": row["label"], "encoder": name,
                         "seed": info["extra"].get("seed"), "answer": text, "correct": is_correct(text, answers),
                         "attributed_to": to, "attribution_inside_figure": inside_share(amap, footprint),
                         "figure_area": float(footprint.mean()),
                         "model": project_relative(info["path"]) if info.get("path") else ""})
    return pd.DataFrame(rows, columns=COLUMNS), maps


def gallery_figure(data, table: pd.DataFrame, maps: dict, stem: str | Path, *, samples: int, noise: float) -> list[Path]:
    """Rows: clips; columns: one frame, the mean of frames, the true figure, then one attribution
    map per model (scaled to its own maximum, true figure outlined), titled right/wrong."""
    clips = list(dict.fromkeys(table["clip"]))
    names = list(dict.fromkeys(table["encoder"]))
    if not clips:
        raise ValueError("no motion-coded clip to show: the data set has none of " + ", ".join(MOTION_CODED))
    style.set_theme("white")
    n_cols = 3 + len(names)
    fig, axes = plt.subplots(len(clips), n_cols, figsize=(1.55 * n_cols, 1.75 * len(clips) + 0.6), squeeze=False)
    by_clip = table.set_index(["clip", "encoder"])
    for r, i in enumerate(clips):
        clip = data.clip(i)  # (T, H, W) uint8
        footprint = figure_footprint(data.mask(i) >= 128, clip.shape[1:])
        first = by_clip.loc[(i, names[0])]
        axes[r, 0].imshow(clip[0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        axes[r, 1].imshow(clip.mean(axis=0), cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        axes[r, 2].imshow(footprint, cmap="Greys", vmin=0, vmax=3, interpolation="nearest")  # light grey on white
        axes[r, 0].set_ylabel(f"{first['category']}:\n{first['label']}", fontsize="small")
        axes[r, 2].set_xlabel(f"area {first['figure_area']:.0%}", fontsize="x-small")
        for c, name in enumerate(names, start=3):
            amap, cell = maps[i, name], by_clip.loc[(i, name)]
            axes[r, c].imshow(amap / (amap.max() or 1.0), cmap=CMAP, vmin=0, vmax=1, interpolation="nearest")
            axes[r, c].set_title(f"{name}: {'right' if cell['correct'] else 'wrong'}", fontsize="x-small")
            axes[r, c].set_xlabel(f'"{str(cell["answer"])[:12]}", {cell["attribution_inside_figure"]:.0%} in fig.',
                                  fontsize="x-small")
        for c in range(2, n_cols):
            if footprint.any():
                axes[r, c].contour(footprint, levels=[0.5], colors="black" if c == 2 else "white", linewidths=0.8)
        for ax in axes[r]:
            ax.set_xticks([]), ax.set_yticks([])
    for c, header in enumerate(("one frame", "mean of frames", "true figure")):
        axes[0, c].set_title(header, fontsize="x-small")
    notes = [f"Maps: SmoothGrad (n={samples}, noise {noise:.0%} of the input range) of the log-probability of the "
             "right answer, read off the recovered figure (for words the CTC log-likelihood of the true text on its "
             "true lines), |gradient| summed over frames, each scaled to its maximum.",
             "White line: true figure. 'in fig.': share of the map's mass inside the figure, against its area share."]
    via_mask = sorted(set(table.loc[table["attributed_to"] == MASK, "encoder"]))
    if via_mask:
        notes.append(f"{', '.join(via_mask)}: fixed, non-differentiable front end (no gradient reaches the video), "
                     "so attributed to the motion-energy maps its trainable part sees, summed over windows.")
    fig.text(0.01, 0.0, "\n".join(notes), fontsize="x-small", va="top", ha="left", wrap=True)
    fig.tight_layout()
    return _save(fig, Path(stem))


def write_gallery(data_dir: str | Path, model_paths: list[str | Path], stem: str | Path, table: str | Path, *,
                  split: str = "test", per_category: int = 2, samples: int = 16, noise: float = 0.1,
                  lexicon: int = ENGLISH_WORDS,
                  seed: int = 0) -> tuple[pd.DataFrame, list[Path]]:
    """Attribute every model on the gallery clips of a stored split; writes the figure (stem .png,
    .svg) and the per clip x model table (CSV). Returns the table and the written paths."""
    if samples < 1 or noise < 0 or per_category < 1:
        raise ValueError(f"samples={samples}, noise={noise}, per_category={per_category}: expected samples >= 1, "
                         "noise >= 0 and per_category >= 1")
    data = StimulusDataset(data_dir, split)
    loaded = [load_model(p) for p in model_paths]
    models = [m for m, _ in loaded]
    infos = [{**info, "path": str(p)} for (_, info), p in zip(loaded, model_paths)]
    clips = gallery_clips(data.samples, data.manifest["categories"], per_category, keep=lambda i: has_lines(data, i))
    frame, maps = attribution_table(models, infos, data, clips, samples=samples, noise=noise, seed=seed,
                                    lexicon=lexicon)
    paths = gallery_figure(data, frame, maps, stem, samples=samples, noise=noise)
    table = Path(table)
    table.parent.mkdir(parents=True, exist_ok=True)
    return frame, paths + [write_csv(frame, table)]
