"""Chapter "Theorem 2" (Sec. 4.2): dense vs sparse Bayes risks, least squares at finite n, and the
posterior-gated MoE (the best predictor that never sees the label) beside dense, hard-routed and oracle MoE.

Lines are closed forms (:mod:`moe_companion.theory`); markers are Monte Carlo estimates
(:mod:`moe_companion.simulate`, :mod:`moe_companion.posterior`) with ±2 standard errors, seeded per slider
state so that different states are independent draws (the calibration findings count on it).
"""

from __future__ import annotations

from functools import cache

import numpy as np

from .. import findings as F
from .. import posterior, simulate, style, theory
from ..figures import FigureSpec
from ..model import BlockModel, first_probability, random_model
from ._common import state_seed, top

TITLE = "Theorem 2 (Sec. 4.2): sparse experts generalize better"
N_MC = 3000
SIGMA2 = np.geomspace(0.01, 10.0, 61)
MC_SIGMA2 = np.array([0.03, 0.1, 0.3, 1.0, 3.0])
N_TRAIN = np.array([40, 80, 160, 320, 640, 1280])
POST_SIGMA2 = np.array([0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0])
N_POST = 20_000
GRID = {"p1": [0.05, 0.1, 0.25, 0.4, 0.55, 0.7, 0.85, 0.95], "rho": [0.0, 0.3, 0.5, 0.7, 0.9]}
FIT_GRID = {"sigma2": [0.1, 0.3, 1.0, 3.0]}
POST_GRID = {"p1": [0.1, 0.25, 0.5, 0.85]}


def model(p1: float = 0.25, rho: float = 0.5, sigma2: float = 0.5) -> BlockModel:
    """The chapter's model: k = 4 Toeplitz(``rho``) blocks of dimension 6, ``p = [p1, rest uniform]``."""
    return BlockModel.toeplitz(4, 6, rho, p=first_probability(4, p1), sigma2=sigma2, beta_scale=1.0, seed=0)


# ----------------------------------------------------------------------------------- Figure 1
@cache
def _mc(p1: float, rho: float) -> np.ndarray:
    out = np.empty((MC_SIGMA2.size, 4))
    for g, s2 in enumerate(MC_SIGMA2):
        m = model(p1, rho, float(s2))
        out[g, :2] = simulate.risk(m, "dense", N_MC, state_seed(1, p1, rho, g))
        out[g, 2:] = simulate.risk(m, "sparse", N_MC, state_seed(2, p1, rho, g))
    return out


def risk_traces(p1: float, rho: float) -> list:
    """Dense and sparse Bayes risks vs sigma^2 (lines) and Monte Carlo (markers, ±2 s.e.)."""
    m = model(p1, rho)
    dense, sparse = theory.risk_grid(m, sigma2=SIGMA2)
    mc = _mc(round(float(p1), 6), round(float(rho), 6))
    return [
        style.line(SIGMA2, dense, "dense", "dense (Thm 2)"),
        style.line(SIGMA2, sparse, "sparse", "sparse (Thm 2)"),
        style.points(MC_SIGMA2, mc[:, 0], mc[:, 1], "dense", "dense, Monte Carlo ±2 s.e."),
        style.points(MC_SIGMA2, mc[:, 2], mc[:, 3], "sparse", "sparse, Monte Carlo ±2 s.e.", symbol="diamond"),
    ]


# ----------------------------------------------------------------------------------- Figure 2
@cache
def _fit(sigma2: float) -> np.ndarray:
    m = model(0.25, 0.5, sigma2)
    out = np.empty((N_TRAIN.size, 4))
    for g, n in enumerate(N_TRAIN):
        out[g, :2] = simulate.fitted_risk(m, "dense", int(n), 5, state_seed(3, sigma2, g))
        out[g, 2:] = simulate.fitted_risk(m, "sparse", int(n), 5, state_seed(4, sigma2, g))
    return out


def fit_traces(sigma2: float) -> list:
    """Least-squares fits on n noisy samples (markers, ±2 s.e. over 5 training sets) vs the Bayes risks."""
    m = model(0.25, 0.5, sigma2)
    fit = _fit(round(float(sigma2), 6))
    x = N_TRAIN[[0, -1]]
    return [
        style.line(x, [theory.risk_dense(m)] * 2, "dense", "dense Bayes risk (n → ∞)", kind="reference"),
        style.line(x, [theory.risk_sparse(m)] * 2, "sparse", "sparse Bayes risk (n → ∞)", kind="reference"),
        style.points(N_TRAIN, fit[:, 0], fit[:, 1], "dense", "dense least squares"),
        style.points(N_TRAIN, fit[:, 2], fit[:, 3], "sparse", "sparse least squares", symbol="diamond"),
    ]


# ----------------------------------------------------------------------------------- Figure 3
@cache
def _post(p1: float, n_test: int = N_POST) -> tuple:
    rows = [
        posterior.compare_predictors(model(p1, 0.5, float(s2)), n_test=n_test, seed=state_seed(5, p1, g))
        for g, s2 in enumerate(POST_SIGMA2)
    ]
    return tuple(rows)


