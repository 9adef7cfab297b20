"""Where relative paths point: the project directory, not wherever a kernel happens to start.

Pipeline steps run with TIMEBLIND_PROJECT_DIR set to Snakemake's working directory. A notebook
opened in JupyterLab starts in notebooks/, so without the variable we walk up to the first
directory holding a Snakefile.
"""

from __future__ import annotations

import os
from pathlib import Path


def project_dir() -> Path:
    if env := os.environ.get("TIMEBLIND_PROJECT_DIR"):
        return Path(env).resolve()
    cwd = Path.cwd().resolve()
    for candidate in (cwd, *cwd.parents):
        if (candidate / "Snakefile").is_file():
            return candidate
    return cwd


def resolve(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path if path.is_absolute() else project_dir() / path
