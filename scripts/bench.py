"""`make bench` (python scripts/bench.py [PART...]): speed and memory measurements as JSON lines (name,
value, unit, baseline, baseline_name).

Every value comes with a baseline measured in the same run on the same machine:
- the per-step overhead of papermill + MLflow against calling the library directly, in wall and CPU
  seconds, and in its parts: as pipeline jobs run (forked from a warm server) and cold (every
  process fresh, TIMEBLIND_WARM=0);
- the smoke profile (`make reproduce PROFILE=smoke`) in a fresh working directory against its goal,
  in wall and CPU seconds;
  planning its finished run (`snakemake -n`) and the default profile's DAG there against Snakemake's
  own start (`snakemake -n` of an empty workflow); a no-op `make reproduce PROFILE=smoke` against
  the first run;
- for every registered encoder (timeblind.models.registry.ENCODERS) at the quick configuration's input
  size: training throughput, parameter count and forward FLOPs per clip, against the framewise
  (VLM-like) encoder; on CPU, and also on CUDA with bf16 autocast when torch sees a GPU;
- stimulus generation in frames/s at 224x224 and 64x64 against the seed document's reference
  generator (stimuli/reference.py), timed in the same run;
- for every encoder, training throughput with torch.compile (Module.compile, inductor) against
  the same step uncompiled, and the seconds the first compiled step takes (the compilation)
  against the first uncompiled one: whether `training.torch_compile` pays on this machine;
- data-parallel training (Lightning DDP through timeblind's fit) on two devices against one: two
  gloo processes of one thread each against one process with both threads on CPU, two GPUs
  against one when torch sees two;
- for every encoder, the training clips it needs to first reach 90% validation accuracy on shapes
  (scripts/sample_efficiency.py: one category, one seed, capped) against the frame-wise encoder's;
- the peak memory of `timeblind eval-spookybench` and `timeblind snr` on release-size (960x540)
  videos of 300 and 2000 frames and on a folder of them, against the size the videos decode to.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sample_efficiency import sample_efficiency  # noqa: E402  (scripts/sample_efficiency.py)

REPO = Path(__file__).resolve().parents[1]
PIPELINE_CONFIG = REPO / "config" / "config.yaml"
SMOKE_GOAL_SECONDS = 180  # the smoke profile on 2 cores
STEP_OVERHEAD_GOAL_SECONDS = 3.0


def emit(name: str, value: float, unit: str, baseline: float | None, baseline_name: str, **extra) -> None:
    """One JSON line; baseline None (null) when the baseline could not be measured in this run."""
    print(json.dumps({"name": name, "value": round(value, 4), "unit": unit,
                      "baseline": None if baseline is None else round(baseline, 4),
                      "baseline_name": baseline_name, **extra}), flush=True)


def _timed(argv: list[str], **kwargs) -> float:
    return _timed_cpu(argv, **kwargs)[0]


def _timed_cpu(argv: list[str], **kwargs) -> tuple[float, float]:
    """(wall, CPU) seconds of a command; CPU is user + system time of it and its children."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, **kwargs)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _python_seconds(code: str) -> list[tuple[float, float]]:
    """(wall, CPU) seconds a fresh interpreter measures around each `start()` ... `stop()` of the
    code, so its own start-up is left out."""
    timer = ("import time\nstart = lambda: _t.__setitem__(slice(None), (time.perf_counter(), time.process_time()))\n"
             "stop = lambda: print('timed', time.perf_counter() - _t[0], time.process_time() - _t[1])\n_t = []\n")
    out = subprocess.run([sys.executable, "-c", timer + code], check=True, capture_output=True, text=True)
    return [(float(w), float(c)) for _, w, c in (line.split() for line in out.stdout.splitlines()
                                                 if line.startswith("timed "))]


GENERATE_STIMULUS = {"categories": ["shapes"], "height": 32, "width": 32, "frames": 8}
GENERATE_SIZES = {"train": 200, "val": 40, "test": 40}


def _papermill_phases(executed: Path) -> dict[str, float]:
    """From papermill's timestamps in an executed notebook: kernel start (papermill's start to the
    first cell), the cells, and what follows the last cell (kernel shutdown, final write); also
    papermill's start and end as POSIX times."""
    from datetime import datetime, timezone

    nb = json.loads(executed.read_text())
    stamp = datetime.fromisoformat
    meta = nb["metadata"]["papermill"]
    cells = [c["metadata"]["papermill"] for c in nb["cells"] if c["metadata"].get("papermill", {}).get("start_time")]
    first, last = stamp(cells[0]["start_time"]), max(stamp(c["end_time"]) for c in cells)
    utc = lambda text: stamp(text).replace(tzinfo=timezone.utc).timestamp()  # papermill writes UTC
    return {"papermill": meta["duration"], "kernel_start": (first - stamp(meta["start_time"])).total_seconds(),
            "cells": sum(c["duration"] for c in cells), "after_last_cell": (stamp(meta["end_time"]) - last).total_seconds(),
            "start": utc(meta["start_time"]), "end": utc(meta["end_time"])}


