"""The executed book builds with -W (warnings and cell errors fail), offline, from local assets only."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BUILD_HTML, ROOT, toc_pages

pytestmark = pytest.mark.build

CDN = re.compile(r"(cdn\.jsdelivr|cdnjs\.cloudflare|unpkg\.com|cdn\.plot\.ly|polyfill\.io|googleapis)")


def test_book_builds_without_warnings(built_book):
    log = built_book.stdout + built_book.stderr
    assert built_book.returncode == 0, log[-4000:]
    assert "build succeeded" in log or "(reused existing build)" in log


@pytest.mark.parametrize("page", toc_pages())
def test_every_toc_page_is_built_from_local_assets(built_book, page):
    html = (BUILD_HTML / f"{page}.html").read_text(encoding="utf-8")
    assert not CDN.findall(html), f"{page} references a CDN"
    # plotly.js is loaded once per page that has a figure, from the vendored copy, never inlined into figures
    n_figures = html.count('class="plotly-graph-div"')
    assert html.count("_static/plotly.min.js") == (1 if n_figures else 0), f"{page}: plotly.js on a page without figure"
    assert html.count("_static/moe-figures.js") == (1 if n_figures else 0)
    if n_figures:
        order = [html.index(s) for s in ("_static/plotly.min.js", "_static/moe-figures.js", "Plotly.newPlot(")]
        assert order == sorted(order), f"{page}: plotly.js, then moe-figures.js, then the figures"
        if not page.startswith("book/generated/"):  # stored notebooks get their label in the browser
            assert html.count('role="figure" aria-label="') == n_figures, f"{page}: a figure without aria-label"
    assert "_static/moe-book.css" in html
    assert "plotly.js v" not in html, f"{page} inlines the plotly.js bundle"
    assert html.count("Plotly.newPlot(") == html.count('class="plotly-graph-div"')
    # an executed ipywidget would be frozen on the static site: no widget state, no widget manager
    assert "application/vnd.jupyter.widget-state+json" not in html, f"{page} embeds ipywidget state"
    assert "html-manager/embed-amd.js" not in html
    assert len(html) < 3_000_000, f"{page}.html is {len(html) / 1e6:.1f} MB"


def test_vendored_assets_present(built_book):
    static = BUILD_HTML / "_static"
    for rel in ["mathjax/tex-chtml.js", "plotly.min.js", "require.min.js", "html-manager/embed-amd.js"]:
        assert (static / rel).is_file(), rel


def test_launch_buttons_open_the_md_chapter_in_jupyterlab(built_book):
    html = (BUILD_HTML / "book" / "setting.html").read_text(encoding="utf-8")
    assert "urlpath=lab/tree/book/setting.md" in html
    assert "colab.research.google.com" not in html
    assert "© Copyright 2023" not in html and "2026, the moe-companion authors" in html


@pytest.mark.parametrize(
    "cell, should_fail, marker",
    [
        ("raise ValueError('boom')", True, "CellExecutionError"),
        ("import sys; print('a warning', file=sys.stderr)", True, "stderr"),
        ("import warnings; warnings.warn('deprecated thing')", True, "stderr"),
        ("print('fine')", False, None),
    ],
)
def test_a_cell_error_or_stderr_fails_the_build(tmp_path, cell, should_fail, marker):
    """The flags of the README's commands turn a failing cell, or one that writes to stderr, into a failed
    build (and only those)."""
    shutil.copy(ROOT / "_config.yml", tmp_path / "_config.yml")
    (tmp_path / "_vendor").symlink_to(ROOT / "_vendor")
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/intro\n")
    (tmp_path / "book").mkdir()
    for asset in ("references.bib", "favicon.svg"):  # files _config.yml names
        shutil.copy(ROOT / "book" / asset, tmp_path / "book" / asset)
    header = (ROOT / "book" / "setting.md").read_text().split("---\n")[1]
    (tmp_path / "book" / "intro.md").write_text(
        f"---\n{header}---\n\n# Probe\n\n```{{code-cell}} ipython3\n{cell}\n```\n"
    )
    jb = Path(sys.executable).with_name("jupyter-book")
    proc = subprocess.run(
        [str(jb), "build", str(tmp_path), "-W", "-n", "--keep-going"], capture_output=True, text=True, timeout=600
    )
    log = proc.stdout + proc.stderr
    if should_fail:
        assert proc.returncode != 0 and marker in log, log[-3000:]
    else:
        assert proc.returncode == 0, log[-3000:]


def test_errata_page_includes_every_chapter_finding():
    errata = (ROOT / "book" / "errata.md").read_text(encoding="utf-8")
    fragments = sorted(p.name for p in (ROOT / "book" / "_errata").glob("*.md"))
    assert fragments
    missing = [f for f in fragments if f"{{include}} _errata/{f}" not in errata]
    assert not missing, f"errata.md does not include {missing}"
