"""What a reader of the Snakemake report sees, checked in headless Chromium.

The report is one self-contained HTML file whose React app renders everything from embedded data,
so a text search of the file proves little: this opens it from disk (no server), clicks through
the menu as a reader would (real mouse events, network blocked) and asserts on the rendered page:
every category, each figure loaded as an image, Table 1 and the other tables rendered as tables in
their captions, each executed notebook shown in its frame, and the run's configuration.

Chromium is driven over the DevTools protocol on a pipe (--remote-debugging-pipe), so nothing but
the system browser is needed: `apt-get install chromium`.

Use: check_report(workdir, env) after a pipeline run in workdir, or
     python tests/report_check.py WORKDIR [REPORT.html]
"""

from __future__ import annotations

import csv
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_HINT = "the report check renders the report in headless Chromium: install it with `apt-get install chromium`"


class ReportCheckError(AssertionError):
    """The rendered report lacks something a reader should see."""


def find_chromium() -> str:
    """The browser binary ($CHROMIUM, else the first on PATH); fails, never skips, when there is none."""
    explicit = os.environ.get("CHROMIUM")
    for name in ([explicit] if explicit else []) + list(CHROMIUM_NAMES):
        found = shutil.which(name)
        if found:
            return found
    raise ReportCheckError(f"no Chromium found (tried {', '.join(CHROMIUM_NAMES)} and $CHROMIUM): {INSTALL_HINT}")


