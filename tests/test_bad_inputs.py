"""Every reader of outside data through the bad-input corpus (tests/bad_inputs.py): one line per bad
item naming the file or key and what was expected, exit 2 where nothing was done, the rest scored."""

import json
import re
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import torch
import yaml
from snakemake.utils import update_config

from bad_inputs import CONFIGS, FLAGS, FOLDERS, MANIFESTS, MODELS, ROWS, SCORE
from timeblind.core.tasks import TaskSpec
from timeblind.data.dataset import StimulusConfig, write_dataset
from timeblind.models.checkpoint import save_model
from timeblind.models.registry import build_model
from timeblind.plan.config import ConfigError, validate
from timeblind.steps.export import export_split

COMMANDS = ("eval", "snr")
MLFLOW_LOG = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d (INFO|WARNING) mlflow")  # a new store's set-up
METADATA_NOTE = re.compile(r"^metadata: ")  # eval-spookybench says which metadata.csv it read
CLOSER_NOTE = re.compile(r"^\S+: \d+ video\(s\) read again closer up")  # and how many it read closer up


def said(stderr: str) -> list[str]:
    """The lines of stderr that answer the input: not a new MLflow store's set-up, nor which CSV was read,
    nor how many videos were read closer up."""
    return [line for line in stderr.splitlines()
            if not (MLFLOW_LOG.match(line) or METADATA_NOTE.match(line) or CLOSER_NOTE.match(line))]


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """A good export (12 shapes and patterns videos, 16x16, 6 frames), its data set and a model for it."""
    root = tmp_path_factory.mktemp("good")
    cfg = StimulusConfig.from_dict({"height": 16, "width": 16, "categories": ["shapes", "patterns"],
                                    "shapes": ["circle", "square"], "motion": {"frames": 6}})
    manifest = write_dataset(root / "data", cfg, 0, {"test": 12}, log=lambda *_: None)
    torch.manual_seed(0)
    model = build_model("early_temporal", TaskSpec.from_manifest(manifest), width=4, dim=16)
    save_model(root / "model.pt", model, "early_temporal", extra={"frame_shapes": manifest["frame_shapes"]})
    export_split(data_dir=str(root / "data"), out_dir=str(root / "export"), split="test", scale=1)
    return root


