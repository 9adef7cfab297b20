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
