"""The stimulus commands: export a generated split in the official layout, read it back, measure SNR."""

import ast
import subprocess
import sys

import pandas as pd
import pytest

from timeblind.data.dataset import StimulusConfig, write_dataset
from timeblind.io.export import write_video
from timeblind.io.folder import SpookyBenchFolder
from timeblind.io.video import load_video


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    cfg = StimulusConfig.from_dict({"height": 32, "width": 32, "categories": ["shapes", "patterns"],
                                    "motion": {"frames": 8, "speed": 1}})
    write_dataset(out, cfg, 0, {"val": 16, "test": 8}, log=lambda *_: None)
    return out


def timeblind(*args, cwd):
    return subprocess.run([sys.executable, "-m", "timeblind", *map(str, args)], cwd=cwd, capture_output=True, text=True)


def test_export_then_read_back_then_measure(data, tmp_path):
    out = timeblind("export-spookybench", data, tmp_path / "export", "--limit", 6, "--scale", 2, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    meta = pd.read_csv(tmp_path / "export" / "metadata.csv")
    assert list(meta.columns) == ["Path", "Category", "Label"]
    assert meta.Category.tolist() == ["shapes"] * 3  # the release's categories only: patterns have their own folder
    assert ast.literal_eval(meta.Label[0]) == ["circle"]
    assert "3 pattern videos and their own metadata.csv" in out.stdout
    for folder in (SpookyBenchFolder(tmp_path / "export"), SpookyBenchFolder(tmp_path / "export" / "patterns")):
        clips = list(folder.videos())
        assert len(clips) == 3 and not folder.skipped
        assert clips[0][1].shape == (8, 64, 64)  # frames, upscaled 2x

    measured = timeblind("snr", tmp_path / "export", "--table", tmp_path / "snr.csv", "--results-dir", tmp_path / "res",
                         cwd=tmp_path)
    assert measured.returncode == 0, measured.stderr
    per_clip = pd.read_csv(tmp_path / "snr.csv")
    assert len(per_clip) == 3 and per_clip.combined_snr.notna().all()
    summary = pd.read_csv(tmp_path / "snr_summary.csv")
    assert {"all", "shapes"} <= set(summary.category)


def test_snr_of_a_generated_split_skips_the_brightness_control(data, tmp_path):
    out = timeblind("snr", data, "--per-category", 4, "--table", tmp_path / "snr.csv", "--results-dir", tmp_path / "res",
                    cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    per_clip = pd.read_csv(tmp_path / "snr.csv")
    assert per_clip.category.unique().tolist() == ["shapes"] and len(per_clip) == 4


def test_bad_paths_get_a_message_not_a_traceback(tmp_path):
    out = timeblind("snr", tmp_path / "nowhere", "--results-dir", tmp_path / "res", cwd=tmp_path)
    assert out.returncode == 2 and "expected a generated data set" in out.stderr and "Traceback" not in out.stderr
    out = timeblind("export-spookybench", tmp_path / "nowhere", tmp_path / "x", cwd=tmp_path)
    assert out.returncode == 2 and "run the generate step first" in out.stderr


def test_a_short_or_broken_video_is_named_and_the_others_measured(data, tmp_path):
    export = tmp_path / "export"
    assert timeblind("export-spookybench", data, export, "--limit", 6, "--scale", 2, cwd=tmp_path).returncode == 0
    meta = pd.read_csv(export / "metadata.csv")
    short, broken = meta.Path[0], meta.Path[2]
    frames = load_video(export / short)
    write_video(frames[:2], export / short)  # one kept frame at --sample-rate 2
    (export / broken).write_bytes(b"\0" * 64)
    out = timeblind("snr", export, "--table", tmp_path / "snr.csv", "--results-dir", tmp_path / "res",
                    "--sample-rate", 2, "--window", 3, "--processes", 2, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stderr.count(short) == 1 and out.stderr.count(broken) == 1 and "Traceback" not in out.stderr
    per_clip = pd.read_csv(tmp_path / "snr.csv")
    assert per_clip.name.tolist() == [p for p in meta.Path if p not in (short, broken)]
    assert list(per_clip.columns) == ["name", "category", "basic_snr", "perceptual_snr", "temporal_coherence_snr",
                                      "motion_contrast_snr", "combined_snr"]


def test_snr_of_a_folder_where_nothing_can_be_measured_is_an_error(data, tmp_path):
    export = tmp_path / "export"
    assert timeblind("export-spookybench", data, export, "--limit", 4, cwd=tmp_path).returncode == 0
    assert len(pd.read_csv(export / "metadata.csv")) == 2  # the other two are patterns, in a folder of their own
    out = timeblind("snr", export, "--sample-rate", 8, "--table", tmp_path / "snr.csv", "--results-dir",
                    tmp_path / "res", cwd=tmp_path)  # 8 frames, every 8th: one kept frame each
    assert out.returncode == 2 and "nothing measured (2 item(s) skipped)" in out.stderr
    assert out.stderr.count("need at least 2 kept frames") == 2 and "Traceback" not in out.stderr
    for flag in ("--sample-rate", "--window", "--processes"):
        bad = timeblind("snr", export, flag, 0, cwd=tmp_path)
        assert bad.returncode == 2 and f"argument {flag}" in bad.stderr


def test_snr_still_takes_workers_as_the_earlier_name_of_processes(monkeypatch, capsys):
    import timeblind.steps.snr
    from timeblind import cli

    taken = []

    def measure(**kwargs):
        taken.append(kwargs["workers"])
        raise ValueError("measured nothing")

    monkeypatch.setattr(timeblind.steps.snr, "measure_snr", measure)
    for flags in (["--workers", "3"], ["--processes", "2"], []):
        assert cli.main(["snr", "some-folder", *flags]) == 2
    assert taken == [3, 2, 1]
    capsys.readouterr()
    with pytest.raises(SystemExit):
        cli.main(["snr", "--help"])
    shown = capsys.readouterr().out
    assert "--processes" in shown and "--workers" not in shown  # the help offers only --processes
