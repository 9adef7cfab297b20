# timeblind: stimuli -> training -> evaluation -> figures -> report.
# A table of contents only; rules live in workflow/rules, helpers in common.smk.
from snakemake.utils import min_version

from timeblind.plan.config import exit_on_yaml_error

min_version("9.0")
exit_on_yaml_error("config/config.yaml")  # Snakemake's own message names neither the file nor the line


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/tracking.smk"
include: "workflow/rules/generate.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/plot.smk"
include: "workflow/rules/snr.smk"
include: "workflow/rules/export.smk"
include: "workflow/rules/studies.smk"
include: "workflow/rules/grounding.smk"
include: "workflow/rules/gallery.smk"
include: "workflow/rules/probe.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        final_outputs(),
