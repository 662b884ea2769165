"""Live explorers for JupyterLab: ipywidgets sliders over a ``go.FigureWidget``.

They call the same ``traces_fn`` as :func:`moe_companion.figures.slider_figure`, but evaluate
it at any slider value (not only on the precomputed grid).  On the static site a frozen widget
would pretend to be interactive, so book chapters tag explorer cells ``skip-execution`` (the source is shown,
never run) and show
the static-slider figure instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ipywidgets as widgets
import plotly.graph_objects as go

from . import _validate as v
from . import style
from .figures import _check_grid, _evaluate

__all__ = ["live_explorer"]


def live_explorer(
    traces_fn: Callable[..., Sequence[go.BaseTraceType]],
    grid: Mapping[str, Sequence[float]],
    *,
    initial: Mapping[str, float] | None = None,
    labels: Mapping[str, str] | None = None,
    layout: Mapping[str, Any] | None = None,
    steps: int = 200,
) -> widgets.VBox:
    """A ``VBox`` of float sliders (one per parameter) above a ``FigureWidget``.

    Each slider spans ``[min(grid[name]), max(grid[name])]`` in ``steps`` steps; moving it calls
    ``traces_fn`` with the current values and replaces the figure's trace data in place.
    ``explorer.figure`` is the ``FigureWidget`` and ``explorer.sliders`` maps names to sliders.
    """
    steps = v.check_int(steps, "steps", lower=1)
    if layout is not None and not isinstance(layout, Mapping):
        raise TypeError(f"layout must be a mapping of plotly layout properties, got {layout!r}")
    names, values = _check_grid(grid)
    labels = dict(labels or {})
    sliders = {}
    for name, vals in zip(names, values):
        lo, hi = float(vals.min()), float(vals.max())
        start = float(initial[name]) if initial and name in initial else float(vals[0])
        sliders[name] = widgets.FloatSlider(
            value=min(max(start, lo), hi),
            min=lo,
            max=hi,
            step=(hi - lo) / steps,
            description=labels.get(name, name),
            continuous_update=False,
            readout_format=".3g",
            layout=widgets.Layout(width="60%"),
        )
    # the static figure's layout (title, axis titles with symbols and units), minus its sliders
    fig = go.FigureWidget(layout=dict(template=style.TEMPLATE, height=520, margin=dict(b=60)))
    fig.update_layout(**{k: val for k, val in (layout or {}).items() if k not in ("sliders", "meta")})

    def current() -> tuple[float, ...]:
        return tuple(float(sliders[n].value) for n in names)

    for trace in _evaluate(traces_fn, names, current()):
        fig.add_trace(trace)

    def redraw(_change=None) -> None:
        new = _evaluate(traces_fn, names, current())
        if len(new) != len(fig.data):
            raise ValueError(f"traces_fn returned {len(new)} traces, the explorer shows {len(fig.data)}")
        with fig.batch_update():
            for old, tr in zip(fig.data, new):
                old.update({k: val for k, val in tr.items() if k != "type"}, overwrite=True)

    for s in sliders.values():
        s.observe(redraw, names="value")
    box = widgets.VBox([*sliders.values(), fig])
    box.figure = fig
    box.sliders = sliders
    box.redraw = redraw
    return box