def _kernel_folder() -> Path:
    """A private folder for warm servers (steps/warm.py), short enough for a socket's path."""
    return Path(tempfile.mkdtemp(prefix="tb-bench-", dir="/tmp"))


def _server_ready(env: dict, timeout: float = 300) -> int:
    """The pid of the warm server of `env`'s folder once it serves."""
    from timeblind.steps import warm

    folder = Path(env["TIMEBLIND_WARM_DIR"])
    deadline = time.monotonic() + timeout
    while not (list(folder.glob("*.sock")) and warm.servers(folder)):
        if time.monotonic() > deadline:
            raise RuntimeError("no warm server: " + "".join(p.read_text() for p in folder.glob("*.log")))
        time.sleep(0.5)
    return next(iter(warm.servers(folder)))


def step_overhead(workdir: Path, repeats: int = 3) -> None:
    """The generate step on a small data set: the notebook (runner, kernel, MLflow run, HTML copy)
    against the same library work (data set and preview figure) done directly in a fresh
    interpreter, without papermill or MLflow; wall and CPU seconds.

    As a pipeline job runs it (warm: the command and the kernel forked from a warm server that is
    already up, as for every job but a run's first, steps/warm.py), with its CPU time counted in the
    server's, and in parts from papermill's timestamps: the runner before the kernel starts, the
    kernel's start, the cells against the direct call (the step's own work, MLflow's run), after the
    last cell, and the runner after papermill (HTML copy, notebook attached to the run). Then cold
    (TIMEBLIND_WARM=0: every process fresh, as before warm servers), in parts from papermill's
    timestamps and from each part run alone in a fresh interpreter (the runner's imports, MLflow's
    import and store, its run with the step's logging, the HTML copy); `other` is what those leave
    unexplained. Wall and CPU seconds are medians of `repeats` runs; the parts are the last run's."""
    from timeblind.steps import warm

    workdir.mkdir(parents=True, exist_ok=True)
    params = dict(seed=0, **{f"{k}_size": v for k, v in GENERATE_SIZES.items()}, stimulus=GENERATE_STIMULUS,
                  workers=1)
    direct = f"""
from pathlib import Path
from timeblind.data.dataset import StimulusConfig
from timeblind.steps.generate import build_dataset
cfg = StimulusConfig.from_pipeline({GENERATE_STIMULUS!r})
build_dataset(Path("{workdir}/direct"), Path("{workdir}/direct/preview"), cfg, 0, {GENERATE_SIZES!r})
"""
    direct_runs = [_timed_cpu([sys.executable, "-c", direct]) for _ in range(repeats)]
    direct_wall, direct_cpu = _median([w for w, _ in direct_runs]), _median([c for _, c in direct_runs])
    nb_params = {**params, "out_dir": f"{workdir}/nb", "preview": f"{workdir}/nb/preview", "results_dir": str(workdir)}
    cold_env = {**os.environ, warm.SWITCH: "0"}
    _timed([sys.executable, "-m", "timeblind", "init-tracking", "--results-dir", str(workdir)], env=cold_env)

    def run(executed: Path, env: dict) -> tuple[float, float, float, float]:
        """wall, CPU (this process's children), start and end (POSIX) of one run of the notebook."""
        start = time.time()
        wall, cpu = _timed_cpu([
            sys.executable, "-m", "timeblind", "run-notebook", str(REPO / "notebooks/01_generate.ipynb"), str(executed),
            "--html", f"{workdir}/generate.html", "--params", json.dumps(nb_params), "--cwd", str(workdir)], env=env)
        return wall, cpu, start, time.time()

    # Warm, as in a pipeline run: a first run starts the server, a second one is served by it.
    folder = _kernel_folder()
    warm_env = {**os.environ, "TIMEBLIND_WARM_DIR": str(folder)}
    warm_env.pop(warm.SWITCH, None)
    try:
        run(workdir / "first.ipynb", warm_env)
        server = _server_ready(warm_env)
        run(workdir / "second.ipynb", warm_env)
        walls, cpus = [], []
        executed = workdir / "generate.ipynb"
        for _ in range(repeats):
            time.sleep(1.5)  # the server collects its ended children every second
            before = warm.cpu_seconds(server)
            wall, client_cpu, start, end = run(executed, warm_env)
            time.sleep(1.5)
            walls.append(wall)
            cpus.append(client_cpu + warm.cpu_seconds(server) - before)
        wall, cpu = _median(walls), _median(cpus)
    finally:
        warm.stop_servers(folder)
        shutil.rmtree(folder, ignore_errors=True)
    emit("step_seconds_notebook_mlflow", wall, "s", direct_wall, "step_seconds_direct_call", warm_server=True)
    emit("step_cpu_seconds_notebook_mlflow", cpu, "s", direct_cpu, "step_cpu_seconds_direct_call", warm_server=True)
    overhead = wall - direct_wall
    emit("step_overhead_seconds", overhead, "s", STEP_OVERHEAD_GOAL_SECONDS, "goal", warm_server=True)
    emit("step_overhead_cpu_seconds", cpu - direct_cpu, "s", STEP_OVERHEAD_GOAL_SECONDS, "goal", warm_server=True)
    phases = _papermill_phases(executed)
    parts = {"runner_before_kernel": phases["start"] - start, "kernel_start": phases["kernel_start"],
             "cells_against_direct_call": phases["cells"] - direct_wall, "after_last_cell": phases["after_last_cell"],
             "runner_after_papermill": end - phases["end"]}
    for name, seconds in parts.items():
        emit(f"step_overhead_part.{name}", seconds, "s", overhead, "step_overhead_seconds", warm_server=True)

    # Cold: every process fresh.
    executed = workdir / "generate_cold.ipynb"
    cold = [run(executed, cold_env)[:2] for _ in range(repeats)]
    notebook_wall, notebook_cpu = _median([w for w, _ in cold]), _median([c for _, c in cold])
    emit("step_seconds_notebook_mlflow_cold", notebook_wall, "s", direct_wall, "step_seconds_direct_call")
    emit("step_cpu_seconds_notebook_mlflow_cold", notebook_cpu, "s", direct_cpu, "step_cpu_seconds_direct_call")
    overhead = notebook_wall - direct_wall
    emit("step_overhead_seconds_cold", overhead, "s", STEP_OVERHEAD_GOAL_SECONDS, "goal")
    emit("step_overhead_cpu_seconds_cold", notebook_cpu - direct_cpu, "s", STEP_OVERHEAD_GOAL_SECONDS, "goal")

    phases = _papermill_phases(executed)
    (runner_imports,) = _python_seconds("start()\nimport timeblind.steps.runner, papermill\nstop()")
    mlflow_import, mlflow_run = _python_seconds(f"""
from pathlib import Path
import timeblind.steps.generate  # the step's own imports, not timed: the direct call has them too
from timeblind import tracking
start()
tracking.init_store({str(workdir)!r})  # imports mlflow and opens its store
stop()
start()
with tracking.step_run("generate", {nb_params!r}, {{"categories": "shapes"}}, {str(workdir)!r}) as run:
    run.log_metrics({{"clips_train": 200, "classes": 8}})
    run.log_artifact({str(workdir / "nb/manifest.json")!r})
    nb = Path({str(workdir / "nb")!r})
    for path in [*nb.glob("preview.*"), *nb.glob("preview_animations/*.gif")]:
        run.log_artifact(path, "figures")
stop()
""")
    # as the runner does it: the exporter readied on the notebook while the kernel runs, untimed
    (html_copy,) = _python_seconds(
        f"from timeblind.steps.runner import html_exporter, to_html\n"
        f"exporter = html_exporter({str(REPO / 'notebooks/01_generate.ipynb')!r})\nstart()\n"
        f"to_html({str(executed)!r}, {str(workdir / 'again.html')!r}, exporter)\nstop()")
    alone = {"runner_imports": runner_imports, "mlflow_import_and_store": mlflow_import, "mlflow_run_and_logging":
             mlflow_run, "html_copy": html_copy}
    parts = {name: wall for name, (wall, _) in alone.items()} | {
        "kernel_start": phases["kernel_start"], "after_last_cell": phases["after_last_cell"]}
    parts["other"] = overhead - sum(parts.values())
    for name, seconds in parts.items():
        cpu = {"cpu_seconds": round(alone[name][1], 4)} if name in alone else {}
        emit(f"step_overhead_part_cold.{name}", seconds, "s", overhead, "step_overhead_seconds_cold", **cpu)


