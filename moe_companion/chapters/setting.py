"""Chapter "The setting" (Sec. 3.2): how much each Bayes estimator of Eq. (3) shrinks the truth, block by block.

Bars: the closed forms ``||beta_hat_i|| / ||beta_i*||`` (:func:`moe_companion.theory.shrinkage_ratios`);
markers: least-squares fits on a large noisy sample (:func:`moe_companion.simulate.least_squares`).
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from .. import _validate as v
from .. import findings as F
from .. import posterior, simulate, style, theory
from ..figures import FigureSpec
from ..model import BlockModel, with_p1

TITLE = "The setting (Sec. 3.2, Eq. 3)"
#: The chapter's model: four Toeplitz blocks of eight features.
MODEL = BlockModel.toeplitz(k=4, block_dim=8, rho=0.6, sigma2=0.5, seed=1)
GRID = {"sigma2": [0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0], "p1": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]}
N_MC = 20_000


def fitted_ratios(model: BlockModel, n: int, seed=0) -> dict[str, np.ndarray]:
    """Shrinkage ratios of the least-squares fits on ``n`` noisy samples (each expert needs >= d_i rows)."""
    n = v.check_int(n, "n", lower=2)
    s = model.sample(n, seed)
    counts = np.bincount(s.z, minlength=model.k)
    short = np.flatnonzero(counts < np.asarray(model.dims))
    if short.size:
        i = int(short[0])
        raise ValueError(f"n={n} leaves expert {i} with {counts[i]} samples (< d_i = {model.dims[i]}); increase n")
    return theory.shrinkage_ratios(model, simulate.least_squares(model, s.xbar, s.y, s.z))


def shrinkage_traces(sigma2: float, p1: float, *, model: BlockModel = MODEL, n_mc: int | None = N_MC, seed=0):
    """Traces at one ``(sigma2, p1)``: bars (closed form) and markers (least-squares fits)."""
    m = with_p1(model.replace(sigma2=sigma2), p1)
    closed = theory.shrinkage_ratios(m)
    blocks = [f"block {i + 1}<br>p = {m.p[i]:.2f}" for i in range(m.k)]
    traces = [
        go.Bar(
            x=blocks,
            y=np.round(closed[e], 4),
            name=f"{e} (Eq. 3)",
            marker_color=style.COLORS[e],
            opacity=0.75,
            offsetgroup=e,
        )
        for e in ("dense", "sparse")
    ]
    if n_mc is not None:
        fit = fitted_ratios(m, n_mc, seed)
        traces += [
            go.Scatter(
                x=blocks,
                y=np.round(fit[e], 4),
                mode="markers",
                offsetgroup=e,
                name=f"{e} least-squares fit, n = {n_mc:,}",
                marker=dict(symbol="diamond", size=11, color=style.COLORS[e], line=dict(width=1.5, color="white")),
            )
            for e in ("dense", "sparse")
        ]
    return traces


FIGURES = {
    "shrinkage": FigureSpec(
        shrinkage_traces,
        GRID,
        initial={"sigma2": 0.5, "p1": 0.1},
        labels={"sigma2": "σ²", "p1": "p₁"},
        layout=dict(
            barmode="group",
            scattermode="group",
            title="Shrinkage of the Bayes estimators, block by block",
            yaxis=style.axis("‖β̂ᵢ‖ / ‖βᵢ*‖  (1 = no shrinkage)", range=[0, 1.05]),
            xaxis=style.axis("block i (routing probability pᵢ)"),
            legend=dict(orientation="h", y=1.02, yanchor="bottom"),
        ),
        caption="Bars: closed-form shrinkage of the dense and sparse Bayes estimators per block; markers: "
        "least-squares fits on 20,000 noisy samples; sliders: noise variance and p1.",
    ),
}


def findings(*, seed: int = 0, n_fit: int = 200_000, reps: int = 8, n_test: int = 200_000) -> list[F.Finding]:
    """Eq. (3) as the limit of least squares (Monte Carlo), the dense model's heavier shrinkage (exact), and the
    dense estimator's optimality only among linear predictors (paired Monte Carlo against E[y | xbar])."""
    m = with_p1(MODEL, 0.1)
    closed = theory.shrinkage_ratios(m)
    rng = v.check_random_state(seed)
    gaps = []
    for _ in range(reps):  # worst-block gap between the fitted and the closed-form shrinkage ratio
        fit = fitted_ratios(m, n_fit, rng)
        gaps.append(max(np.max(np.abs(fit[e] - closed[e])) for e in ("dense", "sparse")))
    gaps = np.asarray(gaps)
    ratios = [
        theory.shrinkage_ratios(with_p1(MODEL.replace(sigma2=s2), p1)) for s2 in GRID["sigma2"] for p1 in GRID["p1"]
    ]
    margin = min(float(np.min(r["sparse"] - r["dense"])) for r in ratios)
    cmp = posterior.compare_predictors(m, n_test=n_test, seed=rng)
    return [
        F.finding(
            "setting.dense_is_best_linear_only",
            statement="The Eq. (3) dense estimator is Bayes-optimal only among linear predictors: the posterior-gated "
            "MoE E[y | x̄], which does not see the label either, has a lower risk (σ² = 0.5, p₁ = 0.1).",
            paper_claim="Sec. 3.2, Eq. (3): 'the Bayes optimal estimators' (dense and sparse)",
            value={
                "diff": cmp["dense-posterior"][0],
                "dense": cmp["dense"][0],
                "posterior": cmp["posterior"][0],
                "oracle": cmp["oracle"][0],
                "sigma2": m.sigma2,
                "p1": float(m.p[0]),
            },
            uncertainty=F.se(
                cmp["dense-posterior"][1], f"paired Monte Carlo over {n_test:,} common test draws", n=n_test, key="diff"
            ),
            rule=F.difference("positive", what="paired risk difference dense − posterior-gated MoE", key="diff"),
        ),
        F.finding(
            "setting.eq3_is_least_squares_limit",
            statement="Least-squares fits on many noisy samples reproduce the Eq. (3) estimators' shrinkage.",
            paper_claim="Sec. 3.2, Eq. (3): the Bayes-optimal dense and sparse estimators",
            value={"worst_gap": float(gaps.mean()), "n_fit": n_fit},
            uncertainty=F.se(
                gaps.std(ddof=1) / np.sqrt(reps),
                f"{reps} independent fits of {n_fit:,} samples",
                n=reps,
                key="worst_gap",
            ),
            n_seeds=reps,
            rule=F.agreement(
                0.02, what="worst-block |fitted − closed-form| shrinkage ratio (mean over fits)", key="worst_gap"
            ),
        ),
        F.finding(
            "setting.dense_shrinks_more",
            statement="The dense estimator shrinks every block at least as much as the sparse expert, at every "
            "slider setting.",
            value={"min_margin": margin},
            rule=F.exact(
                ">=",
                0.0,
                what="smallest sparse − dense shrinkage ratio over blocks and the slider grid",
                key="min_margin",
            ),
        ),
    ]
