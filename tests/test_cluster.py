"""The SLURM profile (workflow/profiles/slurm): Snakemake accepts it, and in a dry run (no sbatch
needed) the jobs it would submit ask for a GPU exactly when they train."""

import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "workflow" / "profiles" / "slurm"
SMOKE = [str(REPO / "config" / "config.yaml"), str(REPO / "config" / "smoke.yaml")]  # make reproduce PROFILE=smoke
GPU_RULES = {"train", "study_train", "grounding_align", "grounding_stage"}
# The resources snakemake-executor-plugin-slurm turns into sbatch options (its docs and
# submit_string.py), plus Snakemake's own: anything else in the profile would be a typo.
SLURM_RESOURCES = {"slurm_partition", "slurm_account", "runtime", "mem", "mem_mb", "mem_mb_per_cpu", "cpus_per_task",
                   "cpus_per_gpu", "gres", "gpu", "gpu_model", "tasks", "tasks_per_gpu", "nodes", "constraint", "qos",
                   "slurm_extra", "clusters", "tmpdir", "disk_mb"}


def profile() -> dict:
    return yaml.safe_load((PROFILE / "config.yaml").read_text())


def workflow_rules() -> set[str]:
    """The rules the workflow defines: `rule NAME:`, and `use rule OTHER as NAME with:`."""
    text = "".join(p.read_text() for p in (REPO / "workflow" / "rules").glob("*.smk"))
    return set(re.findall(r"^(?:use )?rule (?:\w+ as )?(\w+)(?: with)?:", text, re.M))


def test_profile_is_valid_for_snakemake_and_the_slurm_plugin():
    from snakemake.cli import get_argument_parser
    from snakemake_interface_executor_plugins.registry import ExecutorPluginRegistry

    plugin = ExecutorPluginRegistry().get_plugin("slurm")  # installed (envs/requirements.txt)
    parser = get_argument_parser(profiles=[str(PROFILE)])
    options = {s[2:] for action in parser._actions for s in action.option_strings if s.startswith("--")}
    settings = profile()
    assert set(settings) <= options, f"not Snakemake options: {sorted(set(settings) - options)}"
    # Snakemake's own parser reads the profile (configargparse rejects what it cannot place).
    args = parser.parse_args([])
    assert args.executor == "slurm" and args.jobs == 50 and args.latency_wait == 60 and args.rerun_incomplete
    assert set(args.set_threads) == set(settings["set-threads"])
    assert {"slurm_partition", "gres", "mem_mb", "runtime"} <= set(args.set_resources["train"])
    assert {"slurm_partition", "mem_mb", "runtime"} <= set(args.default_resources)
    # ... and the plugin accepts its own settings (slurm-logdir) as the profile gives them
    assert str(plugin.get_settings(args).logdir) == "results/logs/slurm"
    # Every rule named exists (a misspelt rule name would be silently ignored), every resource is known.
    named = set(settings["set-threads"]) | set(settings["set-resources"])
    assert named <= workflow_rules(), f"no such rule: {sorted(named - workflow_rules())}"
    resources = set(settings["default-resources"]).union(*settings["set-resources"].values())
    assert resources <= SLURM_RESOURCES, f"unknown resources: {sorted(resources - SLURM_RESOURCES)}"
    assert {r for r, res in settings["set-resources"].items() if "gres" in res or "gpu" in res} == GPU_RULES


class _Resources(dict):
    """A job's resources as the plugin reads them (job.resources.get(...), job.resources.mem_mb)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def planned_jobs(output: str) -> list[SimpleNamespace]:
    """The jobs of a dry run's listing: rule, threads and resources as Snakemake resolved them."""
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", output):
        head = re.match(r"(local)?rule (\w+):", block)
        if not head:
            continue
        threads = re.search(r"^    threads: (\d+)$", block, re.M)
        resources = re.search(r"^    resources: (.*)$", block, re.M)
        parsed = {}
        for item in resources.group(1).split(", ") if resources else []:
            key, _, value = item.partition("=")
            parsed[key] = int(value) if value.isdigit() else value
        jobs.append(SimpleNamespace(name=head.group(2), local=bool(head.group(1)),
                                    threads=int(threads.group(1)) if threads else 1, resources=_Resources(parsed)))
    return jobs


def sbatch_options(job) -> str:
    """What the plugin would pass to sbatch for this job: its own code, minus the submission."""
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    params = {"run_uuid": "dry", "slurm_logfile": "slurm.log", "comment_str": f"rule_{job.name}", "account": "",
              "partition": f" -p {job.resources['slurm_partition']}", "workdir": "/work"}
    return get_submit_command(job, params) + set_gres_string(job)


def test_dry_run_submits_gpu_jobs_only_for_training(tmp_path, env):
    out = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
                          "--directory", str(tmp_path), "--configfile", *SMOKE, "--profile", str(PROFILE),
                          "--dry-run", "--printshellcmds"], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    jobs = [j for j in planned_jobs(out.stdout) if j.name != "all"]  # `all` only collects: it is not submitted
    rules = {j.name for j in jobs}
    assert GPU_RULES | {"init_tracking", "generate", "evaluate", "plot", "study_data", "study"} <= rules
    assert not any(j.local for j in jobs)  # every step goes to the cluster
    threads = profile()["set-threads"]
    for job in jobs:
        call = sbatch_options(job)
        assert re.search(r" -t \d+", call) and re.search(r" --mem \d+", call), (job.name, call)
        assert f"--cpus-per-task={threads.get(job.name, 1)}" in call, (job.name, call)
        if job.name in GPU_RULES:
            assert "--gres=gpu:1" in call and " -p gpu" in call, (job.name, call)
            assert job.resources["mem_mb"] == 16000
        else:
            assert "gpu" not in call, (job.name, call)  # neither --gres nor --gpus, CPU partition
            assert " -p cpu" in call, (job.name, call)
    # The threads reach the jobs' commands (OMP_NUM_THREADS) and, for generate, its worker count.
    assert "OMP_NUM_THREADS=4 python -m timeblind run-notebook" in out.stdout
    generate = next(line for line in out.stdout.splitlines() if "01_generate.ipynb" in line and "stimuli" in line)
    assert "OMP_NUM_THREADS=8" in generate and '"workers": 8' in generate


@pytest.mark.parametrize("gpu_request, sbatch", [
    ({"gres": "'gpu:a100:2'"}, "--gres=gpu:a100:2"),
    ({"gpu": 1, "gpu_model": "'a100'"}, "--gpus=a100:1"),
], ids=["gres", "gpus"])
def test_a_site_copy_of_the_profile_can_ask_for_a_gpu_model(tmp_path, env, gpu_request, sbatch):
    # what the profile's README suggests: copy it and edit the training rules' request
    settings = profile()
    train = {k: v for k, v in settings["set-resources"]["train"].items() if k != "gres"}
    settings["set-resources"]["train"] = {**train, **gpu_request}
    site = tmp_path / "site-profile"
    site.mkdir()
    (site / "config.yaml").write_text(yaml.safe_dump(settings))
    out = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
                          "--directory", str(tmp_path), "--configfile", *SMOKE, "--profile", str(site),
                          "--dry-run", "results/models/framewise/seed0/model.pt"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    job = next(j for j in planned_jobs(out.stdout) if j.name == "train")
    call = sbatch_options(job)
    assert sbatch in call and " -p gpu" in call and "--cpus-per-task=4" in call, call
