"""The workflow's wiring: rule parameters match notebooks, lint, config validation, envs."""

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import papermill
import pytest
import yaml

from timeblind.steps.runner import NotebookParameterError, check_parameters, kernel_manager_class, notebook_parameters

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]


def dry_run_commands(workdir, env, configfile=None):
    args = SNAKEMAKE + ["--directory", str(workdir), "--dry-run", "--printshellcmds", "--forceall", "--cores", "1"]
    if configfile:
        args += ["--configfile", str(configfile)]
    out = subprocess.run(args, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    return [shlex.split(line) for line in out.stdout.splitlines() if "run-notebook" in line]


def test_every_rule_passes_exactly_its_notebooks_parameters(tmp_path, env):
    commands = dry_run_commands(tmp_path, env, REPO / "config" / "config.yaml")
    notebooks = set()
    for argv in commands:
        notebook = Path(argv[argv.index("run-notebook") + 1])
        params = json.loads(argv[argv.index("--params") + 1])
        assert set(params) == set(notebook_parameters(notebook)), notebook.name
        # papermill must read the same cell (its parser gives up on some comments, e.g. with ';')
        assert set(papermill.inspect_notebook(str(notebook))) == set(params), notebook.name
        check_parameters(notebook, params)  # types match the parameters cell too
        notebooks.add(notebook.name)
    assert notebooks == {p.name for p in (REPO / "notebooks").glob("[0-9]*.ipynb")}  # explore_* are for JupyterLab


@pytest.mark.slow
def test_the_exploration_notebook_runs_headless(tmp_path, env):
    out = subprocess.run([sys.executable, "-m", "timeblind", "run-notebook", str(REPO / "notebooks" / "explore_stimuli.ipynb"),
                          str(tmp_path / "explore.ipynb"), "--params", '{"category": "patterns", "size": 32}'],
                         env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    executed = (tmp_path / "explore.ipynb").read_text()
    assert "data:image/gif;base64" in executed and "patterns: " in executed


def test_unknown_or_mistyped_notebook_parameters_are_errors():
    notebook = REPO / "notebooks" / "04_plot.ipynb"
    with pytest.raises(NotebookParameterError, match=r"unknown parameter\(s\) \['figur'\]"):
        check_parameters(notebook, {"figur": "x"})
    with pytest.raises(NotebookParameterError, match="tables_dir=3 is a int, expected str"):
        check_parameters(notebook, {"tables_dir": 3})


def test_runner_rejects_unknown_parameters_before_running(tmp_path, env):
    out = subprocess.run([sys.executable, "-m", "timeblind", "run-notebook", str(REPO / "notebooks" / "04_plot.ipynb"),
                          str(tmp_path / "out.ipynb"), "--params", '{"bogus": 1}'], env=env, capture_output=True,
                         text=True)
    assert out.returncode == 2
    assert "unknown parameter(s) ['bogus']" in out.stderr
    assert not (tmp_path / "out.ipynb").exists()


@pytest.mark.parametrize("content, reason", [
    (None, "no such notebook file"), (b"junk", "not a readable notebook"),
    (b'{"cells": 3}', "not a readable notebook"), (bytes(range(256)), "not a readable notebook")])
def test_runner_names_a_missing_or_unreadable_notebook_in_one_line(tmp_path, env, content, reason):
    notebook = tmp_path / "in.ipynb"
    if content is not None:
        notebook.write_bytes(content)
    out = subprocess.run([sys.executable, "-m", "timeblind", "run-notebook", str(notebook), str(tmp_path / "out.ipynb"),
                          "--params", "{}"], env=env, capture_output=True, text=True)
    assert out.returncode == 2, out.stderr
    said = [line for line in out.stderr.splitlines() if not line.startswith("Input Notebook:")]
    assert len(said) == 1 and reason in said[0] and str(notebook) in said[0], out.stderr
    assert not (tmp_path / "out.ipynb").exists()


@pytest.mark.parametrize("where, reason", [("a_file", "is a file; expected a folder"),
                                           ("a_file/below", "cannot create the store")])
def test_init_tracking_names_a_results_folder_it_cannot_use(tmp_path, env, where, reason):
    (tmp_path / "a_file").write_text("")
    out = subprocess.run([sys.executable, "-m", "timeblind", "init-tracking", "--results-dir", where], cwd=tmp_path,
                         env=env, capture_output=True, text=True)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and reason in out.stderr and where in out.stderr, \
        out.stderr


def test_a_notebook_run_twice_gives_the_same_html(tmp_path, env):
    import nbformat

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("n = 1", metadata={"tags": ["parameters"]}),
                                               nbformat.v4.new_code_cell("print(n * 2)")])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, tmp_path / "in.ipynb")
    pages = []
    for run in ("a", "b"):
        out = subprocess.run([sys.executable, "-m", "timeblind", "run-notebook", str(tmp_path / "in.ipynb"),
                              str(tmp_path / f"{run}.ipynb"), "--html", str(tmp_path / f"{run}.html"),
                              "--params", '{"n": 3}'], env=env, capture_output=True, text=True, cwd=tmp_path)
        assert out.returncode == 0, out.stderr[-2000:]
        pages.append((tmp_path / f"{run}.html").read_bytes())
    assert b"6" in pages[0] and pages[0] == pages[1]  # papermill's injected cell has a random id otherwise


