"""Event videos for temporal grounding: events are well formed, videos are pure functions of
(config, seed, split, index), and a figure is in the motion during its event and nowhere else."""

import json

import numpy as np
import pytest
import torch

from timeblind.data.grounding import (grounding_sample, load_grounding_split, stimulus_config,
                                      write_grounding_dataset)
from timeblind.stimuli.categories import ClassInfo
from timeblind.stimuli.events import Event, EventConfig, draw_events, render_event_video
from timeblind.stimuli.motion import opponent_energy

DATA = {"seed": 3, "categories": ["shapes", "images", "videos"], "height": 16, "width": 16,
        "videos": {"what": ["circle", "square"]}, "train_size": 12, "val_size": 4, "test_size": 0}
EVENTS = {"frames": 32, "events": [1, 2], "event_frames": [8, 12], "gap": 4}
QUIET = {"log": lambda *_: None}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("grounding")
    return root, write_grounding_dataset(root, DATA, EVENTS, **QUIET)


def _check_events(events: list[Event], cfg: EventConfig) -> None:
    lo, hi = cfg.events
    assert lo <= len(events) <= hi
    assert len({e.name for e in events}) == len(events), "events of one video show distinct classes"
    for e in events:
        assert 0 <= e.start < e.end <= cfg.frames
        assert cfg.event_frames[0] <= e.end - e.start <= cfg.event_frames[1]
    for a, b in zip(events, events[1:]):
        assert b.start - a.end >= cfg.gap, (a, b)


def test_draw_events_respects_bounds_gaps_and_distinct_classes():
    classes = [ClassInfo(c, f"{c}{k}", ()) for c in ("shapes", "words") for k in range(4)]
    cfg = EventConfig()  # 3 events of up to 24 frames would not fit 64: lengths must be capped
    rng = np.random.default_rng(0)
    starts, ends, counts = [], [], set()
    for _ in range(500):
        drawn = draw_events(classes, cfg, rng)
        assert [d[1] for d in drawn] == sorted(d[1] for d in drawn)
        _check_events([Event(classes[k].name, classes[k].category, s, e) for k, s, e in drawn], cfg)
        counts.add(len(drawn))
        starts.append(drawn[0][1]), ends.append(drawn[-1][2])
    assert counts == {1, 2, 3}
    assert min(starts) == 0 and max(ends) == cfg.frames, "events reach both ends of the video"


def test_too_few_classes_for_distinct_events():
    with pytest.raises(ValueError, match="2 classes for up to 3 events"):
        draw_events([ClassInfo("shapes", n, ()) for n in "ab"], EventConfig(), np.random.default_rng(0))


@pytest.mark.parametrize("kwargs, message", [
    ({"event_frames": (30, 20)}, r"event_frames=\(30, 20\): expected min <= max"),
    ({"events": (3, 2)}, r"events=\(3, 2\): expected min <= max"),
    ({"events": (0, 0)}, r"events=\(0, 0\): expected .*max >= 1"),
    ({"event_frames": (1, 8)}, r"event_frames=\(1, 8\): expected 2 <= min"),
    ({"event_frames": (12, 80)}, r"max <= frames=64"),
    ({"gap": -1}, r"gap=-1: expected"),
    ({"frames": 40, "events": (1, 3)}, r"3 events of 12 frames with gaps need 44 frames, expected at most frames=40"),
])
def test_config_validation_names_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EventConfig(**kwargs)


def test_from_dict_converts_lists_and_names_unknown_keys():
    assert EventConfig.from_dict(EVENTS) == EventConfig(32, (1, 2), (8, 12), 4)
    with pytest.raises(ValueError, match=r"unknown event config keys \['length'\]"):
        EventConfig.from_dict({"length": 10})


def test_patterns_are_refused():
    with pytest.raises(ValueError, match="patterns"):
        write_grounding_dataset("unused", {**DATA, "categories": ["shapes", "patterns"]}, EVENTS, **QUIET)
    stim = stimulus_config(DATA, EventConfig.from_dict(EVENTS))
    with pytest.raises(ValueError, match="'patterns'"):
        render_event_video(stim, [ClassInfo("patterns", "count", (), ("count",))], [(0, 0, 8)], 32,
                           np.random.default_rng(0))


def test_stored_videos_are_pure_functions_of_seed_split_index(dataset, tmp_path):
    root, manifest = dataset
    cfg = EventConfig.from_dict(EVENTS)
    assert manifest["counts"] == {"train": 12, "val": 4}  # empty splits are skipped
    assert not (root / "test").exists()
    videos, events, loaded = load_grounding_split(root, "train")
    assert videos.shape == (12, 32, 16, 16) and videos.dtype == np.uint8
    assert loaded == manifest
    stim = stimulus_config(DATA, cfg)
    for i in (0, 7):
        video, evs, _ = grounding_sample(stim, cfg, DATA["seed"], "train", i)
        assert np.array_equal(videos[i], video) and events[i] == evs
    for evs in events:
        _check_events(evs, cfg)
    # the same bytes again, with two worker processes
    again = write_grounding_dataset(tmp_path, DATA, EVENTS, workers=2, **QUIET)
    assert again["files"] == manifest["files"]
    assert (tmp_path / "train" / "videos.npy").read_bytes() == (root / "train" / "videos.npy").read_bytes()
    assert not list(tmp_path.rglob("*.tmp*")), "atomic writes leave no temporary files"


