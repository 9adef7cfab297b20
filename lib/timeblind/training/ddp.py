"""Multi-device training in its own process: `python -m timeblind.training.ddp SPEC.json`.

Every pipeline step runs in a Jupyter kernel, which Lightning treats as interactive: it refuses
strategy="ddp" there and would fork instead, which breaks once CUDA is initialised. So fit() with
devices > 1 writes the training config and job to SPEC.json and runs this module (launch). Lightning's launcher
then starts ranks 1..N-1 by running the same command again with LOCAL_RANK set; every rank
trains, rank 0 logs to the step's MLflow run, exports the model and writes the metrics to
RESULT.json for the parent. Processes here die with the process that started them, so a killed
pipeline job leaves no training behind to race its rerun.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from timeblind.core.io import write_json
from timeblind.training.config import TrainConfig
from timeblind.training.trainer import train

PARENT_ENV = "TIMEBLIND_DDP_PARENT"  # pid of the process a rank must not outlive
# Never inherited by the ranks: another job's rank variables, and SLURM_NTASKS, from which Lightning
# would conclude that srun started the ranks (it did not: a pipeline job is one SLURM task, and
# Lightning starts the ranks on the devices allocated to it).
_DDP_ENV = ("LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "GROUP_RANK", "RANK",
            "SLURM_NTASKS")


def launch(cfg: TrainConfig, job: dict, tracking=None, log=print) -> dict:
    """Run trainer.train(cfg, **job) on cfg.devices devices in a subprocess; returns rank 0's
    metrics. The subprocess's output goes to `log` line by line (the notebook shows progress)."""
    import timeblind
    import torch

    out_dir = Path(job["out_dir"])
    spec_path, result_path = out_dir / "ddp_spec.json", out_dir / "ddp_result.json"
    result_path.unlink(missing_ok=True)
    run = {"tracking_uri": tracking.tracking_uri, "run_id": tracking.run_id} if tracking is not None else None
    spec_path.write_text(json.dumps({"training": cfg.to_dict(), "job": job, "tracking": run,
                                     "result": str(result_path)}, indent=2))
    env = {k: v for k, v in os.environ.items() if k not in _DDP_ENV}
    lib = str(Path(timeblind.__file__).resolve().parents[1])  # the ranks import this very checkout
    env["PYTHONPATH"] = lib + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["OMP_NUM_THREADS"] = str(max(1, torch.get_num_threads() // cfg.devices))  # share this job's cores
    env["PYTHONUNBUFFERED"] = "1"
    env[PARENT_ENV] = str(os.getpid())
    command = [sys.executable, "-m", "timeblind.training.ddp", str(spec_path)]
    tail = collections.deque(maxlen=30)
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in proc.stdout:
            tail.append(line.rstrip("\n"))
            log(tail[-1], flush=True)
        code = proc.wait()
    finally:
        if proc.poll() is None:  # interrupted here: stop the training (rank 0 stops its ranks)
            proc.terminate()
            proc.wait()
    if code != 0:
        raise RuntimeError(f"training on devices={cfg.devices} failed (exit code {code}) in `{' '.join(command)}`;"
                           f" its last lines:\n" + "\n".join(tail))
    if not result_path.exists():
        raise RuntimeError(f"training on devices={cfg.devices} exited cleanly but wrote no {result_path}")
    metrics = json.loads(result_path.read_text())
    spec_path.unlink()  # kept only when the training failed, to rerun it by hand
    result_path.unlink()
    return metrics


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (prctl PR_SET_PDEATHSIG), and exit
    now if the parent is already gone. Elsewhere a no-op."""
    expected = os.environ.get(PARENT_ENV)
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if expected and os.getppid() != int(expected):
        sys.exit(f"timeblind.training.ddp: parent process {expected} is gone; not training")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        sys.exit("usage: python -m timeblind.training.ddp SPEC.json (written by timeblind.training.ddp.launch)")
    _die_with_parent()
    os.environ[PARENT_ENV] = str(os.getpid())  # the ranks Lightning starts from here die with this one
    spec = json.loads(Path(argv[0]).read_text())
    tracking = SimpleNamespace(**spec["tracking"]) if spec["tracking"] else None
    metrics = train(TrainConfig.from_dict(spec["training"]), **spec["job"], tracking=tracking, log=print)
    if metrics is None:  # ranks > 0
        return 0
    result = Path(spec["result"])
    write_json(result, metrics)
    return 0


if __name__ == "__main__":
    sys.exit(main())
