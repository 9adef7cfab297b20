"""`make bench`'s per-encoder costs: every registered encoder, parameter and FLOP counts, JSON lines.
Tiny inputs and timing windows; nothing here asserts a speed."""

import json
import math
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import bench
from timeblind.models.config import ENCODER_CONFIGS
from timeblind.models.registry import ENCODERS, build_encoder

TINY = {"batch": 2, "frames": 8, "height": 16, "width": 16, "seconds": 0.01, "repeats": 1, "warmup": 0}


pytestmark = pytest.mark.usefixtures("one_thread")


@dataclass
class MapConfig:
    frames: int = 4
    dim: int = 6


def register(monkeypatch, name: str, module: type, config: type) -> None:
    """An encoder in the registry for one test: its module and its config dataclass."""
    monkeypatch.setitem(ENCODERS, name, module)
    monkeypatch.setitem(ENCODER_CONFIGS, name, config)


class MapEncoder(nn.Module):
    """(B, T, H, W) -> feature map (B, D, H, W) by a 1x1 conv over the frames: known FLOPs."""

    def __init__(self, cfg: MapConfig):
        super().__init__()
        self.cfg = cfg
        self.conv = nn.Conv2d(cfg.frames, cfg.dim, 1, bias=False)
        self.out_dim = cfg.dim

    def forward(self, video):
        return self.conv(video)


def test_forward_flops_of_a_linear_layer():
    assert bench.forward_flops(nn.Linear(5, 7), torch.randn(3, 5)) == 2 * 3 * 5 * 7


def test_forward_flops_count_attention_on_cpu():
    """The CPU attention kernel is not in FlopCounterMode's table; the bench adds it."""

    class Attend(nn.Module):
        def forward(self, q):
            return F.scaled_dot_product_attention(q, q, q)

    b, h, n, d = 2, 3, 5, 4
    q = torch.randn(b, h, n, d, requires_grad=True)
    assert bench.forward_flops(Attend(), q) == 2 * (2 * b * h * n * n * d)


def test_pool_features():
    vector = torch.randn(2, 3)
    assert bench.pool_features(vector) is vector
    fmap = torch.randn(2, 3, 4, 5)
    assert torch.allclose(bench.pool_features(fmap), fmap.mean((2, 3)))
    with pytest.raises(ValueError, match="expected"):
        bench.pool_features(torch.randn(2, 3, 4))


