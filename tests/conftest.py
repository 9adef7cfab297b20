import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture
def env() -> dict:
    """Environment for subprocesses: this interpreter's bin first, no inherited tracking server."""
    e = dict(os.environ)
    e["PATH"] = f"{BIN}{os.pathsep}{e.get('PATH', '')}"
    e.pop("MLFLOW_TRACKING_URI", None)
    e["PYTHONPATH"] = f"{REPO / 'lib'}{os.pathsep}{e.get('PYTHONPATH', '')}"
    return e
