"""Scoring several models on one exported folder decodes each video once."""

import pytest
import torch

from timeblind.core.tasks import TaskSpec
from timeblind.data.dataset import StimulusConfig, write_dataset
from timeblind.evaluation import spookybench as scoring
from timeblind.io.spookybench import load_video
from timeblind.models.checkpoint import load_model, save_model
from timeblind.models.registry import build_model
from timeblind.steps.export import export_split


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    root = tmp_path_factory.mktemp("release")
    cfg = StimulusConfig.from_dict({"height": 24, "width": 32, "categories": ["shapes", "patterns"],
                                    "shapes": ["circle", "star"], "motion": {"frames": 30}})
    manifest = write_dataset(root / "data", cfg, 0, {"test": 8}, log=lambda *_: None)
    return root, manifest


def test_scoring_several_models_decodes_each_video_once(stored, tmp_path, monkeypatch):
    root, manifest = stored
    export_split(data_dir=str(root / "data"), out_dir=str(tmp_path / "official"), scale=2)
    torch.manual_seed(0)
    model = build_model("early_temporal", TaskSpec.from_manifest(manifest), width=4, dim=16).eval()
    save_model(tmp_path / "model.pt", model, "early_temporal", extra={"frame_shape": [8, 24, 32]})
    model, info = load_model(tmp_path / "model.pt")
    decoded = []

    def counting(path):
        decoded.append(path)
        return load_video(path)

    monkeypatch.setattr(scoring, "load_video", counting)
    cache = {}
    first = scoring.score_folder(model, info, tmp_path / "official", log=lambda *_: None, cache=cache)
    second = scoring.score_folder(model, info, tmp_path / "official", log=lambda *_: None, cache=cache)
    assert len(decoded) == 4 == len(first[0])  # 4 shapes videos, decoded by the first model only
    assert first[0] == second[0] and first[1].equals(second[1])
    plain = scoring.score_folder(model, info, tmp_path / "official", log=lambda *_: None)
    assert plain[0] == first[0] and len(decoded) == 8  # without a cache: decoded again, the same answers
