"""Chapter "Theorem 3" (Sec. 4.3): risks under test-time noise, the exact crossover, and the counterexample
to the paper's sufficient condition.

Lines are closed forms (:mod:`moe_companion.theory`); markers are Monte Carlo (:mod:`moe_companion.simulate`)
with ±2 standard errors, seeded per slider state.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import plotly.graph_objects as go

from .. import _validate as v
from .. import findings as F
from .. import simulate, style, theory
from ..figures import FigureSpec
from ..model import BlockModel, first_probability, random_model
from ._common import state_seed, top
from .theorem2_generalization import _pooled, formula_findings

TITLE = "Theorem 3 (Sec. 4.3): robustness to test-time noise"
N_MC = 3000
RATIO = np.geomspace(0.1, 100.0, 61)  # sigma_o^2 / sigma^2
MC_RATIO = np.array([0.3, 1.0, 3.0, 10.0, 30.0, 100.0])
MAP_P = np.geomspace(0.005, 1.0, 50)
MAP_LAM = np.geomspace(0.5, 50.0, 50)  # lambda / sigma^2
GRID = {"sigma2": [0.05, 0.1, 0.15, 0.2, 0.22, 0.24], "p1": [0.0625, 0.2, 0.4, 0.6, 0.8, 0.9]}
GAP_GRID = {"sigma2": [0.1, 0.15, 0.2, 0.22, 0.24], "kappa": [1.0, 1.2, 1.5, 2.0, 3.0]}
MAP_GRID = {"ratio": [2, 5, 10, 30, 100, 1000]}
#: The counterexample's setting (Figure 1 at sigma^2 = 0.24, p1 = 0.8; sigma_o^2 = 100 sigma^2).
COUNTER = dict(sigma2=0.24, p1=0.8, kappa=1.2, ratio=100.0)


def model(sigma2: float = 0.24, p1: float = 0.8, kappa: float = 1.2, k: int = 16, block_dim: int = 4) -> BlockModel:
    """k = 16 blocks of dimension 4 with eigenvalues geometric in ``[1, kappa]`` (so lambda_min = 1 and the
    paper's condition lambda_min > 4 sigma^2 holds for every sigma2 < 0.25); ``p = [p1, rest uniform]``."""
    kappa = v.check_scalar(kappa, "kappa", lower=1.0)
    spectra = [np.geomspace(1.0, kappa, block_dim)] * k
    return BlockModel.from_spectra(spectra, p=first_probability(k, p1), sigma2=sigma2, beta_scale=1.0, seed=0)


@cache
def _mc(sigma2: float, p1: float) -> np.ndarray:
    m = model(sigma2, p1)
    out = np.empty((MC_RATIO.size, 4))
    for g, r in enumerate(MC_RATIO):
        out[g, :2] = simulate.risk(m, "dense", N_MC, state_seed(1, sigma2, p1, g), sigma_o2=float(r * sigma2))
        out[g, 2:] = simulate.risk(m, "sparse", N_MC, state_seed(2, sigma2, p1, g), sigma_o2=float(r * sigma2))
    return out


def risk_traces(sigma2: float, p1: float) -> list:
    """Risks vs sigma_o^2 / sigma^2 (lines), Monte Carlo (±2 s.e.) and the exact crossover (dotted)."""
    m = model(sigma2, p1)
    dense, sparse = theory.risk_grid(m, sigma_o2=RATIO * sigma2)
    mc = _mc(round(float(sigma2), 6), round(float(p1), 6))
    t = theory.crossover_sigma_o2(m) / sigma2
    lo, hi = float(min(dense.min(), sparse.min())), float(max(dense.max(), sparse.max()))
    xs = [t, t] if np.isfinite(t) else [None, None]
    return [
        style.line(RATIO, dense, "dense", "dense (Thm 3)"),
        style.line(RATIO, sparse, "sparse", "sparse (Thm 3)"),
        style.points(MC_RATIO, mc[:, 0], mc[:, 1], "dense", "dense, Monte Carlo ±2 s.e."),
        style.points(MC_RATIO, mc[:, 2], mc[:, 3], "sparse", "sparse, Monte Carlo ±2 s.e.", symbol="diamond"),
        go.Scatter(
            x=xs,
            y=[lo, hi],
            mode="lines",
            name="exact crossover (dense wins to the right)",
            line=dict(color=style.COLORS["reference"], dash=style.DASH["reference"], width=2),
        ),
    ]


@cache
def _gap_mc(sigma2: float, kappa: float) -> np.ndarray:
    m = model(sigma2, 0.8, kappa)
    out = np.empty((MC_RATIO.size, 3))
    for g, r in enumerate(MC_RATIO):
        so2 = float(r * sigma2)
        out[g, :2] = simulate.risk_gap(m, 2 * N_MC, state_seed(3, sigma2, kappa, g), sigma_o2=so2)
        out[g, :2] /= theory.risk_dense(m, so2)
        out[g, 2] = (theory.risk_sparse(m, so2) - theory.risk_dense(m, so2)) / theory.risk_dense(m, so2)
    return out


def gap_traces(sigma2: float, kappa: float) -> list:
    """Relative gap (R_sparse - R_dense) / R_dense vs sigma_o^2/sigma^2 (p1 = 0.8): > 0 means dense wins."""
    m = model(sigma2, 0.8, kappa)
    dense, sparse = theory.risk_grid(m, sigma_o2=RATIO * sigma2)
    mc = _gap_mc(round(float(sigma2), 6), round(float(kappa), 6))
    return [
        style.line(RATIO, np.zeros_like(RATIO), "reference", "no difference", kind="reference"),
        style.line(RATIO, (sparse - dense) / dense, "accent", "(𝓡_sparse − 𝓡_dense) / 𝓡_dense"),
        style.points(MC_RATIO, mc[:, 0], mc[:, 1], "accent", "paired Monte Carlo ±2 s.e."),
    ]


def direction_map_traces(ratio: float) -> list:
    """Per eigen-direction: where dense beats sparse at sigma_o^2 = ratio * sigma^2 (heatmap, sigma^2 = 1)."""
    tau = theory.direction_threshold(MAP_LAM[:, None], MAP_P[None, :], 1.0)
    z = (ratio > tau).astype(float)
    return [
        go.Heatmap(
            x=np.round(MAP_P, 5).tolist(),
            y=np.round(MAP_LAM, 5).tolist(),
            z=z,
            showscale=False,
            zmin=0,
            zmax=1,
            colorscale=[[0, "#ffffff"], [1, style.COLORS["dense"]]],
            name="dense wins (blue)",
            opacity=0.45,
            hovertemplate="p=%{x}<br>λ/σ²=%{y}<br>dense wins: %{z}<extra></extra>",
        ),
        style.line(MAP_P, 1 / np.sqrt(MAP_P), "sparse", "λ = σ²/√p (above: sparse always wins)"),
        style.line(MAP_P, np.full_like(MAP_P, 4.0), "paper", "λ = 4σ² (paper's condition)", kind="paper"),
    ]


FIGURES = {
    "risk_vs_test_noise": FigureSpec(
        risk_traces,
        GRID,
        initial={"sigma2": 0.24, "p1": 0.8},
        labels={"sigma2": "σ² (training noise)", "p1": "p₁ (rest uniform)"},
        layout=dict(
            **top("Theorem 3: risks vs σ_o²/σ² (k = 16, λ ∈ [1, 1.2])"),
            xaxis=style.log_axis("σ_o² / σ² (test over training noise variance)"),
            yaxis=style.log_axis("test risk 𝓡(σ_o²) (squared error)"),
        ),
        caption="Dense and sparse risks of Theorem 3 against the test-noise ratio with Monte Carlo markers "
        "(3000 draws, ±2 s.e.) and the exact crossover; sliders: training noise and p1.",
    ),
    "relative_gap": FigureSpec(
        gap_traces,
        GAP_GRID,
        initial={"sigma2": 0.24, "kappa": 1.2},
        labels={"sigma2": "σ²", "kappa": "spectrum spread κ"},
        layout=dict(
            **top("Theorem 3: relative gap, p₁ = 0.8 (positive: dense wins)"),
            xaxis=style.log_axis("σ_o² / σ² (test over training noise variance)"),
            yaxis=style.axis("(𝓡_sparse − 𝓡_dense) / 𝓡_dense (dimensionless)"),
        ),
        caption="Relative risk gap between the sparse and dense estimators against the test-noise ratio, closed "
        "form and paired Monte Carlo (6000 draws, ±2 s.e.); sliders: training noise and spectrum spread.",
    ),
    "direction_map": FigureSpec(
        direction_map_traces,
        MAP_GRID,
        initial={"ratio": 100},
        labels={"ratio": "σ_o²/σ²"},
        fmt="{:g}",
        layout=dict(
            **top("Per direction: where dense beats sparse (σ² = 1)"),
            xaxis=style.log_axis("expert probability pᵢ"),
            yaxis=style.log_axis("eigenvalue over noise λ / σ²"),
        ),
        caption="Map over expert probability and eigenvalue of where the dense estimator beats the sparse expert "
        "along one direction (blue), with the exact always-sparse boundary and the paper's condition.",
    ),
}


def counterexample(*, n_samples: int = 200_000, seed: int = 7) -> dict:
    """Numbers of the Theorem 3 counterexample (:data:`COUNTER`): closed forms, Monte Carlo, paired gap."""
    c = COUNTER
    m = model(c["sigma2"], c["p1"], c["kappa"])
    so2 = c["ratio"] * c["sigma2"]
    dm, ds = simulate.risk(m, "dense", n_samples, seed, sigma_o2=so2)
    sm, ss = simulate.risk(m, "sparse", n_samples, seed + 1, sigma_o2=so2)
    gm, gs = simulate.risk_gap(m, n_samples, seed + 2, sigma_o2=so2)
    cross = theory.crossover_sigma_o2(m)
    d20, s20 = theory.risk_grid(m, sigma_o2=20 * c["sigma2"])
    return {
        "sigma2": c["sigma2"],
        "p1": c["p1"],
        "kappa": c["kappa"],
        "lambda_min": float(min(e[0][0] for e in m.eigh)),
        "four_sigma2": 4 * c["sigma2"],
        "p_other": float(m.p[1]),
        "sigma_o2": so2,
        "ratio": c["ratio"],
        "condition_holds": float(theory.paper_condition(m, so2)),
        "dense": theory.risk_dense(m, so2),
        "sparse": theory.risk_sparse(m, so2),
        "gap": theory.risk_sparse(m, so2) - theory.risk_dense(m, so2),
        "dense_mc": dm,
        "dense_se": ds,
        "sparse_mc": sm,
        "sparse_se": ss,
        "gap_mc": gm,
        "gap_se": gs,
        "crossover": cross,
        "crossover_ratio": cross / c["sigma2"],
        "dense_at_20": d20,
        "sparse_at_20": s20,
    }


def findings(*, seed: int = 0, n_samples: int = 200_000) -> list[F.Finding]:
    """Replace vs additive reading of sigma_o^2, the failed sufficient condition, calibration."""
    out = []
    rows = simulate.check_rows([random_model(s) for s in range(5)], n_samples, sigma_o2_factor=3.0, seed=2000 + seed)
    out += formula_findings(
        "theorem3_robustness",
        rows,
        what="Theorem 3's formulas with σ_o² replacing σ² at test time",
        paper_claim="Theorem 3 (Sec. 4.3): R_Dense(σ_o²), R_Sparse(σ_o²)",
        n_samples=n_samples,
    )
    rel, se, zmax = _pooled(rows, "additive")
    zmin = float(np.min(np.abs([r["z_additive"] for r in rows])))
    out.append(
        F.finding(
            "theorem3_robustness.additive_reading",
            statement="Read additively (test noise σ² + σ_o²), Theorem 3's formulas would match Monte Carlo too.",
            value={"rel_diff": rel, "max_abs_z": zmax, "min_abs_z": zmin, "models": len(rows) // 2},
            uncertainty=F.se(
                se, f"Monte Carlo, {n_samples:,} test draws per model and estimator", n=len(rows), key="rel_diff"
            ),
            rule=F.agreement(
                0.01, what="mean relative difference (Monte Carlo − additive-reading formula) / formula", key="rel_diff"
            ),
        )
    )
    ce = counterexample(seed=7 + seed, n_samples=n_samples)
    out.append(
        F.finding(
            "theorem3_robustness.sufficient_condition",
            statement="Under the paper's sufficient condition (λ_min(Σᵢ) > 4σ² and σ_o² > σ²) the sparse estimator is "
            "favoured — tested on the counterexample of Figure 1 (σ² = 0.24, p₁ = 0.8, σ_o² = 100σ²).",
            paper_claim="Sec. 4.3: 'if λ_min(Σ_i) > 4σ² … and σ_o² > σ², sparse estimators are favored'",
            value=ce,
            uncertainty=F.se(ce["gap_se"], f"paired Monte Carlo, {n_samples:,} test draws", n=n_samples, key="gap_mc"),
            rule=F.difference(
                "negative", what="paired R_sparse − R_dense at the counterexample (paper: < 0)", key="gap_mc"
            ),
        )
    )
    mc, se_, closed = [], [], []
    for s2 in GRID["sigma2"]:
        for p1 in GRID["p1"]:
            pts = _mc(round(float(s2), 6), round(float(p1), 6))
            d, s = theory.risk_grid(model(s2, p1), sigma_o2=MC_RATIO * s2)
            mc += [*pts[:, 0], *pts[:, 2]]
            se_ += [*pts[:, 1], *pts[:, 3]]
            closed += [*d, *s]
    out.append(
        F.calibration(
            "theorem3_robustness.calibration_risk_vs_test_noise",
            figure="Theorem 3: risks vs σ_o²/σ²",
            closed=closed,
            mean=mc,
            se=se_,
        )
    )
    mc, se_, closed = [], [], []
    for s2 in GAP_GRID["sigma2"]:
        for kappa in GAP_GRID["kappa"]:
            pts = _gap_mc(round(float(s2), 6), round(float(kappa), 6))
            mc += list(pts[:, 0])
            se_ += list(pts[:, 1])
            closed += list(pts[:, 2])
    out.append(
        F.calibration(
            "theorem3_robustness.calibration_relative_gap",
            figure="Theorem 3: relative gap",
            closed=closed,
            mean=mc,
            se=se_,
        )
    )
    return out
