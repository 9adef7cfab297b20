"""How the pipeline runs its steps: the MLflow store created once before jobs fan out
(init_tracking), then each step's notebook run with papermill, strictly (run_notebook).

papermill only warns about unknown parameters; here they are an error, as are values whose
type does not match the parameters cell. The executed notebook is always written (also when
a cell fails), converted to HTML, and attached to the step's MLflow run.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import unquote, urlparse

import yaml

from timeblind import tracking
from timeblind.core.io import write_text

# jsonschema, which papermill and nbconvert load through nbformat, builds an Earley parser for RFC 3987
# IRIs when it is imported and rfc3987-syntax is installed (JupyterLab's jupyter-events requires it):
# most of papermill's import time, for a string format no notebook schema uses. A None entry makes that
# optional import fail, and jsonschema leaves the format unchecked.
sys.modules.setdefault("rfc3987_syntax", None)

# papermill's inferred type names -> Python types a value may have
_TYPES = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,), "list": (list,), "dict": (dict,)}


def init_tracking(results_dir: str, output: str | None = None) -> dict:
    """Create the MLflow store and experiment once, before jobs fan out (parallel first-time schema
    migrations on one SQLite file race each other); the store's description goes to `output`."""
    store = tracking.init_store(results_dir)
    if output:
        Path(output).write_text(json.dumps(store, indent=2))
    return store


class NotebookParameterError(ValueError):
    pass


class NotebookFailed(RuntimeError):
    pass


def notebook_parameters(notebook: str | Path) -> dict[str, dict]:
    import papermill as pm

    if not Path(notebook).is_file():
        raise NotebookParameterError(f"{notebook}: no such notebook file")
    try:
        return pm.inspect_notebook(str(notebook))
    except Exception as err:  # nbformat's readers raise whatever the malformed JSON trips them into
        reason = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        raise NotebookParameterError(f"{notebook}: not a readable notebook ({reason})") from None


def check_parameters(notebook: str | Path, params: dict) -> None:
    declared = notebook_parameters(notebook)
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise NotebookParameterError(
            f"{notebook}: unknown parameter(s) {unknown}; the parameters cell declares {sorted(declared)}")
    for name, value in params.items():
        expected = declared[name]["inferred_type_name"].split("[")[0]
        types = _TYPES.get(expected)
        if types and (not isinstance(value, types) or (expected != "bool" and isinstance(value, bool))):
            raise NotebookParameterError(
                f"{notebook}: parameter {name}={value!r} is a {type(value).__name__}, expected {expected}")


def html_exporter(warm_with: str | Path | None = None):
    """nbconvert's HTML exporter. Most of a first conversion's time goes to compiling: the templates,
    the syntax highlighter's and the HTML selectors' regular expressions. Converting `warm_with`
    once (the notebook about to run) does that ahead, while the kernel works."""
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab")
    if warm_with is not None:
        exporter.from_notebook_node(nbformat.read(str(warm_with), as_version=4))
    return exporter


def to_html(notebook, html: str | Path, exporter=None) -> None:
    """`notebook`: a path, or a notebook already read."""
    import nbformat

    node = notebook if isinstance(notebook, nbformat.NotebookNode) else nbformat.read(str(notebook), as_version=4)
    body, _ = (exporter or html_exporter()).from_notebook_node(node)
    write_text(html, body)


def kernel_manager_class():
    """Jupyter's kernel manager, its kernel listening on Unix sockets of its own, and started through
    timeblind.steps.warm (forked from the warm server) where warm processes are on. Over TCP, two kernels
    started at the same moment by parallel jobs can be handed the same free port, and one never answers;
    Jupyter's default socket name, kernel-ipc-N in the working folder, is shared by kernels there."""
    import uuid

    from jupyter_client import AsyncKernelManager
    from traitlets import CaselessStrEnum, default

    from timeblind.steps import warm

    if os.name == "nt":  # neither Unix sockets nor fork
        return AsyncKernelManager

    class SocketKernelManager(AsyncKernelManager):
        transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)

        @default("ip")
        def _unique_socket_prefix(self) -> str:
            return str(Path(tempfile.gettempdir()) / f"timeblind-kernel-{uuid.uuid4().hex[:16]}")

        async def _async_interrupt_kernel(self) -> None:
            # Jupyter interrupts a kernel it is about to kill; the kernel logged a KeyboardInterrupt to the
            # job's log, or not, depending on which came first.
            if not self.shutting_down:
                await super()._async_interrupt_kernel()

    if not warm.enabled():
        return SocketKernelManager

    class WarmKernelManager(SocketKernelManager):
        def format_kernel_cmd(self, extra_arguments=None):
            return warm.command(super().format_kernel_cmd(extra_arguments))

    return WarmKernelManager


