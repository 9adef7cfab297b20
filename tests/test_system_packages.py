"""workflow/scripts/system_packages.sh: what `make test` runs to find or install the programs pip does
not provide. Every case runs the script on a PATH of fakes only (apt-get, id, the programs looked
for), so no test can reach the real package manager, whoever runs the suite."""

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report_check import CHROMIUM_NAMES  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "workflow" / "scripts" / "system_packages.sh"
BASH = shutil.which("bash")
PG_PROGRAMS = ("initdb", "pg_ctl", "postgres", "psql")

# A fake apt-get: logs DEBIAN_FRONTEND and its arguments; `install` provides what a real install
# would (chromium and curl on PATH, the PostgreSQL programs in $PG_BIN) unless FAKE_APT_EMPTY is set.
FAKE_APT = """#!/bin/sh
echo "${DEBIAN_FRONTEND:-unset} $*" >> "$FAKE_APT_LOG"
[ "$1" = install ] && [ -z "${FAKE_APT_EMPTY:-}" ] || exit 0
for arg in "$@"; do
    case "$arg" in
        chromium|curl) printf '#!/bin/sh\\n' > "$FAKE_BIN/$arg"; /bin/chmod +x "$FAKE_BIN/$arg" ;;
        postgresql) /bin/mkdir -p "$PG_BIN"; for p in initdb pg_ctl postgres psql; do
                        printf '#!/bin/sh\\n' > "$PG_BIN/$p"; /bin/chmod +x "$PG_BIN/$p"; done ;;
    esac
done
"""


def executable(path: Path, text: str = "#!/bin/sh\n") -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