def timeblind(*args, cwd):
    return subprocess.run([sys.executable, "-m", "timeblind", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=600)


def command(name, dataset, good, tmp_path, model=None):
    if name == "eval":
        return ["eval-spookybench", "--dataset", dataset, "--model", model or good / "model.pt", "--output",
                tmp_path / "predictions.json"]
    return ["snr", dataset, "--table", tmp_path / "snr.csv", "--results-dir", tmp_path / "results"]


def written(name, tmp_path):
    return (tmp_path / ("predictions.json" if name == "eval" else "snr.csv")).exists()


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


@pytest.fixture(scope="module")
def corpus_folder(good, tmp_path_factory):
    """The good export with every bad row of the corpus added among its rows."""
    root = tmp_path_factory.mktemp("corpus") / "bench"
    shutil.copytree(good / "export", root)
    outside = root.parent / "outside.mp4"
    first = pd.read_csv(root / "metadata.csv").Path[0]
    shutil.copy(root / first, outside)
    lines = (root / "metadata.csv").read_text().splitlines()
    for item in ROWS:
        item.make(root, outside, root / first)
        lines.insert(2 + ROWS.index(item), item.csv_line().replace("{outside}", str(outside)))
    (root / "metadata.csv").write_text("\n".join(lines) + "\n")
    return root, outside


@pytest.mark.parametrize("name", COMMANDS)
def test_each_bad_row_or_video_is_one_line_and_the_good_ones_are_scored(good, corpus_folder, tmp_path, name):
    root, outside = corpus_folder
    out = timeblind(*command(name, root, good, tmp_path), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = said(out.stderr)
    for item in ROWS:
        named = str(outside) if item.path == "{outside}" else item.path
        mine = [line for line in lines if line.startswith(f"skipped {named}")]
        assert len(mine) == 1, (item.name, mine)
        assert item.reason_for(name) in mine[0], (item.name, mine[0])
    assert len(lines) == len(ROWS), lines  # nothing else on stderr
    good_paths = pd.read_csv(good / "export" / "metadata.csv").Path.tolist()
    if name == "eval":
        assert list(json.loads((tmp_path / "predictions.json").read_text())) == good_paths
    else:
        assert pd.read_csv(tmp_path / "snr.csv").name.tolist() == good_paths


@pytest.mark.parametrize("name", COMMANDS)
@pytest.mark.parametrize("item", FOLDERS, ids=[f.name for f in FOLDERS])
def test_a_folder_broken_as_a_whole_is_one_line_and_exit_2(good, tmp_path, name, item):
    root = tmp_path / "bench"
    shutil.copytree(good / "export", root)
    dataset = item.make(root, tmp_path)
    out = timeblind(*command(name, dataset, good, tmp_path), cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    lines = said(out.stderr)
    if item.name == "every_row_bad":  # each row named, then one line saying nothing was done
        *rows, last = lines
        assert len(rows) == 1 and "shapes/ghost.mp4" in rows[0], lines
        lines = [last]
    line = one_line("\n".join(lines))
    assert item.reason in line and str(dataset) in line, line
    assert not written(name, tmp_path) and not (tmp_path / "results").exists()  # not even an MLflow store


@pytest.mark.parametrize("item", MANIFESTS, ids=[m[0] for m in MANIFESTS])
@pytest.mark.parametrize("name", ["snr", "export-spookybench"])
def test_a_broken_generated_data_set_is_one_line_naming_its_manifest(good, tmp_path, name, item):
    _, content, reason = item
    data = tmp_path / "data"
    shutil.copytree(good / "data", data)
    (data / "manifest.json").write_bytes(content)
    args = [data, "--table", tmp_path / "snr.csv", "--results-dir", tmp_path / "results"] if name == "snr" \
        else [data, tmp_path / "export"]
    out = timeblind(name, *args, cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    line = one_line("\n".join(said(out.stderr)))
    assert reason in line and str(data / "manifest.json") in line, line
    assert not (tmp_path / "snr.csv").exists() and not (tmp_path / "export").exists()


@pytest.mark.parametrize("item", MODELS, ids=[m[0] for m in MODELS])
def test_a_bad_model_file_is_one_line_naming_it_and_exit_2(good, tmp_path, item):
    name, make, reason = item
    path = tmp_path / "model.pt"
    make(good / "model.pt", path)
    out = timeblind(*command("eval", good / "export", good, tmp_path, model=path), cwd=tmp_path)
    assert out.returncode == 2
    line = one_line(out.stderr)
    assert str(path) in line and reason in line, line
    assert "code ran" not in out.stdout + out.stderr and "weights_only" not in line
    assert not written("eval", tmp_path)


@pytest.mark.parametrize("item", SCORE, ids=[s.name for s in SCORE])
def test_a_results_file_or_csv_that_cannot_be_scored_is_one_line_and_exit_2(good, tmp_path, item):
    files = {"results": tmp_path / "results.json", "csv": tmp_path / "metadata.csv"}
    shutil.copy(good / "export" / "metadata.csv", files["csv"])
    files["results"].write_text(json.dumps({p: "circle" for p in pd.read_csv(files["csv"]).Path}))
    item.make(files[item.broken])
    out = timeblind("score", "--results", files["results"], "--csv", files["csv"], "--output", tmp_path / "analysis",
                    "--no-review", cwd=tmp_path)
    assert out.returncode == 2
    line = one_line(out.stderr)
    assert str(files[item.broken]) in line and item.reason in line, line
    assert not (tmp_path / "analysis").exists()


@pytest.mark.parametrize("name, flags, reason", [(name, *flag) for name, flags in FLAGS.items() for flag in flags])
def test_a_bad_flag_is_one_line_and_exit_2(good, tmp_path, name, flags, reason):
    args = (["export-spookybench", good / "data", tmp_path / "export"] if name == "export"
            else command(name, good / "export", good, tmp_path))
    out = timeblind(*args, *flags, cwd=tmp_path)
    assert out.returncode == 2
    assert reason in one_line(out.stderr)
    assert not written(name, tmp_path) and not (tmp_path / "export").exists()


@pytest.mark.parametrize("change, reason", CONFIGS, ids=[str(i) for i in range(len(CONFIGS))])
def test_a_bad_config_is_one_line_naming_the_key(repo, change, reason):
    config = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    update_config(config, change)
    with pytest.raises(ConfigError) as error:
        validate(config, schema=repo / "workflow/schemas/config.schema.yaml")
    assert str(error.value).count("\n") == 0 and reason in str(error.value), str(error.value)
