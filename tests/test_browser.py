"""Every page of the table of contents, opened in headless Debian chromium (driven by playwright).

For each page: it loads; no console errors; no request leaves 127.0.0.1; math is typeset by the
vendored MathJax; every plotly figure has data; moving every slider (by clicking its ticks, as a
reader would) changes the plotted data, and the curves shown match the precomputed values of *all*
sliders' current positions. Screenshots are saved under ``artifacts/screenshots/``.
"""

from __future__ import annotations

import math
import re
from urllib.parse import urlparse

import pytest
from conftest import ARTIFACTS, toc_pages

pytestmark = pytest.mark.browser

# Visible traces' fingerprints (position-weighted sums of finite y and z values), as moe_companion.figures.fingerprint.
JS_FINGERPRINTS = """(gd) => gd.data.filter(t => t.visible !== false && t.visible !== 'legendonly').map(t => {
    const flat = [];
    const walk = a => { for (const v of a) { if (Array.isArray(v) || ArrayBuffer.isView(v)) walk(v); else flat.push(v); } };
    let s = 0;
    for (const arr of [t.y, t.z]) {
      if (!(Array.isArray(arr) || ArrayBuffer.isView(arr))) continue;
      flat.length = 0; walk(arr);
      flat.forEach((v, j) => { const x = Number(v); if (v !== null && Number.isFinite(x)) s += (j + 1) * x; });
    }
    return s; })"""


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6)


def _click_step(page, fig, slider_index: int, step: int) -> None:
    """Click tick ``step`` of slider ``slider_index`` of figure ``fig`` like a reader would."""
    container = fig.locator("g.slider-group").nth(slider_index)
    tick = container.locator("rect.slider-tick-rect").nth(step).bounding_box()
    rail = container.locator("rect.slider-rail-touch-rect").bounding_box()
    assert tick and rail, "slider not drawn"
    page.mouse.click(tick["x"] + tick["width"] / 2, rail["y"] + rail["height"] / 2)
    page.wait_for_timeout(60)


FIGURE_INFO = """(gd) => { const fl = gd._fullLayout, sz = fl._size, box = gd.getBoundingClientRect();
  const leg = gd.querySelector('g.legend'), lb = leg ? leg.getBoundingClientRect() : null;
  const plot = gd.querySelector('.cartesianlayer .bg, rect.bg, g.heatmaplayer, .nsewdrag');
  const pb = plot ? plot.getBoundingClientRect() : null;
  const title = gd.querySelector('g.g-gtitle text, .gtitle'), tb = title ? title.getBoundingClientRect() : null;
  const out = gd.closest('.cell_output') || gd.parentElement;
  return { label: gd.getAttribute('aria-label'), narrow: !!gd.__moeNarrow, width: box.width, plotWidth: sz.w,
    figHeight: fl.height, boxHeight: Math.min(box.height, out.getBoundingClientRect().height),
    figLeft: box.left, figRight: box.right,
    legendTop: lb && lb.height ? lb.top : null, legendLeft: lb && lb.height ? lb.left : null,
    legendRight: lb && lb.height ? lb.right : null, plotBottom: pb ? pb.bottom : null,
    titleLeft: tb ? tb.left : null, titleRight: tb ? tb.right : null,
    sliders: [...gd.querySelectorAll('g.slider-group rect.slider-rail-rect')].map(r => r.getBoundingClientRect().width),
    svgButton: !!gd.querySelector('.modebar-btn[data-title*="SVG"]'),
    cloudButton: !!gd.querySelector('.modebar-btn[data-attr="sendDataToCloud"], .modebar-btn[data-title*="Chart Studio"], .modebar-btn[data-title*="Share"]'),
    paper: fl.paper_bgcolor, font: fl.font.color, colorbar: !!gd.querySelector('g.colorbar') }; }"""