def posterior_traces(p1: float) -> list:
    """Risk vs sigma^2: dense and oracle MoE (closed forms), hard-routed and posterior-gated MoE (Monte Carlo)."""
    m = model(p1, 0.5)
    dense, sparse = theory.risk_grid(m, sigma2=POST_SIGMA2)
    rows = _post(round(float(p1), 6))
    get = lambda key, a: np.array([r[key][a] for r in rows])  # noqa: E731
    return [
        style.line(POST_SIGMA2, dense, "dense", "dense, Eq. 3 (best linear, no label)"),
        style.line(POST_SIGMA2, sparse, "sparse", "oracle MoE (label known, Thm 2)"),
        style.points(
            POST_SIGMA2, get("hard", 0), get("hard", 1), "router", "MoE, Bayes router top-1 (MC)", symbol="square"
        ),
        style.points(
            POST_SIGMA2,
            get("posterior", 0),
            get("posterior", 1),
            "posterior",
            "posterior-gated MoE E[y | x̄] (MC)",
            symbol="diamond",
        ),
    ]


FIGURES = {
    "risk_vs_noise": FigureSpec(
        risk_traces,
        GRID,
        initial={"p1": 0.25, "rho": 0.5},
        labels={"p1": "p₁ (rest uniform)", "rho": "Toeplitz ρ"},
        layout=dict(
            **top("Theorem 2: Bayes risks vs σ² (k = 4, dᵢ = 6)"),
            xaxis=style.log_axis("σ² (feature-noise variance)"),
            yaxis=style.axis("generalization error 𝓡 (squared error)", rangemode="tozero"),
        ),
        caption="Dense (blue) and sparse (vermillion) Bayes risks of Theorem 2 against the noise variance, with "
        "Monte Carlo markers (3000 draws, ±2 s.e.); sliders: p1 and the Toeplitz correlation.",
    ),
    "least_squares": FigureSpec(
        fit_traces,
        FIT_GRID,
        initial={"sigma2": 0.3},
        labels={"sigma2": "σ²"},
        layout=dict(
            **top("Least-squares fits vs n (k = 4, dᵢ = 6, ρ = 0.5, p₁ = 0.25)"),
            xaxis=style.log_axis("n (training samples)"),
            yaxis=style.log_axis("test risk of the fit"),
        ),
        caption="Exact test risk of minimum-norm least-squares fits (mean of 5 training sets, ±2 s.e.) against "
        "the training-set size, with the Bayes risks as dotted lines; slider: noise variance.",
    ),
    "posterior_moe": FigureSpec(
        posterior_traces,
        POST_GRID,
        initial={"p1": 0.25},
        labels={"p1": "p₁ (rest uniform)"},
        layout=dict(
            **top("Without the label: dense, top-1 and posterior MoE"),
            xaxis=style.log_axis("σ² (feature-noise variance)"),
            yaxis=style.axis("test risk 𝓡 (squared error)", rangemode="tozero"),
        ),
        caption="Risk against noise variance of the dense estimator and the oracle MoE (closed forms), and Monte "
        "Carlo risks (20,000 draws, ±2 s.e.) of the MoE behind the Bayes router (top-1) and of the "
        "posterior-gated MoE; slider: p1.",
    ),
}


# ----------------------------------------------------------------------------------- findings
def _pooled(rows, closed_key: str):
    rel = np.array([(r["mc"] - r[closed_key]) / r[closed_key] for r in rows])
    se = np.array([r["se"] / r[closed_key] for r in rows])
    return (
        float(rel.mean()),
        float(np.sqrt(np.sum(se**2)) / rel.size),
        float(np.max(np.abs([(r["mc"] - r[closed_key]) / r["se"] for r in rows]))),
    )


