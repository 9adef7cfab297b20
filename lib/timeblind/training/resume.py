"""The resume record: whether a training may continue from the checkpoint in its folder.

Every validation writes checkpoints/last.ckpt. A training with a resume key (a hash of what
defines it, computed by the train step) records that key and its MLflow run in resume.json; a
later training with the same key continues from last.ckpt, any other starts clean, and a
finished one removes the record. Neither file is a declared pipeline output, so Snakemake leaves
them in place when it reruns a killed job.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import torch

from timeblind.core.io import write_json

RESUME_RECORD = "resume.json"


def last_checkpoint(out_dir: str | Path) -> Path:
    return Path(out_dir) / "checkpoints" / "last.ckpt"


def resumable(out_dir: str | Path, key: str) -> dict | None:
    """The resume record of out_dir if it was written under `key` and its last.ckpt is whole
    (torch checkpoints are zip files: a truncated one has no end record), else None."""
    record_path, last = Path(out_dir) / RESUME_RECORD, last_checkpoint(out_dir)
    try:
        record = json.loads(record_path.read_text())
    except (OSError, ValueError):
        return None
    if record.get("key") != key or not last.exists() or not zipfile.is_zipfile(last):
        return None
    return record


def start(out_dir: Path, key: str | None, run_id: str | None, max_steps: int, log=print) -> Path | None:
    """The checkpoint to continue from (None: start clean, removing what an earlier training left),
    with the record of this training written under `key`."""
    record = resumable(out_dir, key) if key else None
    checkpoint = None
    if record is not None:
        checkpoint = last_checkpoint(out_dir)
        step = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)["global_step"]
        log(f"resuming from {checkpoint} at step {step}/{max_steps} (MLflow run {record.get('run_id')})", flush=True)
    else:  # a rerun with other parameters, or a first run, starts clean
        finish(out_dir)
        shutil.rmtree(out_dir / "checkpoints", ignore_errors=True)
        if key:
            log(f"starting clean in {out_dir}", flush=True)
    if key:
        write_json(out_dir / RESUME_RECORD, {"key": key, "run_id": run_id})
    return checkpoint


def finish(out_dir: Path) -> None:
    """A finished training: a later one is a new training."""
    (out_dir / RESUME_RECORD).unlink(missing_ok=True)
