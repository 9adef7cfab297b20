#!/usr/bin/env bash
# The programs timeblind needs from the system, not from pip: each need is checked by looking for
# the programs themselves, and what is missing is installed through apt-get (as root) or named,
# with the command that installs it, on one line (anyone else).
#
#   workflow/scripts/system_packages.sh NEED...
#
#   need        met when                                                      Debian package
#   chromium    $CHROMIUM, chromium, chromium-browser, google-chrome or        chromium
#               google-chrome-stable is on PATH (the tests render the report
#               in it: tests/report_check.py looks for the same names)
#   postgresql  initdb, pg_ctl, postgres and psql are in $PG_BIN, else in the  postgresql
#               newest /usr/lib/postgresql/*/bin, else beside initdb on PATH
#               (where tracking_server.sh looks)
#   curl        curl is on PATH (tracking_server.sh's health check)           curl
#   venv        $PYTHON (default python3) has ensurepip, so `python -m venv`   python3.X-venv
#               works (Debian ships it apart from Python)
#
# A met need costs a few file look-ups and never runs the package manager, so `make` calls this on
# every run: nothing is installed twice. Exit status 0 when every need is met (after installing
# what was missing), 1 when something is missing and cannot be installed here.
set -euo pipefail

say() { echo "system-packages: $*"; }
fail() { echo "system-packages: $*" >&2; exit 1; }

CHROMIUM_NAMES=(chromium chromium-browser google-chrome google-chrome-stable)
PG_PROGRAMS=(initdb pg_ctl postgres psql)
PYTHON=${PYTHON:-python3}

has_chromium() {
    local name
    for name in ${CHROMIUM:+"$CHROMIUM"} "${CHROMIUM_NAMES[@]}"; do
        command -v "$name" >/dev/null 2>&1 && return 0
    done
    return 1
}

pg_bin() {  # the directory tracking_server.sh would use
    if [ -n "${PG_BIN:-}" ]; then echo "$PG_BIN"; return; fi
    local dirs=(/usr/lib/postgresql/*/bin)
    if [ -e "${dirs[0]}" ]; then
        local newest
        newest=$(printf '%s\n' "${dirs[@]}" | sort -V | tail -n 1)
        if [ -x "$newest/initdb" ]; then echo "$newest"; return; fi
    fi
    if command -v initdb >/dev/null 2>&1; then
        local initdb
        initdb=$(command -v initdb)
        echo "${initdb%/*}"
    fi
}

has_postgresql() {
    local dir program
    dir=$(pg_bin)
    [ -n "$dir" ] || return 1
    for program in "${PG_PROGRAMS[@]}"; do
        [ -x "$dir/$program" ] || return 1
    done
}

has_curl() { command -v curl >/dev/null 2>&1; }

# "BASE_PREFIX MAJOR.MINOR HAS_ENSUREPIP" of $PYTHON, empty when it does not run
python_facts() {
    "$PYTHON" -c 'import sys, importlib.util as u; print(sys.base_prefix, "%d.%d" % sys.version_info[:2], int(u.find_spec("ensurepip") is not None))' 2>/dev/null || true
}

has_venv() {
    local facts
    facts=$(python_facts)
    [ -n "$facts" ] && [ "${facts##* }" = 1 ]
}

venv_package() {  # Debian's venv package for $PYTHON; fails for an interpreter apt did not install
    local facts prefix version
    facts=$(python_facts)
    if [ -z "$facts" ]; then
        [ "$PYTHON" = python3 ] && { echo python3-venv; return; }
        fail "PYTHON=$PYTHON does not run: set PYTHON to a Python 3.11 interpreter"
    fi
    read -r prefix version _ <<< "$facts"
    [ "$prefix" = /usr ] || fail "PYTHON=$PYTHON ($prefix) cannot create a virtual environment (no ensurepip): set PYTHON to an interpreter that can"
    echo "python$version-venv"
}

met() {
    case "$1" in
        chromium) has_chromium ;;
        postgresql) has_postgresql ;;
        curl) has_curl ;;
        venv) has_venv ;;
        *) usage ;;
    esac
}

package() {
    case "$1" in
        venv) venv_package ;;
        *) echo "$1" ;;  # chromium, postgresql and curl are Debian's package names too
    esac
}

usage() { echo "usage: $0 chromium|postgresql|curl|venv ... (see the comment at the top of this file)" >&2; exit 2; }
[ $# -gt 0 ] || usage

missing=()
packages=()
for need in "$@"; do
    if ! met "$need"; then
        missing+=("$need")
        packages+=("$(package "$need")")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    fail "missing system packages: ${packages[*]} (Debian's names); there is no apt-get here: install them with this system's package manager"
fi
if [ "$(id -u)" != 0 ]; then
    fail "missing system packages: ${packages[*]}. Install with: sudo apt-get update && sudo apt-get install -y --no-install-recommends ${packages[*]}"
fi

say "installing ${packages[*]} (apt-get update, then apt-get install)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# a fresh machine may still be running its first unattended upgrade: wait for dpkg's lock, not fail
apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 "${packages[@]}"
hash -r
for need in "${missing[@]}"; do
    met "$need" || fail "$need is still missing after installing ${packages[*]}"
done
say "installed ${packages[*]} in ${SECONDS}s"