@pytest.mark.parametrize("page_path", toc_pages())
def test_page_on_a_phone(browser, site_url, page_path):
    """At 390 px: legends below the plot, titles inside the figure, sliders across it, plot area >= 300 px
    (250 px with a colour bar, which lies across the top), the figure's whole height inside its box (nothing
    cut at the bottom); nothing makes the page scroll sideways; in dark mode the figures turn dark."""
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{site_url}/{page_path}.html", wait_until="load")
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(400)
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 1, f"{page_path}: the page scrolls sideways by {overflow} px at 390 px"
    figures = page.locator("div.js-plotly-plot")
    problems = []
    for f in range(figures.count()):
        fig = figures.nth(f)
        fig.scroll_into_view_if_needed()
        page.wait_for_timeout(150)
        info = page.evaluate(FIGURE_INFO, fig.element_handle())
        where = f"{page_path}: figure {f} at 390 px: {info}"
        ok = info["narrow"] and info["plotWidth"] >= (250 if info["colorbar"] else 300)
        ok &= info["boxHeight"] >= info["figHeight"] - 1
        if info["legendTop"] is not None and info["plotBottom"] is not None:
            ok &= info["legendTop"] >= info["plotBottom"] - 1
            ok &= info["legendLeft"] >= info["figLeft"] - 1 and info["legendRight"] <= info["figRight"] + 1
        if info["titleLeft"] is not None:
            ok &= info["titleLeft"] >= info["figLeft"] - 1 and info["titleRight"] <= info["figRight"] + 1
        ok &= all(rail >= 0.9 * info["plotWidth"] for rail in info["sliders"])
        if not ok:
            problems.append(where)
    assert not problems, "\n".join(problems)
    shots = ARTIFACTS / "screenshots" / "390"
    shots.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(shots / f"{page_path.replace('/', '__')}.png"), full_page=True)
    if figures.count():
        page.evaluate("document.documentElement.dataset.theme = 'dark'")
        page.wait_for_timeout(500)
        info = page.evaluate(FIGURE_INFO, figures.first.element_handle())
        assert info["paper"] in ("rgba(0, 0, 0, 0)", "rgba(0,0,0,0)") and info["font"] != "#444", info
    context.close()
    assert not errors, f"{page_path}: page errors: {errors[:5]}"


