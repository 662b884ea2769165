"""Section 3.2 — the block model's dense and sparse estimators, and the setting chapter's figure.

The figure shows, block by block, how much each Bayes estimator of Eq. (3) shrinks the ground
truth: the ratio ``||beta_hat_i|| / ||beta_i*||`` for the dense and the sparse estimator, as
closed forms (bars) and as least-squares fits on a large noisy sample (markers, Monte Carlo).
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from . import _validate as v
from .explore import live_explorer
from .figures import slider_figure
from .model import BlockModel
from .theory import bayes_dense, bayes_sparse

__all__ = [
    "least_squares_estimators",
    "with_p1",
    "shrinkage_ratios",
    "shrinkage_traces",
    "shrinkage_figure",
    "shrinkage_explorer",
    "SETTING_GRID",
]

#: Slider grid of the setting chapter: noise variance and the first expert's probability.
SETTING_GRID = {"sigma2": [0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0],
                "p1": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]}


def with_p1(model: BlockModel, p1: float) -> BlockModel:
    """``model`` with ``p_1 = p1`` and the remaining mass spread uniformly over the other experts."""
    p1 = v.check_scalar(p1, "p1", lower=0.0, upper=1.0, lower_inclusive=False, upper_inclusive=model.k == 1)
    if model.k == 1:
        return model.replace(p=[1.0])
    p = np.full(model.k, (1.0 - p1) / (model.k - 1))
    p[0] = p1
    return model.replace(p=p)


def least_squares_estimators(model: BlockModel, n: int, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Dense and per-expert least-squares fits on ``n`` noisy samples (Monte Carlo for Eq. 3).

    The dense fit regresses ``y`` on all ``d`` noisy features of every sample; expert ``i``
    regresses ``y`` on its own noisy block ``xbar_i`` over the samples routed to it (``z = i``).
    As ``n`` grows both converge to the Bayes estimators of Eq. (3).

    Returns
    -------
    dense, sparse : lists of k arrays, shapes (d_i,)
    """
    n = v.check_int(n, "n", lower=2)
    s = model.sample(n, seed)
    dense_full = np.linalg.lstsq(s.xbar, s.y, rcond=None)[0]
    dense = [dense_full[model.block_slice(i)] for i in range(model.k)]
    sparse = []
    for i in range(model.k):
        rows = s.z == i
        if rows.sum() < model.dims[i]:
            raise ValueError(f"n={n} leaves expert {i} with {rows.sum()} samples (< d_i = {model.dims[i]}); increase n")
        sparse.append(np.linalg.lstsq(s.xbar[rows][:, model.block_slice(i)], s.y[rows], rcond=None)[0])
    return dense, sparse


def shrinkage_ratios(model: BlockModel, n_mc: int | None = None, seed: int = 0) -> dict[str, np.ndarray]:
    """``||beta_hat_i|| / ||beta_i*||`` per block for the Bayes estimators (and their LS fits).

    Returns a dict with ``"dense"``, ``"sparse"`` (closed forms) and, if ``n_mc`` is given,
    ``"dense_mc"``, ``"sparse_mc"`` (least-squares fits on ``n_mc`` samples); arrays of shape (k,).
    """
    norms = np.array([np.linalg.norm(b) for b in model.betas])
    if np.any(norms == 0):
        raise ValueError("betas must be non-zero in every block to define a shrinkage ratio")
    out = {"dense": np.array([np.linalg.norm(b) for b in bayes_dense(model)]) / norms,
           "sparse": np.array([np.linalg.norm(b) for b in bayes_sparse(model)]) / norms}
    if n_mc is not None:
        dense, sparse = least_squares_estimators(model, n_mc, seed)
        out["dense_mc"] = np.array([np.linalg.norm(b) for b in dense]) / norms
        out["sparse_mc"] = np.array([np.linalg.norm(b) for b in sparse]) / norms
    return out


def shrinkage_traces(model: BlockModel, sigma2: float, p1: float, n_mc: int | None = 20_000, seed: int = 0):
    """Traces of the setting figure at one ``(sigma2, p1)``: bars (closed form) + markers (LS fits)."""
    m = with_p1(model.replace(sigma2=sigma2), p1)
    r = shrinkage_ratios(m, n_mc=n_mc, seed=seed)
    blocks = [f"block {i + 1}<br>p={m.p[i]:.2f}" for i in range(m.k)]
    traces = [
        go.Bar(x=blocks, y=np.round(r["dense"], 4), name="dense (Eq. 3)", marker_color="#d62728", opacity=0.75,
               offsetgroup="dense"),
        go.Bar(x=blocks, y=np.round(r["sparse"], 4), name="sparse / MoE (Eq. 3)", marker_color="#1f77b4",
               opacity=0.75, offsetgroup="sparse"),
    ]
    if n_mc is not None:
        traces += [
            go.Scatter(x=blocks, y=np.round(r["dense_mc"], 4), mode="markers", name=f"dense LS fit, n={n_mc}", offsetgroup="dense",
                       marker=dict(symbol="x", size=11, color="#7f0000")),
            go.Scatter(x=blocks, y=np.round(r["sparse_mc"], 4), mode="markers", name=f"sparse LS fits, n={n_mc}", offsetgroup="sparse",
                       marker=dict(symbol="circle-open", size=12, line_width=2, color="#08306b")),
        ]
    return traces


_LAYOUT = dict(barmode="group", scattermode="group", yaxis=dict(title="‖β̂ᵢ‖ / ‖βᵢ*‖  (1 = no shrinkage)", range=[0, 1.05]),
               title="Shrinkage of the Bayes estimators, block by block",
               legend=dict(orientation="h", y=1.02, yanchor="bottom"))


def shrinkage_figure(model: BlockModel, grid=None, n_mc: int = 20_000, seed: int = 0) -> go.Figure:
    """Static-slider figure over ``sigma2`` and ``p1`` (default grid :data:`SETTING_GRID`)."""
    grid = SETTING_GRID if grid is None else grid
    return slider_figure(lambda sigma2, p1: shrinkage_traces(model, sigma2, p1, n_mc, seed), grid,
                         labels={"sigma2": "σ²", "p1": "p₁"}, initial={"sigma2": 0.5, "p1": 0.1}, layout=_LAYOUT)


def shrinkage_explorer(model: BlockModel, grid=None, n_mc: int = 20_000, seed: int = 0):
    """Live ipywidgets explorer of the same figure (JupyterLab)."""
    grid = SETTING_GRID if grid is None else grid
    return live_explorer(lambda sigma2, p1: shrinkage_traces(model, sigma2, p1, n_mc, seed), grid,
                         labels={"sigma2": "σ²", "p1": "p₁"}, initial={"sigma2": 0.5, "p1": 0.1}, layout=_LAYOUT)