def _attach_to_run(record: Path, files: list[Path]) -> None:
    if not record.exists() or not record.read_text():
        return  # the notebook failed before its run started
    info = json.loads(record.read_text())
    artifacts = urlparse(info["artifact_uri"])
    if artifacts.scheme == "file":  # a local artifact store is a folder: copy, without importing mlflow (~2 s)
        folder = Path(unquote(artifacts.path)) / "notebook"
        folder.mkdir(parents=True, exist_ok=True)
        for path in files:
            shutil.copy2(path, folder / path.name)
        return
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=info["tracking_uri"])
    for path in files:
        tracking.with_retries(client.log_artifact, info["run_id"], str(path), "notebook")


def _settle_outputs(notebook: Path):
    """What the same run would otherwise write differently: papermill gives the parameters cell it
    injects a random id (the HTML copy shows it), and a cell's printing is split into as many stream
    outputs as the kernel happened to flush. Returns the notebook as written."""
    import nbformat
    from nbconvert.preprocessors import CoalesceStreamsPreprocessor

    nb = nbformat.read(str(notebook), as_version=4)
    for cell in nb.cells:
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell.id = "injected-parameters"
    nb, _ = CoalesceStreamsPreprocessor().preprocess(nb, {})
    nbformat.write(nb, str(notebook))
    return nb


def run_notebook(notebook: str | Path, output: str | Path, params: dict, html: str | Path | None = None,
                 cwd: str | Path = ".") -> None:
    """Execute `notebook` into `output` with `params` (also saved as <output>.params.yaml)."""
    import papermill as pm

    notebook, output, cwd = Path(notebook), Path(output), Path(cwd).resolve()
    check_parameters(notebook, params)
    output.parent.mkdir(parents=True, exist_ok=True)
    params_file = output.with_suffix(".params.yaml")
    params_file.write_text(yaml.safe_dump(params, sort_keys=True))
    record = Path(tempfile.mkstemp(prefix="timeblind-run-", suffix=".json")[1])
    # The kernel is stopped at once after its last cell (below), so nothing may wait for its exit:
    # MLflow logs synchronously.
    env = {tracking.RUN_RECORD_ENV: str(record), "TIMEBLIND_PROJECT_DIR": str(cwd), "PYTHONUNBUFFERED": "1",
           "MPLBACKEND": "Agg", "MLFLOW_ENABLE_ASYNC_LOGGING": "false"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    failure = None
    # The kernel does the work in another process; the HTML exporter gets ready meanwhile.
    warm_up = ThreadPoolExecutor(1)
    exporter = warm_up.submit(html_exporter, notebook)
    try:
        # Every cell has finished and its outputs are in; a graceful shutdown would only wait for the
        # kernel's interpreter to tear down torch, pandas and matplotlib. The cells' printing goes to this
        # process's streams as it arrives, as printed (papermill's log_output would add a line break
        # wherever the kernel happened to flush).
        pm.execute_notebook(str(notebook), str(output), parameters=yaml.safe_load(params_file.read_text()),
                            kernel_name="python3", cwd=str(cwd), progress_bar=False,
                            stdout_file=sys.stdout, stderr_file=sys.stderr,
                            shutdown_kernel="immediate", kernel_manager_class=kernel_manager_class())
    except pm.PapermillExecutionError as err:
        failure = err
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    warm_up.shutdown()
    executed = _settle_outputs(output)
    html = Path(html) if html and failure is None else output.with_suffix(".html")
    html.parent.mkdir(parents=True, exist_ok=True)
    to_html(executed, html, exporter.result())
    _attach_to_run(record, [output, html])
    record.unlink(missing_ok=True)
    if failure is not None:
        raise NotebookFailed(f"{notebook} failed in cell {failure.exec_count}: {failure.ename}: {failure.evalue}\n"
                             f"executed notebook kept at {output} (HTML: {html})")
