"""Warm processes (timeblind.steps.warm): a job's command and its step's kernel, forked from a server that
preloaded the heavy libraries, see what fresh processes see, report their exit status, and end with their
callers."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pytest

from timeblind.steps import warm
from timeblind.steps.runner import kernel_manager_class

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="warm processes are Linux only")

PROBE = """import json, os, sys, subprocess
first = sorted(m for m in sys.modules if m == "timeblind" or m.startswith("timeblind."))
path = list(sys.path)
import numpy, torch
a = torch.randn(256, 256)
print(json.dumps({"pid": os.getpid(), "server": os.environ.get("TIMEBLIND_WARM_SERVER"), "cwd": os.getcwd(),
                  "project": os.environ.get("TIMEBLIND_PROJECT_DIR"), "timeblind_before": first,
                  "threads": torch.get_num_threads(), "matmul": float((a @ a).abs().sum()) > 0,
                  "numpy": float(numpy.random.random()), "torch": float(torch.rand(1)),
                  "false": subprocess.run(["false"]).returncode, "path": path}))
"""


@pytest.fixture
def kernels(env, tmp_path):
    """Environment for runs with a private server folder (short: a socket path has a length limit),
    and the servers started there stopped afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="tbk-", dir="/tmp"))
    notebook = tmp_path / "probe.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x: int = 0", metadata={"tags": ["parameters"]}), nbformat.v4.new_code_cell(PROBE)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, notebook)
    e = {**env, "TIMEBLIND_WARM_DIR": str(folder), "TIMEBLIND_WARM_IDLE": "60", "OMP_NUM_THREADS": "2"}
    e.pop(warm.SWITCH, None)
    e.pop("SLURM_JOB_ID", None)
    yield {"env": e, "folder": folder, "notebook": notebook}
    warm.stop_servers(folder)
    shutil.rmtree(folder, ignore_errors=True)


