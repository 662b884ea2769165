"""The chapters in JupyterLab, as the launch buttons open them: a MyST chapter opens as a notebook
(jupytext is its default viewer), runs, shows its plotly figures, and its live explorer (ipywidgets over
a plotly FigureWidget) redraws when a slider moves. No request leaves 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest
from conftest import ARTIFACTS, ROOT

pytestmark = pytest.mark.browser

LAST_FIGURE_DATA = """() => { const g = [...document.querySelectorAll('.js-plotly-plot')].pop();
    return JSON.stringify(g.data.map(t => Array.from(t.y || []))); }"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab_url(tmp_path_factory):
    """A JupyterLab server on 127.0.0.1 over the repository, with empty user settings and workspaces."""
    home = tmp_path_factory.mktemp("lab")
    port = _free_port()
    cmd = [
        str(Path(sys.executable).with_name("jupyter-lab")),
        "--no-browser",
        f"--port={port}",
        "--ip=127.0.0.1",
        "--ServerApp.token=",
        "--ServerApp.password=",
        f"--ServerApp.root_dir={ROOT}",
        f"--LabApp.user_settings_dir={home / 'settings'}",
        f"--LabApp.workspaces_dir={home / 'ws'}",
        "--allow-root",
    ]
    log = open(home / "lab.log", "w")
    proc = subprocess.Popen(
        cmd,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        env={**os.environ, "JUPYTER_CONFIG_DIR": str(home / "config")},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/api/status", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail(f"JupyterLab did not start: {(home / 'lab.log').read_text()[-2000:]}")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_markdown_chapters_open_as_notebooks_by_default(lab_url):
    with urllib.request.urlopen(f"{lab_url}/lab/api/settings/@jupyterlab/docmanager-extension:plugin") as r:
        schema = json.load(r)["schema"]
    assert schema["properties"]["defaultViewers"]["default"] == {
        "markdown": "Jupytext Notebook",
        "myst": "Jupytext Notebook",
    }


def test_setting_chapter_runs_and_its_explorer_moves(lab_url, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    errors, foreign = [], []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on(
        "request",
        lambda req: (
            foreign.append(req.url) if urlparse(req.url).hostname not in (None, "127.0.0.1", "localhost") else None
        ),
    )
    page.goto(f"{lab_url}/lab/tree/book/setting.md")
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)  # a notebook, not a text editor
    page.wait_for_timeout(2000)
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    page.wait_for_selector(".widget-slider", timeout=180_000)
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 2", timeout=60_000)
    before = page.evaluate(LAST_FIGURE_DATA)
    handle = page.locator(".widget-slider .noUi-handle").first
    handle.scroll_into_view_if_needed()
    handle.click()
    for _ in range(20):
        page.keyboard.press("ArrowRight")
    page.wait_for_function(f"() => ({LAST_FIGURE_DATA})() !== {json.dumps(before)}", timeout=60_000)
    (ARTIFACTS / "screenshots").mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "screenshots" / "jupyterlab__setting.png"))
    page.close()
    assert not foreign, f"requests to non-local hosts: {foreign[:5]}"
    assert not [e for e in errors if "favicon" not in e], f"console errors: {errors[:5]}"


MYST_RENDERED = r"""() => ({
  dropdowns: [...document.querySelectorAll('.jp-MarkdownCell details')].map(d => d.innerText.slice(0, 80)),
  boxes: [...document.querySelectorAll('.jp-MarkdownCell aside')]
           .map(a => a.className + ' :: ' + a.innerText.slice(0, 80)),
  raw: [...document.querySelectorAll('.jp-MarkdownCell .jp-RenderedMarkdown, .jp-MarkdownCell .jp-RenderedHTMLCommon')]
         .filter(e => /\{(dropdown|warning|admonition)\}|^:::/m.test(e.innerText)).length })"""


SCROLL_DOWN = """() => { const s = document.querySelector('.jp-NotebookPanel .jp-WindowedPanel-outer');
    const end = s.scrollTop + s.clientHeight >= s.scrollHeight - 2; s.scrollTop += 600; return end; }"""


def test_myst_directives_render_in_jupyterlab(lab_url, browser):
    """jupyterlab-myst: a chapter's "Full proof" drop-down is a <details>, its warning box an admonition <aside>."""
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(f"{lab_url}/lab/tree/book/theorem3_robustness.md?reset")  # not the workspace of the test before
    page.wait_for_selector(".jp-NotebookPanel .jp-MarkdownCell", timeout=60_000)
    page.wait_for_timeout(2000)
    seen = {"dropdowns": set(), "boxes": set(), "raw": 0}
    # JupyterLab renders only the cells in view: scroll through the notebook, collecting what rendered
    for _ in range(80):
        got = page.evaluate(MYST_RENDERED)
        seen["dropdowns"] |= set(got["dropdowns"])
        seen["boxes"] |= set(got["boxes"])
        seen["raw"] = max(seen["raw"], got["raw"])
        if page.evaluate(SCROLL_DOWN):
            break
        page.wait_for_timeout(250)
    (ARTIFACTS / "screenshots").mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "screenshots" / "jupyterlab__myst.png"))
    page.close()
    assert any("Full proof" in d for d in seen["dropdowns"]), f"no rendered proof drop-down: {seen}"
    assert any("warning" in b.lower() for b in seen["boxes"]), f"no rendered warning box: {seen}"
    assert seen["raw"] == 0, "MyST directives shown as source"
    assert not [e for e in errors if "favicon" not in e], f"console errors: {errors[:5]}"
