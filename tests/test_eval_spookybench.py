"""`timeblind eval-spookybench`: the official results format and scoring rule, on an exported split."""

import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from timeblind.core.tasks import TaskSpec, category_ids
from timeblind.data.dataset import StimulusConfig, StimulusDataset, write_dataset
from timeblind.io.spookybench import is_correct
from timeblind.models.checkpoint import save_model
from timeblind.models.registry import build_model
from timeblind.steps.export import export_split


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    cfg = StimulusConfig.from_dict({"height": 16, "width": 16, "categories": ["shapes", "patterns"],
                                    "shapes": ["circle", "square"], "motion": {"frames": 6}})
    manifest = write_dataset(root / "data", cfg, 0, {"test": 12}, log=lambda *_: None)
    torch.manual_seed(0)
    model = build_model("early_temporal", TaskSpec.from_manifest(manifest), width=4, dim=16).eval()
    save_model(root / "model.pt", model, "early_temporal", extra={"frame_shapes": manifest["frame_shapes"]})
    export_split(data_dir=str(root / "data"), out_dir=str(root / "native"), split="test", scale=1)
    export_split(data_dir=str(root / "data"), out_dir=str(root / "large"), split="test", scale=3)
    return root, model


def run(*args, cwd):
    return subprocess.run([sys.executable, "-m", "timeblind", "eval-spookybench", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True)


def test_predictions_follow_the_official_format_and_rule(exported, tmp_path):
    root, model = exported
    out = run("--dataset", root / "native", "--model", root / "model.pt", "--output", tmp_path / "p.json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    predictions = json.loads((tmp_path / "p.json").read_text())
    meta = pd.read_csv(root / "native" / "metadata.csv")
    assert list(predictions) == meta.Path.tolist()
    # The printed table is the official rule applied to the written predictions.
    correct = [is_correct(predictions[p], ast.literal_eval(label)) for p, label in zip(meta.Path, meta.Label)]
    assert f"all {len(meta)} {sum(correct)} " in " ".join(out.stdout.split())
    # Patterns are not in the official metadata.csv: they have a folder of their own, scored the same way.
    assert set(meta.Category) == {"shapes"}
    out = run("--dataset", root / "native" / "patterns", "--model", root / "model.pt", "--output",
              tmp_path / "patterns.json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    predictions |= json.loads((tmp_path / "patterns.json").read_text())
    # Native-size videos go to the model as they are: the same predictions as on the stored clips
    # (H.264 at crf 18 keeps binary dots; grey pattern clips may move by a level or two).
    data = StimulusDataset(root / "data", "test")
    categories = category_ids(model.heads.spec, data.samples.category)
    stored = [model.answer(torch.from_numpy(data.clip(i)).float().div(127.5).sub(1)[None], categories[i:i + 1])[0]
              for i in range(len(data))]
    index = {path: int(path.split("/")[-1].split("_")[0]) for path in predictions}  # export names: 00003_label.mp4
    assert sorted(index.values()) == list(range(len(data)))
    agree = sum(stored[index[path]] == text for path, text in predictions.items())
    assert agree >= len(stored) - 1


def test_other_sizes_are_resampled_and_categories_filtered(exported, tmp_path):
    root, _ = exported
    out = run("--dataset", root / "large", "--model", root / "model.pt", "--output", tmp_path / "p.json",
              "--categories", "shapes", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    predictions = json.loads((tmp_path / "p.json").read_text())
    assert len(predictions) == 6 and all(p.startswith("shapes/") for p in predictions)


def test_a_missing_video_is_skipped_and_the_rest_scored(exported, tmp_path):
    root, _ = exported
    broken = tmp_path / "broken"
    subprocess.run(["cp", "-r", str(root / "native"), str(broken)], check=True)
    victim = pd.read_csv(broken / "metadata.csv").Path[3]
    (broken / victim).unlink()
    out = run("--dataset", broken, "--model", root / "model.pt", "--output", tmp_path / "p.json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert victim in out.stderr and "1 item(s) skipped" in out.stdout
    assert len(json.loads((tmp_path / "p.json").read_text())) == 5  # 6 shapes, one missing


def test_bad_model_files_get_a_clear_message(exported, tmp_path):
    root, _ = exported
    (tmp_path / "bad.pt").write_bytes(b"not a model")
    out = run("--dataset", root / "native", "--model", tmp_path / "bad.pt", "--output", tmp_path / "p.json",
              cwd=tmp_path)
    assert out.returncode == 2 and "is not a timeblind model file" in out.stderr and "Traceback" not in out.stderr
    out = run("--dataset", tmp_path / "nowhere", "--model", root / "model.pt", "--output", tmp_path / "p.json",
              cwd=tmp_path)
    assert out.returncode == 2 and "nowhere" in out.stderr


def relabelled(root, tmp_path, category: str, rows=(0,)):
    """A copy of the export with the Category of some rows changed."""
    copy = tmp_path / f"as_{category}"
    shutil.copytree(root / "native", copy)
    meta = pd.read_csv(copy / "metadata.csv")
    meta.loc[list(rows), "Category"] = category
    meta.to_csv(copy / "metadata.csv", index=False)
    return copy


def test_a_model_without_a_reading_head_answers_words_with_empty_text(exported, tmp_path):
    """A shapes-and-patterns model (no reading head) on a folder with a words video: that video gets an
    empty answer (scored wrong) and the others are scored, as for any category the model was not trained on."""
    root, model = exported
    assert not model.heads.spec.reads_words
    dataset = relabelled(root, tmp_path, "words")
    out = run("--dataset", dataset, "--model", root / "model.pt", "--output", tmp_path / "p.json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    predictions = json.loads((tmp_path / "p.json").read_text())
    first = pd.read_csv(dataset / "metadata.csv").Path[0]
    assert len(predictions) == 6 and predictions[first] == ""
    assert "no answer for category 'words'" in out.stderr and "Traceback" not in out.stderr


def edited(root, tmp_path, change) -> Path:
    """A copy of the fixture's model file with its payload changed by change(payload)."""
    payload = torch.load(root / "model.pt", weights_only=True)
    change(payload)
    path = tmp_path / "edited.pt"
    torch.save(payload, path)
    return path


@pytest.mark.parametrize("change, message", [
    (lambda p: p.pop("encoder"), "missing key(s) ['encoder']"),
    (lambda p: p.pop("tasks"), "missing key(s) ['tasks']"),
    (lambda p: p.pop("extra"), "missing key(s) ['extra']"),
    (lambda p: p.update(tasks={"classes": ["circle"]}), "'tasks' {'classes': ['circle']} is not a task list"),
    (lambda p: p.update(tasks="shapes"), "'tasks' is a str; expected a dict"),
    (lambda p: p["encoder_config"].update(dim=-16), "does not build a 'early_temporal' encoder"),
    (lambda p: p.update(encoder="vit"), "'encoder' 'vit' is not an encoder"),
    (lambda p: p["extra"].update(frame_shapes={"shapes": [6, 0, 16]}), "'extra.frame_shapes.shapes' [6, 0, 16]"),
])
def test_hand_edited_model_files_get_one_line_naming_the_file_and_key(exported, tmp_path, change, message):
    root, _ = exported
    path = edited(root, tmp_path, change)
    out = run("--dataset", root / "native", "--model", path, "--output", tmp_path / "p.json", cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.count("\n") == 1 and str(path) in out.stderr and message in out.stderr, out.stderr
    assert not (tmp_path / "p.json").exists()


class Payload:
    def __reduce__(self):
        return (print, ("this ran",))


def test_a_code_executing_model_file_is_refused_without_torchs_advice(exported, tmp_path):
    root, _ = exported
    path = edited(root, tmp_path, lambda p: p.update(extra={"note": Payload()}))
    out = run("--dataset", root / "native", "--model", path, "--output", tmp_path / "p.json", cwd=tmp_path)
    assert out.returncode == 2 and "this ran" not in out.stdout + out.stderr
    assert f"{path} is refused: it is not a plain-tensor timeblind model file" in out.stderr
    assert "weights_only" not in out.stderr and "trusted source" not in out.stderr


def test_each_skipped_item_is_reported_once(exported, tmp_path):
    root, _ = exported
    broken = tmp_path / "broken"
    shutil.copytree(root / "native", broken)
    victim = pd.read_csv(broken / "metadata.csv").Path[3]
    (broken / victim).write_bytes(b"\0" * 100)
    out = run("--dataset", broken, "--model", root / "model.pt", "--output", tmp_path / "p.json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stderr.count(victim) == 1, out.stderr


def test_nothing_scored_is_an_error(exported, tmp_path):
    root, _ = exported
    out = run("--dataset", root / "native", "--model", root / "model.pt", "--output", tmp_path / "p.json",
              "--categories", "words", cwd=tmp_path)  # a known category, with no video in this folder
    assert out.returncode == 2 and "nothing scored" in out.stderr and "Empty DataFrame" not in out.stdout
    assert not (tmp_path / "p.json").exists()
    short = run("--dataset", root / "native", "--model", root / "model.pt", "--output", tmp_path / "p.json",
                "--frames", 12, cwd=tmp_path)  # every video has 6 frames: all skipped
    assert short.returncode == 2 and "nothing scored" in short.stderr
    assert short.stderr.count("video has 6 frames; the model needs at least 12") == 6


@pytest.mark.parametrize("flag", [["--height", "0"], ["--frames", "-3"], ["--width", "wide"]])
def test_bad_sizes_are_usage_errors(exported, tmp_path, flag):
    root, _ = exported
    out = run("--dataset", root / "native", "--model", root / "model.pt", "--output", tmp_path / "p.json", *flag,
              cwd=tmp_path)
    assert out.returncode == 2 and f"argument {flag[0]}" in out.stderr and "Traceback" not in out.stderr


def test_a_failed_write_loses_no_score(exported, tmp_path, monkeypatch, capsys):
    """An output that passed the check but cannot be written once everything is scored (the disk filled
    up): the table and the predictions are printed, one line says where they could not go, exit 1, and no
    temporary file is left."""
    from timeblind import cli
    from timeblind.core import io

    root, _ = exported

    def full_disk(path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(io.os, "replace", lambda *a: full_disk(a[1]))
    code = cli.main(["eval-spookybench", "--dataset", str(root / "native"), "--model", str(root / "model.pt"),
                     "--output", str(tmp_path / "p.json")])
    out, err = capsys.readouterr()
    assert code == 1 and "all" in out and len(json.loads(out[out.index("{"):])) == 6
    assert f"cannot write {tmp_path / 'p.json'} (No space left on device)" in err
    assert list(tmp_path.iterdir()) == []


def test_categories_in_any_case_and_unknown_ones_refused(exported, tmp_path):
    root, _ = exported
    out = run("--dataset", root / "native", "--model", root / "model.pt", "--output", tmp_path / "p.json",
              "--categories", "SHAPES", "Objects", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert len(json.loads((tmp_path / "p.json").read_text())) == 6
    out = run("--dataset", root / "native", "--model", root / "model.pt", "--output", tmp_path / "q.json",
              "--categories", "shapes", "sounds", cwd=tmp_path)
    assert out.returncode == 2 and not (tmp_path / "q.json").exists()
    (line,) = out.stderr.strip().splitlines()
    assert "'sounds'" in line and "words, shapes, images, videos, patterns" in line


def test_output_folder_gets_the_official_runners_naming(exported, tmp_path):
    root, _ = exported
    for output in (tmp_path / "results", f"{tmp_path / 'slash.d'}/"):  # a new folder, named as such
        out = run("--dataset", root / "native", "--model", root / "model.pt", "--output", output, cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        (written,) = list(Path(output).iterdir())  # and no temp file beside it
        assert re.fullmatch(r"early_temporal_direct_\d{8}_\d{6}\.json", written.name), written.name
        assert str(written) in out.stdout and len(json.loads(written.read_text())) == 6


def test_a_bad_output_fails_before_anything_is_scored(exported, tmp_path):
    root, _ = exported
    (tmp_path / "notes.txt").write_text("a file")
    # Checked first: a missing model is not even looked for.
    out = run("--dataset", root / "native", "--model", tmp_path / "absent.pt", "--output",
              tmp_path / "notes.txt" / "p.json", cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert "notes.txt is a file, not a folder" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_metadata_beside_the_dataset_folder_is_used_and_named(exported, tmp_path):
    root, _ = exported
    release = tmp_path / "spooky_bench"
    shutil.copytree(root / "native", release / "SpookyBenchDatasets")
    (release / "SpookyBenchDatasets" / "metadata.csv").rename(release / "metadata.csv")
    out = run("--dataset", release / "SpookyBenchDatasets", "--model", root / "model.pt", "--output",
              tmp_path / "p.json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert f"metadata: {release / 'metadata.csv'}" in out.stderr
    assert len(json.loads((tmp_path / "p.json").read_text())) == 6