def test_held_out_words_appear_only_in_their_split(tmp_path):
    data = {"seed": 0, "categories": ["words"], "height": 24, "width": 48, "words": {"vocabulary": 12, "held_out": 4},
            "train_size": 6, "val_size": 3, "test_size": 3}
    manifest = write_grounding_dataset(tmp_path, data, EVENTS, **QUIET)
    words = {s: set(manifest["classes"][s]["words"]) for s in ("train", "val", "test")}
    assert len(words["train"]) == 8 and len(words["val"]) == 2 and len(words["test"]) == 2
    assert not words["train"] & (words["val"] | words["test"]) and not words["val"] & words["test"]
    for split in words:
        _, events, _ = load_grounding_split(tmp_path, split)
        assert {e.name for evs in events for e in evs} <= words[split]


def test_loading_names_the_folder(tmp_path, dataset):
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        load_grounding_split(tmp_path, "train")
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "timeblind.stimuli/2"}))
    with pytest.raises(ValueError, match=f"{tmp_path} is not a grounding data set"):
        load_grounding_split(tmp_path, "train")
    with pytest.raises(ValueError, match="split 'test' is not in"):
        load_grounding_split(dataset[0], "test")


def _runs(active: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of frames outside every event."""
    edges = np.flatnonzero(np.diff(np.concatenate([[1], active.astype(int), [1]])))
    return list(zip(edges[::2], edges[1::2]))


def test_figure_is_in_the_motion_only_during_its_event():
    """Opponent motion energy separates the figure region from the rest inside an event's frames,
    and not in frames outside every event (the same region, the same video)."""
    cfg = EventConfig.from_dict(EVENTS)
    stim = stimulus_config(DATA, cfg)
    inner = np.zeros((16, 16), bool)
    inner[2:-2, 2:-2] = True  # opponent_energy wraps around the border

    def contrast(frames, region):
        # the sign is left out: the detector takes the larger moving area for the ground
        energy = opponent_energy(frames, smooth=1)
        return abs(energy[region & inner].mean() - energy[~region & inner].mean())

    during, between = [], []
    for i in range(12):
        video, events, masks = grounding_sample(stim, cfg, 0, "train", i)
        for e in events:
            during.append(contrast(video[e.start:e.end], masks[e.start:e.end].any(0)))
        region = masks.any(0)  # every figure of the video
        assert region.any()
        for start, end in _runs(masks.any(axis=(1, 2))):
            if end - start >= 4:  # at least 3 frame pairs
                between.append(contrast(video[start:end], region))
    assert len(between) >= 10
    assert np.mean(during) > 0.8, during
    assert np.mean(between) < 0.35, between
    assert np.mean(during) > 3 * np.mean(between)


def test_an_align_stage_repeats_exactly(tmp_path):
    """Same data, encoder and seed: the same decoder weights and losses, run after run (the
    decoder's first weights come from the seed, not from whatever the process drew before)."""
    from timeblind.core.tasks import TaskSpec
    from timeblind.models.checkpoint import save_model
    from timeblind.models.registry import build_model
    from timeblind.steps.grounding_stage import grounding_stage

    root = tmp_path / "data"
    write_grounding_dataset(root, {**DATA, "train_size": 8, "val_size": 4, "test_size": 2}, EVENTS, **QUIET)
    torch.manual_seed(0)
    encoder = tmp_path / "encoder.pt"  # an untrained encoder: its frame tokens only need to be the same
    tasks = TaskSpec(("circle", "square"), ("shapes", "shapes"), ("shapes",), 4)
    save_model(encoder, build_model("early_temporal", tasks, width=4, dim=8, stem_channels=4), "early_temporal",
               {"frame_shapes": {"shapes": [4, 16, 16]}})
    runs = []
    for k in range(2):
        torch.manual_seed(k)  # a different global RNG state before each run
        out = tmp_path / f"align{k}"
        out.mkdir()
        metrics = grounding_stage(
            data_dir=str(root), out_dir=str(out), stage="align", variant="coupled", encoder="early_temporal", seed=0,
            encoder_model=str(encoder), align_dir=str(out), previous="", time_tokens=8, window_stride=4,
            decoder={"dim": 16, "layers": 2, "heads": 2, "evidence_layer": 1}, max_tokens=16,
            training={"batch_size": 4, "max_steps": 3, "lr": 2e-3, "weight_decay": 0.01, "val_every": 3},
            results_dir=str(tmp_path / "results"))
        runs.append((metrics["final_train_loss"], torch.load(out / "decoder.pt", weights_only=True)["state_dict"]))
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(runs[0][1][name], runs[1][1][name]) for name in runs[0][1])
