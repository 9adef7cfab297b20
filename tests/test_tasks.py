"""Task targets, heads and losses: one model answers every category of its data set, reading
every answer about a figure off the figure it recovered."""

import json
import types

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import default_collate

from timeblind.core.lines import ALPHABET, COLUMNS, MAX_LINES, decode_columns
from timeblind.core.tasks import IGNORE, MAX_TEXT, TaskSpec, category_ids, clip_targets, window_means
from timeblind.evaluation.evaluate import pattern_rows, reproduction_table, summarise
from timeblind.models.heads import CANNOT_ANSWER, FigureHead, TaskHeads
from timeblind.training.config import TrainConfig
from timeblind.training.losses import figure_loss, objective, reading_loss, task_losses

SPEC = TaskSpec(classes=("circle", "star", "spikes", "morse"),
                class_categories=("shapes", "shapes", "patterns", "patterns"),
                categories=("shapes", "words", "patterns"), frames=6)
T, H, W = 6, 32, 48
BITS = np.array([1, 0, 1, 1, -1, -1])


def as_mask(figure: np.ndarray) -> np.ndarray:
    """A static figure map (H, W) in [0, 1] as a stored soft mask (T, H, W) uint8."""
    return np.broadcast_to((figure * 255).astype(np.uint8), (T, *figure.shape)).copy()


def square() -> np.ndarray:
    figure = np.zeros((H, W))
    figure[8:24, 12:28] = 1
    return figure


@pytest.fixture
def mixed(two_lines):
    """Four clips, each as its own dict of targets and stacked as a batch: a star, two lines of
    words ("ab", "cdd"), a pattern (a class and three sequence tasks), a circle."""
    text, glyphs = two_lines()
    clips = [clip_targets(SPEC, "shapes", "star", as_mask(square())),
             clip_targets(SPEC, "words", "ab cdd", as_mask(text), json.dumps(glyphs)),
             clip_targets(SPEC, "patterns", "spikes", np.zeros((T, H, W), np.uint8), "", BITS, 4, 0),
             clip_targets(SPEC, "shapes", "circle", as_mask(square()))]
    return clips, default_collate([{k: torch.as_tensor(v) for k, v in c.items()} for c in clips])


def test_spec_from_a_manifest_leaves_words_out_of_the_classes():
    manifest = {"classes": ["circle", "CAT", "spikes"], "class_categories": ["shapes", "words", "patterns"],
                "categories": ["shapes", "words", "patterns"],
                "frame_shapes": {"shapes": [8, 32, 48], "words": [16, 64, 112], "patterns": [8, 32, 48]}}
    spec = TaskSpec.from_manifest(manifest)
    assert spec.classes == ("circle", "spikes") and spec.class_categories == ("shapes", "patterns")
    assert spec.frames == 8 and spec.windows == 4 and spec.reads_words and spec.has_patterns
    assert spec.figure_classes.tolist() == [True, False]
    assert TaskSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ValueError, match=r"classes of categories \['images'\]"):
        TaskSpec(("cat",), ("images",), ("shapes",), 8)


def test_targets_route_each_clip_to_its_tasks(mixed):
    clips, t = mixed
    assert t["label"].tolist() == [1, IGNORE, 2, 0]  # closed classes: circle, star, spikes, morse
    assert t["category"].tolist() == [0, 1, 2, 0]  # shapes, words, patterns
    assert t["mask"].dtype == torch.uint8 and t["mask"].shape == (4, T, H, W)
    assert np.array_equal(clips[0]["mask"], as_mask(square()))  # the mask passes through as given
    assert t["line_length"].tolist() == [[0, 0], [2, 3], [0, 0], [0, 0]]
    assert [decode_columns(row) for row in t["line_labels"][1].tolist()] == ["ab", "cdd"]
    codes = t["line_text"][1, 1, :3].tolist()
    assert "".join(ALPHABET[k - 1] for k in codes) == "cdd" and t["line_text"][1, 1, 3:].eq(0).all()
    bands = t["line_bands"][1]
    assert (bands >= 0).all() and bands[0, 1] <= bands[1, 0]  # top line first
    for i in (0, 2, 3):  # no text: nothing to read
        assert t["line_bands"][i].eq(-1).all() and t["line_labels"][i].eq(IGNORE).all()
    assert t["line_labels"].shape == (4, MAX_LINES, COLUMNS) and t["line_text"].shape == (4, MAX_LINES, MAX_TEXT)
    assert t["bits"][2].tolist() == BITS.tolist() and t["bits"][[0, 1, 3]].eq(-1).all()
    assert t["length"].tolist() == [IGNORE, IGNORE, 4, IGNORE]
    assert t["next_bit"].tolist() == [IGNORE, IGNORE, 0, IGNORE]


