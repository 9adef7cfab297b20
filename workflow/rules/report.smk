import hashlib
import mimetypes
import os

import jinja2.defaults
import yaml
from snakemake.report.common import data_uri_from_file

# Captions can inline a file, e.g. an animation: `.. image:: {{ path | data_uri }}`. The report app
# shows only png, svg and jpeg results (a GIF is a download), and Snakemake's own embeddedimage
# directive writes the bare path, which a self-contained report cannot load. The report renders
# captions in this process, with a Jinja environment that starts from these default filters.
jinja2.defaults.DEFAULT_FILTERS.setdefault("data_uri", data_uri_from_file)
# The report guesses each result's type from its name; without this it warns on every .yaml.
mimetypes.add_type("text/plain", ".yaml")

# The profile every caption quotes as "what was run": each config file this run read (relative to
# the workflow when inside it) with the title its first comment line gives, and --config overrides.
_base = Path(workflow.basedir).resolve()
_profile = []
for _path in map(Path, workflow.configfiles):
    _first = next((line.strip() for line in _path.read_text().splitlines() if line.strip()), "")
    _shown = _path.resolve().relative_to(_base) if _path.resolve().is_relative_to(_base) else _path
    _title = _first.lstrip("#").strip().rstrip(".") if _first.startswith("#") else ""
    _profile.append(f"{_shown} ({_title})" if _title else str(_shown))
if workflow.config_settings.config:
    _profile.append("--config " + " ".join(f"{k}={v}" for k, v in workflow.config_settings.config.items()))
CONFIG_PROFILE = " + ".join(_profile) or "defaults only"
CONFIG_RECORD = (f"# Profile: {CONFIG_PROFILE}\n# The configuration this run resolved: validated, every default "
                 f"filled in (workflow/schemas/config.schema.yaml).\n{yaml.safe_dump(config, sort_keys=False)}")
# The record as a file beside planning's other records, named by its content: config_record copies it
# (a changed value is another file), so the report shows no copy of it among the job's parameters.
CONFIG_RECORD_FILE = Path(".snakemake/timeblind") / f"config-{hashlib.sha256(CONFIG_RECORD.encode()).hexdigest()[:16]}.yaml"
if not CONFIG_RECORD_FILE.exists():
    CONFIG_RECORD_FILE.parent.mkdir(parents=True, exist_ok=True)
    _partial = CONFIG_RECORD_FILE.with_suffix(f".{os.getpid()}.tmp")
    _partial.write_text(CONFIG_RECORD)
    _partial.replace(CONFIG_RECORD_FILE)


rule config_record:
    # Snakemake's report records config files but does not show them: write the validated config,
    # every default filled in, as one file the report shows (its caption includes it). Captions
    # find the profile in this job's params.
    input:
        CONFIG_RECORD_FILE,
    output:
        report(layout.CONFIG_RECORD, caption="../report/config.rst", category="5. Configuration"),
    params:
        profile=CONFIG_PROFILE,
    log:
        layout.job_log("config_record", ".log"),
    conda:
        "../../envs/timeblind.yaml"
    # A shell command, not `run:`: Snakemake runs a `run:` job in a new Snakemake process, which
    # parses the whole workflow again (seconds of CPU) to write one file.
    shell:
        "cp {input} {output} && echo wrote {output} > {log}"
