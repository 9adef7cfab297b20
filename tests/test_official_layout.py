"""The official tools' conventions in the reader and the export: category names in any case and the paper's
aliases, metadata.csv beside the dataset folder, patterns kept out of the official metadata.csv."""

import shutil

import numpy as np
import pandas as pd
import pytest

from timeblind.io.export import VideoItem, export_dataset, pattern_folder
from timeblind.io.folder import SpookyBenchFolder
from timeblind.io.metadata import read_metadata
from timeblind.io.spookybench import canonical_category, parse_categories


def item(category, name, answers=("x",)):
    return VideoItem(np.zeros((3, 8, 8), bool), category, list(answers), name)


@pytest.fixture
def videos(tmp_path):
    """Five exported videos, one per category, at <tmp>/out."""
    export_dataset([item(c, c[:3]) for c in ("words", "shapes", "images", "videos", "patterns")], tmp_path / "out")
    return tmp_path / "out"


def test_categories_are_read_in_any_case_with_the_papers_aliases(videos):
    rows = ["Path,Category,Label", "words/wor.mp4,Words,['a']", "images/ima.mp4,OBJECTS,['b']",
            "videos/vid.mp4,Dynamics,['c']", "shapes/sha.mp4, shapes ,['d']", "images/ima.mp4,sounds,['e']"]
    (videos / "metadata.csv").write_text("\n".join(rows) + "\n")
    entries, skipped = read_metadata(videos)
    assert [e.category for e in entries] == ["words", "images", "videos", "shapes"]
    (bad,) = skipped
    assert bad.row == 6 and "unknown Category 'sounds'" in bad.reason
    assert "words, shapes, images, videos, patterns" in bad.reason and "objects (= images)" in bad.reason
    assert [canonical_category(c) for c in ("IMAGES", "objects", "DYNAMICS", "Patterns", "sound")] == [
        "images", "images", "videos", "patterns", None]


def test_user_category_lists_are_checked():
    assert parse_categories(["Objects", "IMAGES", "dynamics", "words"]) == ["images", "videos", "words"]
    with pytest.raises(ValueError, match=r"unknown category 'soundz'; expected words, shapes, images, videos, "
                                         r"patterns or objects \(= images\), dynamics \(= videos\), in any case"):
        parse_categories(["shapes", "soundz"])


def test_export_takes_the_aliases_and_writes_the_official_names(tmp_path):
    table = export_dataset([item("Objects", "cup"), item("DYNAMICS", "spin")], tmp_path)
    assert table.to_dict("list") == {"Path": ["images/cup.mp4", "videos/spin.mp4"], "Category": ["images", "videos"],
                                     "Label": ["['x']", "['x']"]}
    assert (tmp_path / "images/cup.mp4").is_file() and (tmp_path / "videos/spin.mp4").is_file()


def test_patterns_are_kept_out_of_the_official_metadata(videos, tmp_path):
    official = pd.read_csv(videos / "metadata.csv")
    assert official.Category.tolist() == ["words", "shapes", "images", "videos"]  # the official scorer's four
    folder = pattern_folder(videos)
    assert folder == videos / "patterns"
    entries, skipped = read_metadata(folder)
    assert skipped == [] and [(e.rel, e.category) for e in entries] == [("pat.mp4", "patterns")]
    export_dataset([item("words", "w")], tmp_path / "plain")
    assert pattern_folder(tmp_path / "plain") is None and not (tmp_path / "plain" / "patterns").exists()


def test_metadata_beside_the_dataset_folder(videos, tmp_path):
    release = tmp_path / "spooky_bench"  # the README's layout: metadata.csv next to SpookyBenchDatasets/
    shutil.copytree(videos, release / "SpookyBenchDatasets")
    (release / "SpookyBenchDatasets" / "metadata.csv").rename(release / "metadata.csv")
    folder = SpookyBenchFolder(release / "SpookyBenchDatasets")
    assert folder.csv_path == release / "metadata.csv"
    assert [e.rel for e in folder.entries] == ["words/wor.mp4", "shapes/sha.mp4", "images/ima.mp4", "videos/vid.mp4"]
    assert folder.skipped == []
    # One inside the folder comes first.
    pd.read_csv(release / "metadata.csv")[:1].to_csv(release / "SpookyBenchDatasets" / "metadata.csv", index=False)
    folder = SpookyBenchFolder(release / "SpookyBenchDatasets")
    assert folder.csv_path == release / "SpookyBenchDatasets" / "metadata.csv" and len(folder.entries) == 1
    lonely = tmp_path / "a" / "b"
    lonely.mkdir(parents=True)
    (lonely / "v.mp4").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="has no metadata.csv, nor has the folder beside it"):
        SpookyBenchFolder(lonely)