def formula_findings(chapter: str, rows, *, what: str, paper_claim: str, n_samples: int) -> list[F.Finding]:
    """Closed form vs Monte Carlo on random models, pooled (shared with the Theorem 3 chapter)."""
    rel, se, zmax = _pooled(rows, "closed")
    return [
        F.finding(
            f"{chapter}.formulas_match_monte_carlo",
            statement=f"{what} match Monte Carlo on {len(rows) // 2} random models (dense and sparse).",
            paper_claim=paper_claim,
            value={"rel_diff": rel, "max_abs_z": zmax, "models": len(rows) // 2, "draws": n_samples},
            uncertainty=F.se(
                se, f"Monte Carlo, {n_samples:,} test draws per model and estimator", n=len(rows), key="rel_diff"
            ),
            rule=F.agreement(
                0.01, what="mean relative difference (Monte Carlo − closed form) / closed form", key="rel_diff"
            ),
        )
    ]


def findings(*, seed: int = 0, n_samples: int = 200_000, n_post: int = 200_000, reps: int = 40) -> list[F.Finding]:
    """Eq. 3/Thm 2 vs Monte Carlo, the inequality, calibration, small n, and the posterior-gated MoE."""
    out = []
    rows = simulate.check_rows([random_model(s) for s in range(5)], n_samples, seed=1000 + seed)
    out += formula_findings(
        "theorem2_generalization",
        rows,
        what="Theorem 2's risk formulas",
        paper_claim="Theorem 2 (Sec. 4.2): the generalization errors of the Bayes dense and sparse estimators",
        n_samples=n_samples,
    )
    gaps = [np.subtract(*theory.risk_grid(random_model(s), sigma2=SIGMA2)).min() for s in range(300)]
    out.append(
        F.finding(
            "theorem2_generalization.sparse_never_worse",
            statement="The sparse risk is at most the dense risk on 300 random models at 61 noise levels each.",
            paper_claim="Theorem 2: R(β_Sparse) ≤ R(β_Dense)",
            value={"min_gap": float(min(gaps)), "models": 300},
            rule=F.exact(">=", 0.0, what="smallest R_dense − R_sparse (closed form)", key="min_gap"),
        )
    )
    mc, se, closed = [], [], []
    for p1 in GRID["p1"]:
        for rho in GRID["rho"]:
            pts = _mc(round(float(p1), 6), round(float(rho), 6))
            for g, s2 in enumerate(MC_SIGMA2):
                d, s = theory.risk_grid(model(p1, rho, float(s2)))
                mc += [pts[g, 0], pts[g, 2]]
                se += [pts[g, 1], pts[g, 3]]
                closed += [d, s]
    out.append(
        F.calibration(
            "theorem2_generalization.calibration_risk_vs_noise",
            figure="Theorem 2: Bayes risks vs σ²",
            closed=closed,
            mean=mc,
            se=se,
        )
    )
    # A10: "at the smallest n the sparse fits are much worse", checked at every slider sigma^2
    diffs, ses = {}, {}
    for s2 in FIT_GRID["sigma2"]:
        m = model(0.25, 0.5, s2)
        d = simulate.fitted_risk(m, "dense", 40, reps, state_seed(6, seed, s2))
        s = simulate.fitted_risk(m, "sparse", 40, reps, state_seed(7, seed, s2))
        diffs[s2], ses[s2] = s[0] - d[0], float(np.hypot(d[1], s[1]))
    for s2, slug in ((0.1, "sigma2_0p1"), (1.0, "sigma2_1")):
        out.append(
            F.finding(
                f"theorem2_generalization.small_n_sparse_worse_{slug}",
                statement=f"At n = 40 training samples and σ² = {s2:g} the sparse least-squares fits have a larger "
                "test risk than the dense fit (the page's earlier claim: 'much worse at the smallest n').",
                value={
                    "diff": diffs[s2],
                    "sigma2": s2,
                    "n": 40,
                    **{f"diff_at_{str(k).replace('.', 'p')}": v for k, v in diffs.items()},
                },
                uncertainty=F.se(ses[s2], f"{reps} independent training sets per estimator", n=reps, key="diff"),
                n_seeds=reps,
                rule=F.difference("positive", what="mean sparse − dense test risk of the fits", key="diff"),
            )
        )
    # A4: the posterior-gated MoE across sigma^2 (p1 = 0.25), paired differences
    rows = [
        posterior.compare_predictors(model(0.25, 0.5, float(s2)), n_test=n_post, seed=state_seed(8, seed, g))
        for g, s2 in enumerate(POST_SIGMA2)
    ]
    at2 = rows[int(np.flatnonzero(POST_SIGMA2 == 2.0)[0])]
    for key, slug, text, direction in (
        (
            "dense-posterior",
            "posterior_beats_dense",
            "The posterior-gated MoE E[y | x̄] (never sees the label) has a lower risk than the Eq. (3) dense "
            "estimator at σ² = 2",
            "positive",
        ),
        (
            "hard-posterior",
            "posterior_beats_hard_routing",
            "The posterior-gated MoE has a lower risk than the same experts behind the Bayes router's top-1 "
            "decision at σ² = 2",
            "positive",
        ),
        (
            "dense-hard",
            "hard_routing_beats_dense",
            "The hard-routed MoE (Bayes router, top-1) has a lower risk than the dense estimator at σ² = 2",
            "positive",
        ),
        (
            "posterior-oracle",
            "oracle_beats_posterior",
            "Knowing the label still helps: the oracle MoE of Theorem 2 has a lower risk than the posterior-gated "
            "MoE at σ² = 2",
            "positive",
        ),
    ):
        z = [r[key][0] / r[key][1] for r in rows]
        out.append(
            F.finding(
                f"theorem2_generalization.{slug}",
                statement=text + ".",
                paper_claim=None,
                value={
                    "diff": at2[key][0],
                    "sigma2": 2.0,
                    "min_z_over_grid": float(min(z)),
                    "max_z_over_grid": float(max(z)),
                    "dense": at2["dense"][0],
                    "hard": at2["hard"][0],
                    "posterior": at2["posterior"][0],
                    "oracle": at2["oracle"][0],
                },
                uncertainty=F.se(
                    at2[key][1], f"paired Monte Carlo over {n_post:,} common test draws", n=n_post, key="diff"
                ),
                rule=F.difference(direction, what=f"paired risk difference {key.replace('-', ' − ')}", key="diff"),
            )
        )
    return out
