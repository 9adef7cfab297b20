import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(REPO / "scripts"))  # the developer tools (bench, probe) are tested too


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session", autouse=True)
def warm_servers():
    """The warm servers (timeblind.steps.warm) that the tests' pipeline jobs start live in a folder of
    this session's (short: a socket's path has a length limit) and are stopped at its end."""
    folder = Path(tempfile.mkdtemp(prefix="tb-tests-", dir="/tmp"))
    before = os.environ.get("TIMEBLIND_WARM_DIR")
    os.environ["TIMEBLIND_WARM_DIR"] = str(folder)
    yield folder
    from timeblind.steps import warm

    warm.stop_servers(folder)
    shutil.rmtree(folder, ignore_errors=True)
    if before is None:
        os.environ.pop("TIMEBLIND_WARM_DIR", None)
    else:
        os.environ["TIMEBLIND_WARM_DIR"] = before


@pytest.fixture
def env() -> dict:
    """Environment for subprocesses: this interpreter's bin first, no inherited tracking server."""
    e = dict(os.environ)
    e["PATH"] = f"{BIN}{os.pathsep}{e.get('PATH', '')}"
    e.pop("MLFLOW_TRACKING_URI", None)
    e["PYTHONPATH"] = f"{REPO / 'lib'}{os.pathsep}{e.get('PYTHONPATH', '')}"
    return e


@pytest.fixture(scope="session")
def logged_runs():
    """The runs a pipeline logged to its embedded store: logged_runs(results_dir, "tags.step = 'train'")
    -> (client, runs), every run of the `timeblind` experiment that matches the filter."""
    from mlflow.tracking import MlflowClient

    def search(results_dir: Path, filter_string: str = ""):
        client = MlflowClient(f"sqlite:///{Path(results_dir) / 'mlflow.db'}")
        experiment = client.get_experiment_by_name("timeblind")
        return client, client.search_runs([experiment.experiment_id], filter_string, max_results=1000)

    return search


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """A small stored data set with every kind of task: closed classes, words read letter by
    letter, pattern heads (16x40, 4 frames)."""
    from timeblind.data.dataset import StimulusConfig, write_dataset
    from timeblind.stimuli import MotionConfig
    from timeblind.stimuli.categories import WordOptions

    out = tmp_path_factory.mktemp("data")
    cfg = StimulusConfig(height=16, width=40, motion=MotionConfig(frames=4), categories=("shapes", "words", "patterns"),
                         shapes=("circle", "star"), words=WordOptions(vocabulary=6, held_out=2))
    write_dataset(out, cfg, 0, {"train": 64, "val": 16, "test": 16}, log=lambda *_: None)
    return out


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models on a busy 2-core machine: a second intra-op thread only adds contention
    (about 10x slower). Modules opt in with `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_shapes(tmp_path_factory):
    """Writes a small stored shapes data set (16x16, 4 frames) and returns its folder:
    tiny_shapes({"train": 48, "val": 16}, shapes=("circle", "star"))."""
    from timeblind.data.dataset import StimulusConfig, write_dataset
    from timeblind.stimuli import MotionConfig

    def write(sizes: dict, shapes: tuple[str, ...] = ("circle", "star")) -> Path:
        out = tmp_path_factory.mktemp("shapes")
        cfg = StimulusConfig(height=16, width=16, motion=MotionConfig(frames=4), categories=("shapes",),
                             shapes=shapes)
        write_dataset(out, cfg, 0, sizes, log=lambda *_: None)
        return out

    return write


@pytest.fixture(scope="session")
def two_lines():
    """Draws text as the generator would report it: two_lines(texts, tops, height, advance, size) ->
    a figure map (H, W) in {0, 1} with one block per character (1 px in from each side of its
    advance) and the glyphs (line, char, x0, x1), each line starting at x = 6."""
    import numpy as np

    def draw(texts=("ab", "cdd"), tops=(4, 18), height=8, advance=8, size=(32, 48)):
        figure = np.zeros(size)
        glyphs = []
        for line, (top, text) in enumerate(zip(tops, texts)):
            x = 6
            for c in text:
                figure[top:top + height, x + 1:x + advance - 1] = 1
                glyphs.append((line, c, float(x), float(x + advance)))
                x += advance
        return figure, glyphs

    return draw
