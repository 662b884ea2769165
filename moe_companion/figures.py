"""Plotly figure builders: the book renderer and the static-slider pattern.

Every theorem figure is a function ``traces_fn(**params) -> list of traces`` plus a grid over
one or two parameters.  :func:`slider_figure` precomputes the traces at every grid point and
wires plotly's own sliders so that the published static site stays interactive (no kernel).
:func:`moe_companion.explore.live_explorer` drives the same ``traces_fn`` with ipywidgets in
JupyterLab.

Two sliders without any custom JavaScript
-----------------------------------------
Plotly's restyle steps of two sliders would override each other if each slider toggled trace
visibility.  Here the two sliders touch *different* attributes:

* the first slider (parameter ``a``, ``n_a`` values) sets ``visible`` so that only the ``m``
  traces of group ``a_i`` show;
* the second slider (parameter ``b``) restyles the *data* (``x``, ``y``, error bars, ...) of all
  ``n_a * m`` traces to their values at ``b_j``.

The curve on screen is trace group ``i`` carrying data for ``(a_i, b_j)``: it always matches both
sliders, whatever order they are moved in, and it works in JupyterLab's plotly renderer too.
"""

from __future__ import annotations

import html as html_lib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.io._base_renderers import MimetypeRenderer

from . import _validate as v
from . import style
from ._mystnb import MARKER

__all__ = ["BookRenderer", "register_renderer", "slider_figure", "DATA_KEYS", "fingerprint", "FigureSpec"]

#: Trace attributes that the second slider restyles (those a ``traces_fn`` may vary).
DATA_KEYS = (
    "x",
    "y",
    "z",
    "text",
    "customdata",
    "error_y.array",
    "error_y.arrayminus",
    "error_x.array",
    "error_x.arrayminus",
    "marker.color",
    "width",
    "base",
)

RENDERER_NAME = "moe_book"


# ---------------------------------------------------------------------------------- renderer
class BookRenderer(MimetypeRenderer):
    """Emit a plotly figure as an HTML ``<div>`` without inline plotly.js, plus the plotly JSON.

    The book loads ``plotly.min.js`` (copied from the plotly wheel) once per page, so each
    figure costs only its data.  The ``application/vnd.plotly.v1+json`` entry keeps JupyterLab's
    native plotly renderer working; myst-nb ignores it and renders the ``text/html`` entry.
    """

    #: modebar: PNG and SVG downloads (the SVG button is added by the book's moe-figures.js), no cloud "Share"
    CONFIG = {
        "responsive": True,
        "displaylogo": False,
        "showSendToCloud": False,
        "toImageButtonOptions": {"format": "png", "scale": 2},
    }

    def __init__(self, config: Mapping[str, Any] | None = None):
        self.config = {**self.CONFIG, **(config or {})}

    def to_mimebundle(self, fig_dict):
        html = pio.to_html(
            fig_dict, include_plotlyjs=False, include_mathjax=False, full_html=False, config=self.config, validate=False
        )
        label = aria_label(fig_dict.get("layout", {}))
        html = html.replace(
            'class="plotly-graph-div"', f'class="plotly-graph-div" role="figure" aria-label="{label}"', 1
        )
        return {
            "text/html": html,
            "application/vnd.plotly.v1+json": {
                "data": fig_dict.get("data", []),
                "layout": fig_dict.get("layout", {}),
                "config": self.config,
                MARKER: True,
            },
        }


def aria_label(layout: Mapping[str, Any]) -> str:
    """The figure's accessible name: its title and its caption (``layout.meta["moe_caption"]``), as plain text."""
    title = layout.get("title") or {}
    text = title if isinstance(title, str) else (title.get("text") or "")
    meta = layout.get("meta") or {}
    caption = meta.get("moe_caption", "") if isinstance(meta, Mapping) else ""
    plain = re.sub(r"<[^>]+>", " ", ". ".join(t for t in (text, caption) if t))
    plain = " ".join(plain.split()) or "Interactive figure"
    return html_lib.escape(plain, quote=True)


def register_renderer(make_default: bool = True) -> None:
    """Register :class:`BookRenderer` as ``"moe_book"`` (and make it the default)."""
    pio.renderers[RENDERER_NAME] = BookRenderer()
    if make_default:
        pio.renderers.default = RENDERER_NAME


register_renderer()  # importing this module makes the book's renderer the default