class Browser:
    """A headless Chromium tab driven over the DevTools protocol on fds 3/4 (stdlib only)."""

    def __init__(self, executable: str | None = None, width: int = 1600, height: int = 1000, timeout: float = 30):
        self.timeout = timeout
        self.profile = tempfile.TemporaryDirectory(prefix="report-check-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        args = [executable or find_chromium(), "--headless", "--remote-debugging-pipe",
                "--no-sandbox",  # CI containers run as root, where Chromium's sandbox refuses to start
                "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
                "--disable-extensions", "--mute-audio", f"--user-data-dir={self.profile.name}",
                f"--window-size={width},{height}", "about:blank"]
        self.stderr = tempfile.TemporaryFile()

        def pipe_on_fds_3_and_4():  # where --remote-debugging-pipe expects commands in, replies out
            command_in, reply_out = os.dup(to_browser_r), os.dup(from_browser_w)  # copies: these may be 3 or 4
            os.dup2(command_in, 3)
            os.dup2(reply_out, 4)

        self.process = subprocess.Popen(args, pass_fds=(3, 4), preexec_fn=pipe_on_fds_3_and_4,
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.stderr)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        try:
            target = self.call("Target.createTarget", url="about:blank")["targetId"]
            self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            for domain in ("Page", "Runtime", "Network"):
                self.call(f"{domain}.enable", session=True)
            # Offline, as the report must work without a server: nothing is fetched from the network,
            # so what renders is what the file holds (and the notebooks' CDN scripts fail at once).
            self.call("Network.setBlockedURLs", session=True, urls=["http://*", "https://*", "ws://*", "wss://*"])
        except BaseException:
            self.close()
            raise

    # -- protocol ---------------------------------------------------------------------------------
    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._from_browser], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise ReportCheckError("Chromium did not answer in time" + self._stderr_tail())
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise ReportCheckError("Chromium exited" + self._stderr_tail())
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, session: bool = False, reply_within: float | None = None, **params) -> dict:
        """Send one DevTools command (to the tab if session) and return its result."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + (reply_within or self.timeout)
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:  # anything else is an event, which no check needs
                if "error" in reply:
                    raise ReportCheckError(f"DevTools {method} failed: {reply['error']}")
                return reply.get("result", {})

    def _stderr_tail(self) -> str:
        self.stderr.seek(0)
        tail = self.stderr.read().decode(errors="replace")[-2000:]
        return f"; its stderr ends:\n{tail}" if tail else ""

    def close(self):
        try:
            self.call("Browser.close")
        except (ReportCheckError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for fd in (self._to_browser, self._from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
        self.stderr.close()
        self.profile.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- page -------------------------------------------------------------------------------------
    def evaluate(self, expression: str, context_id: int | None = None, reply_within: float | None = None):
        params = {"expression": expression, "returnByValue": True, "awaitPromise": True}
        if context_id is not None:
            params["contextId"] = context_id
        reply = self.call("Runtime.evaluate", session=True, reply_within=reply_within, **params)
        if "exceptionDetails" in reply:
            details = reply["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise ReportCheckError(f"script failed in the page: {text}\n  script: {expression[:300]}")
        return reply["result"].get("value")

    def wait_for(self, expression: str, what: str, timeout: float | None = None):
        """Poll a JS expression in the page (every 20 ms; a throw counts as not yet) until it is truthy;
        fail naming what a reader would miss."""
        timeout_ms = int(1000 * (timeout or self.timeout))
        value = self.evaluate(f"""new Promise(resolve => {{
            const start = performance.now();
            const poll = () => {{
                let value = null;
                try {{ value = ({expression}); }} catch (error) {{ value = null; }}
                if (value || performance.now() - start > {timeout_ms}) resolve(value || null);
                else setTimeout(poll, 20);
            }};
            poll();
        }})""", reply_within=timeout_ms / 1000 + 10)  # the page gives up first: the error names what is missing
        if not value:
            raise ReportCheckError(f"the rendered report does not show {what}")
        return value

    def open(self, path: Path):
        self.call("Page.navigate", session=True, url=Path(path).resolve().as_uri())
        self.wait_for("document.readyState === 'complete'", f"anything: {path} did not load")

    def click(self, selector_js: str, what: str):
        """Click the element a JS expression finds, with real mouse events at its centre, as a reader does:
        once it is visible, on top, and does not move."""
        box = self.wait_for(f"""(() => {{
            // The sidebar animates its width when its content changes: click once it stands still.
            if ({SIDEBAR}.getAnimations().some(a => a.playState === 'running')) return null;
            const el = {selector_js};
            if (!el) return null;
            el.scrollIntoView({{block: "center", inline: "center"}});
            const r = el.getBoundingClientRect();
            if (r.width === 0 || r.height === 0) return null;
            const x = r.left + r.width / 2, y = r.top + r.height / 2;
            const hit = document.elementFromPoint(x, y);  // not hidden under another element
            return hit && (hit === el || el.contains(hit)) ? [x, y] : null;
        }})()""", f"{what} (nothing visible to click)")
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", session=True, type=kind, x=box[0], y=box[1], button="left",
                      clickCount=1)

    def frame_text(self, src_prefix: str, what: str) -> str:
        """The rendered text of the iframe whose src starts with src_prefix (frames of data: URLs are
        cross-origin to the page, so read through an isolated world of that frame)."""
        deadline = time.monotonic() + self.timeout
        while True:
            tree = self.call("Page.getFrameTree", session=True)["frameTree"]
            frames = [child["frame"] for child in tree.get("childFrames", [])
                      if child["frame"].get("url", "").startswith(src_prefix)]
            for frame in reversed(frames):  # the newest first: a frame being replaced may linger in the tree
                world = self.call("Page.createIsolatedWorld", session=True, frameId=frame["id"],
                                  worldName="report-check")["executionContextId"]
                text = self.evaluate("document.readyState === 'complete' && document.body ? "
                                     "document.body.innerText : ''", context_id=world)
                if text and text.strip():
                    return text
            if time.monotonic() > deadline:
                raise ReportCheckError(f"the rendered report does not show {what}")
            time.sleep(0.05)


# -- the report, as a reader sees it ------------------------------------------------------------------
# Where things are in Snakemake 9's report app: the sidebar is the first <nav> (it holds a nested
# breadcrumb <nav>), its panel the div.p-3 under it; the main view is the element after the sidebar.
SIDEBAR = "document.querySelector('#app > div > nav')"
PANEL = f"{SIDEBAR}.querySelector(':scope > div > div.p-3')"
MAIN = "document.querySelector('#app > div > nav + div')"
# What the app's view button shows in the main view (abstract_view_manager.js); the rest it downloads.
VIEWED_AS_IMAGE = {"image/svg+xml", "image/png", "image/jpeg"}
VIEWED_IN_FRAME = {"text/html", "application/pdf"}


def _js(value) -> str:
    return json.dumps(value)


def _link(scope: str, text: str) -> str:
    """JS finding the link in scope whose visible text is text."""
    return f"[...{scope}.querySelectorAll('a')].find(a => a.textContent.trim() === {_js(text)})"


class ReportView:
    """One report open in the browser, navigated through its own menu, breadcrumbs and buttons."""

    def __init__(self, browser: Browser, report: Path):
        self.b = browser
        browser.open(report)
        if not self.b.evaluate("typeof categories !== 'undefined' && typeof results !== 'undefined'"):
            raise ReportCheckError(f"{report} is not a Snakemake report (no embedded results): "
                                   "it has no rendered report menu")
        self.b.wait_for(f"typeof categories !== 'undefined' && {SIDEBAR} !== null && "
                        f"{_link(SIDEBAR, 'Workflow')} !== undefined",
                        f"the Snakemake report app: {report} has no rendered report menu")
        # Transitions are cosmetic; without them a click need not wait for the sidebar to settle.
        self.b.evaluate("document.head.appendChild(Object.assign(document.createElement('style'), "
                        "{textContent: '*, *::before, *::after { transition: none !important; }'})) && true")

    def main_text(self) -> str:
        return self.b.evaluate(f"{MAIN}.innerText")

    def menu_categories(self) -> list[str]:
        """The result categories listed in the menu (under its "Results" heading)."""
        self.home()
        return self.b.evaluate(f"""(() => {{
            const names = new Set(Object.keys(categories));
            return [...{PANEL}.querySelectorAll('a')].map(a => a.textContent.trim()).filter(t => names.has(t));
        }})()""")

    def home(self):
        self.b.click(f"{SIDEBAR}.querySelector('nav ol a')", "the breadcrumb back to the menu")
        self.b.wait_for(f"{_link(PANEL, 'Workflow')} !== undefined", "the menu after going home")

    def subcategories(self, category: str) -> list[str | None]:
        """The category's subcategories, or [None] when it has one (the app then lists its results directly)."""
        names = self.b.evaluate(f"Object.keys(categories[{_js(category)}]).sort((a, b) => a.localeCompare(b))")
        return names if len(names) > 1 else [None]

    def open_list(self, category: str, subcategory: str | None = None) -> int:
        """Click the category in the menu (and the subcategory in it); returns how many result rows it lists."""
        where = f"{category!r}" + (f" / {subcategory!r}" if subcategory else "")
        self.home()
        self.b.click(_link(PANEL, category), f"the menu entry {category!r}")
        if subcategory is not None:
            self.b.click(_link(PANEL, subcategory), f"the subcategory entry {where}")
        return self.b.wait_for(f"{PANEL}.querySelectorAll('table tbody tr').length", f"the results of {where}")

    def back_to_list(self, category: str, subcategory: str | None):
        """From a result's panel back to its list, through the breadcrumb, as a reader would."""
        name = subcategory or category
        self.b.click(_link(f"{SIDEBAR}.querySelector('nav ol')", name), f"the breadcrumb {name!r}")
        self.b.wait_for(f"{PANEL}.querySelectorAll('table tbody tr').length", f"the results of {name!r}")

    def open_result_info(self, category: str, subcategory: str | None, row: int) -> dict:
        """In the open list, open row's information panel (its "i" button); what the panel shows."""
        where = f"result {row + 1} of {category!r}" + (f" / {subcategory!r}" if subcategory else "")
        self.b.click(f"{PANEL}.querySelectorAll('table tbody tr')[{row}].querySelectorAll('td:last-child a')[1]",
                     f"the information button of {where}")
        # Ready when the panel is there and every image in the description has loaded or failed.
        self.b.wait_for(f"""[...{PANEL}.querySelectorAll('li')].some(li => li.textContent === 'Snakemake rule')
                        && [...{PANEL}.querySelectorAll('li.prose img')].every(img => img.complete)""",
                        f"the information panel of {where}")
        return self.b.evaluate(f"""(() => {{
            const caption = {PANEL}.querySelector('li.prose');
            const eye = {PANEL}.querySelector('ul a[type=button]');
            return {{
                path: app.state.resultPath,  // which result this row is (the app's own state)
                mime: results[app.state.resultPath].mime_type,
                caption: caption ? caption.innerText : '',
                tables: caption ? [...caption.querySelectorAll('table')].map(t =>
                    [...t.querySelectorAll('tr')].map(tr => [...tr.querySelectorAll('th, td')].map(c => c.innerText.trim()))) : [],
                literal: caption ? [...caption.querySelectorAll('pre')].map(p => p.textContent) : [],
                caption_images: caption ? [...caption.querySelectorAll('img')].map(img => img.naturalWidth) : [],
                download: eye && eye.hasAttribute('download') ? eye.getAttribute('href').slice(0, 80) : null,
            }};
        }})()""")

    def view(self, info: dict) -> dict:
        """Click the result's view ("eye") button in its information panel; what the main view then shows."""
        path = info["path"]
        if info["download"]:  # a type the app does not view (csv, gif, yaml...): its button downloads
            return {}
        self.b.click(f"{PANEL}.querySelector('ul a[type=button]')", f"the view button of {path}")
        if info["mime"] in VIEWED_AS_IMAGE:
            # A broken image completes too, with no pixels: check it loaded, not just that it is there.
            state = self.b.wait_for(f"""(() => {{
                const img = {MAIN}.querySelector('img');
                return img && img.src === results[{_js(path)}].data_uri && img.complete
                    ? {{width: img.naturalWidth, height: img.naturalHeight}} : null;
            }})()""", f"{path} in the main view after clicking its view button")
            return {"image": state}
        if info["mime"] in VIEWED_IN_FRAME:
            src = self.b.wait_for(f"""(() => {{
                const frame = {MAIN}.querySelector('iframe');
                return frame && frame.src === results[{_js(path)}].data_uri ? frame.src.slice(0, 200) : null;
            }})()""", f"{path} in a frame of the main view after clicking its view button")
            return {"frame_text": self.b.frame_text(src, f"the content of {path} in its frame")}
        return {}


