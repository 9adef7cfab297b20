"""Task targets, heads and losses: one model answers every category of its data set."""

import numpy as np
import pandas as pd
import pytest
import torch

from timeblind.core.tasks import (ALPHABET, IGNORE, TaskSpec, category_ids, decode_greedy, encode_word, letters_of,
                                  targets_for)
from timeblind.evaluation.evaluate import pattern_rows, reproduction_table, summarise
from timeblind.models.heads import TaskHeads
from timeblind.training.config import TrainConfig
from timeblind.training.losses import objective, task_losses

SPEC = TaskSpec(classes=("circle", "star", "CAT", "DOG", "spikes", "morse"),
                class_categories=("shapes", "shapes", "words", "words", "patterns", "patterns"), frames=6)


def test_targets_route_each_clip_to_its_tasks():
    labels = np.array([1, 3, 4, 0])
    bits = np.array([[-1] * 6, [-1] * 6, [1, 0, 1, 1, -1, -1], [-1] * 6])
    t = targets_for(SPEC, labels, bits, lengths=np.array([-1, -1, 4, -1]), next_bits=np.array([-1, -1, 0, -1]))
    assert t["label"].tolist() == [1, IGNORE, 2, 0]  # closed classes: circle, star, spikes, morse
    assert t["category"].tolist() == [0, 1, 2, 0]  # shapes, words, patterns
    assert t["text_length"].tolist() == [0, 3, 0, 0]
    assert letters_of(torch.from_numpy(t["text"]), torch.from_numpy(t["text_length"]))[1] == "DOG"
    assert t["length"].tolist() == [IGNORE, IGNORE, 4, IGNORE]
    assert t["next_bit"].tolist() == [IGNORE, IGNORE, 0, IGNORE]
    with pytest.raises(ValueError, match=r"characters \['2', '3'\]"):
        encode_word("R2D3")


def test_greedy_ctc_decoding_merges_repeats_but_not_across_blanks():
    path = [0, 2, 2, 0, 15, 0, 15, 15, 11, 0]  # _ B B _ O _ O O K _
    log_probs = torch.nn.functional.one_hot(torch.tensor([path]), len(ALPHABET) + 1).float().log()
    assert decode_greedy(log_probs) == ["BOOK"]


def test_answers_stay_inside_the_clips_category():
    torch.manual_seed(0)
    heads = TaskHeads(8, SPEC)
    out = heads(torch.randn(3, 8, 2, 5))
    out["logits"] = torch.tensor([[0.0, 1.0, 9.0, 0.0]] * 3)  # "spikes" (patterns) scores highest everywhere
    category = category_ids(SPEC, ["shapes", "patterns", "images"])
    texts = heads.answers(out, category)
    assert texts[0] == "star" and texts[1] == "spikes"
    assert texts[2] == ""  # no head for a category the model never saw
    assert category.tolist() == [0, 2, -1]


def _mixed_batch():
    """Four clips: a shape, a word, a pattern (a class and three sequence tasks), a shape."""
    bits = np.array([[-1] * 6, [-1] * 6, [1, 0, 1, 1, -1, -1], [-1] * 6])
    return {k: torch.from_numpy(v) for k, v in targets_for(
        SPEC, np.array([1, 3, 4, 0]), bits, np.array([-1, -1, 4, -1]), np.array([-1, -1, 0, -1])).items()}


def test_every_task_loss_trains_only_on_the_clips_that_carry_it():
    torch.manual_seed(0)
    heads = TaskHeads(8, SPEC)
    fmap = torch.randn(4, 8, 2, 5, requires_grad=True)
    targets = _mixed_batch()
    losses = task_losses(heads, heads(fmap), targets)
    assert set(losses) == {"class", "reading", "bits", "length", "next_bit"}
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert torch.isfinite(fmap.grad).all()
    # A batch of shapes alone trains the class head only: no NaN from tasks nobody carries.
    only_shapes = {k: v[[0, 3]] for k, v in targets.items()}
    assert set(task_losses(heads, heads(fmap[[0, 3]]), only_shapes)) == {"class"}


def test_objective_weighs_each_task_by_the_share_of_clips_that_carry_it():
    targets = _mixed_batch()
    losses = {"class": torch.tensor(2.0), "reading": torch.tensor(10.0), "bits": torch.tensor(0.6),
              "length": torch.tensor(1.2), "next_bit": torch.tensor(0.9)}
    weights = {"class": 1.0, "reading": 1.0, "patterns": 1.0}
    # 3 of 4 clips have a class, 1 a word, 1 a pattern sequence whose three losses split its share
    expected = 3 / 4 * 2.0 + 1 / 4 * 10.0 + 1 / 4 * (0.6 + 1.2 + 0.9) / 3
    assert objective(losses, targets, weights).item() == pytest.approx(expected)
    # group weights scale their tasks only; a group the config leaves out keeps its default (reading 0.1)
    only_patterns = TrainConfig(task_weights={"patterns": 0.0}).loss_weights
    assert objective(losses, targets, only_patterns).item() == pytest.approx(3 / 4 * 2.0 + 1 / 4 * 10.0 * 0.1)
    # a batch of one category is its task's plain mean loss, so single-category training is unchanged
    shapes = {k: v[[0, 3]] for k, v in targets.items()}
    assert objective({"class": torch.tensor(2.0)}, shapes, weights).item() == pytest.approx(2.0)


def test_reading_head_handles_a_single_column_map():
    heads = TaskHeads(8, SPEC)
    assert heads(torch.randn(2, 8, 1, 1))["reading"].shape == (2, SPEC.reading_steps, len(ALPHABET) + 1)


def test_pattern_rows_score_every_bit_the_length_and_the_next_bit():
    targets = {"bits": torch.tensor([[1, 0, 1, -1], [0, 0, -1, -1], [-1] * 4]),
               "length": torch.tensor([3, 2, IGNORE]), "next_bit": torch.tensor([1, 0, IGNORE])}
    predicted = {"bits": np.array([[1, 0, 1, 0], [0, 1, 1, 1], [0, 0, 0, 0]]), "length": np.array([3, 3, 0]),
                 "next_bit": np.array([0, 0, 1])}
    rows = {r["task"]: r for r in pattern_rows(predicted, targets)}
    assert rows["pattern bits"]["correct"].tolist() == [True, False]  # frames past the length do not count
    assert rows["pattern length"]["correct"].tolist() == [True, False]
    assert rows["pattern next bit"]["correct"].tolist() == [False, True]


def test_reproduction_table_has_encoders_as_rows_and_categories_as_columns():
    per_model = pd.DataFrame([
        {"encoder": e, "seed": s, "category": c, "task": "answer", "n": 100, "correct": k, "accuracy": k / 100,
         "ci_low": 0.0, "ci_high": 1.0, "chance": 0.5, "model": f"{e}{s}"}
        for e, base in (("framewise", 50), ("stave", 90)) for s in (0, 1) for c in ("shapes", "words")
        for k in [base + s]])
    summary = summarise(per_model)
    assert summary["ci_method"].unique().tolist() == ["t over 2 seeds"]
    table = reproduction_table(summary).set_index("encoder")
    assert list(table.columns) == ["shapes", "words"]
    assert table.loc["stave", "shapes"].startswith("90.5 [")
    assert table.loc["chance", "words"] == "50.0"
