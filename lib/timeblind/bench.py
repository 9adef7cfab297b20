"""`make bench`: speed measurements as JSON lines (name, value, unit, baseline, baseline_name).

Every value comes with a baseline measured in the same run on the same machine:
- the per-step overhead of papermill + MLflow against calling the library directly;
- a no-op rerun of the pipeline against its first full run (tiny configuration);
- training throughput of each encoder at the quick configuration's input size;
- stimulus generation in frames/s at 224x224 and 64x64 against the seed document's reference
  generator (stimuli/reference.py), timed in the same run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "tests" / "config" / "tiny.yaml"


def emit(name: str, value: float, unit: str, baseline: float, baseline_name: str, **extra) -> None:
    print(json.dumps({"name": name, "value": round(value, 4), "unit": unit, "baseline": round(baseline, 4),
                      "baseline_name": baseline_name, **extra}), flush=True)


def _timed(argv: list[str], **kwargs) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, **kwargs)
    return time.perf_counter() - start


def step_overhead(workdir: Path) -> None:
    """The generate step on a small data set: the notebook (fresh kernel, imports, MLflow run,
    HTML copy) against the same library work (data set and preview figure) done directly in a
    fresh interpreter, without papermill or MLflow."""
    stimulus = {"categories": ["shapes"], "height": 32, "width": 32, "frames": 8}
    params = dict(seed=0, train_size=200, val_size=40, test_size=40, stimulus=stimulus, workers=1)
    direct = f"""
from pathlib import Path
from timeblind.data.dataset import StimulusConfig
from timeblind.steps import build_dataset
cfg = StimulusConfig.from_pipeline({stimulus!r})
build_dataset(Path("{workdir}/direct"), Path("{workdir}/direct/preview"), cfg, 0, {{"train": 200, "val": 40, "test": 40}})
"""
    direct_seconds = _timed([sys.executable, "-c", direct])
    nb_params = {**params, "out_dir": f"{workdir}/nb", "preview": f"{workdir}/nb/preview", "results_dir": str(workdir)}
    _timed([sys.executable, "-m", "timeblind", "init-tracking", "--results-dir", str(workdir)])
    notebook_seconds = _timed([sys.executable, "-m", "timeblind", "run-notebook", str(REPO / "notebooks/01_generate.ipynb"),
                               f"{workdir}/generate.ipynb", "--html", f"{workdir}/generate.html",
                               "--params", json.dumps(nb_params), "--cwd", str(workdir)])
    emit("step_seconds_notebook_mlflow", notebook_seconds, "s", direct_seconds, "step_seconds_direct_call")
    emit("step_overhead_seconds", notebook_seconds - direct_seconds, "s", 3.0, "goal")


def noop_rerun(workdir: Path) -> None:
    snakemake = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory",
                 str(workdir), "--configfile", str(TINY), "--cores", "2"]
    first = _timed(snakemake)
    again = _timed(snakemake)
    emit("pipeline_noop_rerun_seconds", again, "s", first, "pipeline_first_run_seconds_tiny_config")


def train_throughput(steps: int = 15, batch: int = 64) -> None:
    import torch

    from timeblind.models import build_classifier

    torch.manual_seed(0)
    video = torch.randn(batch, 8, 32, 32)  # the quick configuration's clip size
    target = torch.randint(0, 8, (batch,))
    results = {}
    for encoder in ("framewise", "early_temporal"):
        model = build_classifier(encoder, 8, width=16)
        optimizer = torch.optim.AdamW(model.parameters(), 1e-3)
        for i in range(steps + 3):
            if i == 3:  # after warm-up
                start = time.perf_counter()
            loss = torch.nn.functional.cross_entropy(model(video), target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        results[encoder] = (steps * batch / (time.perf_counter() - start), sum(p.numel() for p in model.parameters()))
    for encoder, (clips_per_second, parameters) in results.items():
        emit(f"train_clips_per_second.{encoder}", clips_per_second, "clips/s", results["framewise"][0],
             "train_clips_per_second.framewise", parameters=parameters, device="cpu",
             threads=torch.get_num_threads(), input="8x32x32", batch=batch)


def _rate(make_clip, frames: int, seconds: float, repeats: int = 5) -> float:
    """Best of `repeats` timing windows (like timeit), so a busy moment does not decide the number."""
    make_clip()  # warm-up
    best = 0.0
    for _ in range(repeats):
        start, done = time.perf_counter(), 0
        while time.perf_counter() - start < seconds / repeats:
            make_clip()
            done += frames
        best = max(best, done / (time.perf_counter() - start))
    return best


def stimulus_fps(seconds: float = 3.0, frames: int = 16) -> None:
    """Frames/s of one clip at a time, one process. Ours: a new shape mask, direction and noise
    per clip, in the storage format (bit-packed binary noise), as grey uint8 frames, and batched
    in torch on the training device. The seed's: its per-frame Gaussian RGB frames as PIL images."""
    import numpy as np
    import torch

    from timeblind.data.dataset import StimulusConfig
    from timeblind.stimuli.reference import seed_reference_example
    from timeblind.stimuli.torch_render import render_batch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    for size in (224, 64):
        seed_rng = np.random.RandomState(0)  # leaves numpy's global state alone
        baseline = _rate(lambda: seed_reference_example("biological", frames, seed_rng, size=size), frames, seconds)
        cfg = StimulusConfig.from_dict({"height": size, "width": size, "motion": {"frames": frames}})
        counter = iter(range(10**9))
        stored = _rate(lambda: cfg.stored_sample(0, "train", next(counter)), frames, seconds)
        grey = _rate(lambda: cfg.sample(0, "train", next(counter)), frames, seconds)
        layout = cfg.layout(0, "train", 0)
        batch = 64
        masks = torch.from_numpy(np.broadcast_to(layout.mask, (batch, size, size)).copy()).to(device)
        angles = torch.rand(batch, device=device) * 360
        generator = torch.Generator(device=device).manual_seed(0)

        def torch_batch():
            render_batch(masks, angles, cfg.motion, generator)
            if device == "cuda":
                torch.cuda.synchronize()

        on_device = _rate(torch_batch, frames * batch, seconds)
        common = dict(unit="frames/s", baseline=baseline, baseline_name=f"seed_reference_fps_{size}", size=size,
                      frames_per_clip=frames)
        for name, value in (("stored_bits", stored), ("grey_uint8", grey), (f"torch_{device}_batch64", on_device)):
            emit(f"stimulus_fps_{size}.{name}", value, **common, speedup=round(value / baseline, 1))


def main() -> None:
    stimulus_fps()
    with tempfile.TemporaryDirectory(prefix="timeblind-bench-") as tmp:
        step_overhead(Path(tmp) / "step")
        noop_rerun(Path(tmp) / "pipeline")
    train_throughput()


if __name__ == "__main__":
    main()