def _linked_checkout(workdir: Path) -> Path:
    """A fresh working directory whose sources are links to this checkout, so `make reproduce` runs
    there as in a clone and writes its results/ and .snakemake/ there."""
    workdir.mkdir(parents=True, exist_ok=True)
    for name in ("Makefile", "Snakefile", "pyproject.toml", "config", "envs", "lib", "notebooks", "workflow"):
        (workdir / name).symlink_to(REPO / name)
    return workdir


def _median(seconds: list[float]) -> float:
    return sorted(seconds)[len(seconds) // 2]


def pipeline(workdir: Path, repeats: int = 3) -> None:
    """`make reproduce PROFILE=smoke` in a fresh working directory (this interpreter's environment,
    never reinstalled), then what the issue of a light pipeline asks about it: planning the
    finished run (`snakemake -n`) and a no-op `make reproduce PROFILE=smoke`, medians of `repeats`.
    Baselines: Snakemake's own start (`snakemake -n` on an empty workflow), the first run."""
    from timeblind.steps import warm

    checkout = _linked_checkout(workdir / "checkout")
    venv = Path(sys.executable).parent.parent
    make = ["make", "--no-print-directory", "-C", str(checkout), "-o", str(venv / ".installed"), "reproduce",
            "PROFILE=smoke", "CORES=2", f"VENV={venv}"]
    folder = _kernel_folder()  # no warm server yet, as on a machine that never ran the pipeline
    env = {**os.environ, "TIMEBLIND_WARM_DIR": str(folder)}
    try:
        first, cpu = _timed_cpu(make, env=env)
        cpu += sum(warm.cpu_seconds(pid) for pid in warm.servers(folder))  # the warm server and its children
    finally:
        warm.stop_servers(folder)
        shutil.rmtree(folder, ignore_errors=True)
    emit("smoke_profile_seconds", first, "s", SMOKE_GOAL_SECONDS, "goal", cores=2,
         command="make reproduce PROFILE=smoke (fresh working directory, the report included)")
    emit("smoke_profile_cpu_seconds", cpu, "s", 2 * SMOKE_GOAL_SECONDS, "goal_times_cores", cores=2)
    empty = workdir / "empty"
    empty.mkdir()
    (empty / "Snakefile").write_text("rule all:\n    input: []\n")
    snakemake = [sys.executable, "-m", "snakemake", "--dry-run", "--quiet"]
    floor = [_timed_cpu(snakemake, cwd=empty) for _ in range(repeats)]
    planning = [_timed_cpu([*snakemake, "--configfile", "config/smoke.yaml"], cwd=checkout) for _ in range(repeats)]
    emit("planning_seconds", _median([w for w, _ in planning]), "s", _median([w for w, _ in floor]),
         "snakemake_start_seconds_empty_workflow",
         command="snakemake -n --configfile config/smoke.yaml on the finished smoke run")
    # CPU seconds: what the wall time would be on an idle machine (one process, no waiting)
    emit("planning_cpu_seconds", _median([c for _, c in planning]), "s", _median([c for _, c in floor]),
         "snakemake_start_cpu_seconds_empty_workflow")
    floor = _median([w for w, _ in floor])
    default = _median([_timed(snakemake, cwd=checkout) for _ in range(repeats)])
    emit("planning_seconds_default_profile", default, "s", floor, "snakemake_start_seconds_empty_workflow",
         command="snakemake -n with the default profile in the same directory (its whole DAG still to run)")
    noop = [_timed_cpu(make) for _ in range(repeats)]
    emit("noop_make_reproduce_seconds", _median([w for w, _ in noop]), "s", first, "smoke_profile_seconds",
         command="make reproduce PROFILE=smoke again on the finished run")
    emit("noop_make_reproduce_cpu_seconds", _median([c for _, c in noop]), "s", cpu, "smoke_profile_cpu_seconds")


def _rate(make_clip, frames: int, seconds: float, repeats: int = 5, warmup: int = 1) -> float:
    """Best of `repeats` timing windows (like timeit), so a busy moment does not decide the number.
    `frames` is the count one call produces (frames, or clips for a training step)."""
    for _ in range(warmup):
        make_clip()
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


# ---------------------------------------------------------------------------------------------
# Encoders: training throughput, parameters and forward FLOPs, one fixed input for all of them.

QUICK_INPUT = {"frames": 8, "height": 32, "width": 32}  # the quick configuration's clip size
ENCODER_BATCH = 32
BASELINE_ENCODER = "framewise"  # the VLM-like design: every frame encoded alone
FLOPS_COUNTED = ("forward pass only: matmul, conv and attention FLOPs (a multiply-add counts 2) by "
                 "torch.utils.flop_counter.FlopCounterMode, encoder + pooling + linear head; elementwise "
                 "ops, norms and softmax not counted; a training step is roughly 3x")


def encoder_options(config: str | Path = PIPELINE_CONFIG) -> dict[str, tuple[dict, str]]:
    """For every registered encoder: (options, source). The pipeline's options from the
    `encoders:` section of `config` when the encoder is listed there under its own name
    ("config"), else none, i.e. its config dataclass defaults ("defaults"). Variants (other keys,
    naming their encoder) are not registered encoders and are not benchmarked."""
    import yaml

    from timeblind.models.registry import ENCODERS

    configured = (yaml.safe_load(Path(config).read_text()) or {}).get("encoders") or {}
    options = {}
    for name in ENCODERS:
        if name in configured:
            opts = dict(configured[name] or {})
            opts.pop("encoder", None)  # the pipeline's own name for it, not a dataclass option
            options[name] = (opts, "config")
        else:
            options[name] = ({}, "defaults")
    return options


def pool_features(features):
    """Encoder output -> (B, D): a feature map (B, D, h, w) is averaged over h, w; a vector is kept."""
    if features.ndim == 4:
        return features.flatten(2).mean(-1)
    if features.ndim == 2:
        return features
    raise ValueError(f"encoder output of shape {tuple(features.shape)}: expected (B, D) or (B, D, h, w)")


def _pooled_classifier(encoder, num_classes: int):
    """Encoder, pooling, linear head over `encoder.out_dim`: what one training step runs."""
    from torch import nn

    class PooledClassifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = encoder
            self.head = nn.Linear(encoder.out_dim, num_classes)

        def forward(self, video):
            return self.head(pool_features(self.encoder(video)))

    return PooledClassifier()


def _sdpa_cpu_flops(query, key, value, *args, out_shape=None, **kwargs) -> int:
    """FlopCounterMode counts the CUDA attention kernels but not the CPU one (torch 2.13)."""
    from torch.utils.flop_counter import sdpa_flop_count

    return sdpa_flop_count(query, key, value)


def forward_flops(module, *inputs) -> int:
    """FLOPs of one forward call of `module`, as FlopCounterMode counts them (matmul, conv,
    attention; 2 per multiply-add), with the CPU attention kernel counted like the CUDA ones.
    Run with grad enabled, as in training: in eval mode without grad, nn.TransformerEncoderLayer
    takes a fused fast path whose FLOPs the counter does not see."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    extra = {}
    if hasattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu"):
        extra[torch.ops.aten._scaled_dot_product_flash_attention_for_cpu] = _sdpa_cpu_flops
    with torch.enable_grad(), FlopCounterMode(display=False, custom_mapping=extra) as counter:
        module(*inputs)
    return counter.get_total_flops()


def encoder_costs(encoders=None, *, device: str = "cpu", batch: int = ENCODER_BATCH,
                  frames: int = QUICK_INPUT["frames"], height: int = QUICK_INPUT["height"],
                  width: int = QUICK_INPUT["width"], num_classes: int = 8, seconds: float = 3.0,
                  repeats: int = 3, warmup: int = 2, compiled: bool = False,
                  config: str | Path = PIPELINE_CONFIG) -> list[dict]:
    """One record per encoder (default: all of timeblind.models.registry.ENCODERS, in registry order):
    training clips/s (full step: forward, cross-entropy on a linear head over the pooled features,
    backward, AdamW step; best of `repeats` windows of seconds/repeats after `warmup` steps),
    encoder parameters, forward FLOPs per clip. On CUDA the forward and loss run under bf16
    autocast. The input is the training input: binary noise clips mapped to [-1, 1]. compiled: the
    model is compiled (Module.compile) after its FLOPs are counted; first_step_s times the first
    step, which compiles."""
    from timeblind.models.registry import ENCODERS

    options = encoder_options(config)
    sizes = {"batch": batch, "frames": frames, "height": height, "width": width}
    return [_encoder_record(name, *options.get(name, ({}, "defaults")), device=device, num_classes=num_classes,
                            seconds=seconds, repeats=repeats, warmup=warmup, compiled=compiled, **sizes)
            for name in (list(ENCODERS) if encoders is None else encoders)]


def _encoder_record(name: str, opts: dict, source: str, *, device: str, batch: int, frames: int, height: int,
                    width: int, num_classes: int, seconds: float, repeats: int, warmup: int,
                    compiled: bool = False) -> dict:
    import contextlib

    import torch

    from timeblind.core.tasks import to_model_input
    from timeblind.models.registry import build_encoder

    on_cuda = torch.device(device).type == "cuda"

    def autocast():
        return torch.autocast("cuda", dtype=torch.bfloat16) if on_cuda else contextlib.nullcontext()

    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    video = to_model_input(torch.randint(0, 2, (batch, frames, height, width), generator=generator,
                                         dtype=torch.uint8) * 255).to(device)
    target = torch.randint(0, num_classes, (batch,), generator=generator).to(device)
    encoder = build_encoder(name, **opts)
    parameters = sum(p.numel() for p in encoder.parameters())
    model = _pooled_classifier(encoder, num_classes).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.05)

    shapes = []  # the encoder's output per clip, seen during the counted forward pass
    hook = encoder.register_forward_hook(lambda module, args, out: shapes.append(list(out.shape[1:])))
    with autocast():
        flops = forward_flops(model, video)
    hook.remove()

    def step():
        with autocast():
            loss = torch.nn.functional.cross_entropy(model(video), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if on_cuda:
            torch.cuda.synchronize()

    if compiled:
        model.compile()
    start = time.perf_counter()
    step()  # compiles, when compiled
    first_step_s = time.perf_counter() - start
    return {
        "encoder": name, "device": device, "dtype": "bf16 autocast" if on_cuda else "float32", "options": source,
        "option_values": opts, "clips_per_s": _rate(step, batch, seconds, repeats, warmup=warmup),
        "parameters": parameters, "head_parameters": sum(p.numel() for p in model.head.parameters()),
        "flops_per_clip": flops / batch, "feature_shape": shapes[0], "out_dim": encoder.out_dim, "batch": batch,
        "input": f"{frames}x{height}x{width}", "compiled": compiled, "first_step_s": first_step_s,
    }


def encoder_lines(records: list[dict]) -> None:
    """JSON lines per (encoder, metric, device) from encoder_costs records: train_clips_per_s,
    params, forward_flops_per_clip, each against the framewise encoder on the same device (null
    when it was not measured)."""
    import torch

    metrics = (("train_clips_per_s", "clips_per_s", "clips/s", {}),
               ("params", "parameters", "parameters", {"counts": "encoder parameters (head excluded)"}),
               ("forward_flops_per_clip", "flops_per_clip", "FLOP/clip", {"counts": FLOPS_COUNTED}))
    for r in records:
        device = r["device"]
        base = next((b for b in records if b["encoder"] == BASELINE_ENCODER and b["device"] == device), None)
        extra = {"threads": torch.get_num_threads()}
        if torch.device(device).type == "cuda":
            extra["gpu"] = torch.cuda.get_device_name(torch.device(device))
        for metric, key, unit, notes in metrics:
            baseline = None if base is None else base[key]
            emit(f"{metric}.{r['encoder']}.{device}", r[key], unit, baseline, f"{metric}.{BASELINE_ENCODER}.{device}",
                 ratio=round(r[key] / baseline, 3) if baseline else None, encoder=r["encoder"], device=device,
                 dtype=r["dtype"], input=r["input"], batch=r["batch"], options=r["options"],
                 option_values=r["option_values"], feature_shape=r["feature_shape"], out_dim=r["out_dim"],
                 **({"head_parameters": r["head_parameters"]} if metric == "params" else {}), **notes, **extra)


def _each_encoder(measure, what: str, encoders=None, devices: list[str] | None = None) -> tuple[dict, int]:
    """measure(name, device) for every registered encoder (or `encoders`) on CPU, and on CUDA too
    when torch sees a GPU: ({device: [results]}, failures). An encoder that fails is reported on
    stderr and skipped, so one broken encoder does not hide the others' numbers."""
    import torch

    from timeblind.models.registry import ENCODERS

    if devices is None:
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    results, failures = {}, 0
    for device in devices:
        results[device] = []
        for name in ENCODERS if encoders is None else encoders:
            try:
                results[device].append(measure(name, device))
            except Exception as err:  # noqa: BLE001  one broken encoder must not hide the others
                failures += 1
                print(f"bench: {what} {name!r} on {device} failed: {type(err).__name__}: {err}",
                      file=sys.stderr, flush=True)
    return results, failures


def encoder_bench(encoders=None, seconds: float = 3.0, devices: list[str] | None = None, **sizes) -> int:
    """encoder_costs and encoder_lines for every encoder on every device (_each_encoder); returns
    the number of failures."""
    results, failures = _each_encoder(
        lambda name, device: encoder_costs([name], device=device, seconds=seconds, **sizes)[0],
        "encoder", encoders, devices)
    for records in results.values():
        encoder_lines(records)
    return failures


def compile_bench(encoders=None, seconds: float = 3.0, devices: list[str] | None = None, **sizes) -> int:
    """Each encoder's training step compiled against the same step eager, measured back to back:
    train_clips_per_s_compiled (baseline: eager clips/s) and compile_seconds (the first compiled
    step, baseline: the first eager step). Failures as in encoder_bench; returns their number."""
    import torch

    def measure(name: str, device: str) -> tuple[dict, dict]:
        return tuple(encoder_costs([name], device=device, seconds=seconds, compiled=c, **sizes)[0]
                     for c in (False, True))

    results, failures = _each_encoder(measure, "compiling encoder", encoders, devices)
    for device, pairs in results.items():
        for eager, fast in pairs:
            name = fast["encoder"]
            extra = {"encoder": name, "device": device, "dtype": fast["dtype"], "input": fast["input"],
                     "batch": fast["batch"], "threads": torch.get_num_threads()}
            emit(f"train_clips_per_s_compiled.{name}.{device}", fast["clips_per_s"], "clips/s", eager["clips_per_s"],
                 f"train_clips_per_s.{name}.{device} (eager, this run)",
                 ratio=round(fast["clips_per_s"] / eager["clips_per_s"], 3), **extra)
            emit(f"compile_seconds.{name}.{device}", fast["first_step_s"], "s", eager["first_step_s"],
                 f"first eager step of {name} on {device}", **extra)
    return failures


def ddp_speedup(workdir: Path, encoder: str = "early_temporal", steps: int = 60, batch: int = ENCODER_BATCH) -> None:
    """fit() for `steps` steps of `batch` clips (the global batch) on 1 and on 2 devices, on the
    quick input size; the training seconds fit() reports (start-up and export left out). On CPU the
    machine's threads are shared: one process gets them all, two processes half each."""
    import torch

    from timeblind.data.dataset import StimulusConfig, write_dataset
    from timeblind.stimuli import MotionConfig
    from timeblind.training.config import TrainConfig
    from timeblind.training.fit import fit

    data = workdir / "data"
    cfg = StimulusConfig(height=QUICK_INPUT["height"], width=QUICK_INPUT["width"], categories=("shapes",),
                         motion=MotionConfig(frames=QUICK_INPUT["frames"]))
    write_dataset(data, cfg, 0, {"train": steps * batch, "val": batch, "test": 0}, log=lambda *_: None)
    options = encoder_options().get(encoder, ({}, "defaults"))[0]
    accelerators = [("cpu", "cpu")] + ([("gpu", "cuda")] if torch.cuda.device_count() >= 2 else [])
    for accelerator, device in accelerators:
        rates = {}
        for devices in (1, 2):
            cfg = TrainConfig(max_steps=steps, batch_size=batch, lr=2e-3, weight_decay=0.05, val_every=steps,
                              devices=devices)
            metrics = fit(data, workdir / f"{device}{devices}", cfg, encoder=encoder, seed=0, encoder_options=options,
                          accelerator=accelerator, log=lambda *a, **k: None)
            rates[devices] = steps * batch / metrics["train_seconds"]
        emit(f"ddp_train_clips_per_s.{encoder}.2x{device}", rates[2], "clips/s", rates[1],
             f"ddp_train_clips_per_s.{encoder}.1x{device}", speedup=round(rates[2] / rates[1], 3),
             threads=torch.get_num_threads(), input=f"{QUICK_INPUT['frames']}x{QUICK_INPUT['height']}x"
             f"{QUICK_INPUT['width']}", batch=batch, steps=steps)


# ---------------------------------------------------------------------------------------------
# Memory: the peak resident memory of reading release-size videos, against what they decode to.

RELEASE_SIZE = (540, 960)  # SpookyBench videos: 960x540


def write_noise_video(path: Path, frames: int, height: int = RELEASE_SIZE[0], width: int = RELEASE_SIZE[1], *,
                      speed: int = 2, seed: int = 0, preset: str = "ultrafast") -> Path:
    """A SpookyBench-like H.264 video (binary dots, a disc moving against its ground at `speed` px/frame),
    encoded frame by frame, so writing it never holds the whole video."""
    import av
    import numpy as np

    rng = np.random.default_rng(seed)
    travel = speed * (frames - 1)
    figure, ground = ((rng.random((height + travel, width)) < 0.5).astype(np.uint8) * 255 for _ in range(2))
    yy, xx = np.mgrid[:height, :width]
    disc = (yy - height / 2) ** 2 + (xx - width / 2) ** 2 < (0.35 * height) ** 2
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=50)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "18", "preset": preset}
        for t in range(frames):
            up, down = travel - speed * t, speed * t
            frame = np.where(disc, figure[up:up + height], ground[down:down + height])
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="gray").reformat(format="yuv420p")))
        container.mux(stream.encode())
    return path