@pytest.mark.parametrize("page_path", toc_pages())
def test_page_in_browser(browser, site_url, page_path):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    errors, foreign = [], []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    def on_request(req):
        url = urlparse(req.url)
        if url.scheme in ("data", "blob", "about"):
            return
        if url.hostname not in ("127.0.0.1", "localhost"):
            foreign.append(req.url)

    page.on("request", on_request)
    page.on("response", lambda r: errors.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
    response = page.goto(f"{site_url}/{page_path}.html", wait_until="load")
    assert response is not None and response.ok, f"{page_path}: HTTP {response and response.status}"
    page.wait_for_load_state("networkidle")

    # math: every math node is typeset by MathJax
    n_math = page.locator(".math").count()
    if n_math:
        page.wait_for_function("window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=20000)
        page.evaluate("MathJax.startup.promise")
        n_untypeset = page.evaluate(
            "Array.from(document.querySelectorAll('.math')).filter(e => !e.querySelector('mjx-container')).length"
        )
        assert n_untypeset == 0, f"{page_path}: {n_untypeset}/{n_math} math nodes not typeset"

    # no frozen widgets pretending to be interactive
    assert (
        page.locator(
            ".jupyter-widgets, .widget-slider, script[type='application/vnd.jupyter.widget-view+json']"
        ).count()
        == 0
    )

    figures = page.locator("div.js-plotly-plot")
    n_fig = figures.count()
    assert n_fig == page.locator("div.plotly-graph-div").count(), "a plotly div was not drawn"
    for f in range(n_fig):
        fig = figures.nth(f)
        fig.scroll_into_view_if_needed()
        handle = fig.element_handle()
        n_traces = page.evaluate("(gd) => gd._fullData ? gd._fullData.length : 0", handle)
        assert n_traces > 0, f"{page_path}: figure {f} has no data"
        assert fig.locator("svg.main-svg").count() > 0
        sliders = page.evaluate("(gd) => (gd.layout.sliders || []).map(s => s.steps.length)", handle)
        meta = page.evaluate("(gd) => (gd.layout.meta || {}).moe_sliders || null", handle)
        for s, n_steps in enumerate(sliders):
            previous = page.evaluate(JS_FINGERPRINTS, handle)
            start = page.evaluate(f"(gd) => gd.layout.sliders[{s}].active || 0", handle)
            order = [k for k in range(n_steps) if k != start] + [start]
            for k in order:
                _click_step(page, fig, s, k)
                active = page.evaluate("(gd) => gd.layout.sliders.map(x => x.active || 0)", handle)
                assert active[s] == k, f"{page_path}: figure {f} slider {s} did not move to step {k}"
                shown = page.evaluate(JS_FINGERPRINTS, handle)
                if meta is not None:
                    i = active[0]
                    j = active[1] if len(active) > 1 else 0
                    expected = meta["fingerprints"][i][j]
                    assert len(shown) == len(expected) and all(map(_close, shown, expected)), (
                        f"{page_path}: figure {f} shows {shown} at slider positions {active}, expected {expected}"
                    )
                assert any(not _close(a, b) for a, b in zip(shown, previous)) or len(shown) != len(previous), (
                    f"{page_path}: figure {f} slider {s} step {k} did not change the plotted data"
                )
                previous = shown

    # every figure: an accessible name, an SVG download, no cloud "Share" button; wide layout kept at 1280 px
    for f in range(n_fig):
        handle = figures.nth(f).element_handle()
        info = page.evaluate(FIGURE_INFO, handle)
        assert info["label"], f"{page_path}: figure {f} has no aria-label"
        assert info["svgButton"] and not info["cloudButton"], f"{page_path}: figure {f} modebar {info}"
        assert not info["narrow"], f"{page_path}: figure {f} uses the phone layout at 1280 px"

    shots = ARTIFACTS / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(shots / f"{page_path.replace('/', '__')}.png"), full_page=True)
    context.close()
    assert not foreign, f"{page_path}: requests to non-local hosts: {foreign[:5]}"
    assert not errors, f"{page_path}: console errors: {errors[:5]}"


def test_numbered_equations_are_referenced_across_chapters(browser, site_url):
    """The key equations carry numbers, and the intro's cross-chapter references link to them with the same
    number, on typeset maths."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.goto(f"{site_url}/book/intro.html", wait_until="load")
    refs = page.evaluate(
        "() => [...document.querySelectorAll('a[href*=\"#equation-\"]')].map(a => [a.getAttribute('href'), a.textContent.trim()])"
    )
    assert len(refs) >= 3, refs
    for href, label in refs:
        assert re.fullmatch(r"\(\d+\)", label), f"reference {href} reads {label!r}"
        page.goto(f"{site_url}/book/{href}", wait_until="load")
        page.wait_for_function("window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=20000)
        page.evaluate("MathJax.startup.promise")
        anchor = href.split("#", 1)[1]
        shown = page.evaluate(
            """(id) => { const el = document.getElementById(id); if (!el) return null;
              const n = el.querySelector('.eqno'); return [n ? n.textContent.replace('#', '').trim() : null,
                                                          !!el.querySelector('mjx-container')]; }""",
            anchor,
        )
        assert shown is not None, f"{href}: no equation with id {anchor}"
        assert shown[0] == label and shown[1], f"{href}: equation shows {shown}, the reference reads {label}"
    context.close()


def test_search_snippets_show_no_raw_tex(browser, site_url):
    """The site's search finds the chapters, and its result snippets read as text: no TeX commands or $$."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.goto(f"{site_url}/search.html?q=noise+variance", wait_until="load")
    page.wait_for_function("document.querySelectorAll('#search-results li p.context').length > 0", timeout=30000)
    page.wait_for_timeout(1500)  # snippets are filled in as each page's text arrives
    snippets = page.evaluate(
        "() => [...document.querySelectorAll('#search-results li p.context')].map(p => p.textContent)"
    )
    assert len(snippets) >= 3, snippets
    raw = [s for s in snippets if re.search(r"\\[A-Za-z]{2,}|\$\$|\\\(|\\\[", s)]
    assert not raw, f"search snippets with raw TeX: {raw[:3]}"
    context.close()