# ---------------------------------------------------------------------------------- sliders
def _trace_value(trace_json: dict, key: str):
    node: Any = trace_json
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def fingerprint(trace_json: Mapping[str, Any]) -> float:
    """Position-weighted sum ``sum_j (j + 1) v_j`` of the finite numbers in a trace's flattened ``y`` and
    ``z`` data: what the browser test compares with the figure on the page.

    Both arrays count (a heatmap's ``y`` is often a fixed axis while its ``z`` carries what a slider
    changes), and the weights tell apart data with equal sums (shares that always add up to 1).
    """
    total = 0.0
    for key in ("y", "z"):
        data = trace_json.get(key)
        if data is not None:
            arr = np.asarray(data, dtype=float).ravel()
            weights = np.arange(1, arr.size + 1)
            ok = np.isfinite(arr)
            total += float((weights[ok] * arr[ok]).sum())
    return total


def _evaluate(traces_fn, names, point) -> list[dict]:
    traces = traces_fn(**dict(zip(names, point)))
    if isinstance(traces, go.Figure):
        traces = list(traces.data)
    if not isinstance(traces, (list, tuple)) or not traces:
        raise TypeError("traces_fn must return a non-empty list of plotly traces")
    out = []
    for t in traces:
        if isinstance(t, dict):
            t = go.Figure(data=[t]).data[0]
        out.append(json.loads(t.to_json()) if hasattr(t, "to_json") else t)
    return out


def _check_grid(grid: Mapping[str, Sequence[float]]) -> tuple[list[str], list[np.ndarray]]:
    if not isinstance(grid, Mapping) or not 1 <= len(grid) <= 2:
        raise ValueError(f"grid must map one or two parameter names to value lists, got {grid!r}")
    names, values = [], []
    for name, vals in grid.items():
        arr = v.check_array(vals, f"grid[{name!r}]", ndim=1)
        if arr.size < 2:
            raise ValueError(f"grid[{name!r}] must have at least 2 values, got {arr.size}")
        names.append(str(name))
        values.append(arr)
    return names, values


def _check_fmt(fmt) -> None:
    if not isinstance(fmt, str):
        raise TypeError(f"fmt must be a format string such as '{{:.3g}}', got {fmt!r}")
    try:
        fmt.format(1.5)
    except (ValueError, IndexError, KeyError) as exc:
        raise ValueError(f"fmt must format one number, e.g. '{{:.3g}}', got {fmt!r} ({exc})") from None


def _label(value: float, fmt: str) -> str:
    return fmt.format(value)


