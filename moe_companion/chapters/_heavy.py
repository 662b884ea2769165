"""Shared helpers of the heavy chapters' modules: stored-result paths, CI markers, lazy figure dicts."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np
import plotly.graph_objects as go

from .. import style

ROOT = Path(__file__).resolve().parents[2]


#: ``(chapter, profile) -> path`` set by :func:`use_results` (a notebook run with its own store).
_OVERRIDES: dict = {}


def use_results(chapter: str, profile: str, path, params: Mapping | None = None) -> Path:
    """Make :func:`results_path` of ``(chapter, profile)`` return ``path`` (the store a notebook ran with)
    and :func:`params_of` return ``params`` (the notebook's effective parameters), when given.

    A relative ``path`` is taken from the current directory (a page runs in ``book/``).  Call it
    before the chapter's first ``stored()`` (its results are cached per profile).
    """
    out = Path(path).resolve()
    _OVERRIDES[(chapter, profile)] = out
    if params is not None:
        _PARAMS[(chapter, profile)] = dict(params)
    return out


#: ``(chapter, profile) -> params`` set by :func:`use_results`.
_PARAMS: dict = {}


def params_of(chapter: str, profile: str, default: Mapping) -> dict:
    """The parameters a chapter's stored results were run with: :func:`use_results`' or ``default``."""
    return dict(_PARAMS.get((chapter, profile), default))


def results_path(chapter: str, profile: str = "cpu") -> Path:
    """``book/generated/results/<chapter>-<profile>.jsonl`` (the stored units of a heavy chapter),
    unless :func:`use_results` named another store."""
    if (chapter, profile) in _OVERRIDES:
        return _OVERRIDES[(chapter, profile)]
    return ROOT / "book" / "generated" / "results" / f"{chapter}-{profile}.jsonl"


def ci_points(
    x,
    mean,
    lo,
    hi,
    role: str,
    name: str,
    *,
    symbol: str = "circle",
    scale: float = 1.0,
    showlegend: bool = True,
    mode: str = "markers+lines",
    dash: str = "solid",
) -> go.Scatter:
    """Estimates as markers in the colour of ``role`` with asymmetric 95 % interval bars ``[lo, hi]``."""
    m, lo, hi = (scale * np.asarray(a, dtype=float) for a in (mean, lo, hi))
    return go.Scatter(
        x=list(x),
        y=np.round(m, 4).tolist(),
        mode=mode,
        name=name,
        legendgroup=name,
        showlegend=showlegend,
        line=dict(color=style.COLORS[role], dash=dash, width=2),
        marker=dict(color=style.COLORS[role], symbol=symbol, size=8),
        error_y=dict(
            type="data",
            symmetric=False,
            array=np.round(hi - m, 4).tolist(),
            arrayminus=np.round(m - lo, 4).tolist(),
            color=style.COLORS[role],
            thickness=1.5,
        ),
    )


def zero_line(x) -> go.Scatter:
    """A dotted grey y = 0 reference line across ``x``."""
    return go.Scatter(
        x=[min(x), max(x)],
        y=[0, 0],
        mode="lines",
        name="no difference",
        line=dict(color=style.COLORS["reference"], dash="dot", width=1.5),
    )


class LazyFigures(Mapping):
    """``FIGURES`` of a heavy chapter: built on first access from the stored ``cpu`` results."""

    def __init__(self, build: Callable[[], dict]):
        self._build, self._specs = build, None

    def _get(self) -> dict:
        if self._specs is None:
            self._specs = self._build()
        return self._specs

    def __getitem__(self, name):
        return self._get()[name]

    def __iter__(self) -> Iterator:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())


def pp(x: float) -> float:
    """A fraction in percentage points (for glue values shown as pp)."""
    return 100.0 * float(x)