def test_targets_ignore_what_a_clip_does_not_carry(two_lines):
    empty = np.zeros((T, H, W), np.uint8)
    assert clip_targets(SPEC, "shapes", "square", empty)["label"] == IGNORE  # a class the model has no head for
    text, glyphs = two_lines()
    assert clip_targets(SPEC, "words", "star", as_mask(text), glyphs)["label"] == IGNORE  # words are never classes
    as_list = clip_targets(SPEC, "words", "ab cdd", as_mask(text), glyphs)
    as_json = clip_targets(SPEC, "words", "ab cdd", as_mask(text), json.dumps(glyphs))
    assert all(np.array_equal(as_list[k], as_json[k]) for k in as_list)
    touching, glyphs = two_lines(tops=(4, 12))  # lines run together: one band for two lines of text
    for no_lines in (clip_targets(SPEC, "words", "ab cdd", as_mask(touching), glyphs),
                     clip_targets(SPEC, "words", "ab cdd", as_mask(text), "")):  # no glyphs stored
        assert no_lines["line_length"].sum() == 0 and (no_lines["line_labels"] == IGNORE).all()
        assert (no_lines["line_bands"] == -1).all()
    shape = clip_targets(SPEC, "shapes", "star", empty, "", BITS, 4, 0)  # pattern targets of a non-pattern clip
    assert (shape["bits"] == -1).all() and shape["length"] == IGNORE and shape["next_bit"] == IGNORE
    long, glyphs = two_lines(texts=("abcdefghijklmnopqrstuvwxyza",), tops=(4,), advance=4, size=(16, 128))
    assert clip_targets(SPEC, "words", "", as_mask(long), glyphs)["line_length"].tolist() == [MAX_TEXT, 0]


def test_window_means_average_contiguous_stretches_and_repeat_short_axes():
    x = torch.arange(7.0)[None]  # (1, 7)
    assert window_means(x, 3).tolist() == [[1.0, 3.5, 5.5]]  # frames 0-2, 3-4, 5-6
    assert window_means(x, 7).tolist() == x.tolist() and window_means(x, 1).tolist() == [[3.0]]
    assert window_means(torch.arange(3.0)[None], 4).tolist() == [[0.0, 0.0, 1.0, 2.0]]  # fewer frames than windows
    video = torch.rand(2, 3, 8, 5, 5)  # (B, C, T, H, W): windows along dim 2
    out = window_means(video, 4, dim=2)
    assert out.shape == (2, 3, 4, 5, 5) and torch.allclose(out[:, :, 1], video[:, :, 2:4].mean(dim=2))