def slider_figure(
    traces_fn: Callable[..., Sequence[go.BaseTraceType]],
    grid: Mapping[str, Sequence[float]],
    *,
    initial: Mapping[str, float] | None = None,
    labels: Mapping[str, str] | None = None,
    fmt: str = "{:.3g}",
    layout: Mapping[str, Any] | None = None,
) -> go.Figure:
    """Build a figure whose plotly sliders show ``traces_fn`` precomputed on ``grid``.

    Parameters
    ----------
    traces_fn : callable
        ``traces_fn(**{name: value})`` returns a list of plotly traces.  Every grid point must
        return the same number of traces (``m``), in the same order.
    grid : mapping
        One or two parameter names, each mapped to at least two values (1-D).
    initial : mapping, optional
        Start value of each parameter (snapped to the nearest grid value); default: first value.
    labels : mapping, optional
        Slider captions (e.g. ``{"sigma2": "σ²"}``); default: the parameter names.
    fmt : str
        Format of the step labels.
    layout : mapping, optional
        Extra layout properties (title, axes, ...).

    Returns
    -------
    plotly.graph_objects.Figure
        ``layout.meta["moe_sliders"]`` records the grid and a fingerprint (sum of ``y``/``z``)
        of each trace at each grid point, so a browser test can check what is shown.
    """
    if not callable(traces_fn):
        raise TypeError(f"traces_fn must be callable, got {traces_fn!r}")
    _check_fmt(fmt)
    names, values = _check_grid(grid)
    labels = dict(labels or {})
    unknown = set(labels) - set(names)
    if unknown:
        raise ValueError(f"labels names unknown parameters {sorted(unknown)}; grid has {names}")
    start = []
    for name, vals in zip(names, values):
        if initial is not None and name in initial:
            start.append(int(np.argmin(np.abs(vals - v.check_scalar(initial[name], f"initial[{name!r}]")))))
        else:
            start.append(0)
    if initial is not None and set(initial) - set(names):
        raise ValueError(f"initial names unknown parameters {sorted(set(initial) - set(names))}; grid has {names}")

    two = len(names) == 2
    na = values[0].size
    nb = values[1].size if two else 1
    # table[i][j] = list of m trace dicts at (a_i, b_j)
    table = [
        [_evaluate(traces_fn, names, (values[0][i],) + ((values[1][j],) if two else ())) for j in range(nb)]
        for i in range(na)
    ]
    m = len(table[0][0])
    for i in range(na):
        for j in range(nb):
            if len(table[i][j]) != m:
                raise ValueError(
                    f"traces_fn returned {len(table[i][j])} traces at grid point ({i}, {j}), "
                    f"expected {m} as at the first point"
                )
    i0, j0 = start[0], (start[1] if two else 0)

    fig = go.Figure()
    for i in range(na):
        for c in range(m):
            t = dict(table[i][j0][c])
            t["visible"] = i == i0
            fig.add_trace(t)
    # legends: only the visible group shows entries, so duplicates never appear
    step_visible = [[(g == i) for g in range(na) for _ in range(m)] for i in range(na)]
    sliders = [
        dict(
            active=i0,
            currentvalue=dict(prefix=f"{labels.get(names[0], names[0])} = "),
            x=0.0,
            len=1.0,
            y=0.0,
            yanchor="top",
            pad=dict(t=60, b=10),
            steps=[
                dict(method="restyle", label=_label(values[0][i], fmt), args=[{"visible": step_visible[i]}])
                for i in range(na)
            ],
        )
    ]
    if two:
        used = [
            key
            for key in DATA_KEYS
            if any(_trace_value(tr, key) is not None for row in table for cell in row for tr in cell)
        ]
        steps_b = []
        for j in range(nb):
            update = {key: [_trace_value(table[i][j][c], key) for i in range(na) for c in range(m)] for key in used}
            steps_b.append(dict(method="restyle", label=_label(values[1][j], fmt), args=[update]))
        sliders.append(
            dict(
                active=j0,
                currentvalue=dict(prefix=f"{labels.get(names[1], names[1])} = "),
                x=0.0,
                len=1.0,
                y=0.0,
                yanchor="top",
                pad=dict(t=160, b=10),
                steps=steps_b,
            )
        )
    meta = {
        "moe_sliders": {
            "params": names,
            "values": [vals.tolist() for vals in values],
            "traces_per_point": m,
            "fingerprints": [[[fingerprint(tr) for tr in table[i][j]] for j in range(nb)] for i in range(na)],
        }
    }
    fig.update_layout(
        sliders=sliders,
        meta=meta,
        margin=dict(b=260 if two else 150),
        height=680 if two else 560,
        template=style.TEMPLATE,
    )
    if layout:
        fig.update_layout(**layout)
    return fig


# ---------------------------------------------------------------------------------- chapter figure specs
@dataclass(frozen=True)
class FigureSpec:
    """One chapter figure: the single builder behind its static slider and its live explorer.

    ``traces(**{name: value})`` returns the figure's traces at one grid point; ``grid`` maps one or two
    parameter names to their slider values; ``labels`` are the sliders' captions; ``layout`` holds the
    title and axis titles (shared by both views); ``caption`` is the figure's alt text / aria label.
    """

    traces: Callable[..., Sequence[go.BaseTraceType]]
    grid: Mapping[str, Sequence[float]]
    initial: Mapping[str, float] | None = None
    labels: Mapping[str, str] | None = None
    layout: Mapping[str, Any] | None = None
    fmt: str = "{:.3g}"
    caption: str = ""

    def static(self) -> go.Figure:
        """The static-slider figure (plotly's own sliders over the precomputed grid)."""
        fig = slider_figure(
            self.traces, self.grid, initial=self.initial, labels=self.labels, fmt=self.fmt, layout=self.layout
        )
        if self.caption:
            fig.layout.meta["moe_caption"] = self.caption
        return fig

    def live(self, **kwargs):
        """The live ipywidgets explorer over the same builder (JupyterLab; needs a kernel)."""
        from .explore import live_explorer

        return live_explorer(
            self.traces, self.grid, initial=self.initial, labels=self.labels, layout=self.layout, **kwargs
        )