def test_kernels_started_side_by_side_never_share_sockets(tmp_path):
    # Parallel jobs start kernels in the same folder at the same moment: their sockets must differ.
    managers = [kernel_manager_class()(kernel_name="python3") for _ in range(2)]
    for km in managers:
        km.write_connection_file()
    first, second = (km.get_connection_info() for km in managers)
    try:
        assert first["transport"] == "ipc"
        assert first["ip"] != second["ip"] and Path(first["ip"]).is_absolute()
    finally:
        for km in managers:
            km.cleanup_connection_file()
            km.cleanup_ipc_files()


def test_notebooks_are_thin_and_committed_clean():
    for path in sorted((REPO / "notebooks").glob("*.ipynb")):
        nb = json.loads(path.read_text())
        assert nb["metadata"]["kernelspec"]["name"] == "python3", path.name
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1 and code[0] is tagged[0], f"{path.name}: first code cell must be the parameters"
        assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), path.name
        assert len(code) <= 5, f"{path.name}: logic belongs in lib/timeblind"


def test_lint_is_clean(env):
    out = subprocess.run(SNAKEMAKE + ["--lint"], cwd=REPO, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Lints for" not in out.stdout + out.stderr, out.stdout + out.stderr


@pytest.mark.parametrize("bad, message", [
    ({"encoders": {"vit3000": {}}}, "encoders.vit3000: not an encoder; expected one of ['early_temporal', 'framewise', "
     "'motion_energy', 'seed_temporal', 'stave', 'two_stream'], or a variant"),
    ({"encoders": {"early_difference": {"encoder": "early_temporal", "stem": "diff"}}},
     "encoders.early_difference: stem='diff'"),
    ({"data": {"density": 1.5}}, "data.density: 1.5 is greater than or equal to the maximum of 1"),
    ({"training": {"seeds": []}}, "training.seeds: [] should be non-empty"),
    ({"encoders": {"framewise": {"depth": 2}}}, "encoders.framewise: unknown key(s) ['depth']; allowed:"),
    ({"data": {"shapes": ["circle", "blob"]}}, "data: unknown shapes ['blob']; expected names from"),
    ({"data": {"categories": ["videos"], "frames": 4}}, "data: 2 moving figures cannot be drawn at this size"),
    ({"data": {"noise": "pink"}}, "data.noise: 'pink' is not one of ['binary', 'gaussian', 'blurred']"),
    ({"grounding": {"encoders": ["vit3000"]}}, "grounding.encoders: ['vit3000'] are not in the encoders section"),
    ({"grounding": {"variants": ["coupled", "magic"]}}, "grounding.variants.1: 'magic' is not one of ['coupled'"),
    ({"grounding": {"events": {"frames": 96, "events": [1, 5], "event_frames": [8, 14], "gap": 3}}},
     "grounding.events.events: up to 5 events; the decoder holds at most 3"),
    ({"grounding": {"events": {"frames": 29, "events": [1, 3], "event_frames": [8, 14], "gap": 3}}},
     "grounding: events=(1, 3), event_frames=(8, 14), gap=3: 3 events of 8 frames with gaps need 30 frames"),
])
def test_bad_config_is_rejected_before_any_job(tmp_path, env, bad, message):
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for section, values in bad.items():
        config[section] = {**config[section], **values} if section != "encoders" or "framewise" in values else values
    configfile = tmp_path / "bad.yaml"
    configfile.write_text(yaml.safe_dump(config))
    # Validation takes seconds; an accepted config would start the whole DAG, so fail fast instead.
    out = subprocess.run(SNAKEMAKE + ["--directory", str(tmp_path), "--configfile", str(configfile), "--cores", "1"],
                         env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode != 0
    assert message in out.stdout + out.stderr
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("bad, message", [
    ({"encoders": {"two_stream": {"segments": 5}}},
     "invalid timeblind config: data.frames=8: encoders.two_stream: clip has 8 frames: two_stream with segments=5 "
     "needs at least 2 * segments = 10 (a frame pair per segment)"),
    ({"studies": {"base": {"data": {"heigth": 32}}}}, "invalid timeblind config: studies.base.data: unknown key(s) "
     "['heigth']; allowed: ['angle',"),
])
def test_a_bad_config_is_one_plain_line_from_a_dry_run(tmp_path, env, bad, message):
    """What `snakemake -n` prints: the problem, not Snakemake's place in common.smk and a traceback."""
    configfile = tmp_path / "bad.yaml"
    configfile.write_text(yaml.safe_dump(bad))
    out = subprocess.run(SNAKEMAKE + ["--directory", str(tmp_path), "--configfile", str(REPO / "config/config.yaml"),
                                      "--configfile", str(configfile), "--dry-run"],
                         env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 1
    lines = [line for line in out.stderr.splitlines() if "timeblind" in line or "File" in line]
    assert len(lines) == 1 and lines[0].startswith(message), out.stderr
    assert "common.smk" not in out.stderr and "Traceback" not in out.stderr


def test_a_yaml_error_in_the_default_config_names_the_file_and_line(tmp_path, env):
    (tmp_path / "config").mkdir()
    (tmp_path / "config/config.yaml").write_text("data:\n  height: 32\n  width: [40\n  frames: 8\n")
    out = subprocess.run(SNAKEMAKE + ["--directory", str(tmp_path), "--dry-run"], env=env, capture_output=True,
                         text=True, timeout=180)
    assert out.returncode == 1
    assert out.stderr.strip() == ("invalid timeblind config: config/config.yaml, line 4, column 9: not valid YAML: "
                                  "did not find expected ',' or ']'"), out.stderr
    out = subprocess.run([sys.executable, "-m", "timeblind", "check-config", "config/config.yaml"], cwd=tmp_path,
                         env=env, capture_output=True, text=True)  # what make reproduce runs on a PROFILE's file
    assert out.returncode == 1 and "config/config.yaml, line 4, column 9" in out.stderr


def test_conda_env_pins_the_same_versions_as_the_requirements():
    locked = {}
    for line in (REPO / "envs" / "requirements.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            locked[re.sub(r"[-_.]+", "-", name).lower()] = version.strip()
    conda = yaml.safe_load((REPO / "envs" / "timeblind.yaml").read_text())
    pip_section = next(d["pip"] for d in conda["dependencies"] if isinstance(d, dict))
    pinned = {re.sub(r"[-_.]+", "-", p.split("==")[0]).lower(): p.split("==")[1] for p in pip_section}
    makefile_torch = re.search(r"^TORCH \?= torch==(\S+)", (REPO / "Makefile").read_text(), re.M).group(1)
    assert pinned.pop("torch") == makefile_torch
    for name, version in pinned.items():
        assert locked.get(name) == version, f"{name}: conda {version}, requirements {locked.get(name)}"
    pyproject = (REPO / "pyproject.toml").read_text()
    direct = re.findall(r'^\s+"([A-Za-z0-9_.-]+)[<>=]', pyproject, re.M)
    for name in direct:
        key = re.sub(r"[-_.]+", "-", name).lower()
        assert key in pinned or key == "torch", f"{name} is a dependency but not in envs/timeblind.yaml"
        assert key in locked or key == "torch", f"{name} is a dependency but not in envs/requirements.txt"


@pytest.mark.slow
def test_paper_profile_plans_three_seeds_every_study_and_the_full_grounding_table(tmp_path, env):
    """`make reproduce PROFILE=paper` reads config/paper.yaml on top of the quick config: the same
    rules, sized for a GPU. A dry run validates it and plans every job."""
    out = subprocess.run(SNAKEMAKE + ["--directory", str(tmp_path), "--configfile", str(REPO / "config/paper.yaml"),
                                      "--dry-run", "--cores", "16"], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", out.stdout, re.M))
    assert int(counts["train"]) == 6 * 3  # six encoders, three seeds
    assert int(counts["study"]) == 6
    assert int(counts["grounding_align"]) == 4 * 3  # four encoders, three seeds
    # instruct: 7 variants + 3 swaps; time: 4 (FPO variants share consistency's) + 3 swaps; per seed
    assert int(counts["grounding_stage"]) == (10 + 7) * 3
    assert not (tmp_path / "results").exists()
