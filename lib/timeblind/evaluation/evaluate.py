"""Score trained models on a held-out split, per category, and build the accuracy tables.

Every clip gets a text answer (the word read, or the class name within the clip's category) and
is scored with SpookyBench's rule (an accepted answer is a case-insensitive substring of it), so
the numbers here and on an official-format folder (evaluation/spookybench.py) mean the same.
Pattern clips also get the seed's pattern tasks, scored per clip: every bit right, the length,
the next bit.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from timeblind.data.torch_data import ClipDataset, size_batches
from timeblind.core.layout import project_relative
from timeblind.core.lexicon import ENGLISH_WORDS, Lexicon, reading_lexicon
from timeblind.core.stats import t_interval, wilson_interval
from timeblind.core.tasks import IGNORE, category_ids
from timeblind.io.spookybench import is_correct
from timeblind.models.checkpoint import load_model

ANSWER = "answer"  # the task of Table 1: what is shown


PATTERN_TARGETS = ("bits", "length", "next_bit")


@torch.no_grad()
def predict(model, dataset: ClipDataset, batch_size: int = 128, lexicon: Lexicon | None = None
            ) -> tuple[list[str], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Text answers for every clip (batches of one frame size; words read against `lexicon`, if
    given, else letter by letter) and, when the model has pattern
    heads, the per-clip pattern predictions and targets (bits (N, T), length (N,), next bit (N,);
    IGNORE where a clip carries none)."""
    categories = category_ids(model.heads.spec, dataset.data.samples["category"])
    texts = [""] * len(dataset)
    predicted, targets = {}, {}
    for batch in size_batches(dataset, batch_size):
        items = [dataset[i] for i in batch]
        out = model(torch.stack([video for video, _ in items]))
        for i, text in zip(batch, model.heads.answers(out, categories[batch], lexicon)):
            texts[i] = text
        if "bits" in out:
            guesses = {"bits": (out["bits"] > 0).long(), "length": out["length"].argmax(-1),
                       "next_bit": out["next_bit"].argmax(-1)}
            for key in PATTERN_TARGETS:
                truth = torch.stack([t[key] for _, t in items])
                if key not in predicted:
                    predicted[key] = np.full((len(dataset), *truth.shape[1:]), IGNORE, np.int64)
                    targets[key] = predicted[key].copy()
                predicted[key][batch], targets[key][batch] = guesses[key].numpy(), truth.numpy()
    return texts, predicted, targets


def pattern_rows(patterns: dict[str, np.ndarray], targets: dict[str, np.ndarray]) -> list[dict]:
    """Per-clip pattern tasks on the pattern clips: all bits, the length and the next bit right."""
    if not patterns:
        return []
    is_pattern = targets["length"] != IGNORE
    if not is_pattern.any():
        return []
    bits = targets["bits"][is_pattern]
    carried = bits >= 0
    all_bits = ((patterns["bits"][is_pattern] == bits) | ~carried).all(axis=1)
    frames = bits.shape[1]
    lengths = targets["length"][is_pattern]
    return [
        {"task": "pattern bits", "correct": all_bits, "chance": float(np.mean(0.5 ** carried.sum(axis=1)))},
        {"task": "pattern length", "correct": patterns["length"][is_pattern] == lengths,
         "chance": 1 / (frames - lengths.min() + 1)},
        {"task": "pattern next bit", "correct": patterns["next_bit"][is_pattern] == targets["next_bit"][is_pattern],
         "chance": 0.5},
    ]


def category_chance(class_categories: list[str]) -> dict[str, float]:
    """Chance accuracy per category: one over its classes; 0 for words (an open vocabulary)."""
    counts = pd.Series(class_categories).value_counts()
    return {c: 0.0 if c == "words" else 1 / n for c, n in counts.items()}


def _row(correct, **fields) -> dict:
    n, hits = len(correct), int(np.sum(correct))
    low, high = wilson_interval(hits, n)
    return {**fields, "n": n, "correct": hits, "accuracy": hits / n, "ci_low": low, "ci_high": high}