def read_csv_rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        return [[cell.strip() for cell in row] for row in csv.reader(f)]


def verify_report(report: Path, workdir: Path, *, categories=(), images=(), caption_images=(), tables=(),
                  notebooks=(), literal=(), captions_say=(), notebook_marker="results_dir", main_says=()) -> dict:
    """Open report in headless Chromium, visit every result of every category through the report's
    own buttons and collect what a reader sees; then assert that
      - categories are listed in the menu, and main_says is on the first page;
      - every image result loads with pixels, every HTML result shows text in its frame;
      - every image in a description loads with pixels;
      - images / notebooks (result paths) are among them; for notebooks the frame shows notebook_marker;
      - caption_images (result paths): the description shows an image (e.g. an animation);
      - tables (result paths of CSV files, relative to workdir): the caption shows the file as a table;
      - literal (result paths): the caption shows the file's text verbatim;
      - the caption of each of those results says every phrase in captions_say.
    All problems are reported together. Returns what was seen, per result path."""
    seen: dict[str, dict] = {}
    problems: list[str] = []
    with Browser(timeout=90) as browser:  # a loaded machine renders a 2 MB notebook frame slowly
        view = ReportView(browser, report)
        main = view.main_text()
        problems += [f"the first page does not say {phrase!r}" for phrase in main_says if phrase not in main]
        listed = view.menu_categories()
        problems += [f"category {c!r} is not in the menu (menu lists {listed})" for c in categories if c not in listed]
        for category in listed:
            for subcategory in view.subcategories(category):
                for row in range(view.open_list(category, subcategory)):
                    if row:
                        view.back_to_list(category, subcategory)
                    info = view.open_result_info(category, subcategory, row)
                    info["category"] = category
                    info.update(view.view(info))
                    seen[info["path"]] = info

    for path, info in seen.items():
        if "image" in info and not info["image"]["width"]:
            problems.append(f"{path} does not load as an image (0 px wide): the reader sees a broken image")
        if not all(info["caption_images"]):
            problems.append(f"the description of {path} shows a broken image")
    expected = {"image": images, "captioned image": caption_images, "notebook": notebooks, "table": tables,
                "literal": literal}
    missing = [f"{kind} {path} is not in the report" for kind, paths in expected.items() for path in paths
               if path not in seen]
    if missing:
        problems += missing + [f"(the report lists {', '.join(sorted(seen))})"]
    for path in images:
        if path in seen and "image" not in seen[path]:
            problems.append(f"{path} is not shown as an image (mime type {seen[path]['mime']})")
    for path in caption_images:
        if path in seen and not seen[path]["caption_images"]:
            problems.append(f"the description of {path} shows no image")
    for path in notebooks:
        if path in seen and notebook_marker not in seen[path].get("frame_text", ""):
            problems.append(f"notebook {path} does not show {notebook_marker!r} in its frame")
    for path in tables:
        if path in seen:
            want = read_csv_rows(Path(workdir) / path)
            if want not in seen[path]["tables"]:
                shown = seen[path]["tables"] or "no table"
                problems.append(f"the description of {path} does not show it as a table: expected rows {want}, "
                                f"the page shows {shown}")
    for path in literal:
        if path in seen:
            want = (Path(workdir) / path).read_text().strip()
            if want not in [text.strip() for text in seen[path]["literal"]]:
                problems.append(f"the description of {path} does not show the file's text")
    for path in sorted({*images, *caption_images, *notebooks, *tables, *literal} & set(seen)):
        caption = seen[path]["caption"]
        if not caption.strip():
            problems.append(f"{path} has no description")
        problems += [f"the description of {path} does not say {phrase!r}" for phrase in captions_say
                     if phrase not in caption]
    if problems:
        raise ReportCheckError(f"what a reader sees in {report} falls short:\n  - " + "\n  - ".join(problems))
    return seen