def probe(kernels, tmp_path, name: str, **env) -> dict:
    out = tmp_path / f"{name}.ipynb"
    run = subprocess.run([sys.executable, "-m", "timeblind", "run-notebook", str(kernels["notebook"]), str(out),
                          "--params", "{}", "--cwd", str(tmp_path)], env={**kernels["env"], **env},
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    cell = nbformat.read(out, as_version=4).cells[1]
    return json.loads("".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream"))


def wait_for_server(folder: Path, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while not list(folder.glob("*.sock")):
        assert time.monotonic() < deadline, "no server: " + "".join(p.read_text() for p in folder.glob("*.log"))
        time.sleep(0.5)


def test_a_warm_kernel_sees_what_a_fresh_kernel_sees(kernels, tmp_path):
    cold = probe(kernels, tmp_path, "cold")  # no server yet: a cold kernel, and a server starts
    assert cold["server"] is None
    wait_for_server(kernels["folder"])
    forked, again = probe(kernels, tmp_path, "warm"), probe(kernels, tmp_path, "again")
    assert forked["server"] and forked["server"] == again["server"] and forked["pid"] != again["pid"]
    for result in (cold, forked, again):
        assert result["cwd"] == str(tmp_path) and result["project"] == str(tmp_path)  # the runner's
        assert result["timeblind_before"] == []  # timeblind is imported afresh, from the sources as they are
        assert result["threads"] == 2 and result["matmul"]  # the job's thread count; no pool inherited
        assert result["false"] == 1  # subprocesses are waited for as usual
        assert result["path"] == cold["path"]  # a fresh kernel's import path
    assert forked["numpy"] != again["numpy"] and forked["torch"] != again["torch"]  # reseeded as a new process
    (server,) = warm.servers(kernels["folder"])
    assert server == int(forked["server"]) and warm.cpu_seconds(server) > 1  # its preloading, at least
    deadline = time.monotonic() + 10  # the server collects an ended child within a second
    while not all(f"kernel {r['pid']} ended (0):" in server_log(kernels) for r in (forked, again)):
        assert time.monotonic() < deadline, server_log(kernels)
        time.sleep(0.2)
    assert server_log(kernels).count(" started in ") >= 4  # the runners too, not only their kernels


def server_log(kernels) -> str:
    return "".join(p.read_text() for p in kernels["folder"].glob("*.log"))


def test_a_warm_command_reports_its_exit_status_and_messages(kernels, tmp_path):
    probe(kernels, tmp_path, "start")
    wait_for_server(kernels["folder"])
    failing = tmp_path / "failing.ipynb"
    nb = nbformat.read(kernels["notebook"], as_version=4)
    nb.cells[1].source = "raise ValueError('on purpose')"
    nbformat.write(nb, failing)
    for params, status, message in (("{}", 1, "ValueError: on purpose"), ('{"y": 1}', 2, "unknown parameter(s) ['y']")):
        run = subprocess.run([sys.executable, "-m", "timeblind", "run-notebook", str(failing), str(tmp_path / "out.ipynb"),
                              "--params", params], env=kernels["env"], capture_output=True, text=True, timeout=300)
        assert run.returncode == status and message in run.stderr, run.stderr[-2000:]
    assert (tmp_path / "out.ipynb").exists()  # the failed notebook kept
    assert len([line for line in server_log(kernels).splitlines() if line.startswith("command ") and " started " in line]) == 2


def test_a_warm_kernel_ends_with_its_launcher(kernels, tmp_path):
    from jupyter_client import KernelManager

    probe(kernels, tmp_path, "start")
    wait_for_server(kernels["folder"])
    saved = dict(os.environ)
    os.environ.update(kernels["env"])
    try:
        class Warm(KernelManager):  # the runner's, blocking
            def format_kernel_cmd(self, extra_arguments=None):
                return warm.command(super().format_kernel_cmd(extra_arguments))

        manager = Warm()
        manager.start_kernel(cwd=str(tmp_path))
        client = manager.blocking_client()
        client.start_channels()
        client.wait_for_ready(timeout=120)
        client.execute("import os; print(os.getpid(), os.environ.get('TIMEBLIND_WARM_SERVER'))")
        while True:
            message = client.get_iopub_msg(timeout=60)
            if message["msg_type"] == "stream":
                pid, server = message["content"]["text"].split()
                break
        assert server != "None" and int(pid) != manager.provisioner.process.pid  # forked, not launched
        client.stop_channels()
        manager.shutdown_kernel(now=True)  # SIGKILL to the launcher
    finally:
        os.environ.clear()
        os.environ.update(saved)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]:
        assert time.monotonic() < deadline, "the kernel outlived its launcher"
        time.sleep(0.2)


@pytest.mark.parametrize("setting", [{warm.SWITCH: "0"}, {"SLURM_JOB_ID": "1"}])
def test_warm_processes_can_be_turned_off_and_are_off_in_slurm_jobs(monkeypatch, setting):
    monkeypatch.delenv(warm.SWITCH, raising=False)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    assert kernel_manager_class().__name__ == "WarmKernelManager"
    for key, value in setting.items():
        monkeypatch.setenv(key, value)
    assert kernel_manager_class().__name__ == "SocketKernelManager"  # a fresh kernel, on sockets of its own


def test_a_server_that_refused_is_not_started_again(kernels, tmp_path):
    # as when preloading initialised CUDA: the server leaves a note and every job runs cold
    path = subprocess.run([sys.executable, "-c", "from timeblind.steps import warm; print(warm.socket_path())"],
                          env=kernels["env"], capture_output=True, text=True, check=True).stdout.strip()
    Path(path).with_suffix(".refused").write_text("CUDA was initialised while preloading\n")
    assert probe(kernels, tmp_path, "first")["server"] is None
    time.sleep(2)
    assert probe(kernels, tmp_path, "second")["server"] is None
    assert not list(kernels["folder"].glob("*.log")) and not list(kernels["folder"].glob("*.sock"))