def noise_folder(root: Path, videos: list[int], **kwargs) -> Path:
    """A folder in the official layout holding one shapes video per frame count in `videos`."""
    rows = ["Path,Category,Label"]
    for i, frames in enumerate(videos):
        write_noise_video(root / "shapes" / f"disc{i}.mp4", frames, seed=i, **kwargs)
        rows.append(f"shapes/disc{i}.mp4,shapes,\"['circle']\"")
    (root / "metadata.csv").write_text("\n".join(rows) + "\n")
    return root


def tiny_model(path: Path, frames: int = 8, size: int = 32) -> Path:
    """A small untrained shapes model (for memory, not accuracy), recording its input size."""
    from timeblind.core.tasks import TaskSpec
    from timeblind.models.checkpoint import save_model
    from timeblind.models.registry import build_model

    tasks = TaskSpec(("circle", "square"), ("shapes", "shapes"), ("shapes",), frames)
    model = build_model("early_temporal", tasks, width=4, dim=16)
    save_model(path, model, "early_temporal", extra={"frame_shapes": {"shapes": [frames, size, size]}})
    return path


_PEAK = """import json, resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
print(json.dumps({"returncode": done.returncode, "stdout": done.stdout, "stderr": done.stderr,
                  "peak_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))"""


def peak_memory(argv: list[str], **kwargs) -> tuple[float, subprocess.CompletedProcess]:
    """The peak resident memory (GB) of a command, its largest process (pool workers included), and its
    result: measured by a fresh interpreter that does nothing but wait for it (ru_maxrss of its children)."""
    wrapper = subprocess.run([sys.executable, "-c", _PEAK, *argv], capture_output=True, text=True, check=True,
                             **kwargs)
    result = json.loads(wrapper.stdout)
    done = subprocess.CompletedProcess(argv, result["returncode"], result["stdout"], result["stderr"])
    return result["peak_kb"] * 1024 / 1e9, done