def test_options_come_from_the_config_when_listed(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("encoders:\n  framewise:\n    width: 4\n    heads: 2\n  early_temporal:\n"
                      "  early_difference:\n    encoder: early_temporal\n    stem: difference\n")  # a variant
    options = bench.encoder_options(config)
    assert set(options) == set(ENCODERS)
    assert options["framewise"] == ({"width": 4, "heads": 2}, "config")
    assert options["early_temporal"] == ({}, "config")
    assert all(options[name] == ({}, "defaults") for name in ENCODERS if name not in ("framewise", "early_temporal"))


@pytest.fixture(scope="module")
def records():
    """One tiny measurement of every registered encoder, shared by the tests below."""
    return bench.encoder_costs(**TINY)


def test_every_registered_encoder_gets_a_record(records, repo):
    assert [r["encoder"] for r in records] == list(ENCODERS)
    options = bench.encoder_options(repo / "config" / "config.yaml")
    for r in records:
        assert r["device"] == "cpu" and r["input"] == "8x16x16" and r["batch"] == 2
        for key in ("clips_per_s", "flops_per_clip"):
            assert math.isfinite(r[key]) and r[key] > 0, (r["encoder"], key, r[key])
        opts, source = options[r["encoder"]]
        assert (r["option_values"], r["options"]) == (opts, source)
        assert r["parameters"] == sum(p.numel() for p in build_encoder(r["encoder"], **opts).parameters())
        assert r["head_parameters"] == (r["out_dim"] + 1) * 8


def test_json_lines_per_encoder_metric_and_device(records, capsys):
    bench.encoder_lines(records)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    metrics = ("train_clips_per_s", "params", "forward_flops_per_clip")
    assert sorted(x["name"] for x in lines) == sorted(f"{m}.{e}.cpu" for e in ENCODERS for m in metrics)
    by_name = {x["name"]: x for x in lines}
    framewise = next(r for r in records if r["encoder"] == "framewise")
    for r in records:
        for m, key in zip(metrics, ("clips_per_s", "parameters", "flops_per_clip")):
            line = by_name[f"{m}.{r['encoder']}.cpu"]
            assert line["value"] == pytest.approx(r[key], abs=1e-4)
            assert line["baseline"] == pytest.approx(framewise[key], abs=1e-4)
            assert line["baseline_name"] == f"{m}.framewise.cpu"
            assert (line["input"], line["batch"], line["options"]) == ("8x16x16", 2, r["options"])
        assert "FlopCounterMode" in by_name[f"forward_flops_per_clip.{r['encoder']}.cpu"]["counts"]


def test_feature_map_encoder_is_pooled_and_its_flops_are_exact(monkeypatch):
    register(monkeypatch, "map_probe", MapEncoder, MapConfig)
    (r,) = bench.encoder_costs(["map_probe"], **{**TINY, "frames": MapConfig.frames})
    T, H, W, D, classes = MapConfig.frames, TINY["height"], TINY["width"], MapConfig.dim, 8
    assert r["feature_shape"] == [D, H, W] and r["options"] == "defaults"
    assert r["flops_per_clip"] == 2 * T * D * H * W + 2 * D * classes  # 1x1 conv + head (pooling: no FLOPs)
    assert r["parameters"] == T * D


def test_a_failing_encoder_is_reported_and_the_others_still_measured(capsys, monkeypatch):
    class Broken(MapEncoder):
        def forward(self, video):
            raise RuntimeError("boom")

    register(monkeypatch, "map_probe", MapEncoder, MapConfig)
    register(monkeypatch, "broken", Broken, MapConfig)
    sizes = {k: v for k, v in TINY.items() if k != "seconds"}
    sizes["frames"] = MapConfig.frames
    assert bench.encoder_bench(["broken", "map_probe"], seconds=TINY["seconds"], devices=["cpu"], **sizes) == 1
    out = capsys.readouterr()
    assert "'broken'" in out.err and "boom" in out.err
    lines = [json.loads(line) for line in out.out.splitlines()]
    assert [x["name"] for x in lines] == [f"{m}.map_probe.cpu" for m in ("train_clips_per_s", "params",
                                                                           "forward_flops_per_clip")]
    assert all(x["baseline"] is None for x in lines)  # no framewise measured in this run


def test_compiled_steps_are_measured_against_eager_ones_of_the_same_run(capsys, monkeypatch):
    compiled = []
    plain_compile = nn.Module.compile
    # the aot_eager backend: dynamo traces as in the bench, without inductor's minutes of C++ build here
    monkeypatch.setattr(nn.Module, "compile", lambda self, **kw: compiled.append(type(self).__name__)
                        or plain_compile(self, backend="aot_eager", **kw))
    register(monkeypatch, "map_probe", MapEncoder, MapConfig)
    sizes = {k: v for k, v in TINY.items() if k != "seconds"}
    assert bench.compile_bench(["map_probe"], seconds=TINY["seconds"], devices=["cpu"],
                               **{**sizes, "frames": MapConfig.frames}) == 0
    assert compiled == ["PooledClassifier"]  # once: the eager measurement stays eager
    lines = {x["name"]: x for x in map(json.loads, capsys.readouterr().out.splitlines())}
    assert set(lines) == {"train_clips_per_s_compiled.map_probe.cpu", "compile_seconds.map_probe.cpu"}
    speed = lines["train_clips_per_s_compiled.map_probe.cpu"]
    assert speed["value"] > 0 and speed["baseline"] > 0 and speed["unit"] == "clips/s"
    assert speed["ratio"] == pytest.approx(speed["value"] / speed["baseline"], rel=1e-2)
    assert lines["compile_seconds.map_probe.cpu"]["baseline"] > 0


def test_main_runs_all_parts_by_default_or_the_ones_named(monkeypatch):
    calls = []
    monkeypatch.setattr(bench, "stimulus_fps", lambda: calls.append("stimulus"))
    monkeypatch.setattr(bench, "step_overhead", lambda workdir: calls.append("step"))
    monkeypatch.setattr(bench, "pipeline", lambda workdir: calls.append("pipeline"))
    monkeypatch.setattr(bench, "encoder_bench", lambda: calls.append("encoders") or 0)
    monkeypatch.setattr(bench, "compile_bench", lambda: calls.append("compile") or 0)
    monkeypatch.setattr(bench, "ddp_speedup", lambda workdir: calls.append("ddp"))
    monkeypatch.setattr(bench, "memory_peaks", lambda workdir: calls.append("memory"))
    monkeypatch.setattr(bench, "sample_efficiency", lambda workdir, emit: calls.append("sample_efficiency"))
    bench.main([])
    assert calls == list(bench.PARTS)
    calls.clear()
    bench.main(["encoders"])
    assert calls == ["encoders"]
    with pytest.raises(SystemExit) as exit_:
        bench.main(["nope"])
    assert exit_.value.code == 2
    monkeypatch.setattr(bench, "encoder_bench", lambda: 1)  # an encoder failed: the run fails
    with pytest.raises(SystemExit) as exit_:
        bench.main(["encoders"])
    assert exit_.value.code == 1


def test_sample_efficiency_counts_clips_to_the_first_validation_at_90_percent(tmp_path):
    from sample_efficiency import best_accuracy, clips_to_target

    curve = tmp_path / "learning_curve.csv"
    curve.write_text("step,clips_seen,shapes\n25,800,0.5\n50,1600,0.92\n75,2400,0.85\n100,3200,0.97\n")
    assert clips_to_target(curve) == 1600
    curve.write_text("step,clips_seen,shapes\n25,800,0.5\n50,1600,0.89\n")
    assert clips_to_target(curve) is None and best_accuracy(curve) == 0.89  # never reached within the cap