def profile_of(workdir: Path) -> str:
    """The profile the run recorded (first line of results/config.yaml, written by rule config_record)."""
    record = Path(workdir) / "results/config.yaml"
    if not record.exists():
        raise ReportCheckError(f"{record} is missing: the run did not record its configuration (rule config_record)")
    first = record.read_text().splitlines()[0]
    if not first.startswith("# Profile: "):
        raise ReportCheckError(f"{record} does not start with '# Profile: ...': {first!r}")
    return first.removeprefix("# Profile: ")


def timeblind_expectations(workdir: Path) -> dict:
    """What a reader must see in the report of a finished timeblind run in workdir."""
    results = Path(workdir) / "results"
    profile = profile_of(workdir)
    animations = sorted((results / "figures/stimuli_animations").glob("*.gif"))
    notebooks = sorted((results / "notebooks").glob("*.html"))
    if not animations or not notebooks:
        raise ReportCheckError(f"{results} has no animations or no notebooks: check a finished run")
    grounding = (results / "figures/grounding.png").exists()  # a run with a grounding section
    return dict(
        categories=["1. Stimuli", "2. Result", "4. Notebooks", "5. Configuration"],
        main_says=["This run", profile],
        images=["results/figures/accuracy.png", "results/figures/stimuli.png",
                *(["results/figures/grounding.png", "results/figures/grounding_spans.png"] if grounding else [])],
        caption_images=[str(p.relative_to(workdir)) for p in animations],
        tables=["results/tables/table1.csv", "results/tables/accuracy.csv",
                "results/tables/spookybench_export_table1.csv", "results/tables/snr_summary.csv",
                *(["results/tables/grounding_table.csv"] if grounding else [])],
        notebooks=[str(p.relative_to(workdir)) for p in notebooks],
        literal=["results/config.yaml"],
        captions_say=["What was run", profile],
    )


def check_report(workdir: Path, env: dict | None = None, report: Path | None = None,
                 configfile: Path | None = None) -> dict:
    """Check what a reader sees in the report of the finished run in workdir: report (default
    workdir/report.html), built first with `snakemake --report` if it is not there, with the
    run's configfile (default: the workflow's own config/config.yaml)."""
    workdir = Path(workdir).resolve()
    report = Path(report) if report else workdir / "report.html"
    find_chromium()  # fail first, with the install hint, not after building a report
    if not report.exists():
        config = ["--configfile", str(configfile)] if configfile else []
        out = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
                              "--directory", str(workdir), *config, "--report", str(report)],
                             env=env, capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            raise ReportCheckError(f"snakemake --report failed:\n{out.stderr[-3000:]}")
    return verify_report(report, workdir, **timeblind_expectations(workdir))


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(f"usage: {sys.argv[0]} WORKDIR [REPORT.html]   (a finished run in WORKDIR)")
    seen = check_report(Path(sys.argv[1]), report=Path(sys.argv[2]) if len(sys.argv) == 3 else None)
    print(f"report OK: {len(seen)} results seen as a reader sees them")
