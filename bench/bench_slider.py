"""Slider click → redraw time and page weight of every page of the built book, in headless chromium.

Not a test (speed targets live here, never in timed assertions). For every page of the table of contents:
the bytes the page loads (HTML, scripts, styles, fonts), then for every plotly figure and every slider, clicked
tick by tick as a reader would, two timings from the click (pointerdown) on:

* ``paint``: what a reader waits for, as the browser itself measures it (the Event Timing API behind the
  web's "Interaction to Next Paint"): from the click's pointerdown to the next frame painted after the event's
  handlers and that frame's animation callbacks (where plotly's own slider steps run) — the larger of the
  pointerdown and mousedown entries, in 8 ms steps; below 16 ms the browser reports nothing and 16 is counted.
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

ARM = """() => { window.__t0 = null;
  if (window.__armed) return;
  window.__armed = true; window.__events = [];
  document.addEventListener('pointerdown', () => { window.__t0 = performance.now(); }, true);
  new PerformanceObserver(list => { for (const e of list.getEntries())
      if (e.name === 'pointerdown' || e.name === 'mousedown') window.__events.push([e.startTime, e.duration]); })
    .observe({ type: 'event', durationThreshold: 16, buffered: false }); }"""
# the longest pointerdown/mousedown entry since the click (16 ms when the browser reported none: under 16 ms)
PAINTED = """(t0) => { const d = window.__events.filter(e => e[0] >= t0 - 50).map(e => e[1]);
  return d.length ? Math.max(...d) : 16; }"""
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
    times, paint = [], []
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
                    t0 = page.evaluate("() => window.__t0")
                    dt = page.evaluate(WAIT)
                    if dt is not None:
                        times.append(dt)
                        page.wait_for_timeout(30)  # event-timing entries arrive after the paint they time
                        paint.append(page.evaluate(PAINTED, t0))
    context.close()
    return {
        "bytes": sum(sizes.values()),
        "requests": len(sizes),
        "clicks": len(times),
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
                    + " ".join(f"{_ms(c):>6s}" for c in cols),
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
