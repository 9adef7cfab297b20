"""`timeblind score` against the official scorer's rules (eval/qwen/analyze_results.py, as methods.md
documents it), on an export: the same analysis.json, number for number, plus accuracy.png and a review
page."""

import ast
import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from timeblind.io.export import VideoItem, export_dataset

OFFICIAL = ["words", "shapes", "images", "videos"]


def official_rules(results_file, metadata_csv):
    """The scorer's documented behaviour, written from methods.md alone: its four categories hard-wired
    (another Category raises KeyError), rows without a prediction left out, right when any label is a
    case-insensitive substring of the lowercased prediction, accuracy correct / scored or 0."""
    results = json.loads(results_file.read_text())
    per_category = {c: [] for c in OFFICIAL}
    for row in pd.read_csv(metadata_csv).itertuples():
        if row.Path not in results:
            continue
        labels = ast.literal_eval(row.Label)
        prediction = results[row.Path]
        right = any(label.lower() in prediction.lower().strip() for label in labels)
        per_category[row.Category].append({"video_path": row.Path, "ground_truth": labels, "prediction": prediction,
                                           "correct": right})
    every = [r for records in per_category.values() for r in records]

    def accuracy(records):
        return sum(r["correct"] for r in records) / len(records) if records else 0

    return {"overall_accuracy": accuracy(every), "category_results": {
        c: {"accuracy": accuracy(r), "correct_count": sum(x["correct"] for x in r), "total_count": len(r), "results": r}
        for c, r in per_category.items()}}


def drifting_disc(rng, T=16, H=32, W=48):
    """Binary dots: a disc whose dots move down 1 px/frame, the rest up."""
    yy, xx = np.mgrid[:H, :W]
    disc = (yy - H / 2) ** 2 + (xx - W / 2) ** 2 < (0.3 * H) ** 2
    figure, ground = rng.random((2, H + T, W)) < 0.5
    t, rows = np.arange(T)[:, None], np.arange(H)[None, :]
    return np.where(disc[None], figure[T - 1 - t + rows], ground[t + rows])  # (T, H, W) bool


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    """An export of every category, and a results JSON with right, wrong, upper-case, substring and
    missing answers, and one answer for a video that is not in the metadata."""
    root = tmp_path_factory.mktemp("score")
    rng = np.random.default_rng(0)
    labels = {"words": [["cat"], ["dog"], ["new york"]], "shapes": [["circle"], ["heart", "love heart"]],
              "images": [["umbrella"], ["anchor"]], "videos": [["star rotating clockwise"]],
              "patterns": [["spikes"]]}
    items = [VideoItem(drifting_disc(rng), category, answers, f"{category}{i}")
             for category, lists in labels.items() for i, answers in enumerate(lists)]
    export_dataset(items, root / "export")
    answers = {"words/words0.mp4": "cat", "words/words1.mp4": "DOG", "words/words2.mp4": "new",
               "shapes/shapes0.mp4": "It is a Circle.", "shapes/shapes1.mp4": "a love heart shape",
               "images/images0.mp4": "umbrellas", "videos/videos0.mp4": "a star", "elsewhere/x.mp4": "cat"}
    (root / "preds.json").write_text(json.dumps(answers))  # images1 unanswered, patterns not in the metadata
    return root


