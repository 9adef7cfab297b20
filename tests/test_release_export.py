"""The shifted export written like the SpookyBench release: each video keeps a drawn number of its clip's
frames at a variable frame rate, as H.264 Constrained Baseline yuv420p; scoring several models decodes
each video once; the config check keeps the export's fonts out of training."""

import copy
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from snakemake.utils import update_config

from timeblind.core.tasks import TaskSpec
from timeblind.data.config import StimulusConfig, shifted_stimulus
from timeblind.data.writer import write_dataset
from timeblind.evaluation import spookybench as scoring
from timeblind.io.video import decode_video
from timeblind.models.checkpoint import load_model, save_model
from timeblind.models.registry import build_model
from timeblind.plan.config import ConfigError, validate
from timeblind.steps.export import export_split, video_timing
from timeblind.stimuli.text import expand_fonts

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow/schemas/config.schema.yaml"


def test_video_timing_draws_a_length_and_irregular_frame_times_within_bounds():
    lengths, rates = [], []
    for i in range(200):
        length, times = video_timing(300, (60, 300), (30, 55), np.random.default_rng([1, i]))
        gaps = np.diff(times)
        assert 60 <= length <= 300 and times.shape == (length,) and times[0] == 0 and (gaps > 0).all()
        assert gaps.max() / gaps.min() > 1.2  # a variable frame rate, not a constant one
        lengths.append(length)
        rates.append((length - 1) / times[-1])
    assert min(lengths) < 100 and max(lengths) > 260 and 29 < min(rates) and max(rates) < 56
    assert video_timing(40, (60, 300), None, np.random.default_rng(0)) == (40, None)  # at most the clip's frames
    assert video_timing(40, None, None, np.random.default_rng(0)) == (40, None)
    with pytest.raises(ValueError, match=r"frames=\[9, 3\]"):
        video_timing(40, (9, 3), None, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"rates=\[0, 30\]"):
        video_timing(40, None, (0, 30), np.random.default_rng(0))


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    root = tmp_path_factory.mktemp("release")
    cfg = StimulusConfig.from_dict({"height": 24, "width": 32, "categories": ["shapes", "patterns"],
                                    "shapes": ["circle", "star"], "motion": {"frames": 30}})
    manifest = write_dataset(root / "data", cfg, 0, {"test": 8}, log=lambda *_: None)
    return root, manifest


def test_videos_keep_a_drawn_share_of_their_frames_at_a_variable_rate_in_constrained_baseline(stored):
    root, _ = stored
    export_split(data_dir=str(root / "data"), out_dir=str(root / "vfr"), scale=1, frames=(10, 40), rates=(30, 55),
                 seed=3)
    paths = [root / "vfr" / p for p in pd.read_csv(root / "vfr" / "metadata.csv").Path]
    paths += [root / "vfr" / "patterns" / p for p in pd.read_csv(root / "vfr" / "patterns" / "metadata.csv").Path]
    counts = []
    for path in paths:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            codec = stream.codec_context
            assert (codec.profile, codec.pix_fmt, codec.width, codec.height) == ("Constrained Baseline", "yuv420p",
                                                                                 32, 24)
            times = np.array([float(f.pts * f.time_base) for f in container.decode(stream)])
        gaps = np.diff(times)
        assert 10 <= len(times) <= 30 and (gaps > 0).all() and gaps.max() / gaps.min() > 1.1
        assert 29 < (len(times) - 1) / (times[-1] - times[0]) < 56
        counts.append(len(times))
    assert len(set(counts)) > 2  # each video its own length
    again = root / "again"
    export_split(data_dir=str(root / "data"), out_dir=str(again), scale=1, frames=(10, 40), rates=(30, 55), seed=3)
    assert all((again / p.relative_to(root / "vfr")).read_bytes() == p.read_bytes() for p in paths)  # seeded


def test_scoring_several_models_decodes_each_video_once(stored, tmp_path, monkeypatch):
    root, manifest = stored
    export_split(data_dir=str(root / "data"), out_dir=str(tmp_path / "official"), scale=2)
    models = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = build_model("early_temporal", TaskSpec.from_manifest(manifest), width=4, dim=16).eval()
        save_model(tmp_path / f"model{seed}.pt", model, "early_temporal", extra={"frame_shapes": manifest["frame_shapes"]})
        models.append(load_model(tmp_path / f"model{seed}.pt"))
    decoded = []

    def counting(path, shapes, **options):
        decoded.append(path)
        return decode_video(path, shapes, **options)

    monkeypatch.setattr(scoring, "decode_video", counting)
    both = scoring.score_models(models, tmp_path / "official", log=lambda *_: None)
    assert len(decoded) == 4 == len(both[0][0]) == len(both[1][0])  # 4 shapes videos, each decoded once for both
    alone = [scoring.score_folder(*m, tmp_path / "official", log=lambda *_: None) for m in models]
    assert all(a[0] == b[0] and a[1].equals(b[1]) for a, b in zip(alone, both))  # the same answers either way


def quick_config() -> dict:
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def test_the_default_export_is_written_like_the_release_in_fonts_training_never_used():
    config = quick_config()
    pipeline = validate(copy.deepcopy(config), schema=SCHEMA)
    export = pipeline.export
    cfg = StimulusConfig.from_pipeline(shifted_stimulus(pipeline.data, export["shift"]))
    shapes = cfg.frame_shapes
    assert {shapes[c][1:] for c in ("words", "shapes", "images", "videos")} == {(540, 960)}
    assert shapes["words"][0] == 150 and shapes["shapes"][0] == 300 and export["frames"] == [60, 300]
    assert cfg.motion.render_scale == 1 and cfg.motion.noise == "binary" and export["scale"] == 1
    assert cfg.motion_of("shapes").density == 0.79 and cfg.motion_of("words").density == 0.5
    assert cfg.words.case == "lower" and cfg.words.two_lines == 1.0 and cfg.placement.rotation == "any"
    assert export["test_size"] // len(cfg.categories) == 28  # each of the 14 moving-figure classes twice
    trained = StimulusConfig.from_pipeline(pipeline.data)
    assert cfg.words.fonts and not set(expand_fonts(cfg.words.fonts)) & set(expand_fonts(trained.words.fonts))


def test_an_export_that_shares_fonts_with_training_is_refused():
    config = quick_config()
    config["data"]["words"]["fonts"] = ["bold-sans"]  # the group holds Manrope and Hanken Grotesk
    with pytest.raises(ConfigError, match=r"export\.shift: words\.fonts \['manrope-bold', 'manrope-extrabold', "
                                          r"'hanken-grotesk-bold'\] are also training's"):
        validate(config, schema=SCHEMA)
    config = quick_config()
    update_config(config, {"export": {"shift": {"words": {"fonts": ["lato-bold"]}}}, "data": {"words": {
        "fonts": ["lato-bold", "roboto-bold"]}}})
    with pytest.raises(ConfigError, match=r"words\.fonts \['lato-bold'\] are also training's"):
        validate(config, schema=SCHEMA)
