"""The book's one visual language: colours with a fixed meaning, one plotly template, one number format.

Colour meaning (Okabe–Ito palette, colour-blind safe), the same on every page:

========== ======================================================================
role       meaning
========== ======================================================================
dense      the dense model / dense estimator
sparse     the sparse estimator, the MoE (oracle routing), the experts
router     an MoE with a learned or Bayes router (hard top-1 routing)
posterior  the posterior-gated MoE (soft routing, no label)
paper      a formula or number *as printed in the paper* (dashed lines)
reference  bounds, baselines, thresholds, nulls (grey)
accent     a third quantity that is none of the above
========== ======================================================================

A Monte Carlo estimate is drawn as markers (with error bars) in the colour of the curve it checks.
Chapters select traces by plain identifiers and apply display labels only here, at display time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

__all__ = [
    "COLORS",
    "DASH",
    "TEMPLATE",
    "fmt",
    "fmt_pm",
    "fmt_interval",
    "pct",
    "line",
    "points",
    "log_axis",
    "axis",
]

COLORS = {
    "dense": "#0072B2",  # blue
    "sparse": "#D55E00",  # vermillion
    "router": "#E69F00",  # orange
    "posterior": "#009E73",  # bluish green
    "paper": "#CC79A7",  # reddish purple
    "reference": "#7F7F7F",  # grey
    "accent": "#56B4E9",  # sky blue
}
#: Line dash by kind of curve: derived closed form, as printed in the paper, reference.
DASH = {"derived": "solid", "paper": "dash", "reference": "dot"}

TEMPLATE = "moe"
_template = go.layout.Template(pio.templates["plotly_white"])
_template.layout.colorway = [
    COLORS[k] for k in ("dense", "sparse", "router", "posterior", "paper", "accent", "reference")
]
_template.layout.font = dict(family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size=13)
# no SI prefixes (1μ, 1n) on loss axes; powers of ten read "10⁻³"
for _ax in ("xaxis", "yaxis"):
    _template.layout[_ax].exponentformat = "power"
    _template.layout[_ax].automargin = True
    # log axes: label the decades only (no 9 px "2 3 4 5" minor-digit labels); minor ticks stay as marks
    _template.layout[_ax].minorloglabels = "none"
_template.layout.title = dict(x=0.0, xanchor="left", font=dict(size=15))
pio.templates[TEMPLATE] = _template


def fmt(x: Any, digits: int = 3) -> str:
    """The book's number format: ``digits`` significant figures, no ``-0``, ``nan`` spelled "n/a"."""
    if x is None:
        return "n/a"
    x = float(x)
    if not math.isfinite(x):
        return "n/a" if math.isnan(x) else ("∞" if x > 0 else "−∞")
    if x == 0:
        return "0"
    out = f"{x:.{digits}g}"
    if "e" in out:
        mant, exp = out.split("e")
        out = f"{mant}×10^{int(exp)}"
    if out.startswith("-"):
        out = "−" + out[1:]
        if out.strip("−0.") == "":
            out = "0"
    return out


def fmt_pm(mean: Any, se: Any, digits: int = 3) -> str:
    """``mean ± se`` in the book's format."""
    return f"{fmt(mean, digits)} ± {fmt(se, 2)}"


def fmt_interval(lo: Any, hi: Any, digits: int = 3) -> str:
    """A 95 % interval ``[lo, hi]`` in the book's format."""
    return f"[{fmt(lo, digits)}, {fmt(hi, digits)}]"


def pct(x: Any, digits: int = 1) -> str:
    """A share as a percentage: ``0.1234 → "12.3 %"``."""
    if x is None or not math.isfinite(float(x)):
        return "n/a"
    return f"{100 * float(x):.{digits}f} %"


def _rounded(a, digits: int = 5):
    arr = np.asarray(a, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        mag = np.where(arr == 0, 0, np.floor(np.log10(np.abs(np.where(arr == 0, 1, arr)))))
    scale = 10.0 ** (digits - 1 - mag)
    out = np.where(np.isfinite(arr), np.round(arr * scale) / scale, np.nan)
    return [None if not np.isfinite(v) else float(v) for v in out.ravel()]


def line(
    x: Sequence,
    y: Sequence,
    role: str,
    name: str,
    *,
    kind: str = "derived",
    group: str | None = None,
    showlegend: bool = True,
    **kwargs,
) -> go.Scatter:
    """A curve in the colour of ``role`` (:data:`COLORS`) and the dash of ``kind`` (:data:`DASH`)."""
    return go.Scatter(
        x=list(x),
        y=_rounded(y),
        mode="lines",
        name=name,
        legendgroup=group or role,
        showlegend=showlegend,
        line=dict(color=COLORS[role], dash=DASH[kind], width=2.5),
        **kwargs,
    )


def points(
    x: Sequence,
    mean: Sequence,
    se: Sequence | None,
    role: str,
    name: str,
    *,
    z: float = 2.0,
    symbol: str = "circle",
    group: str | None = None,
    showlegend: bool = True,
    **kwargs,
) -> go.Scatter:
    """Monte Carlo estimates as markers in the colour of ``role``, with ``± z·se`` error bars."""
    error = (
        None
        if se is None
        else dict(
            type="data",
            array=_rounded(z * np.asarray(se, dtype=float)),
            visible=True,
            color=COLORS[role],
            thickness=1.5,
        )
    )
    return go.Scatter(
        x=list(x),
        y=_rounded(mean),
        mode="markers",
        name=name,
        legendgroup=group or role,
        showlegend=showlegend,
        error_y=error,
        marker=dict(color=COLORS[role], symbol=symbol, size=8, line=dict(width=1, color="white")),
        **kwargs,
    )


def axis(title: str, **kwargs) -> dict:
    """A linear axis with its title (symbol and unit)."""
    return dict(title=dict(text=title), **kwargs)


def log_axis(title: str, **kwargs) -> dict:
    """A log axis with its title; tick density and labels come from the template (readable, no SI prefixes)."""
    return dict(title=dict(text=title), type="log", exponentformat="power", **kwargs)
