"""Shared fixtures: the built book (built once per test session) and a local HTTP server for it."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BUILD_HTML = ROOT / "_build" / "html"
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
# without the background-networking flags chromium calls Google's hosts, which this sandbox refuses
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def toc_pages() -> list[str]:
    """Every page of the table of contents, as paths relative to the repo root without suffix."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                pages.append(entry["file"])
            walk(entry.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return [str(Path(p).with_suffix("")) for p in pages]


@pytest.fixture(scope="session")
def built_book() -> subprocess.CompletedProcess:
    """Build the executed book once per session with ``-W -n --keep-going`` (warnings and cell errors fail).

    Set ``MOE_SKIP_BUILD=1`` to reuse an existing ``_build/html`` (e.g. right after ``make book``).
    """
    if os.environ.get("MOE_SKIP_BUILD") == "1" and (BUILD_HTML / "index.html").exists():
        return subprocess.CompletedProcess(args=[], returncode=0, stdout="(reused existing build)", stderr="")
    jb = Path(sys.executable).with_name("jupyter-book")
    proc = subprocess.run(
        [str(jb), "build", str(ROOT), "-W", "-n", "--keep-going"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=3000,
    )
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "build.log").write_text(proc.stdout + "\n" + proc.stderr)
    return proc


@pytest.fixture(scope="module")
def browser():
    """Headless Debian chromium driven by the PyPI playwright (never ``playwright install``)."""
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"no browser at {CHROMIUM}: make test installs Debian chromium with apt-get")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield b
        b.close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output readable
        pass


@pytest.fixture(scope="session")
def site_url(built_book):
    """Serve ``_build/html`` on 127.0.0.1 (a free port) for the browser tests."""
    if built_book.returncode != 0:
        pytest.fail("the book did not build; see artifacts/build.log")
    handler = functools.partial(_QuietHandler, directory=str(BUILD_HTML))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def smoke_chapter(tmp_path):
    """Run a heavy chapter in the ``smoke`` profile through the CLI; return its executed notebook's outputs.

    Checks what every heavy chapter must satisfy: the CLI exits 0, no cell errored, at least two plotly
    figures, and no widget outputs (they would be dead widgets on the static site).
    """
    import json

    def run(name: str) -> tuple[list[dict], Path]:
        out = tmp_path / "gen"
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "moe_companion",
                "heavy",
                "run",
                name,
                "--profile",
                "smoke",
                "--output-dir",
                str(out),
                "--quiet",
            ],
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        nb = json.loads((out / f"{name}.ipynb").read_text())
        assert json.loads((out / f"{name}.run.json").read_text())["profile"] == "smoke"
        outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
        assert not [o for o in outputs if o["output_type"] == "error"]
        html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
        assert sum("plotly" in "".join(h) for h in html) >= 2
        assert not [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
        return outputs, out

    return run
