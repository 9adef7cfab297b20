"""`make bench`: speed measurements as JSON lines (name, value, unit, baseline, baseline_name).

Every value comes with a baseline measured in the same run on the same machine:
- the per-step overhead of papermill + MLflow against calling the library directly;
- a no-op rerun of the pipeline against its first full run (tiny configuration);
- training throughput of each encoder at the quick configuration's input size.
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
    params = dict(seed=0, height=32, width=32, frames=8, speed=1, density=0.5, coherence=1.0,
                  train_size=200, val_size=40, test_size=40)
    direct = f"""
from pathlib import Path
from timeblind.data.shapes import ShapesConfig
from timeblind.steps import build_shapes_dataset
cfg = ShapesConfig.from_dict({{"height": 32, "width": 32, "motion": {{"frames": 8}}}})
build_shapes_dataset(Path("{workdir}/direct"), Path("{workdir}/direct/preview"), cfg, 0,
                     {{"train": 200, "val": 40, "test": 40}})
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


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="timeblind-bench-") as tmp:
        step_overhead(Path(tmp) / "step")
        noop_rerun(Path(tmp) / "pipeline")
    train_throughput()


if __name__ == "__main__":
    main()
