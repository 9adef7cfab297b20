"""The figures' style is seaborn's, set without importing seaborn."""

import subprocess
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib as mpl  # noqa: E402
import pytest  # noqa: E402
import seaborn as sns  # noqa: E402
from timeblind.plots import style  # noqa: E402


def settings() -> dict:
    return {k: v for k, v in mpl.rcParams.items() if k != "image.cmap"}  # seaborn's rocket is left out


@pytest.mark.parametrize("name", ["whitegrid", "white"])
def test_the_theme_is_seaborns(name):
    with mpl.rc_context():
        mpl.rcdefaults()
        sns.set_theme(style=name, context="notebook")
        expected = settings()
        mpl.rcdefaults()
        style.set_theme(name)
        assert settings() == expected


@pytest.mark.parametrize("n", [1, 6, 10, 13])
def test_the_palette_is_seaborns_colorblind(n):
    assert style.color_palette(n) == [tuple(c) for c in sns.color_palette("colorblind", n)]


def test_drawing_a_figure_does_not_import_seaborn(tmp_path):
    code = ("import sys, pandas as pd\nfrom timeblind.plots.figures import accuracy_figure\n"
            "s = pd.DataFrame({'task': ['answer'], 'encoder': ['e'], 'category': ['shapes'], 'accuracy': [0.5],"
            " 'ci_low': [0.4], 'ci_high': [0.6], 'chance': [0.125], 'seed': [0]})\n"
            f"accuracy_figure(s, s, {str(tmp_path / 'acc')!r})\n"
            "assert not {'seaborn', 'scipy.stats'} & set(sys.modules), 'imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
    assert (tmp_path / "acc.png").stat().st_size > 1000