def eval_command(folder: Path, model: Path, output: Path) -> list[str]:
    return [sys.executable, "-m", "timeblind", "eval-spookybench", "--dataset", str(folder), "--model", str(model),
            "--output", str(output)]


def snr_command(folder: Path, workdir: Path) -> list[str]:
    return [sys.executable, "-m", "timeblind", "snr", str(folder), "--table", str(workdir / "snr.csv"),
            "--results-dir", str(workdir / "results")]


def memory_peaks(workdir: Path, lengths: tuple[int, ...] = (300, 2000), folder_videos: int = 4) -> None:
    """Peak memory of `timeblind eval-spookybench` and `timeblind snr` on one release-size video of each
    length, and of eval-spookybench on a folder of `folder_videos` 300-frame videos, each beside what the
    videos decode to (frames x 960 x 540 bytes): both commands read a video as a stream, so the peak
    should not follow the decoded size. The goal is 2 GB."""
    model = tiny_model(workdir / "model.pt")
    height, width = RELEASE_SIZE
    cases = [(f"960x540x{n}", [n]) for n in lengths] + [(f"folder_{folder_videos}x960x540x300", [300] * folder_videos)]
    for name, videos in cases:
        folder = noise_folder(workdir / name, videos)
        decoded = sum(videos) * height * width / 1e9
        commands = {"eval_spookybench": eval_command(folder, model, workdir / f"{name}.json")}
        if len(videos) == 1:
            commands["snr"] = snr_command(folder, workdir / f"snr_{name}")
        for command, argv in commands.items():
            peak, done = peak_memory(argv)
            if done.returncode:
                raise RuntimeError(f"{command} on {name} failed: {done.stderr[-2000:]}")
            emit(f"peak_memory_gb.{command}.{name}", peak, "GB", decoded, "decoded_video_gb", goal_gb=2.0)


PARTS = ("stimulus", "step", "pipeline", "ddp", "encoders", "compile", "memory", "sample_efficiency")  # main()'s order


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python scripts/bench.py", description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="*", metavar="PART",
                        help=f"which measurements to run (default: all): {', '.join(PARTS)}")
    parts = parser.parse_args(argv).parts or list(PARTS)
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:  # checked here: argparse rejects a list default of a nargs="*" argument with choices (3.11)
        parser.error(f"unknown part(s) {', '.join(unknown)}; expected some of {', '.join(PARTS)}")
    failures = 0
    with tempfile.TemporaryDirectory(prefix="timeblind-bench-") as tmp:
        work = Path(tmp)
        if "stimulus" in parts:
            stimulus_fps()
        if "step" in parts:
            step_overhead(work / "step")
        if "pipeline" in parts:
            pipeline(work / "pipeline")
        if "ddp" in parts:
            ddp_speedup(work / "ddp")
        if "encoders" in parts:
            failures += encoder_bench()
        if "compile" in parts:
            failures += compile_bench()
        if "memory" in parts:
            memory_peaks(work / "memory")
        if "sample_efficiency" in parts:
            sample_efficiency(work / "sample_efficiency", emit=emit)
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
