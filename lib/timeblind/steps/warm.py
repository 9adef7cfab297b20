"""Warm processes: a pipeline job's `timeblind` command (run-notebook, init-tracking) and its step's
kernel are forked from a server that has already imported what they load (papermill, nbconvert with
its templates compiled, torch, Lightning, MLflow's store, pandas, matplotlib, ipykernel), instead of
fresh interpreters importing it all again: several seconds of CPU per step.

How: `python -m timeblind run-notebook ...` hands its command line to the warm server of this
interpreter, PYTHONPATH and installed packages, over a Unix socket in a private folder
(TIMEBLIND_WARM_DIR, else $XDG_RUNTIME_DIR or /tmp, then timeblind-<uid>/, mode 0700, the socket
0600; the server serves its own user only). The server forks; the child takes the caller's stdin,
stdout and stderr, environment and working directory, runs the command and reports its exit status.
The runner starts its kernel as `python -m timeblind.steps.warm -f <connection file>` (the python3
kernel's command with this module in place of ipykernel_launcher), which asks the server for a
kernel the same way: the child sets the job's thread count and serves the connection file as
`python -m ipykernel_launcher` would. Each caller stays as its child's stand-in: signals it gets are
passed on, and the child ends when its caller does (killed included); a kernel's caller ends when
the runner that started it does.

What a job sees is what a fresh process sees: each child is a new fork of a server that never ran
a step, and timeblind itself is not preloaded (its modules are imported afresh in every child, so
edited sources are what runs). Random generators are reseeded as in a new process. The server
preloads with one OpenMP and BLAS thread, so it forks with no thread pool running.

When no server answers, the caller starts one in the background and goes on cold (an ordinary
interpreter, an ordinary kernel): the first jobs never wait for the preloading. A server whose
preloading initialised CUDA (whose driver does not survive a fork) does not serve, and leaves a note
beside its socket so that no other is started for the same interpreter and packages. A server exits after
TIMEBLIND_WARM_IDLE seconds (default 300) without a request; its log (beside the socket) names
every child with its CPU time. TIMEBLIND_WARM=0 turns all this off; it is off outside Linux and in
Slurm jobs (one allocation per job: the preloading would be paid and never used). This module is
the callers' side; the server is timeblind.steps.warm_server.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
from pathlib import Path

SWITCH = "TIMEBLIND_WARM"
# Read at import by the libraries above: the server keeps one thread, each kernel sets its own.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
SERVER_VARIABLE = "TIMEBLIND_WARM_SERVER"  # set in a child's environment: the server's pid
_MESSAGE = 1 << 20
_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")


def enabled(env=os.environ) -> bool:
    return sys.platform.startswith("linux") and env.get(SWITCH, "1") != "0" and "SLURM_JOB_ID" not in env


def _folder() -> Path | None:
    """This user's private folder for servers' sockets, or None when it cannot be made private."""
    base = os.environ.get("TIMEBLIND_WARM_DIR") or os.path.join(
        os.environ.get("XDG_RUNTIME_DIR") or "/tmp", f"timeblind-{os.getuid()}")
    try:
        os.makedirs(base, mode=0o700, exist_ok=True)
        info = os.stat(base)
    except OSError:
        return None
    if info.st_uid != os.getuid() or info.st_mode & 0o077:
        return None
    return Path(base)


def _key() -> str:
    """What a server's preloaded modules depend on: the interpreter, its path, the installed
    packages (a site-packages folder changes when a package is installed or removed) and this file."""
    import hashlib

    parts = [sys.executable, os.environ.get("PYTHONPATH", ""), str(Path(__file__).stat().st_mtime_ns)]
    for entry in sys.path:
        if entry.endswith("-packages") and os.path.isdir(entry):
            parts.append(f"{entry}:{os.stat(entry).st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def socket_path() -> Path | None:
    folder = _folder()
    return None if folder is None else folder / f"server-{_key()}.sock"


def servers(folder: Path | None = None) -> dict[int, Path]:
    """The live servers whose logs are in `folder` (default: this user's): pid -> socket."""
    folder = folder or _folder()
    found = {}
    for log in (folder.glob("server-*.log") if folder else []):
        sock = log.with_suffix(".sock")
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("server ") and line.endswith(f": preloading for {sock}"):
                pid = int(line.split()[1].rstrip(":"))
                try:
                    if str(sock) in Path(f"/proc/{pid}/cmdline").read_text(errors="replace"):
                        found[pid] = sock
                except OSError:
                    pass
    return found


def cpu_seconds(pid: int) -> float:
    """A server's CPU time: its own, and its children's that ended (it collects them as they end)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(t) for t in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime, stime, cutime, cstime


def stop_servers(folder: Path | None = None) -> None:
    """Stop the live servers of `folder` (default: this user's); running children finish."""
    for pid in servers(folder):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


# ---------------------------------------------------------------------------------------------- callers


def start_server(path: Path) -> None:
    """A server for `path` in the background, in a session of its own and no child of this process
    (forked twice); its log beside the socket."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES and not k.startswith("JPY_")}
    env.update({k: "1" for k in THREAD_VARIABLES}, MPLBACKEND="Agg")
    argv = [sys.executable, "-m", "timeblind.steps.warm_server", str(path)]
    log = os.open(path.with_suffix(".log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            if os.fork() == 0:
                os.dup2(null, 0)
                os.dup2(log, 1)
                os.dup2(log, 2)
                os.closerange(3, 256)
                os.chdir("/")  # holds no job's folder; each child moves to its caller's
                os.execve(sys.executable, argv, env)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    os.close(log)
    os.close(null)


def _fork(kind: str, argv: list[str]) -> tuple[socket.socket, int] | None:
    """A child of the warm server running `kind` with `argv` for this process (its connection and pid);
    None when no server took the request, one being started then."""
    path = socket_path() if enabled() else None
    if path is None:
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        conn.connect(str(path))
    except OSError:
        conn.close()
        if not _starting(path) and not path.with_suffix(".refused").exists():
            start_server(path)
        return None
    request = json.dumps({"kind": kind, "argv": argv, "env": dict(os.environ), "cwd": os.getcwd()}).encode()
    try:
        socket.send_fds(conn, [request], [0, 1, 2])
        reply = json.loads(conn.recv(_MESSAGE) or b"{}")
    except OSError:  # the server stopped (idle) with this request queued
        reply = {}
    if "pid" not in reply:  # refused or dropped before forking: nothing runs
        conn.close()
        return None
    return conn, reply["pid"]


def _starting(path: Path) -> bool:
    """Whether a server for `path` is alive (preloading, before its socket exists): it holds the lock."""
    import fcntl

    try:
        with open(path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released on closing
    except OSError:
        return True
    return False


def _stand_in(pid: int) -> None:
    """Signals to this process go to the child; one that ends this process ends the child too (its
    watcher sees the connection close)."""
    def forward(signum, _frame):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass
        if signum in (signal.SIGTERM, signal.SIGHUP):
            sys.exit(128 + signum)

    for name in _SIGNALS:
        signal.signal(getattr(signal, name), forward)


def delegate(argv: list[str]) -> int | None:
    """Run the `timeblind` command `argv` in a warm child and return its exit status; None when no
    server is there (the caller runs it itself) or this process is already a warm child."""
    if os.environ.get(SERVER_VARIABLE):
        return None
    forked = _fork("command", argv)
    if forked is None:
        return None
    conn, pid = forked
    _stand_in(pid)
    while message := conn.recv(_MESSAGE):
        status = json.loads(message).get("exit")
        if status is not None:
            return status
    return 1  # ended without a word: killed


def command(cmd: list[str]) -> list[str]:
    """The python3 kernel's command (python -m ipykernel_launcher -f ...) through this module."""
    if cmd[1:3] == ["-m", "ipykernel_launcher"]:
        return [cmd[0], "-m", "timeblind.steps.warm", *cmd[3:]]
    return cmd


def launch_kernel(argv: list[str]) -> None:
    """Be the kernel for `argv` (-f <connection file> ...): forked by the warm server, else cold."""
    forked = _fork("kernel", argv)
    if forked is None:
        os.execv(sys.executable, [sys.executable, "-m", "ipykernel_launcher", *argv])
    conn, pid = forked
    _stand_in(pid)
    _end_with_parent()
    while conn.recv(1):  # the kernel holds the other end: end of stream when it exits
        pass
    sys.exit(0)


def _end_with_parent() -> None:
    """SIGTERM to this process when the runner that started it ends, as a cold kernel ends with it
    (ipykernel's parent poller)."""
    import ctypes

    parent = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it ended before that took effect
        os.kill(os.getpid(), signal.SIGTERM)


def main(argv: list[str] | None = None) -> None:
    launch_kernel(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
