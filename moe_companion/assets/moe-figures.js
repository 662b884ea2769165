/* The book's figures on the page (loaded after plotly.min.js, only on pages that have a figure).
 *
 * Every figure goes through Plotly.newPlot, so wrapping it here applies to every figure the same way —
 * those executed at build time and those stored in the heavy chapters' notebooks:
 *  - modebar: an SVG download next to PNG, no cloud "Share"/"Edit in Chart Studio" button, no logo;
 *  - accessibility: role="img"-like figure label (aria-label) from the figure's title and caption;
 *  - narrow screens (figure < 600 px wide): legend below the plot, title wrapped, sliders across the width,
 *    thin side margins; restored when the figure is wide again (ResizeObserver);
 *  - dark mode: colours follow the theme's data-theme attribute (and its later changes);
 *  - fast sliders: a slider figure is plotted with only the traces on show, and a slider change redraws just
 *    those (see fastSliders below).
 */
(function () {
  "use strict";
  if (!window.Plotly || window.Plotly.__moeWrapped) return;
  const P = window.Plotly;
  const NARROW = 600;
  const DARK = { paper: "rgba(0,0,0,0)", plot: "#15181c", font: "#d6d6d6", grid: "#3a3f45", zero: "#5a6068",
                 line: "#7a8088", sliderBg: "#3a3f45", sliderActive: "#9aa0a6" };

  const svgButton = {
    name: "moe-download-svg", title: "Download plot as SVG (vector)",
    icon: { width: 1000, height: 1000, path: "M500 50 L500 650 M280 430 L500 650 L720 430 M120 720 L120 900 L880 900 L880 720",
            transform: "", stroke: "currentColor" },
    click: function (gd) { P.downloadImage(gd, { format: "svg", filename: fileName(gd) }); },
  };
  // plotly's icons are filled paths: draw the arrow as a filled shape
  svgButton.icon.path = "M450 80h100v470l150-150 70 70-270 270-270-270 70-70 150 150zM100 700h100v150h600V700h100v250H100z";

  function plainTitle(layout) {
    const t = layout && layout.title;
    const text = typeof t === "string" ? t : (t && t.text) || "";
    return text.replace(/<br\s*\/?>/gi, " ").replace(/<[^>]+>/g, "").trim();
  }
  function fileName(gd) {
    return (plainTitle(gd.layout) || "figure").toLowerCase().replace(/[^a-z0-9]+/g, "-").slice(0, 60);
  }
  function get(obj, path) {
    return path.split(".").reduce((o, k) => (o == null ? undefined : o[k]), obj);
  }

  function label(gd) {
    const title = plainTitle(gd.layout);
    const meta = (gd.layout && gd.layout.meta) || {};
    const caption = typeof meta.moe_caption === "string" ? meta.moe_caption : "";
    const text = [title, caption].filter(Boolean).join(". ") || "Interactive figure";
    gd.setAttribute("role", "figure");
    gd.setAttribute("aria-label", text);
  }

  function axisKeys(gd) {
    return Object.keys(gd._fullLayout || {}).filter(k => /^[xy]axis\d*$/.test(k));
  }

  // ------------------------------------------------------------------ theme
  function themeUpdate(gd, dark) {
    const keys = { paper_bgcolor: DARK.paper, plot_bgcolor: DARK.plot, "font.color": DARK.font,
                   "legend.bgcolor": "rgba(0,0,0,0)", "title.font.color": DARK.font };
    for (const ax of axisKeys(gd)) {
      keys[ax + ".gridcolor"] = DARK.grid; keys[ax + ".zerolinecolor"] = DARK.zero;
      keys[ax + ".linecolor"] = DARK.line; keys[ax + ".minor.gridcolor"] = DARK.grid;
    }
    (gd.layout.sliders || []).forEach((s, k) => {
      keys[`sliders[${k}].bgcolor`] = DARK.sliderBg; keys[`sliders[${k}].activebgcolor`] = DARK.sliderActive;
      keys[`sliders[${k}].bordercolor`] = DARK.line; keys[`sliders[${k}].font.color`] = DARK.font;
      keys[`sliders[${k}].currentvalue.font.color`] = DARK.font; keys[`sliders[${k}].tickcolor`] = DARK.line;
    });
    if (!gd.__moeLight) {
      gd.__moeLight = {};
      for (const k of Object.keys(keys)) {
        const v = get(gd.layout, k.replace(/\[(\d+)\]/g, ".$1"));
        gd.__moeLight[k] = v === undefined ? null : v;
      }
    }
    return dark ? keys : gd.__moeLight;
  }
  function isDark() {
    return document.documentElement.dataset.theme === "dark";
  }

  // ------------------------------------------------------------------ narrow screens
  function wrap(text, width) {
    const words = text.split(/\s+/);
    const lines = [];
    let line = "";
    for (const w of words) {
      if (line && (line + " " + w).replace(/<[^>]+>/g, "").length > width) { lines.push(line); line = w; }
      else line = line ? line + " " + w : w;
    }
    if (line) lines.push(line);
    return lines;
  }
  function narrowUpdate(gd, width) {
    const L = gd.layout;
    if (!gd.__moeWide) {
      const t = L.title;
      gd.__moeWide = {
        title: typeof t === "string" ? t : (t && t.text) || "",
        height: L.height || (gd._fullLayout && gd._fullLayout.height) || 450,
        margin: Object.assign({}, (gd._fullLayout && gd._fullLayout.margin) || {}, L.margin || {}),
        legend: Object.assign({}, L.legend || {}),
        sliders: (L.sliders || []).map(s => ({ x: s.x, len: s.len, font: s.font ? Object.assign({}, s.font) : null,
                                                pad: Object.assign({}, s.pad || {}) })),
        ticks: {},
      };
      for (const ax of axisKeys(gd)) {
        const a = L[ax] || {};
        const saved = (gd.__moeWide.ticks[ax] = {});
        for (const k of ["tickmode", "tickvals", "ticktext", "tickangle"]) saved[`${ax}.${k}`] = a[k] === undefined ? null : a[k];
      }
    }
    const W = gd.__moeWide;
    const u = {};
    if (width < NARROW) {
      const fontSize = 14;
      const chars = Math.max(20, Math.floor((width - 20) / (fontSize * 0.55)));
      const lines = W.title ? wrap(W.title.replace(/<br\s*\/?>/gi, " "), chars) : [];
      u["title.text"] = lines.join("<br>");
      u["title.font.size"] = fontSize;
      // the title starts below the modebar's row (which would cover it on a phone)
      u["title.y"] = 1 - 30 / W.height; u["title.yref"] = "container"; u["title.yanchor"] = "top";
      u["title.x"] = 0; u["title.xref"] = "container"; u["title.xanchor"] = "left"; u["title.pad.l"] = 4;
      // a colour bar lies across the top of the plot, under the title (see narrowTrace): the figure grows by it
      u["margin.t"] = lines.length ? 40 + 19 * lines.length : 36;
      if (hasColorbar(gd)) { u.height = W.height + COLORBAR_ROOM; gd.__moeBarTop = 1 - (u["margin.t"] + 14) / u.height; }
      u["margin.l"] = 8; u["margin.r"] = 8;
      u.legend = Object.assign({}, W.legend, { orientation: "h", x: 0, xanchor: "left", xref: "container",
                                               y: 0, yanchor: "bottom", yref: "container", font: { size: 11 } });
      // smaller tick labels and axis titles leave the plot area >= 300 px on a 390 px phone
      for (const ax of axisKeys(gd)) {
        u[ax + ".tickfont.size"] = 10; u[ax + ".title.font.size"] = 12;
        // (a standoff on an axis without tick labels puts its title inside the plot)
        if (gd._fullLayout[ax].showticklabels !== false) u[ax + ".title.standoff"] = 4;
        // long category labels (a bar chart's model names) wrap on a few lines instead of slanting off the side
        const lines = c => String(c).split(/<br\s*\/?>/i);
        const cats = (gd._fullLayout[ax] || {})._categories || [];
        if (ax[0] === "x" && gd._fullLayout[ax].type === "category" && cats.some(c => lines(c).some(l => l.length > 8))) {
          u[ax + ".tickmode"] = "array"; u[ax + ".tickvals"] = cats.slice(); u[ax + ".tickangle"] = 0;
          u[ax + ".ticktext"] = cats.map(c => lines(c).map(l => wrap(l, 11).join("<br>")).join("<br>"));
        }
      }
      (L.sliders || []).forEach((s, k) => {
        u[`sliders[${k}].x`] = 0; u[`sliders[${k}].len`] = 1; u[`sliders[${k}].font.size`] = 10;
      });
    } else {
      u["title.text"] = W.title; u["title.font.size"] = null;
      for (const ax of axisKeys(gd)) {
        u[ax + ".tickfont.size"] = null; u[ax + ".title.font.size"] = null; u[ax + ".title.standoff"] = null;
        if (W.ticks[ax]) Object.assign(u, W.ticks[ax]);
      }
      for (const k of ["y", "yref", "yanchor", "x", "xref", "xanchor", "pad.l"]) u["title." + k] = null;
      u.margin = Object.assign({}, W.margin); u.legend = Object.assign({}, W.legend); u.height = W.height;
      W.sliders.forEach((s, k) => {
        u[`sliders[${k}].x`] = s.x === undefined ? null : s.x; u[`sliders[${k}].len`] = s.len === undefined ? null : s.len;
        u[`sliders[${k}].font.size`] = s.font && s.font.size !== undefined ? s.font.size : null;
        u[`sliders[${k}].pad.t`] = s.pad.t === undefined ? null : s.pad.t;
      });
    }
    return u;
  }

  // ------------------------------------------------------------------ narrow screens: the traces
  // On a phone a colour bar lies across the top of the plot instead of taking 80-160 px at its side, and long
  // legend entries wrap (a horizontal legend cannot wrap an entry wider than the figure).
  const COLORBAR_TYPES = new Set(["heatmap", "contour", "histogram2d", "histogram2dcontour"]);
  const COLORBAR_ROOM = 64;
  function hasColorbar(gd) {
    return gd.data.some(t => COLORBAR_TYPES.has(t.type) && t.showscale !== false);
  }
  function narrowTrace(t, width, barTop) {
    let out = t;
    if (COLORBAR_TYPES.has(t.type)) {
      const cb = t.colorbar || {};
      out = Object.assign({}, t, { colorbar: Object.assign({}, cb, {
        // (in container coordinates: plotly keeps the plot below it; in paper coordinates it would pull the
        // x-axis title into the plot)
        orientation: "h", x: 0.5, xanchor: "center", xref: "paper", y: barTop, yanchor: "top", yref: "container",
        ypad: 24, len: 1, lenmode: "fraction", thickness: 10, tickfont: { size: 10 },  // room for a subplot title below
        title: Object.assign({}, cb.title || {}, { side: "top", font: { size: 11 } }) }) });
    }
    const chars = Math.max(16, Math.floor((width - 60) / 6.2));
    if (typeof t.name === "string" && t.name.replace(/<[^>]+>/g, "").length > chars) {
      out = Object.assign({}, out, { name: wrap(t.name.replace(/<br\s*\/?>/gi, " "), chars).join("<br>") });
    }
    return out;
  }
  function traceUpdate(gd, narrow, width) {
    // the traces as built (for a fast slider figure: its whole table), changed for a phone or restored
    const S = gd.__moeFast;
    if (!gd.__moeWideTraces) gd.__moeWideTraces = S ? S.base : gd.data.map(t => Object.assign({}, t));
    const wide = gd.__moeWideTraces;
    const now = narrow ? wide.map(t => narrowTrace(t, width, gd.__moeBarTop || 0.9)) : wide;
    if (now.every((t, k) => t === wide[k]) && !gd.__moeTracesNarrow) return null;
    gd.__moeTracesNarrow = narrow;
    if (S) { S.base = now; S.style = now.map(styleOf); return tracesAt(S, S.i, S.j); }
    return now.map((t, k) => Object.assign({}, t, { visible: gd.data[k].visible }));
  }

  function sliderRoom(gd) {
    // the x-axis title (pushed down by tick labels) must not run into the sliders' captions below it
    const title = gd.querySelector("g.g-xtitle text, text.xtitle");
    const first = gd.querySelector("g.slider-group");
    if (!title || !first) return null;
    const overlap = Math.ceil(title.getBoundingClientRect().bottom + 6 - first.getBoundingClientRect().top);
    if (overlap <= 0) return null;
    const u = { "margin.b": gd._fullLayout.margin.b + overlap, height: gd._fullLayout.height + overlap };
    gd._fullLayout.sliders.forEach((sl, k) => { u[`sliders[${k}].pad.t`] = (sl.pad.t || 0) + overlap; });
    return u;
  }

  function legendRoom(gd) {
    // after a narrow relayout: grow the figure by the legend's height, so the legend sits below everything
    const W = gd.__moeWide;
    const fl = gd._fullLayout;
    if (!W || !fl || !fl.showlegend || !fl.legend) return null;
    const box = gd.querySelector("g.legend");
    // the drawn box: plotly's own height misses the extra lines of wrapped entries in a horizontal legend
    const h = Math.ceil(Math.max(fl.legend._height || 0, box ? box.getBoundingClientRect().height : 0));
    if (!h) return null;
    const b = (W.margin.b || 80) + h + 8;
    const t = (gd.layout.margin && gd.layout.margin.t) || 40;
    const height = W.height - (W.margin.t || 100) - (W.margin.b || 80) + t + b;
    if (Math.abs((fl.margin.b || 0) - b) < 2 && Math.abs(fl.height - height) < 2) return null;
    return { "margin.b": b, height: height };
  }

  // a copy of a layout with a relayout-style update applied ("a.b", "sliders[0].x" keys; null deletes)
  function withUpdate(layout, u) {
    const out = structuredClone(layout);
    for (const [key, value] of Object.entries(u)) {
      const parts = key.replace(/\[(\d+)\]/g, ".$1").split(".");
      let node = out;
      for (const part of parts.slice(0, -1)) {
        if (node[part] === undefined || node[part] === null) node[part] = {};
        node = node[part];
      }
      const leaf = parts[parts.length - 1];
      if (value === null) delete node[leaf]; else node[leaf] = value;
    }
    return out;
  }

  function fit(gd, force) {
    if (!gd._fullLayout) return Promise.resolve();
    const width = gd.parentElement ? gd.parentElement.clientWidth : gd.clientWidth;
    const narrow = width > 0 && width < NARROW;
    const u = {};
    // a wide figure in the light theme is left exactly as built (no relayout at load)
    let traces = null;
    if (narrow !== !!gd.__moeNarrow || (narrow && (force || Math.abs(width - (gd.__moeWidth || 0)) > 40))) {
      Object.assign(u, narrowUpdate(gd, width));
      traces = traceUpdate(gd, narrow, width);
      gd.__moeNarrow = narrow; gd.__moeWidth = width;
    }
    const dark = isDark();
    if (dark !== !!gd.__moeDark) { Object.assign(u, themeUpdate(gd, dark)); gd.__moeDark = dark; }
    if (!Object.keys(u).length) return Promise.resolve();
    let draw;
    if (traces) {
      // new traces and the layout around them in one redraw (colour bar, margins and tick fonts decided together)
      // plotly (3.8) keeps a vertical colour bar's ticks and its margin push when the bar turns horizontal (a
      // horizontal bar in container coordinates reserves its room instead): drop both first
      gd.querySelectorAll("g.colorbar").forEach(n => n.remove());
      const pushes = gd._fullLayout._pushmargin || {};
      for (const id of Object.keys(pushes)) if (id.startsWith("cb")) delete pushes[id];
      draw = P.react(gd, traces, withUpdate(gd.layout, u));
    } else {
      draw = P.relayout(gd, u);
    }
    return draw
      .then(() => {
        const more = narrow ? legendRoom(gd) : null;
        return more ? P.relayout(gd, more) : null;
      })
      .then(() => {
        const more = narrow ? sliderRoom(gd) : null;
        return more ? P.relayout(gd, more) : null;
      })
      .then(() => {
        // the div and its wrapper keep the height they were written with (style="height: ...px"): they follow
        // the figure's, or the figure's bottom would be cut off
        if (!gd._fullLayout) return;
        for (const el of [gd, gd.parentElement]) if (el && el.style.height) el.style.height = gd._fullLayout.height + "px";
      });
  }


  // ------------------------------------------------------------------ fast sliders
  // A slider figure as built (moe_companion.figures.slider_figure) holds n_a x m traces: the first slider
  // toggles which group of m is visible, the second restyles every trace's data. That works in any plotly
  // renderer (JupyterLab's too), but each click replots all n_a x m traces. Here, on the site, the figure is
  // plotted with only the m traces on show; the sliders' steps become "skip" (and their handle no longer
  // glides for 150 ms, which repainted the page every frame), and a change draws the m traces of the new
  // positions from the same table: a restyle of their data when their styles are unchanged (the usual case),
  // Plotly.react otherwise. Axes keep autoranging as before. bench/bench_slider.py measures the effect.
  const DATA_KEYS = ["x", "y", "z", "text", "customdata", "error_y.array", "error_y.arrayminus", "error_x.array",
                     "error_x.arrayminus", "marker.color", "width", "base"];

  function setPath(trace, key, value) {
    const parts = key.split(".");
    const absent = value === null || value === undefined;
    if (parts.length === 1) { if (absent) delete trace[key]; else trace[key] = value; return; }
    if (absent && !trace[parts[0]]) return;
    trace[parts[0]] = Object.assign({}, trace[parts[0]] || {});
    if (absent) delete trace[parts[0]][parts[1]]; else trace[parts[0]][parts[1]] = value;
  }
  function styleOf(trace) {
    const t = Object.assign({}, trace);
    delete t.visible; delete t.uid;
    for (const key of DATA_KEYS) setPath(t, key, null);
    return JSON.stringify(t);
  }

  function fastSliders(data, layout) {
    const meta = layout && layout.meta && layout.meta.moe_sliders;
    const sliders = (layout && layout.sliders) || [];
    if (!meta || !Array.isArray(data) || sliders.length !== meta.values.length) return null;
    const m = meta.traces_per_point, na = meta.values[0].length, two = meta.values.length === 2;
    if (data.length !== na * m || sliders[0].steps.length !== na) return null;
    if (two && sliders[1].steps.length !== meta.values[1].length) return null;
    const S = {
      m, na, two, base: data, style: data.map(styleOf),
      stepsB: two ? sliders[1].steps.map(s => s.args[0]) : null,
      i: sliders[0].active || 0, j: two ? sliders[1].active || 0 : 0, busy: false, pending: false,
    };
    const skip = sliders.map(s => Object.assign({}, s, {
      steps: s.steps.map(st => Object.assign({}, st, { method: "skip", args: [] })), transition: { duration: 0 } }));
    return { S, data: tracesAt(S, S.i, S.j), layout: Object.assign({}, layout, { sliders: skip }) };
  }
  function tracesAt(S, i, j) {
    const out = [];
    for (let c = 0; c < S.m; c++) {
      const t = Object.assign({}, S.base[i * S.m + c], { visible: true });
      if (S.two) for (const key of Object.keys(S.stepsB[j])) setPath(t, key, S.stepsB[j][key][i * S.m + c]);
      out.push(t);
    }
    return out;
  }
  function sameStyle(S, a, b) {
    for (let c = 0; c < S.m; c++) if (S.style[a * S.m + c] !== S.style[b * S.m + c]) return false;
    return true;
  }
  function showStep(gd, S) {
    const sl = gd.layout.sliders;
    const i = sl[0].active || 0, j = S.two ? sl[1].active || 0 : 0;
    if (i === S.i && j === S.j) return;
    const next = tracesAt(S, i, j);
    if (sameStyle(S, S.i, i)) {
      const update = {};
      for (const key of DATA_KEYS) {
        const values = next.map(t => get(t, key));
        if (values.some(x => x !== undefined)) update[key] = values.map(x => (x === undefined ? null : x));
      }
      P.restyle(gd, update, next.map((_, c) => c));
    } else {
      P.react(gd, next, gd.layout);
    }
    S.i = i; S.j = j;
  }
  function attachFastSliders(gd, S) {
    gd.__moeFast = S;
    // A click is drawn at once, inside its own event, so that the very next frame shows it; while a drag
    // moves the handle faster than frames are drawn, the changes of one frame are drawn together in the next.
    function frameDone() {
      if (S.pending) { S.pending = false; showStep(gd, S); requestAnimationFrame(frameDone); } else S.busy = false;
    }
    gd.on("plotly_sliderchange", () => {
      if (S.busy) { S.pending = true; return; }
      S.busy = true;
      showStep(gd, S);
      requestAnimationFrame(frameDone);
    });
  }

  const observer = window.ResizeObserver ? new ResizeObserver(entries => {
    for (const e of entries) {
      const gd = e.target.querySelector(".js-plotly-plot");
      if (gd) { clearTimeout(gd.__moeTimer); gd.__moeTimer = setTimeout(() => fit(gd), 120); }
    }
  }) : null;
  new MutationObserver(() => document.querySelectorAll(".js-plotly-plot").forEach(gd => fit(gd)))
    .observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });

  const newPlot = P.newPlot;
  P.newPlot = function (gd, data, layout, config) {
    const cfg = Object.assign({ responsive: true }, config || {}, {
      displaylogo: false, showSendToCloud: false, showEditInChartStudio: false, showLink: false,
      toImageButtonOptions: Object.assign({ format: "png", scale: 2 }, (config || {}).toImageButtonOptions || {}),
    });
    cfg.modeBarButtonsToRemove = [...new Set([...(cfg.modeBarButtonsToRemove || []), "sendDataToCloud", "editInChartStudio"])];
    cfg.modeBarButtonsToAdd = [...(cfg.modeBarButtonsToAdd || []), svgButton];
    const fast = fastSliders(data, layout);
    return newPlot.call(P, gd, fast ? fast.data : data, fast ? fast.layout : layout, cfg).then(g => {
      if (fast) attachFastSliders(g, fast.S);
      label(g);
      return fit(g, true).then(() => { if (observer && g.parentElement) observer.observe(g.parentElement); return g; });
    });
  };
  P.__moeWrapped = true;
})();