@pytest.mark.parametrize("size", [(17, 23), (16, 24), (1, 3)])
def test_figure_head_spells_each_map_cell_out_at_full_resolution(size):
    torch.manual_seed(0)
    head = FigureHead(8, windows=4)
    cells = (-(-size[0] // 4), -(-size[1] // 4))
    fmap = torch.randn(2, 8, *cells)
    logits = head(fmap, size)
    assert logits.shape == (2, 4, *size)
    if cells[0] > 1 and cells[1] > 2:
        changed = fmap.clone()
        changed[:, :, 1, 2] += 1.0  # one map cell: the 4 x 4 px under it change, nothing else
        diff = (head(changed, size) - logits).abs().amax(dim=(0, 1)) > 0
        expected = torch.zeros(size, dtype=torch.bool)
        expected[4:8, 8:12] = True
        assert torch.equal(diff, expected)


def test_figure_head_repeats_a_coarser_map_over_the_cells():
    torch.manual_seed(0)
    head = FigureHead(8, windows=2)
    logits = head(torch.randn(1, 8, 1, 1), (17, 23))  # late fusion: one vector for the whole clip
    assert logits.shape == (1, 2, 17, 23)
    assert torch.equal(logits[..., :4, :4], logits[..., 4:8, 12:16])  # every cell says the same


def test_the_answers_do_not_train_the_encoder(mixed):
    """The reader sees the figure detached: class logits of figure classes carry no gradient to the
    feature map, the figure logits and the pattern heads do."""
    _, targets = mixed
    torch.manual_seed(0)
    heads = TaskHeads(8, SPEC)
    fmap = torch.randn(4, 8, 8, 12, requires_grad=True)
    out = heads(fmap, (H, W))
    assert out["figure_logits"].shape == (4, SPEC.windows, H, W) and out["figure_logits"].requires_grad
    assert not out["figure"].requires_grad and torch.equal(out["figure"], torch.sigmoid(out["figure_logits"]))
    assert out["logits"].shape == (4, 4) and out["bits"].shape == (4, T) and out["length"].shape == (4, T + 1)
    from_figure = torch.from_numpy(SPEC.figure_classes)
    (grad,) = torch.autograd.grad(out["logits"][:, from_figure].sum(), fmap, allow_unused=True, retain_graph=True)
    assert grad is None or grad.eq(0).all()
    (grad,) = torch.autograd.grad(out["logits"][:, ~from_figure].sum(), fmap, retain_graph=True)
    assert grad.abs().sum() > 0  # pattern kinds: from the frames
    losses = task_losses(heads, out, targets)
    assert torch.autograd.grad(losses["reading"], fmap, allow_unused=True)[0] is None
    assert torch.autograd.grad(losses["figure"], fmap)[0].abs().sum() > 0


def test_answering_reads_every_view_of_a_figure_with_its_class_renamed_back():
    spec = TaskSpec(classes=("circle", "star", "up", "down"), class_categories=("shapes", "shapes", "videos", "videos"),
                    categories=("shapes", "videos"), frames=6)
    torch.manual_seed(0)
    heads = TaskHeads(8, spec)
    figure = torch.rand(2, spec.windows, 16, 24)
    shapes, up_down, down_up = [0, 1], [2, 3], [3, 2]
    heads.train()  # training sees the one view
    assert not torch.allclose(heads.figure_logits(figure)[:, shapes], heads.figure_logits(figure.flip(-1))[:, shapes])
    heads.eval()
    read = heads.figure_logits(figure)
    for view in (figure.flip(-1), figure.flip(-2)):  # mirrored either way
        assert torch.allclose(heads.figure_logits(view)[:, shapes], read[:, shapes], atol=1e-5)
    assert heads.view_usable.sum(dim=0).tolist() == [3, 3, 7, 7]  # a still shape is not played backwards
    assert torch.allclose(heads.figure_logits(figure.flip(-1))[:, up_down], read[:, up_down], atol=1e-5)
    for view in (figure.flip(-2), figure.flip(1)):  # upside down or backwards, up is read as down
        assert torch.allclose(heads.figure_logits(view)[:, up_down], read[:, down_up], atol=1e-5)
    # a view is used only where every class of the category has its renamed class: here none is
    lopsided = TaskHeads(8, TaskSpec(classes=("up", "left", "growing"), class_categories=("videos",) * 3,
                                     categories=("videos",), frames=6)).eval()
    assert torch.equal(lopsided.figure_logits(figure), lopsided.classify_figure(lopsided.reader(figure)))


def test_answers_stay_inside_the_clips_category():
    torch.manual_seed(0)
    heads = TaskHeads(8, SPEC)
    out = heads(torch.randn(3, 8, 2, 5), (8, 20))
    out["logits"] = torch.tensor([[0.0, 1.0, 9.0, 0.0]] * 3)  # "spikes" (patterns) scores highest everywhere
    category = category_ids(SPEC, ["shapes", "patterns", "images"])
    texts = heads.answers(out, category)
    assert texts[0] == "star" and texts[1] == "spikes"
    assert texts[2] == CANNOT_ANSWER == ""  # no head for a category the model never saw
    assert category.tolist() == [0, 2, -1]


def test_words_are_answered_by_reading_and_only_with_a_line_reader(monkeypatch):
    torch.manual_seed(0)
    heads = TaskHeads(8, SPEC)
    out = heads(torch.randn(3, 8, 2, 5), (8, 20))
    category = category_ids(SPEC, ["words", "shapes", "words"])
    monkeypatch.setattr(heads, "read", lambda figure, lexicon: [f"text{i} {lexicon}" for i in range(len(figure))])
    texts = heads.answers(out, category)
    assert texts[0] == "text0 None" and texts[2] == "text1 None" and texts[1] in SPEC.classes[:2]
    assert heads.answers(out, category, "the lexicon")[0] == "text0 the lexicon"  # passed on to the reading
    heads.lines = None  # a model that cannot read
    assert heads.answers(out, category)[::2] == ["", ""]
    assert heads.answers(out, category_ids(SPEC, ["images"])[:1].expand(3)) == ["", "", ""]


class ReadsA(torch.nn.Module):
    """A line reader that reads the letter a in the first column of every line, blank elsewhere."""

    def forward(self, bands):
        classes = torch.zeros(len(bands), COLUMNS, len(ALPHABET) + 1)
        classes[:, 0, ALPHABET.index("a") + 1] = 1.0
        classes[:, 1:, 0] = 1.0
        return classes.log()


def test_read_finds_the_lines_of_each_figure_and_joins_them(two_lines):
    heads = TaskHeads(8, SPEC)
    heads.lines = ReadsA()
    text, _ = two_lines()
    one, _ = two_lines(texts=("abc",), tops=(10,))
    figure = torch.from_numpy(np.stack([text, one, np.zeros((H, W))])).float()[:, None].expand(-1, SPEC.windows, -1, -1)
    assert heads.read(figure) == ["a a", "a", ""]  # two lines, one line, no figure


def test_every_task_loss_trains_only_on_the_clips_that_carry_it(mixed):
    _, targets = mixed
    torch.manual_seed(0)
    heads = TaskHeads(8, SPEC)
    fmap = torch.randn(4, 8, 8, 12, requires_grad=True)
    losses = task_losses(heads, heads(fmap, (H, W)), targets)
    assert set(losses) == {"figure", "class", "reading", "bits", "length", "next_bit"}
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert torch.isfinite(fmap.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in heads.lines.parameters())  # the reading trains the reader
    # A batch of shapes alone trains the figure and the class heads only: no NaN from tasks nobody carries.
    only_shapes = {k: v[[0, 3]] for k, v in targets.items()}
    assert set(task_losses(heads, heads(fmap[[0, 3]], (H, W)), only_shapes)) == {"figure", "class"}


def test_the_change_weight_charges_a_static_guess_for_a_moving_figure_and_leaves_static_figures_alone():
    moving = np.zeros((T, H, W), np.uint8)
    for t in range(T):
        moving[t, 8:20, 4 + 3 * t:16 + 3 * t] = 255  # a square sliding right, 3 px a frame
    masks = torch.from_numpy(np.stack([moving, as_mask(square())]))  # (2, T, H, W): moving, static
    target = window_means(masks.float() / 255, 3)  # (2, 3, H, W)
    logit = lambda p: torch.logit(p.clamp(0.05, 0.95))
    exact = logit(target)
    static = logit(target.mean(dim=1, keepdim=True).expand_as(target))  # one mask for every window
    def excess(weight):  # what predicting one static mask costs over the exact masks, moving clip only
        return (figure_loss(static[:1], masks[:1], weight) - figure_loss(exact[:1], masks[:1], weight)).item()
    assert excess(10.0) > 2 * excess(0.0) > 0
    # a figure that never changes has no path: its loss is the plain BCE at any weight
    assert torch.allclose(figure_loss(static[1:], masks[1:], 10.0), figure_loss(static[1:], masks[1:], 0.0))
    with pytest.raises(ValueError, match="figure_change_weight=-1"):
        TrainConfig(figure_change_weight=-1)


def test_reading_loss_is_finite_on_any_figure_and_absent_without_lines(mixed):
    _, targets = mixed
    torch.manual_seed(0)
    heads = TaskHeads(8, SPEC)
    truth = window_means(targets["mask"].float() / 255, SPEC.windows)
    for figure in (truth, torch.zeros_like(truth), torch.rand_like(truth)):
        loss = reading_loss(heads, figure, targets)
        assert loss.ndim == 0 and torch.isfinite(loss) and loss > 0
    assert reading_loss(heads, truth[[0, 3]], {k: v[[0, 3]] for k, v in targets.items()}) is None


def test_objective_weighs_each_task_by_the_share_of_clips_that_carry_it(mixed):
    _, targets = mixed
    losses = {"figure": torch.tensor(0.5), "class": torch.tensor(2.0), "reading": torch.tensor(10.0),
              "bits": torch.tensor(0.6), "length": torch.tensor(1.2), "next_bit": torch.tensor(0.9)}
    weights = {"figure": 1.0, "class": 1.0, "reading": 1.0, "patterns": 1.0}
    # every clip has a figure; 3 of 4 a class, 1 a text, 1 a pattern sequence whose three losses split its share
    expected = 0.5 + 3 / 4 * 2.0 + 1 / 4 * 10.0 + 1 / 4 * (0.6 + 1.2 + 0.9) / 3
    assert objective(losses, targets, weights).item() == pytest.approx(expected)
    # group weights scale their tasks only; a group the config leaves out keeps its default
    weights = TrainConfig(task_weights={"patterns": 0.0, "figure": 2.0}).loss_weights
    assert objective(losses, targets, weights).item() == pytest.approx(2 * 0.5 + 3 / 4 * 2.0 + 1 / 4 * 10.0)
    # a batch of one category is its tasks' plain mean losses, so single-category training is unchanged
    shapes = {k: v[[0, 3]] for k, v in targets.items()}
    assert objective({"class": torch.tensor(2.0)}, shapes, weights).item() == pytest.approx(2.0)


def test_answers_correct_scores_classes_and_the_text_read(mixed, monkeypatch):
    from timeblind.core.tasks import true_texts
    from timeblind.training.module import answers_correct

    _, targets = mixed
    assert true_texts(targets) == ["", "ab cdd", "", ""]
    torch.manual_seed(0)
    heads = TaskHeads(8, SPEC)
    out = heads(torch.randn(4, 8, 8, 12), (H, W))
    out["logits"] = torch.tensor([[0.0, 5.0, 0.0, 0.0],  # star: right
                                  [0.0, 0.0, 0.0, 0.0],  # words: read, not classified
                                  [0.0, 0.0, 0.0, 5.0],  # morse for spikes: wrong
                                  [0.0, 5.0, 0.0, 0.0]])  # star for circle: wrong
    net = types.SimpleNamespace(heads=heads)
    monkeypatch.setattr(heads, "read", lambda figure: ["ab cdd"] * len(figure))
    assert answers_correct(net, out, targets).tolist() == [True, True, False, False]
    assert answers_correct(net, out, targets, read_words=False).tolist() == [True, False, False, False]
    monkeypatch.setattr(heads, "read", lambda figure: ["ab cd"] * len(figure))
    assert answers_correct(net, out, targets).tolist() == [True, False, False, False]


def test_pattern_rows_score_every_bit_the_length_and_the_next_bit():
    targets = {"bits": np.array([[1, 0, 1, -1], [0, 0, -1, -1], [-1] * 4]),
               "length": np.array([3, 2, IGNORE]), "next_bit": np.array([1, 0, IGNORE])}
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
