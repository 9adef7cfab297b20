"""The report check itself: it passes on a report a reader can use and fails, naming what is missing,
when a figure does not load, a table is not rendered, the page is no report, or there is no browser.
(The check of the real report runs at the end of test_e2e.py's smoke profile run, to avoid a second run.)"""

import os
import subprocess
import sys
from pathlib import Path

import matplotlib
import pytest

from report_check import INSTALL_HINT, ReportCheckError, check_report, find_chromium, verify_report

matplotlib.use("Agg")

SNAKEFILE = '''
rule all:
    input: "results/figures/accuracy.png", "results/tables/table1.csv", "results/notebooks/step.html"

rule make:
    input: png="src/accuracy.png", csv="src/table1.csv", html="src/step.html"
    output:
        png=report("results/figures/accuracy.png", caption="figure.rst", category="2. Result"),
        csv=report("results/tables/table1.csv", caption="table.rst", category="2. Result"),
        html=report("results/notebooks/step.html", caption="figure.rst", category="4. Notebooks"),
    shell: "cp {input.png} {output.png}; cp {input.csv} {output.csv}; cp {input.html} {output.html}"
'''
TABLE_CAPTION = '''**What was run.** A demo.

.. csv-table::
   :file: {{ snakemake.output.csv }}
   :header-rows: 1
'''
EXPECT = dict(categories=["2. Result", "4. Notebooks"], images=["results/figures/accuracy.png"],
              tables=["results/tables/table1.csv"], notebooks=["results/notebooks/step.html"],
              captions_say=["What was run"])


def snakemake(workdir, *args):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    out = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(workdir / "Snakefile"),
                          "--directory", str(workdir), *args], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A finished two-category workflow: a figure, a CSV shown in its caption, a notebook page."""
    import matplotlib.pyplot as plt

    workdir = tmp_path_factory.mktemp("demo")
    (workdir / "src").mkdir()
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.bar(["framewise", "early"], [0.25, 0.9])
    fig.savefig(workdir / "src/accuracy.png")
    plt.close(fig)
    (workdir / "src/table1.csv").write_text('encoder,shapes\nframewise,"25.0 [10.2, 49.5]"\nchance,25.0\n')
    (workdir / "src/step.html").write_text("<html><body><pre>results_dir = 'results'</pre></body></html>")
    (workdir / "Snakefile").write_text(SNAKEFILE)
    (workdir / "figure.rst").write_text("**What was run.** A demo.\n")
    (workdir / "table.rst").write_text(TABLE_CAPTION)
    snakemake(workdir, "--cores", "1")
    return workdir


def build_report(workdir, name):
    report = workdir / f"{name}.html"
    snakemake(workdir, "--report", str(report))
    return report


def test_a_usable_report_passes(demo):
    seen = verify_report(build_report(demo, "good"), demo, **EXPECT)
    assert seen["results/figures/accuracy.png"]["image"]["width"] == 200  # 2 in at 100 dpi, as rendered
    assert seen["results/tables/table1.csv"]["tables"] == [[["encoder", "shapes"], ["framewise", "25.0 [10.2, 49.5]"],
                                                           ["chance", "25.0"]]]
    assert "results_dir" in seen["results/notebooks/step.html"]["frame_text"]


def test_a_figure_that_does_not_load_fails(demo):
    figure = demo / "results/figures/accuracy.png"
    good = figure.read_bytes()
    figure.write_bytes(b"not a png")  # the file and its name are in the report, but no reader sees a figure
    try:
        report = build_report(demo, "broken_figure")
    finally:
        figure.write_bytes(good)
    assert "accuracy.png" in report.read_text()  # a text search would pass
    with pytest.raises(ReportCheckError, match=r"accuracy.png does not load as an image"):
        verify_report(report, demo, **EXPECT)


def test_a_table_not_rendered_in_its_caption_fails(demo):
    caption = demo / "table.rst"
    caption.write_text("**What was run.** A demo. The table is attached.\n")
    try:
        report = build_report(demo, "no_table")
    finally:
        caption.write_text(TABLE_CAPTION)
    with pytest.raises(ReportCheckError, match=r"description of results/tables/table1.csv does not show it as a "
                                               r"table: expected rows \[\['encoder', 'shapes'\]"):
        verify_report(report, demo, **EXPECT)


def test_a_page_that_is_not_the_report_app_fails(tmp_path):
    page = tmp_path / "page.html"
    page.write_text("<html><body><h1>2. Result</h1><img src='accuracy.png'><table><tr><td>framewise</td></tr>"
                    "</table></body></html>")
    with pytest.raises(ReportCheckError, match="has no rendered report menu"):
        verify_report(page, tmp_path, categories=["2. Result"])


def test_no_browser_fails_and_says_how_to_install_one(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CHROMIUM", raising=False)
    with pytest.raises(ReportCheckError, match="apt-get install chromium"):
        find_chromium()
    with pytest.raises(ReportCheckError, match="apt-get install chromium"):
        check_report(tmp_path)
    assert "apt-get install chromium" in INSTALL_HINT
