"""Where files live: the project directory, and every path under results/, named once.

The Snakefile, the study and grounding plans and the steps all take their paths from here, so
they agree. The path functions also build Snakemake patterns: model_file("{encoder}", "{seed}")
is the train rule's output.

Relative paths point into the project directory, not wherever a kernel happens to start.
Pipeline steps run with TIMEBLIND_PROJECT_DIR set to Snakemake's working directory; a notebook
opened in JupyterLab starts in notebooks/, so without the variable we walk up to the first
directory holding a Snakefile.
"""

from __future__ import annotations

import os
from pathlib import Path

RESULTS = "results"  # everything generated, relative to the project directory

DATA = f"{RESULTS}/data/stimuli"  # the Table 1 stimulus data set
EXPORT = f"{RESULTS}/data/spookybench_export"  # the official-format export, its predictions per model
TABLES = f"{RESULTS}/tables"
FIGURES = f"{RESULTS}/figures"
TRACKING = f"{RESULTS}/tracking.json"  # the MLflow store's description, written once before jobs fan out
CONFIG_RECORD = f"{RESULTS}/config.yaml"  # the run's resolved configuration
GROUNDING_DATA = f"{RESULTS}/grounding/data"  # the event videos


def model_dir(encoder: str, seed) -> str:
    """A Table 1 model's folder (its model.pt, metrics.json and checkpoints), trained on DATA."""
    return f"{RESULTS}/models/{encoder}/seed{seed}"


def model_file(encoder: str, seed) -> str:
    return f"{model_dir(encoder, seed)}/model.pt"


def study_data_dir(data_id: str) -> str:
    """A data set a study trains on, named by the hash of its data section."""
    return f"{RESULTS}/studies/data/{data_id}"


LEARNING_CURVE = "learning_curve.csv"  # beside each model.pt: validation accuracy per category against clips seen
TABLE1_DATA_NAME = "stimuli"  # the name of Table 1's data set (DATA) among the readers


def reader_dir(data_name: str) -> str:
    """The figure reader pretrained on a data set's clean masks: `stimuli` (Table 1's) or a study data id."""
    return f"{RESULTS}/readers/{data_name}"


def reader_file(data_name: str) -> str:
    return f"{reader_dir(data_name)}/reader.pt"


def study_model_dir(model_id: str, seed) -> str:
    """A model a study (or the grounding table) trains, named by its encoder and settings hash."""
    return f"{RESULTS}/studies/models/{model_id}/seed{seed}"


def study_model_file(model_id: str, seed) -> str:
    return f"{study_model_dir(model_id, seed)}/model.pt"


def study_tests_dir(study: str) -> str:
    """The test sets of one study, written by its scoring step."""
    return f"{RESULTS}/studies/{study}/tests"


def grounding_align_dir(encoder: str, seed) -> str:
    """The frame tokens of one encoder and seed, and the align-stage decoder every variant starts from."""
    return f"{RESULTS}/grounding/align/{encoder}/seed{seed}"


def grounding_stage_dir(run: str, seed, stage: str) -> str:
    """A later stage of one decoder run (`<variant>-<encoder>`)."""
    return f"{RESULTS}/grounding/runs/{run}/seed{seed}/{stage}"


def notebook_html(job: str) -> str:
    """The HTML copy of a step's executed notebook, shown in the report."""
    return f"{RESULTS}/notebooks/{job}.html"


def job_log(job: str, suffix: str) -> str:
    """A step's logs: the executed notebook (.ipynb, kept when a cell fails) and its output (.log)."""
    return f"{RESULTS}/logs/{job}{suffix}"


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


def project_relative(path: str | os.PathLike) -> str:
    """A path as tables record it: relative to the project when inside it, so that a results folder
    reads the same wherever the project was cloned."""
    path = resolve(path)
    try:
        return path.relative_to(project_dir()).as_posix()
    except ValueError:
        return str(path)
