import json
import sys
from pathlib import Path

from timeblind.core import layout
from timeblind.core.layout import FIGURES, RESULTS, TABLES
from timeblind.plan import grounding as grounding_plan
from timeblind.plan import studies as study_plan
from timeblind.plan.config import ConfigError, validate

# Defaults filled in and every bad value named (key and expectation) before any job starts, as
# plain lines: Snakemake would prefix an exception with its place in this file and a traceback. What
# the checks compile and draw once per config is kept beside Snakemake's own records of this working
# directory.
try:
    PIPELINE = validate(config, schema=Path(workflow.basedir) / "workflow/schemas/config.schema.yaml",
                        cache=Path(".snakemake/timeblind"))
except ConfigError as error:
    sys.exit(str(error))

NOTEBOOKS = Path(workflow.basedir) / "notebooks"
# Jobs run the interpreter Snakemake runs under (so an unactivated .venv works) and import
# timeblind from this checkout, whether or not it is pip-installed. Under --sdm conda the
# environment's own interpreter is kept.
_JOB_PATH = "" if workflow.deployment_settings.deployment_method else f"export PATH={Path(sys.executable).parent}:$PATH; "
shell.prefix(f"set -euo pipefail; {_JOB_PATH}export PYTHONPATH={Path(workflow.basedir) / 'lib'}${{{{PYTHONPATH:+:$PYTHONPATH}}}}; ")

ENCODERS = list(PIPELINE.encoders)
SEEDS = PIPELINE.seeds


# Every step: its notebook through papermill (strict parameters), the executed notebook kept as
# a log even on failure, an HTML copy as output for the report.
RUN_NOTEBOOK = (
    "OMP_NUM_THREADS={threads} python -m timeblind run-notebook {input.notebook} {log.notebook}"
    " --html {output.html} --params {params.nb:q} > {log.stdout} 2>&1"
)


def notebook(name):
    return str(NOTEBOOKS / f"{name}.ipynb")


def nb_params(**params):
    """Notebook parameters as one JSON argument; also what Snakemake compares for reruns."""
    return json.dumps({**params, "results_dir": RESULTS}, sort_keys=True)


def job_logs(job):
    """A step's log files: the executed notebook and its output."""
    return {"notebook": layout.job_log(job, ".ipynb"), "stdout": layout.job_log(job, ".log")}


def data_params(data):
    """The 01_generate notebook's parameters for a data section: seed, split sizes, stimulus controls."""
    return dict(seed=data["seed"], **{f"{split}_size": data[f"{split}_size"] for split in ("train", "val", "test")},
                stimulus={k: v for k, v in data.items() if k != "seed" and not k.endswith("_size")})


def table1_reader() -> str:
    """Table 1's pretrained figure reader, or "" when training.reader.max_steps is 0."""
    return "" if PIPELINE.training.reader_config.max_steps == 0 else layout.reader_file(layout.TABLE1_DATA_NAME)


def reader_config(data_id: str) -> dict:
    """How a study data set's reader is pretrained: as its models' training says (the studies'
    base training may change training.reader)."""
    return next(m.training.get("reader") or {} for m in STUDY_MODELS.values() if not m.table1 and m.data.id == data_id)


def all_models():
    return [layout.model_file(e, s) for e in ENCODERS for s in SEEDS]


def all_curves():
    """Each Table 1 model's learning curve (validation accuracy per category against clips seen)."""
    return [f"{layout.model_dir(e, s)}/{layout.LEARNING_CURVE}" for e in ENCODERS for s in SEEDS]


# The studies, expanded once: models and data sets are content-addressed, so studies asking for
# the same training share one job.
STUDY_POINTS = study_plan.expand(config)
# the grounding encoders are trained like study models, so the same settings are one job
STUDY_MODELS = {**study_plan.models(STUDY_POINTS), **grounding_plan.models(config)}
STUDY_DATA = {**study_plan.datasets(STUDY_POINTS), **grounding_plan.datasets(config)}
GROUNDING_RUNS = grounding_plan.runs(config)
STUDIES = study_plan.study_names(config)
STUDY_CONFIG = {key: config[key] for key in ("data", "training", "encoders", "studies")}


def study_model(wildcards):
    return STUDY_MODELS[f"{wildcards.model_id}/seed{wildcards.seed}"]


def grounding_run(wildcards):
    """A run a grounding job serves: align is shared by every variant of an encoder and seed, a
    time stage by the variants that differ only in preference optimisation."""
    variant = wildcards.get("variant")
    for run in GROUNDING_RUNS:
        if run.encoder == wildcards.encoder and run.seed == int(wildcards.seed) and (
                variant is None or variant == run.variant
                or (wildcards.get("stage") == "time" and variant == grounding_plan.time_recipe(run.variant))):
            return run
    raise ValueError(f"no grounding run for {dict(wildcards)}")


def final_outputs():
    return [
        f"{FIGURES}/accuracy.png",
        f"{TABLES}/accuracy.csv",
        layout.notebook_html("plot"),
        f"{TABLES}/snr_summary.csv",
        f"{TABLES}/spookybench_export_table1.csv",
        *(f"{FIGURES}/study_{name}.png" for name in STUDIES),
        *([f"{FIGURES}/grounding.png"] if GROUNDING_RUNS else []),
        f"{FIGURES}/gallery.png",
        *([f"{FIGURES}/stave_probe.png"] if STAVE_PROBED else []),
        layout.CONFIG_RECORD,
    ]


# Temporal grounding (grounding.smk)
G = PIPELINE.grounding


def grounding_stage_params(wildcards, stage, out_dir, previous):
    """The 10_grounding_stage notebook's parameters for one stage job."""
    run = grounding_run(wildcards)
    return nb_params(
        data_dir=layout.GROUNDING_DATA, out_dir=out_dir, stage=stage, variant=wildcards.get("variant", G["best"]),
        encoder=run.encoder, seed=run.seed, encoder_model=run.model.path, align_dir=run.stage_dir("align"),
        previous=previous, time_tokens=G["time_tokens"], window_stride=G["window_stride"], decoder=G["decoder"],
        max_tokens=G["max_tokens"], training={**G["training"], "max_steps": G["steps"][stage]},
    )


def previous_grounding_stage(wildcards):
    """The folder of the stage a time or instruct job starts from."""
    run = grounding_run(wildcards)
    return run.stage_dir({"time": "align", "instruct": "time"}[wildcards.stage])