def score(*args, cwd):
    return subprocess.run([sys.executable, "-m", "timeblind", "score", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True)


def test_score_agrees_with_the_official_rules(export, tmp_path):
    out = score("--results", export / "preds.json", "--csv", export / "export" / "metadata.csv", "--output",
                tmp_path / "analysis", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    ours = json.loads((tmp_path / "analysis" / "analysis.json").read_text())
    expected = official_rules(export / "preds.json", export / "export" / "metadata.csv")
    assert ours == expected  # every number, every record, in order
    assert list(ours) == ["overall_accuracy", "category_results"] and list(ours["category_results"]) == OFFICIAL
    assert [list(r) for r in ours["category_results"].values()] == [
        ["accuracy", "correct_count", "total_count", "results"]] * 4
    # The mix is what it should be: 7 scored (one unanswered, one answer for an unknown video), 5 right.
    assert (sum(c["total_count"] for c in ours["category_results"].values()), ours["overall_accuracy"]) == (7, 5 / 7)
    assert "words     0.6667 (2/3)" in out.stdout and "overall   0.7143 (5/7)" in out.stdout
    assert "1 metadata row(s) without a prediction" in out.stdout
    assert (tmp_path / "analysis" / "accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in (tmp_path / "analysis").iterdir()) == ["accuracy.png", "analysis.json",
                                                                        "review.html"]  # no temp files


def test_review_page_shows_each_scored_video(export, tmp_path):
    out = score("--results", export / "preds.json", "--csv", export / "export" / "metadata.csv", "--output",
                tmp_path, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    page = (tmp_path / "review.html").read_text()
    rows = re.findall(r"<tr class='(right|wrong)-row'>(.*?)</tr>", page, re.S)
    assert [verdict for verdict, _ in rows] == ["right", "right", "wrong", "right", "right", "right", "wrong"]
    for _, row in rows:
        assert row.count('src="data:image/png;base64,') == 2  # one frame and the recovered figure
    assert "love heart" in page and "a love heart shape" in page and "src=\"http" not in page


def test_results_as_a_list_of_records_and_the_release_layout(export, tmp_path):
    release = tmp_path / "spooky_bench"  # metadata.csv beside SpookyBenchDatasets/, as the README shows it
    shutil.copytree(export / "export", release / "SpookyBenchDatasets")
    (release / "SpookyBenchDatasets" / "metadata.csv").rename(release / "metadata.csv")
    records = [{"video_path": p, "prediction": t} for p, t in json.loads((export / "preds.json").read_text()).items()]
    (tmp_path / "records.json").write_text(json.dumps(records))
    out = score("--results", tmp_path / "records.json", "--csv", release / "metadata.csv", "--output", tmp_path / "a",
                cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads((tmp_path / "a" / "analysis.json").read_text()) == official_rules(
        export / "preds.json", export / "export" / "metadata.csv")
    assert (tmp_path / "a" / "review.html").read_text().count('src="data:image/png;base64,') == 14  # found the videos


def test_categories_the_official_scorer_stops_at(export, tmp_path):
    meta = pd.read_csv(export / "export" / "metadata.csv")
    meta.loc[meta.Category == "images", "Category"] = "Objects"  # the fine-tune script's name, capitalised
    patterns = pd.read_csv(export / "export" / "patterns" / "metadata.csv").assign(Path="patterns/patterns0.mp4")
    pd.concat([meta, patterns]).to_csv(tmp_path / "metadata.csv", index=False)
    answers = json.loads((export / "preds.json").read_text()) | {"patterns/patterns0.mp4": "spikes"}
    (tmp_path / "preds.json").write_text(json.dumps(answers))
    with pytest.raises(KeyError):  # the reason the export keeps patterns out of its metadata.csv
        official_rules(tmp_path / "preds.json", tmp_path / "metadata.csv")
    out = score("--results", tmp_path / "preds.json", "--csv", tmp_path / "metadata.csv", "--output", tmp_path / "a",
                "--no-review", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    ours = json.loads((tmp_path / "a" / "analysis.json").read_text())["category_results"]
    assert ours["images"]["total_count"] == 1 and ours["patterns"]["correct_count"] == 1


@pytest.mark.parametrize("change, message", [
    ("results-not-json", "is not JSON"),
    ("output-is-a-file", "is a file, not a folder"),
    ("nothing-matches", "nothing to score"),
    ("bad-record", "record 0 has keys ['name']"),
])
def test_bad_input_gets_one_line_and_exit_2(export, tmp_path, change, message):
    results, output = export / "preds.json", tmp_path / "out"
    if change == "results-not-json":
        results = tmp_path / "r.json"
        results.write_text("{not json")
    elif change == "output-is-a-file":
        output.write_text("")
    elif change == "nothing-matches":
        results = tmp_path / "r.json"
        results.write_text(json.dumps({"a.mp4": "cat"}))
    else:
        results = tmp_path / "r.json"
        results.write_text(json.dumps([{"name": "x"}]))
    out = score("--results", results, "--csv", export / "export" / "metadata.csv", "--output", output, cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and message in out.stderr
    assert not (output / "analysis.json").exists()


def test_review_decodes_a_bounded_number_of_frames(export, tmp_path, monkeypatch):
    from timeblind.plots import review

    calls = []
    real = review.load_video
    monkeypatch.setattr(review, "load_video", lambda path, max_frames=None: calls.append(max_frames) or real(
        path, max_frames))
    frame, recovered = review.video_views(export / "export" / "shapes" / "shapes0.mp4", "shapes")
    assert calls == [review.FRAME_LIMIT] and frame.startswith("<img") and recovered.startswith("<img")
    frame, recovered = review.video_views(tmp_path / "missing.mp4", "shapes")
    assert frame.startswith("video not readable") and recovered == ""
