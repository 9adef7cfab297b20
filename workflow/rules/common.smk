import json
import sys
from pathlib import Path

from snakemake.utils import validate


def _validate_config():
    """Fill defaults and reject bad values before any job starts, naming key and expectation."""
    import jsonschema
    import yaml

    schema_path = Path(workflow.basedir) / "workflow/schemas/config.schema.yaml"
    schema = yaml.safe_load(schema_path.read_text())
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(config), key=lambda e: list(e.path))
    if errors:
        lines = []
        for error in errors:
            key = ".".join(str(p) for p in error.absolute_path) or "(top level)"
            if error.validator == "required" and list(error.absolute_path)[:1] == ["encoders"]:
                known = sorted(schema["properties"]["encoders"]["properties"])
                lines.append(f"  {key}: not an encoder; expected one of {known}, or a variant naming its encoder "
                             f"(e.g. {{encoder: early_temporal, stem: difference}})")
            elif error.validator == "additionalProperties":
                allowed = sorted(error.schema.get("properties", {}))
                unexpected = sorted(set(error.instance) - set(allowed))
                lines.append(f"  {key}: unknown key(s) {unexpected}; allowed: {allowed}")
            else:
                lines.append(f"  {key}: {error.message}")
        raise ValueError("invalid timeblind config:\n" + "\n".join(lines))
    validate(config, schema=str(schema_path))  # fills the defaults
    # What a schema cannot know (shape, font and object names, lengths that fit the clip...):
    # build the stimulus generator's config now, so a typo fails here and not in a job.
    from timeblind.data.dataset import StimulusConfig, shifted_stimulus

    for section, data in (("data", lambda: config["data"]),
                          ("export.shift", lambda: shifted_stimulus(config["data"], config["export"]["shift"]))):
        try:
            StimulusConfig.from_pipeline(data())
        except (ValueError, TypeError) as error:
            raise ValueError(f"invalid timeblind config:\n  {section}: {error}") from None
    from timeblind.data.augment import AugmentConfig
    from timeblind.models.registry import encoder_config

    try:
        AugmentConfig.from_dict(config["training"]["augment"])
    except (ValueError, TypeError) as error:
        raise ValueError(f"invalid timeblind config:\n  training.augment: {error}") from None

    for name, options in config["encoders"].items():
        options = dict(options)
        try:
            encoder_config(options.pop("encoder", name), **options)
        except (ValueError, TypeError, AssertionError) as error:
            raise ValueError(f"invalid timeblind config:\n  encoders.{name}: {error}") from None
    from timeblind.studies import StudyError, validate as validate_studies

    try:
        validate_studies(config)
    except StudyError as error:
        raise ValueError(f"invalid timeblind config:\n  {error}") from None
    from timeblind.grounding_plan import GroundingError, validate as validate_grounding

    try:
        validate_grounding(config)
    except GroundingError as error:
        raise ValueError(f"invalid timeblind config:\n  {error}") from None


_validate_config()

RESULTS = "results"
NOTEBOOKS = Path(workflow.basedir) / "notebooks"
# Jobs run the interpreter Snakemake runs under (so an unactivated .venv works) and import
# timeblind from this checkout, whether or not it is pip-installed. Under --sdm conda the
# environment's own interpreter is kept.
_JOB_PATH = "" if workflow.deployment_settings.deployment_method else f"export PATH={Path(sys.executable).parent}:$PATH; "
shell.prefix(f"set -euo pipefail; {_JOB_PATH}export PYTHONPATH={Path(workflow.basedir) / 'lib'}${{{{PYTHONPATH:+:$PYTHONPATH}}}}; ")

ENCODERS = list(config["encoders"])
SEEDS = config["training"]["seeds"]
DATA_DIR = f"{RESULTS}/data/stimuli"


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


def model_file(encoder, seed):
    return f"{RESULTS}/models/{encoder}/seed{seed}/model.pt"


def all_models():
    return [model_file(e, s) for e in ENCODERS for s in SEEDS]


# The studies, expanded once: models and data sets are content-addressed, so studies asking for
# the same training share one job.
from timeblind import studies as study_plan

from timeblind import grounding_plan
from timeblind.training.grounding import VARIANTS as GROUNDING_VARIANTS

STUDY_POINTS = study_plan.expand(config)
# the grounding encoders are trained like study models, so the same settings are one job
STUDY_MODELS = {**study_plan.models(STUDY_POINTS), **grounding_plan.models(config)}
STUDY_DATA = {**study_plan.datasets(STUDY_POINTS), **grounding_plan.datasets(config)}
GROUNDING_RUNS = grounding_plan.runs(config)
STUDIES = study_plan.study_names(config)
STUDY_CONFIG = {key: config[key] for key in ("data", "training", "encoders", "studies")}


def study_outputs():
    return [f"{RESULTS}/figures/study_{name}.png" for name in STUDIES]


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


def study_model(wildcards):
    return STUDY_MODELS[f"{wildcards.model_id}/seed{wildcards.seed}"]


def final_outputs():
    return [
        f"{RESULTS}/figures/accuracy.png",
        f"{RESULTS}/tables/accuracy.csv",
        f"{RESULTS}/notebooks/plot.html",
        f"{RESULTS}/tables/snr_summary.csv",
        f"{RESULTS}/tables/spookybench_export_table1.csv",
        *study_outputs(),
        *([f"{RESULTS}/figures/grounding.png"] if GROUNDING_RUNS else []),
        f"{RESULTS}/figures/gallery.png",
        f"{RESULTS}/config.yaml",
    ]


# Temporal grounding (grounding.smk)
G = config["grounding"]
GROUNDING = f"{RESULTS}/grounding"


def grounding_stage_params(wildcards, stage, out_dir, previous):
    """The 10_grounding_stage notebook's parameters for one stage job."""
    run = grounding_run(wildcards)
    return nb_params(
        data_dir=grounding_plan.DATA_DIR, out_dir=out_dir, stage=stage, variant=wildcards.get("variant", G["best"]),
        encoder=run.encoder, seed=run.seed, encoder_model=run.model.path, align_dir=run.stage_dir("align"),
        previous=previous, time_tokens=G["time_tokens"], window_stride=G["window_stride"], decoder=G["decoder"],
        max_tokens=G["max_tokens"], max_steps=G["steps"][stage], **G["training"],
    )


def previous_grounding_stage(wildcards):
    """The folder of the stage a time or instruct job starts from."""
    run = grounding_run(wildcards)
    return run.stage_dir({"time": "align", "instruct": "time"}[wildcards.stage])
