"""The warm server (timeblind.steps.warm has the callers' side and how it all works): it preloads
the libraries every step imports, then forks a child per request that becomes the caller's kernel or
`timeblind` command. Started by warm.start_server as `python -m timeblind.steps.warm_server <socket>`."""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import sys
from pathlib import Path

from timeblind.steps.warm import _MESSAGE, SERVER_VARIABLE

PRELOAD = ("numpy", "pandas", "matplotlib.pyplot", "PIL.Image", "scipy.special", "torch", "torchmetrics", "lightning",
           "mlflow", "mlflow.store.tracking.sqlalchemy_store", "filelock", "yaml", "jsonschema", "papermill",
           "nbconvert", "jupyter_client", "ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.debugger")
_LOCK = None  # the server's lock file, held while it lives


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


def _preload() -> None:
    import importlib

    sys.modules.setdefault("rfc3987_syntax", None)  # as the runner does (steps/runner.py)
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception as err:  # a missing optional library: children import it themselves
            print(f"not preloaded: {name}: {err!r}", flush=True)
    try:  # nbconvert's regular expressions and selectors compiled: a child's HTML copy costs a fifth
        import nbformat
        from nbconvert import HTMLExporter

        notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# warm"),
                                                   nbformat.v4.new_code_cell("print(1)")])
        HTMLExporter(template_name="lab").from_notebook_node(notebook)
    except Exception as err:
        print(f"HTML exporter not warmed: {err!r}", flush=True)


def serve(path: Path, idle: float) -> None:
    import fcntl
    import time

    global _LOCK
    _LOCK = lock = open(path.with_suffix(".lock"), "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return  # another server for the same key is starting or running
    print(f"server {os.getpid()}: preloading for {path}", flush=True)
    started = time.perf_counter()
    _preload()
    torch = sys.modules.get("torch")
    if (torch is not None and torch.cuda.is_initialized()) or "libcuda.so" in Path("/proc/self/maps").read_text():
        # The CUDA driver does not survive a fork: children would fail at their first CUDA call.
        reason = "CUDA was initialised while preloading: forking would be unsafe; not serving"
        print(reason, flush=True)
        path.with_suffix(".refused").write_text(reason + "\n")  # callers go cold without starting another
        return
    print(f"server {os.getpid()}: preloaded in {time.perf_counter() - started:.1f} s, {_threads()} threads", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stopped: the socket is removed on the way out
    path.unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    server.bind(str(path))
    os.chmod(path, 0o600)
    server.listen(16)
    server.settimeout(1.0)
    children: dict[int, str] = {}
    last = time.monotonic()
    try:
        while True:
            _reap(children)
            try:
                conn, _ = server.accept()
            except TimeoutError:
                if time.monotonic() - last > idle:
                    break
                continue
            last = time.monotonic()
            conn.settimeout(None)
            try:
                _serve_one(server, conn, children)
            except Exception as err:  # one bad request does not stop the server
                print(f"request failed: {err!r}", flush=True)
            finally:
                conn.close()
    finally:
        path.unlink(missing_ok=True)
        server.close()  # a caller still queued gets the connection reset, and goes on cold


def _reap(children: dict[int, str]) -> None:
    """Collect the children that ended, each logged with its CPU time."""
    while True:
        try:
            pid, status, usage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        print(f"{children.pop(pid, 'child')} {pid} ended ({os.waitstatus_to_exitcode(status)}): "
              f"{usage.ru_utime + usage.ru_stime:.3f} s CPU", flush=True)


def _serve_one(server: socket.socket, conn: socket.socket, children: dict[int, str]) -> None:
    _, uid, _ = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    message, fds, _, _ = socket.recv_fds(conn, _MESSAGE, 3)
    try:
        request = json.loads(message)
        if uid != os.getuid() or len(fds) != 3 or request.get("kind") not in ("kernel", "command"):
            conn.send(json.dumps({"error": "refused"}).encode())
            return
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            try:
                _become(server, conn, request, fds)
            finally:
                os._exit(1)
        children[pid] = request["kind"]
        print(f"{request['kind']} {pid} started in {request['cwd']}: {' '.join(request['argv'])[:200]}", flush=True)
        conn.send(json.dumps({"pid": pid}).encode())
    finally:
        for fd in fds:
            os.close(fd)


def _become(server: socket.socket, conn: socket.socket, request: dict, fds: list[int]) -> None:
    """The child: the caller's streams, environment and working directory, fresh timeblind modules
    and random state, then the kernel or the command."""
    import threading

    server_pid = os.getppid()
    server.close()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.setsid()
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    os.environ.clear()
    os.environ.update(request["env"])
    os.environ[SERVER_VARIABLE] = str(server_pid)
    os.chdir(request["cwd"])
    if _LOCK is not None:
        _LOCK.close()  # the server's alone: a child does not keep a new server from starting
    if sys.path[:1] == ["/"]:  # `python -m` put the server's folder first: the import path a fresh process
        if request["kind"] == "kernel":  # would have (ipykernel_launcher drops it, IPython adds '' later)
            del sys.path[0]
        else:
            sys.path[0] = request["cwd"]
    # An empty PYTHONPATH entry stands for the working folder, which was the server's (/) when it started.
    sys.path[:] = [request["cwd"] if entry == "/" else entry for entry in sys.path]
    for name in [m for m in sys.modules if m == "timeblind" or m.startswith("timeblind.")]:
        del sys.modules[name]  # imported afresh from the sources as they are now
    _reseed_and_set_threads()

    done = threading.Event()

    def watch() -> None:  # the caller gone (killed, or stopped with its kernel): so is this child
        try:
            while conn.recv(1):
                pass
        finally:
            if not done.is_set():
                os._exit(0)

    if request["kind"] == "kernel":
        threading.Thread(target=watch, name="caller-watch", daemon=True).start()
        import importlib.util

        from ipykernel.kernelapp import IPKernelApp

        sys.argv = [importlib.util.find_spec("ipykernel_launcher").origin, *request["argv"]]  # as a cold kernel's
        # The caller-watch thread ends this kernel with its caller, not ipykernel's parent poller; a handle
        # of 1 turns that poller off without the connection banner a handle of 0 prints to the job's log.
        IPKernelApp.launch_instance(argv=[*request["argv"], "--IPKernelApp.parent_handle=1"])
        os._exit(0)
    threading.Thread(target=watch, name="caller-watch", daemon=True).start()
    sys.argv = ["timeblind", *request["argv"]]
    try:
        import runpy

        runpy.run_module("timeblind", run_name="__main__", alter_sys=True)  # as `python -m timeblind` runs it
        status = 0
    except SystemExit as stop:
        status = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    done.set()
    conn.send(json.dumps({"exit": status or 0}).encode())
    os._exit(status or 0)


def _reseed_and_set_threads() -> None:
    """What a new process would have: fresh random state (Python's own is reseeded at fork), and
    the thread counts the job's environment asks for (all cores when it names none)."""
    threads = int(os.environ.get("OMP_NUM_THREADS") or len(os.sched_getaffinity(0)))
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        torch.seed()
        torch.set_num_threads(threads)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads, user_api="blas")
    except Exception:
        pass


if __name__ == "__main__":
    serve(Path(sys.argv[1]), float(os.environ.get("TIMEBLIND_WARM_IDLE", 300)))
