"""Slider click → redraw time and page weight of every page of the built book, in headless chromium.

Not a test (speed targets live here, never in timed assertions). For every page of the table of contents:
the bytes the page loads (HTML, scripts, styles, fonts), then for every plotly figure and every slider the
time from the reader's click on a slider tick to the next painted frame after plotly redrew (pointerdown →
two animation frames). Prints one line per page: weight, number of clicks, median and max in ms.

    python bench/bench_slider.py [--html _build/html] [--width 1300] [--repeat 1] [--json out.json]

Targets (issue 13): median <= 50 ms and max <= 150 ms on every page.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import statistics
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from conftest import CHROMIUM, LAUNCH_ARGS, toc_pages  # noqa: E402

ARM = """() => { window.__t0 = null;
  if (!window.__armed) { window.__armed = true;
    document.addEventListener('pointerdown', () => { window.__t0 = performance.now(); }, true); } }"""
WAIT = """() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(
  () => r(window.__t0 === null ? null : performance.now() - window.__t0))))"""


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(directory: Path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(directory)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def bench_page(browser, url: str, width: int, repeat: int) -> dict:
    context = browser.new_context(viewport={"width": width, "height": 1000})
    page = context.new_page()
    sizes: dict[str, int] = {}

    def on_response(resp):
        try:
            sizes[resp.url] = len(resp.body())
        except Exception:  # redirects, aborted requests
            pass

    page.on("response", on_response)
    page.goto(url, wait_until="load")
    page.wait_for_load_state("networkidle")
    page.evaluate(ARM)
    times = []
    figures = page.locator("div.js-plotly-plot")
    for f in range(figures.count()):
        fig = figures.nth(f)
        fig.scroll_into_view_if_needed()
        n_sliders = fig.locator("g.slider-group").count()
        for s in range(n_sliders):
            group = fig.locator("g.slider-group").nth(s)
            ticks = group.locator("rect.slider-tick-rect")
            n = ticks.count()
            for _ in range(repeat):
                for k in list(range(1, n)) + [0]:
                    tick = ticks.nth(k).bounding_box()
                    rail = group.locator("rect.slider-rail-touch-rect").bounding_box()
                    if not tick or not rail:
                        continue
                    page.evaluate("() => { window.__t0 = null; }")
                    page.mouse.click(tick["x"] + tick["width"] / 2, rail["y"] + rail["height"] / 2)
                    dt = page.evaluate(WAIT)
                    if dt is not None:
                        times.append(dt)
    context.close()
    return {
        "bytes": sum(sizes.values()),
        "requests": len(sizes),
        "clicks": len(times),
        "median_ms": statistics.median(times) if times else None,
        "max_ms": max(times) if times else None,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--html", type=Path, default=ROOT / "_build" / "html")
    ap.add_argument("--width", type=int, default=1300)
    ap.add_argument("--repeat", type=int, default=1, help="passes over every slider's steps")
    ap.add_argument("--pages", nargs="*", help="page paths (default: every page of _toc.yml)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    server, base = serve(args.html)
    results = {}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
            print(f"{'page':42s} {'weight':>9s} {'req':>4s} {'clicks':>6s} {'median':>8s} {'max':>8s}")
            for p in args.pages or toc_pages():
                r = bench_page(browser, f"{base}/{p}.html", args.width, args.repeat)
                results[p] = r
                med = "-" if r["median_ms"] is None else f"{r['median_ms']:.0f} ms"
                mx = "-" if r["max_ms"] is None else f"{r['max_ms']:.0f} ms"
                print(
                    f"{p:42s} {r['bytes'] / 1e6:7.2f}MB {r['requests']:4d} {r['clicks']:6d} {med:>8s} {mx:>8s}",
                    flush=True,
                )
            browser.close()
    finally:
        server.shutdown()
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