class Machine:
    """A fake machine: PATH holds only `bin` (fakes plus the coreutils the script uses)."""

    def __init__(self, tmp: Path, uid: int = 0, apt: bool = True):
        self.bin = tmp / "bin"
        self.bin.mkdir()
        self.pg_bin = tmp / "postgresql" / "bin"
        self.log = tmp / "apt.log"
        self.log.touch()
        for tool in ("sort", "tail"):
            (self.bin / tool).symlink_to(shutil.which(tool))
        executable(self.bin / "id", f"#!/bin/sh\necho {uid}\n")
        if apt:
            executable(self.bin / "apt-get", FAKE_APT)
        self.env = {"PATH": str(self.bin), "PG_BIN": str(self.pg_bin), "FAKE_BIN": str(self.bin),
                    "FAKE_APT_LOG": str(self.log), "HOME": str(tmp)}

    def provide(self, *names: str):
        for name in names:
            if name == "postgresql":
                self.pg_bin.mkdir(parents=True, exist_ok=True)
                for program in PG_PROGRAMS:
                    executable(self.pg_bin / program)
            else:
                executable(self.bin / name)

    def run(self, *needs: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([BASH, str(SCRIPT), *needs], env={**self.env, **env}, capture_output=True,
                              text=True, timeout=60)

    def apt_calls(self) -> list[str]:
        return self.log.read_text().splitlines()


TEST_NEEDS = ("chromium", "postgresql", "curl")  # what `make test` asks for


def test_as_root_installs_what_is_missing_once(tmp_path):
    machine = Machine(tmp_path, uid=0)
    first = machine.run(*TEST_NEEDS)
    assert first.returncode == 0, first.stdout + first.stderr
    assert machine.apt_calls() == [
        "noninteractive update -q",
        "noninteractive install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 chromium postgresql curl",
    ]
    assert "installed chromium postgresql curl" in first.stdout
    # a second run finds everything and never calls the package manager, nor says anything
    second = machine.run(*TEST_NEEDS)
    assert (second.returncode, second.stdout, second.stderr) == (0, "", "")
    assert len(machine.apt_calls()) == 2


def test_only_the_missing_packages_are_installed(tmp_path):
    machine = Machine(tmp_path, uid=0)
    machine.provide("chromium", "curl")
    out = machine.run(*TEST_NEEDS)
    assert out.returncode == 0, out.stdout + out.stderr
    assert machine.apt_calls()[-1].endswith("install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 postgresql")


def test_not_root_one_line_with_the_command_and_no_package_manager(tmp_path):
    machine = Machine(tmp_path, uid=1000)
    machine.provide("curl")
    out = machine.run(*TEST_NEEDS)
    assert out.returncode == 1
    assert out.stdout == ""
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    assert "missing system packages: chromium postgresql." in lines[0]
    assert lines[0].endswith(
        "sudo apt-get update && sudo apt-get install -y --no-install-recommends chromium postgresql")
    assert machine.apt_calls() == []


def test_without_apt_get_names_the_packages(tmp_path):
    machine = Machine(tmp_path, uid=0, apt=False)
    out = machine.run(*TEST_NEEDS)
    assert out.returncode == 1
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    assert "chromium postgresql curl" in lines[0] and "no apt-get" in lines[0]


def test_an_install_that_does_not_provide_the_program_fails(tmp_path):
    machine = Machine(tmp_path, uid=0)
    out = machine.run("chromium", FAKE_APT_EMPTY="1")
    assert out.returncode == 1
    assert "chromium is still missing after installing chromium" in out.stderr


@pytest.mark.parametrize("name", CHROMIUM_NAMES)
def test_finds_chromium_under_every_name_the_report_check_tries(tmp_path, name):
    machine = Machine(tmp_path, uid=1000)
    machine.provide(name)
    out = machine.run("chromium")
    assert (out.returncode, out.stderr) == (0, "")


def test_finds_chromium_named_by_the_environment(tmp_path):
    machine = Machine(tmp_path, uid=1000)
    browser = executable(tmp_path / "my-browser")
    assert machine.run("chromium").returncode == 1
    assert machine.run("chromium", CHROMIUM=str(browser)).returncode == 0


@pytest.mark.parametrize("absent", PG_PROGRAMS)
def test_postgresql_needs_every_server_program(tmp_path, absent):
    machine = Machine(tmp_path, uid=1000)
    machine.provide("postgresql")
    assert machine.run("postgresql").returncode == 0
    (machine.pg_bin / absent).unlink()
    out = machine.run("postgresql")
    assert out.returncode == 1 and "missing system packages: postgresql." in out.stderr


@pytest.mark.parametrize("facts, verdict", [
    ("/usr 3.11 1", None),  # has ensurepip: nothing to install
    ("/usr 3.11 0", "missing system packages: python3.11-venv."),  # Debian's Python without its venv package
    ("/opt/python 3.12 0", "cannot create a virtual environment"),  # not apt's Python: no package to name
])
def test_venv_need(tmp_path, facts, verdict):
    machine = Machine(tmp_path, uid=1000)
    python = executable(tmp_path / "python3", f"#!/bin/sh\necho {facts}\n")
    out = machine.run("venv", PYTHON=str(python))
    if verdict is None:
        assert (out.returncode, out.stderr) == (0, "")
    else:
        assert out.returncode == 1 and verdict in out.stderr
    assert machine.apt_calls() == []


def test_venv_probe_runs_on_a_real_interpreter(tmp_path):
    # the probe itself is Python: the interpreter running the suite was set up by `python -m venv`
    # (ensurepip) and must pass it; one without ensurepip must not
    machine = Machine(tmp_path, uid=1000)
    out = machine.run("venv", PYTHON=sys.executable)
    assert (out.returncode, out.stderr) == (0, "")
    no_ensurepip = executable(tmp_path / "python3",
                              f"#!/bin/sh\nexec {sys.executable} -c 'import sys; sys.modules[\"ensurepip\"] = None; "
                              f"exec(sys.argv[1])' \"$2\"\n")
    out = machine.run("venv", PYTHON=str(no_ensurepip))
    assert out.returncode == 1, out.stderr


def test_unknown_need_is_a_usage_error(tmp_path):
    out = Machine(tmp_path).run("firefox")
    assert out.returncode == 2 and "usage:" in out.stderr


def test_make_test_checks_the_system_programs_before_running_the_suite():
    if not shutil.which("make"):
        pytest.fail("make is missing: the README's two commands need it")
    plan = subprocess.run(["make", "-n", "test"], cwd=REPO, capture_output=True, text=True, check=True,
                          env={**os.environ, "MAKEFLAGS": ""}).stdout.splitlines()
    check = next(i for i, line in enumerate(plan) if line.split()[:1] == ["workflow/scripts/system_packages.sh"])
    suite = next(i for i, line in enumerate(plan) if "-m pytest" in line)
    assert check < suite
    assert plan[check].split()[1:] == list(TEST_NEEDS)
