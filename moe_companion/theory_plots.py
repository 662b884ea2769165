"""Figure builders of the Theorem 2-4 chapters: closed-form curves with Monte Carlo points.

Each ``*_traces(**params)`` returns the same number of plotly traces, in the same order, at every
parameter value, so it serves both :func:`moe_companion.figures.slider_figure` (static site) and
:func:`moe_companion.explore.live_explorer` (JupyterLab).  The models of each chapter are built by
``*_model`` functions from the slider parameters; Monte Carlo points are seeded and cached, so a
page (re)build gives the same numbers.
"""
from __future__ import annotations

from functools import cache

import numpy as np
import plotly.graph_objects as go

from . import _validate as v
from . import simulate, theory
from .model import BlockModel

__all__ = [
    "check_rows",
    "p_first",
    "random_model",
    "thm2_fit_traces",
    "thm2_model",
    "thm2_traces",
    "thm3_counterexample",
    "thm3_direction_map_traces",
    "thm3_gap_traces",
    "thm3_model",
    "thm3_traces",
    "thm4_model",
    "thm4_sigma_traces",
    "thm4_table",
    "thm4_traces",
]

DENSE, SPARSE, PRINTED = "#d62728", "#1f77b4", "#7f7f7f"
N_MC = 3000


def p_first(k: int, p1: float) -> np.ndarray:
    """Probabilities ``[p_1, (1 - p_1)/(k - 1), ...]``: expert 1's share, the rest uniform."""
    k = v.check_int(k, "k", lower=2)
    p1 = v.check_scalar(p1, "p1", lower=0.0, upper=1.0, lower_inclusive=False, upper_inclusive=False)
    return np.r_[p1, np.full(k - 1, (1.0 - p1) / (k - 1))]