def score_models(model_paths: list[str | Path], data_dir: str | Path, split: str = "test",
                 log=print, lexicon: int = ENGLISH_WORDS) -> pd.DataFrame:
    """One row per model x category x task: n, correct, accuracy, Wilson 95% interval, chance.
    Words are read against the `lexicon` most frequent English words (0: letter by letter)."""
    dataset = ClipDataset(str(data_dir), split)
    samples = dataset.data.samples
    answers = [ast.literal_eval(a) for a in samples["answers"]]
    manifest = dataset.manifest
    chance = category_chance(manifest["class_categories"])
    words = reading_lexicon(lexicon)
    rows = []
    for path in model_paths:
        model, info = load_model(path)
        trained = info["extra"].get("frame_shapes") or {}
        differ = {c: (trained[c], s) for c, s in manifest["frame_shapes"].items() if c in trained and trained[c] != s}
        if differ:
            raise ValueError(f"{path} was trained on clips of other shapes than the data set's (category: "
                             f"trained, data set): {differ}")
        texts, patterns, pattern_targets = predict(model, dataset, lexicon=words)
        correct = np.array([is_correct(t, a) for t, a in zip(texts, answers)])
        meta = {"encoder": info["extra"].get("name", info["encoder"]), "seed": info["extra"].get("seed"),
                "model": project_relative(path)}
        for category in manifest["categories"]:
            chosen = (samples["category"] == category).to_numpy()
            rows.append(_row(correct[chosen], **meta, category=category, task=ANSWER, chance=chance[category]))
        for task in pattern_rows(patterns, pattern_targets):
            rows.append(_row(task.pop("correct"), **meta, category="patterns", **task))
        mine = [r for r in rows if r["model"] == meta["model"] and r["task"] == ANSWER]
        log(f"{meta['encoder']} seed {meta['seed']}: " + ", ".join(
            f"{r['category']} {100 * r['accuracy']:.1f}% [{100 * r['ci_low']:.1f}, {100 * r['ci_high']:.1f}]"
            for r in mine) + f" ({split}, {len(dataset)} clips)")
    columns = ["encoder", "seed", "category", "task", "n", "correct", "accuracy", "ci_low", "ci_high", "chance",
               "model"]
    return pd.DataFrame(rows)[columns]


def summarise(per_model: pd.DataFrame) -> pd.DataFrame:
    """One row per encoder x category x task. Over >= 2 seeds: mean and t interval across seeds
    (training variance); with one seed: the Wilson interval of its test predictions."""
    rows = []
    for (encoder, category, task), group in per_model.groupby(["encoder", "category", "task"], sort=False):
        if len(group) >= 2:
            low, high = t_interval(group["accuracy"].tolist())
            method = f"t over {len(group)} seeds"
        else:
            low, high = group["ci_low"].iloc[0], group["ci_high"].iloc[0]
            method = "Wilson, 1 seed"
        rows.append({"encoder": encoder, "category": category, "task": task,
                     "seeds": " ".join(str(s) for s in group["seed"]), "n_per_seed": int(group["n"].iloc[0]),
                     "accuracy": group["accuracy"].mean(), "ci_low": low, "ci_high": high, "ci_method": method,
                     "chance": group["chance"].iloc[0]})
    return pd.DataFrame(rows)


def reproduction_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Table 1: encoders as rows, categories as columns, 'mean [low, high]' in percent."""
    answers = summary[summary["task"] == ANSWER]
    cells = answers.assign(cell=[f"{100 * a:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"
                                 for a, lo, hi in zip(answers["accuracy"], answers["ci_low"], answers["ci_high"])])
    table = cells.pivot(index="encoder", columns="category", values="cell")
    table = table.reindex(index=list(dict.fromkeys(answers["encoder"])), columns=list(dict.fromkeys(answers["category"])))
    chance = answers.drop_duplicates("category").set_index("category")["chance"]
    table.loc["chance"] = [f"{100 * chance[c]:.1f}" for c in table.columns]
    return table.reset_index()
