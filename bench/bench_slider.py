"""Slider click → redraw time and page weight of every page of the built book, in headless chromium.

Not a test (speed targets live here, never in timed assertions). For every page of the table of contents:
the bytes the page loads (HTML, scripts, styles, fonts), then for every plotly figure and every slider, clicked
tick by tick as a reader would, two timings from the click (pointerdown) on:

* ``paint``: in the page, to the end of the frame that shows the redrawn figure (a task queued when plotly
  reports the redraw runs right after that frame's rendering); what a reader waits for.
* ``2 frames``: from the automation's side, to two animation frames after the click returned (includes the
  browser-automation round trip and up to a frame of waiting; a click on blank page, timed the same way, is
  printed as ``floor``).

Prints one line per page: weight, number of clicks, median and max of both, in ms.

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
from playwright.sync_api import TimeoutError as PlaywrightTimeout  # noqa: E402

ARM = """() => { window.__t0 = null; window.__t1 = null;
  if (window.__armed) return;
  window.__armed = true;
  document.addEventListener('pointerdown', () => { window.__t0 = performance.now(); window.__t1 = null; }, true);
  const painted = () => { if (window.__t0 === null || window.__t1 !== null) return;
    const t0 = window.__t0; setTimeout(() => { if (window.__t1 === null) window.__t1 = performance.now() - t0; }, 0); };
  for (const gd of document.querySelectorAll('div.js-plotly-plot'))
    for (const ev of ['plotly_restyle', 'plotly_react', 'plotly_afterplot', 'plotly_animated']) gd.on(ev, painted); }"""
PAINTED = "() => window.__t1"
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
    floor = []
    for _ in range(5):  # a click on the page's left margin: the automation's round trip and frame wait alone
        page.evaluate("() => { window.__t0 = null; }")
        page.mouse.click(2, 500)
        floor.append(page.evaluate(WAIT))
    times, paint, missed = [], [], 0
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
                    page.evaluate("() => { window.__t0 = null; window.__t1 = null; }")
                    page.mouse.click(tick["x"] + tick["width"] / 2, rail["y"] + rail["height"] / 2)
                    dt = page.evaluate(WAIT)
                    if dt is not None:
                        times.append(dt)
                        try:
                            page.wait_for_function(PAINTED, timeout=2000)
                            paint.append(page.evaluate(PAINTED))
                        except PlaywrightTimeout:  # plotly reported no redraw: counted, not timed
                            missed += 1
    context.close()
    return {
        "bytes": sum(sizes.values()),
        "requests": len(sizes),
        "clicks": len(times),
        "no_redraw": missed,
        "paint_median_ms": statistics.median(paint) if paint else None,
        "paint_max_ms": max(paint) if paint else None,
        "frames_median_ms": statistics.median(times) if times else None,
        "frames_max_ms": max(times) if times else None,
        "floor_median_ms": statistics.median(f for f in floor if f is not None),
    }


def _ms(x) -> str:
    return "-" if x is None else f"{x:.0f}"


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
            print(f"{'':42s} {'':>9s} {'':>4s} {'':>6s} {'paint (ms)':>13s} {'2 frames (ms)':>19s}")
            head = ("page", "weight", "req", "clicks", "median", "max", "median", "max", "floor")
            print("{:42s} {:>9s} {:>4s} {:>6s} {:>6s} {:>6s} {:>6s} {:>6s} {:>6s}".format(*head))
            for p in args.pages or toc_pages():
                r = bench_page(browser, f"{base}/{p}.html", args.width, args.repeat)
                results[p] = r
                cols = [r[k] for k in ("paint_median_ms", "paint_max_ms", "frames_median_ms", "frames_max_ms")]
                cols.append(r["floor_median_ms"])
                print(
                    f"{p:42s} {r['bytes'] / 1e6:7.2f}MB {r['requests']:4d} {r['clicks']:6d} "
                    + " ".join(f"{_ms(c):>6s}" for c in cols)
                    + (f"  ({r['no_redraw']} clicks without a redraw)" if r["no_redraw"] else ""),
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