def _r(a, digits: int = 5):
    """Round for compact figure JSON (significant digits)."""
    a = np.asarray(a, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        mag = np.where(np.isfinite(a) & (a != 0), np.floor(np.log10(np.abs(np.where(a == 0, 1, a)))), 0)
    scale = 10.0 ** (digits - 1 - mag)
    return np.where(np.isfinite(a), np.round(a * scale) / scale, np.nan)


def _line(x, y, name, color, dash="solid", group=None):
    return go.Scatter(x=_r(x), y=_r(y), mode="lines", name=name, line=dict(color=color, dash=dash),
                      legendgroup=group or name)


def _points(x, mean, se, name, color, symbol="circle", group=None):
    return go.Scatter(x=_r(x), y=_r(mean), mode="markers", name=name, legendgroup=group or name,
                      marker=dict(color=color, size=7, symbol=symbol),
                      error_y=dict(type="data", array=_r(3 * np.asarray(se), 3), visible=True))


def random_model(seed: int, k: int | None = None, sigma2: float | None = None) -> BlockModel:
    """A random valid block model for checks: k in 2-4 blocks of dims 1-5, Haar-rotated spectra in
    [0.1, 5], Dirichlet(1) probabilities, sigma^2 in [0.05, 2], beta_scale 1.5 -- all from ``seed``."""
    rng = np.random.default_rng(v.check_seed(seed))
    k = int(rng.integers(2, 5)) if k is None else v.check_int(k, "k", lower=1)
    spectra = [rng.uniform(0.1, 5.0, size=int(rng.integers(1, 6))) for _ in range(k)]
    p = rng.dirichlet(np.ones(k))
    s2 = float(rng.uniform(0.05, 2.0)) if sigma2 is None else sigma2
    return BlockModel.from_spectra(spectra, p=p, sigma2=s2, beta_scale=1.5, seed=seed)


def check_rows(seeds, n_samples: int = 200_000, sigma_o2_factor: float | None = None) -> list[dict]:
    """Closed form vs Monte Carlo on :func:`random_model` ``(seed)`` for each seed (Theorem 2, or
    Theorem 3 with ``sigma_o^2 = sigma_o2_factor * sigma^2``, where the rows also give the closed form
    under the *additive* reading, test noise ``sigma^2 + sigma_o^2``): one row per model and estimator."""
    rows = []
    for seed in seeds:
        m = random_model(seed)
        so2 = None if sigma_o2_factor is None else sigma_o2_factor * m.sigma2
        for est, f in (("dense", theory.risk_dense), ("sparse", theory.risk_sparse)):
            mean, se = simulate.risk(m, est, n_samples, 1000 + seed, sigma_o2=so2)
            exact = f(m, so2)
            row = {"model": seed, "k": m.k, "σ²": m.sigma2, "σ_o²": m.sigma2 if so2 is None else so2,
                   "estimator": est, "closed form": exact, "Monte Carlo": mean, "s.e.": se, "z": (mean - exact) / se}
            if so2 is not None:  # the other semantic: test noise sigma^2 + sigma_o^2
                row["additive reading"] = f(m, m.sigma2 + so2)
                row["z (additive)"] = (mean - row["additive reading"]) / se
            rows.append(row)
    return rows


# ------------------------------------------------------------------------------ Theorem 2
def thm2_model(p1: float = 0.25, rho: float = 0.5, sigma2: float = 0.5) -> BlockModel:
    """Theorem 2 chapter: k = 4 Toeplitz(``rho``) blocks of dimension 6, ``p = p_first(4, p1)``."""
    return BlockModel.toeplitz(4, 6, rho, p=p_first(4, p1), sigma2=sigma2, beta_scale=1.0, seed=0)


THM2_SIGMA2 = np.geomspace(0.01, 10.0, 61)
THM2_MC_SIGMA2 = np.array([0.03, 0.1, 0.3, 1.0, 3.0])


@cache
def _thm2_mc(p1: float, rho: float) -> np.ndarray:
    out = np.empty((THM2_MC_SIGMA2.size, 4))
    for g, s2 in enumerate(THM2_MC_SIGMA2):
        m = thm2_model(p1, rho, float(s2))
        out[g, :2] = simulate.risk(m, "dense", N_MC, 10 + g)
        out[g, 2:] = simulate.risk(m, "sparse", N_MC, 20 + g)
    return out


def thm2_traces(p1: float, rho: float) -> list:
    """Theorem 2: dense and sparse Bayes risks vs ``sigma^2`` (lines) and Monte Carlo (±3 s.e.)."""
    m = thm2_model(p1, rho)
    dense, sparse = theory.risk_grid(m, sigma2=THM2_SIGMA2)
    mc = _thm2_mc(round(float(p1), 6), round(float(rho), 6))
    return [_line(THM2_SIGMA2, dense, "dense (Thm 2)", DENSE), _line(THM2_SIGMA2, sparse, "sparse (Thm 2)", SPARSE),
            _points(THM2_MC_SIGMA2, mc[:, 0], mc[:, 1], "dense, Monte Carlo ±3 s.e.", DENSE),
            _points(THM2_MC_SIGMA2, mc[:, 2], mc[:, 3], "sparse, Monte Carlo ±3 s.e.", SPARSE, "diamond")]


THM2_N_TRAIN = np.array([40, 80, 160, 320, 640, 1280])


@cache
def _thm2_fit(sigma2: float) -> np.ndarray:
    m = thm2_model(0.25, 0.5, sigma2)
    out = np.empty((THM2_N_TRAIN.size, 4))
    for g, n in enumerate(THM2_N_TRAIN):
        out[g, :2] = simulate.fitted_risk(m, "dense", int(n), 5, 100 + g)
        out[g, 2:] = simulate.fitted_risk(m, "sparse", int(n), 5, 200 + g)
    return out


def thm2_fit_traces(sigma2: float) -> list:
    """Least-squares fits on n noisy samples (points, ±3 s.e. over 5 training sets) vs the Bayes risks."""
    m = thm2_model(0.25, 0.5, sigma2)
    fit = _thm2_fit(round(float(sigma2), 6))
    x = THM2_N_TRAIN[[0, -1]]
    return [_line(x, [theory.risk_dense(m)] * 2, "dense Bayes risk (n → ∞)", DENSE, "dash"),
            _line(x, [theory.risk_sparse(m)] * 2, "sparse Bayes risk (n → ∞)", SPARSE, "dash"),
            _points(THM2_N_TRAIN, fit[:, 0], fit[:, 1], "dense least squares", DENSE),
            _points(THM2_N_TRAIN, fit[:, 2], fit[:, 3], "sparse least squares", SPARSE, "diamond")]


# ------------------------------------------------------------------------------ Theorem 3
def thm3_model(sigma2: float = 0.24, p1: float = 0.8, kappa: float = 1.2, k: int = 16, block_dim: int = 4) -> BlockModel:
    """Theorem 3 chapter: k = 16 blocks of dimension 4 with eigenvalues geometric in ``[1, kappa]``.

    ``lambda_min(Sigma_i) = 1`` for every block, so the paper's condition ``lambda_min > 4 sigma^2``
    holds for every ``sigma2 < 0.25``.  ``p = p_first(k, p1)``.
    """
    kappa = v.check_scalar(kappa, "kappa", lower=1.0)
    spectra = [np.geomspace(1.0, kappa, block_dim)] * k
    return BlockModel.from_spectra(spectra, p=p_first(k, p1), sigma2=sigma2, beta_scale=1.0, seed=0)


THM3_RATIO = np.geomspace(0.1, 100.0, 61)  # sigma_o^2 / sigma^2
THM3_MC_RATIO = np.array([0.3, 1.0, 3.0, 10.0, 30.0, 100.0])


@cache
def _thm3_mc(sigma2: float, p1: float) -> np.ndarray:
    m = thm3_model(sigma2, p1)
    out = np.empty((THM3_MC_RATIO.size, 4))
    for g, r in enumerate(THM3_MC_RATIO):
        out[g, :2] = simulate.risk(m, "dense", N_MC, 30 + g, sigma_o2=float(r * sigma2))
        out[g, 2:] = simulate.risk(m, "sparse", N_MC, 40 + g, sigma_o2=float(r * sigma2))
    return out


def _vline(x, y0, y1, name, color):
    xs = [x, x] if np.isfinite(x) else [None, None]
    return go.Scatter(x=xs, y=[y0, y1], mode="lines", name=name, line=dict(color=color, dash="dot", width=2))


def thm3_traces(sigma2: float, p1: float) -> list:
    """Theorem 3: risks vs ``sigma_o^2 / sigma^2`` (lines), Monte Carlo (±3 s.e.) and the crossover."""
    m = thm3_model(sigma2, p1)
    dense, sparse = theory.risk_grid(m, sigma_o2=THM3_RATIO * sigma2)
    mc = _thm3_mc(round(float(sigma2), 6), round(float(p1), 6))
    t = theory.crossover_sigma_o2(m) / sigma2
    return [_line(THM3_RATIO, dense, "dense (Thm 3)", DENSE), _line(THM3_RATIO, sparse, "sparse (Thm 3)", SPARSE),
            _points(THM3_MC_RATIO, mc[:, 0], mc[:, 1], "dense, Monte Carlo ±3 s.e.", DENSE),
            _points(THM3_MC_RATIO, mc[:, 2], mc[:, 3], "sparse, Monte Carlo ±3 s.e.", SPARSE, "diamond"),
            _vline(t, float(min(dense.min(), sparse.min())), float(max(dense.max(), sparse.max())),
                   "dense wins to the right", "black")]


@cache
def _thm3_gap_mc(sigma2: float, kappa: float) -> np.ndarray:
    m = thm3_model(sigma2, 0.8, kappa)
    out = np.empty((THM3_MC_RATIO.size, 2))
    for g, r in enumerate(THM3_MC_RATIO):
        out[g] = simulate.risk_gap(m, 2 * N_MC, 50 + g, sigma_o2=float(r * sigma2))
        out[g] /= theory.risk_dense(m, float(r * sigma2))
    return out


def thm3_gap_traces(sigma2: float, kappa: float) -> list:
    """Relative gap ``(R_sparse - R_dense) / R_dense`` vs ``sigma_o^2/sigma^2`` (p_1 = 0.8): > 0 means dense wins."""
    m = thm3_model(sigma2, 0.8, kappa)
    dense, sparse = theory.risk_grid(m, sigma_o2=THM3_RATIO * sigma2)
    mc = _thm3_gap_mc(round(float(sigma2), 6), round(float(kappa), 6))
    return [_line(THM3_RATIO, np.zeros_like(THM3_RATIO), "no difference", PRINTED, "dash"),
            _line(THM3_RATIO, (sparse - dense) / dense, "(R_sparse − R_dense) / R_dense", "black"),
            _points(THM3_MC_RATIO, mc[:, 0], mc[:, 1], "paired Monte Carlo ±3 s.e.", "black")]


THM3_MAP_P = np.geomspace(0.005, 1.0, 50)
THM3_MAP_LAM = np.geomspace(0.5, 50.0, 50)  # lambda / sigma^2


def thm3_direction_map_traces(ratio: float) -> list:
    """Per eigen-direction: where dense beats sparse at ``sigma_o^2 = ratio * sigma^2`` (heatmap, sigma^2 = 1)."""
    tau = theory.direction_threshold(THM3_MAP_LAM[:, None], THM3_MAP_P[None, :], 1.0)
    z = (ratio > tau).astype(float)
    return [go.Heatmap(x=_r(THM3_MAP_P, 4), y=_r(THM3_MAP_LAM, 4), z=z, showscale=False, zmin=0, zmax=1,
                       colorscale=[[0, "#dbe9f6"], [1, "#f4b6b6"]], name="dense wins (red)",
                       hovertemplate="p=%{x}<br>λ/σ²=%{y}<br>dense wins: %{z}<extra></extra>"),
            _line(THM3_MAP_P, 1 / np.sqrt(THM3_MAP_P), "λ = σ²/√p (exact: above it sparse always wins)", "black"),
            _line(THM3_MAP_P, np.full_like(THM3_MAP_P, 4.0), "λ = 4σ² (paper's condition)", DENSE, "dash")]


def thm3_counterexample(sigma2: float = 0.24, p1: float = 0.8, kappa: float = 1.2, ratio: float = 100.0,
                        n_samples: int = 200_000, seed: int = 7) -> dict:
    """Numbers of the Theorem 3 counterexample: closed forms, Monte Carlo and the paired gap."""
    m = thm3_model(sigma2, p1, kappa)
    so2 = ratio * sigma2
    return {
        "sigma2": sigma2, "lambda_min": float(min(e[0][0] for e in m.eigh)), "4 sigma2": 4 * sigma2, "p_1": p1,
        "p_other": float(m.p[1]), "sigma_o2": so2, "paper condition holds": theory.paper_condition(m, so2),
        "R_dense (closed form)": theory.risk_dense(m, so2), "R_sparse (closed form)": theory.risk_sparse(m, so2),
        "R_dense (Monte Carlo)": simulate.risk(m, "dense", n_samples, seed, sigma_o2=so2),
        "R_sparse (Monte Carlo)": simulate.risk(m, "sparse", n_samples, seed + 1, sigma_o2=so2),
        "R_sparse - R_dense (paired MC)": simulate.risk_gap(m, n_samples, seed + 2, sigma_o2=so2),
        "crossover sigma_o2": theory.crossover_sigma_o2(m),
    }


# ------------------------------------------------------------------------------ Theorem 4
def thm4_model(sigma2: float = 0.5, p1: float = 0.25, rho: float = 0.5, k: int = 4) -> BlockModel:
    """Theorem 4 chapter: k = 4 Toeplitz(``rho``) blocks of dimension 4; expert i = 1 (index 0) has
    probability ``p1``, the rest share uniformly; the input of expert 1 is mis-routed to expert 2."""
    return BlockModel.toeplitz(k, 4, rho, p=p_first(k, p1), sigma2=sigma2, beta_scale=1.0, seed=3)


THM4_ETA = np.linspace(1.0, 5.0, 41)
THM4_MC_ETA = np.array([1.0, 2.0, 3.0, 4.0, 5.0])


@cache
def _thm4_mc(sigma2: float, p1: float) -> np.ndarray:
    m = thm4_model(sigma2, p1)
    out = np.empty((2, THM4_MC_ETA.size, 4))
    for a, reading in enumerate("AB"):
        for g, eta in enumerate(THM4_MC_ETA):
            (dm, ds), (sm, ss) = simulate.misrouting_risk(m, 0, 1, float(eta), reading, N_MC, 60 + 10 * a + g)
            out[a, g] = dm, ds, sm, ss
    return out


def thm4_traces(sigma2: float, p1: float) -> list:
    """Theorem 4: printed formulas (grey) vs derived risks under readings A and B, with Monte Carlo."""
    m = thm4_model(sigma2, p1)
    pd, ps = theory.paper_misrouting_risk(m, 0, 1, THM4_ETA)
    ad, as_ = theory.misrouting_risk(m, 0, 1, THM4_ETA, "A")
    bd, bs = theory.misrouting_risk(m, 0, 1, THM4_ETA, "B")
    mc = _thm4_mc(round(float(sigma2), 6), round(float(p1), 6))
    return [_line(THM4_ETA, pd, "dense, as printed", PRINTED, "dash"),
            _line(THM4_ETA, ps, "sparse, as printed", PRINTED, "dot"),
            _line(THM4_ETA, ad, "dense, reading A", DENSE), _line(THM4_ETA, as_, "sparse, reading A", SPARSE),
            _line(THM4_ETA, bd, "dense, reading B", DENSE, "dashdot"),
            _line(THM4_ETA, bs, "sparse, reading B", SPARSE, "dashdot"),
            _points(THM4_MC_ETA, mc[0, :, 0], mc[0, :, 1], "dense A, Monte Carlo", DENSE),
            _points(THM4_MC_ETA, mc[0, :, 2], mc[0, :, 3], "sparse A, Monte Carlo", SPARSE, "diamond"),
            _points(THM4_MC_ETA, mc[1, :, 0], mc[1, :, 1], "dense B, Monte Carlo", DENSE, "circle-open"),
            _points(THM4_MC_ETA, mc[1, :, 2], mc[1, :, 3], "sparse B, Monte Carlo", SPARSE, "diamond-open")]


THM4_SIGMA2 = np.geomspace(0.02, 5.0, 31)
THM4_MC_SIGMA2 = np.array([0.05, 0.2, 0.8, 3.2])


@cache
def _thm4_sigma_mc(eta: float, rho: float) -> np.ndarray:
    out = np.empty((THM4_MC_SIGMA2.size, 4))
    for g, s2 in enumerate(THM4_MC_SIGMA2):
        m = thm4_model(float(s2), 0.25, rho)
        (dm, ds), (sm, ss) = simulate.misrouting_risk(m, 0, 1, eta, "A", N_MC, 80 + g)
        out[g] = dm, ds, sm, ss
    return out


def thm4_sigma_traces(eta: float, rho: float) -> list:
    """Theorem 4 vs ``sigma^2`` (uniform p): printed formulas and reading A, with Monte Carlo for A."""
    vals = np.array([[*theory.paper_misrouting_risk(m, 0, 1, eta), *theory.misrouting_risk(m, 0, 1, eta, "A")]
                     for m in (thm4_model(float(s2), 0.25, rho) for s2 in THM4_SIGMA2)])
    mc = _thm4_sigma_mc(round(float(eta), 6), round(float(rho), 6))
    return [_line(THM4_SIGMA2, vals[:, 0], "dense, as printed", PRINTED, "dash"),
            _line(THM4_SIGMA2, vals[:, 1], "sparse, as printed", PRINTED, "dot"),
            _line(THM4_SIGMA2, vals[:, 2], "dense, reading A", DENSE),
            _line(THM4_SIGMA2, vals[:, 3], "sparse, reading A", SPARSE),
            _points(THM4_MC_SIGMA2, mc[:, 0], mc[:, 1], "dense A, Monte Carlo", DENSE),
            _points(THM4_MC_SIGMA2, mc[:, 2], mc[:, 3], "sparse A, Monte Carlo", SPARSE, "diamond")]


def thm4_table(model: BlockModel, i: int, j: int, eta: float, n_samples: int = 200_000, seed: int = 0) -> list[dict]:
    """One row per reading (and one for the printed formulas): closed form, Monte Carlo mean ± s.e., z-score."""
    pd, ps = theory.paper_misrouting_risk(model, i, j, eta)
    rows = []
    for reading, rd in theory.READINGS.items():
        dense, sparse = theory.misrouting_risk(model, i, j, eta, reading)
        (dm, dse), (sm, sse) = simulate.misrouting_risk(model, i, j, eta, reading, n_samples, seed)
        rows.append({"reading": reading, "meaning": rd.text,
                     "dense: derived": dense, "dense: MC": dm, "dense: MC s.e.": dse,
                     "dense: printed, z": (pd - dm) / dse,
                     "sparse: derived": sparse, "sparse: MC": sm, "sparse: MC s.e.": sse,
                     "sparse: printed, z": (ps - sm) / sse})
    rows.append({"reading": "printed", "meaning": "Theorem 4 as printed", "dense: derived": pd,
                 "sparse: derived": ps})
    return rows
