"""Theorem 5: convergence speed of gradient descent, dense vs sparse (Section 4.4, App. A.5).

Design (Assumption 4.4): the clean design ``X = blockdiag(X_1, ..., X_k)`` has fixed blocks
``X_i`` of size ``m x d_i`` with ``m = n/k`` rows and ``d_i = d/k = c m`` columns (aspect ratio
``c = d/n``, the same for every block) and prescribed singular values ``lambda_ij``.  The noisy
design is ``Xbar = X + E`` with i.i.d. entries ``E_ab ~ N(0, sigma^2 / n)`` on *all* ``n x d``
entries, so that singular values stay O(1).  The dense estimator runs GD on ``Xbar``; sparse
expert ``i`` runs GD on its diagonal block ``Xbar_i = X_i + E_i`` (``m x d_i``).

Gradient descent ``beta_{t+1} = beta_t - eta Xbar^T (Xbar beta_t - y)`` with ``eta = 1/s_max^2``
contracts the residual by ``1 - s^2/s_max^2`` along each left singular vector; when ``c > 1`` the
Gram matrix ``Xbar^T Xbar`` (``d x d``) has rank ``n < d`` and the rate is governed by the smallest
*non-zero* singular value ``s_min = s_n`` (the ``d - n`` zero ones never move: GD stays in the
row space), i.e. ``rho = 1 - s_n^2 / s_1^2``.  The paper's App. A.5 writes ``1 - lambda_d^2/lambda_1^2``,
which is 1 (no convergence) for ``c > 1`` read literally.

Spiked-model map (Loubaton & Vallet 2011, Benaych-Georges & Nadakuditi 2012) for an isolated
signal singular value ``lambda`` of an ``m x cm`` matrix with noise variance ``s^2/m`` per entry:
``sbar^2 -> (s^2 + lambda^2)(c s^2 + lambda^2) / lambda^2`` if ``lambda^2 > sqrt(c) s^2``, else
the bulk edge ``s^2 (1 + sqrt(c))^2``.  For a sparse block (``m = n/k`` rows) the entries have
variance ``sigma^2/n = (sigma^2/k)/m``: its effective noise level is ``sigma^2/k``, not the
``sigma^2`` of the paper's formula.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _validate as v

__all__ = [
    "Design",
    "check_shape",
    "block_spectra",
    "noisy_block_design",
    "nonzero_singular_values",
    "spike_map",
    "paper_rate",
    "predicted_rates",
    "measured_rates",
    "gradient_descent",
    "contraction",
    "rate_table",
    "rates_vs_n_traces",
    "rates_vs_sigma2_traces",
    "singular_value_traces",
    "gd_curves",
    "gd_traces",
    "spiked_rates",
]


@dataclass(frozen=True)
class Design:
    """A noisy block-diagonal design.

    Attributes
    ----------
    lambdas : ndarray, shape (k, r)
        Singular values of each clean block ``X_i`` (descending), ``r = min(m, d_i)``.
    xbar : ndarray, shape (n, d)
        Noisy dense design ``X + E``.
    x : ndarray, shape (n, d)
        Clean block-diagonal design.
    k, m, di : int
        Number of blocks, rows per block ``n/k``, columns per block ``d/k``.
    sigma2, c : float
        Noise level (entries have variance ``sigma2 / n``) and aspect ratio ``d/n``.
    """

    lambdas: np.ndarray
    xbar: np.ndarray
    x: np.ndarray
    k: int
    m: int
    di: int
    sigma2: float
    c: float

    @property
    def n(self) -> int:
        """Rows of the dense design."""
        return self.k * self.m

    @property
    def d(self) -> int:
        """Columns of the dense design."""
        return self.k * self.di

    def block(self, i: int) -> np.ndarray:
        """Noisy diagonal block ``Xbar_i``, shape (m, d_i)."""
        i = v.check_int(i, "i", lower=0, upper=self.k - 1)
        return self.xbar[i * self.m:(i + 1) * self.m, i * self.di:(i + 1) * self.di]


def check_shape(n, c, k) -> tuple[int, float, int, int, int]:
    """Validate ``n``, ``c``, ``k``: returns ``(n, c, k, m, d_i)`` with ``m = n/k``, ``d_i = c n / k``.

    Raises
    ------
    ValueError
        If ``n < 1``, ``c <= 0``, ``k < 1``, ``k`` does not divide ``n``, ``d = c n`` is not an
        integer, or ``k`` does not divide ``d``.
    """
    n = v.check_int(n, "n", lower=1)
    c = v.check_scalar(c, "c", lower=0.0, lower_inclusive=False)
    k = v.check_int(k, "k", lower=1)
    if n % k:
        raise ValueError(f"k must divide n (blocks of n/k rows), got n={n}, k={k}")
    d_float = c * n
    d = int(round(d_float))
    if abs(d - d_float) > 1e-9 * max(1.0, d_float) or d < 1:
        raise ValueError(f"c must make d = c*n a positive integer, got c={c:g}, n={n} (c*n={d_float:g})")
    if d % k:
        raise ValueError(f"k must divide d = c*n (blocks of d/k columns), got d={d}, k={k}")
    return n, c, k, n // k, d // k


def block_spectra(k: int, r: int, *, lo: float = 1.0, hi: float = 2.0, spread: float = 1.0) -> np.ndarray:
    """Singular values ``lambda_ij = spread^(i/(k-1)) * linspace(hi, lo, r)_j``, shape (k, r).

    ``spread = 1`` gives every block the same spectrum; ``spread > 1`` scales block ``i`` up
    geometrically, so the dense design mixes blocks of different strength.
    """
    k = v.check_int(k, "k", lower=1)
    r = v.check_int(r, "r", lower=1)
    lo = v.check_scalar(lo, "lo", lower=0.0, lower_inclusive=False)
    hi = v.check_scalar(hi, "hi", lower=lo)
    spread = v.check_scalar(spread, "spread", lower=0.0, lower_inclusive=False)
    scale = spread ** (np.arange(k) / max(k - 1, 1))
    return scale[:, None] * np.linspace(hi, lo, r)[None, :]


def _stiefel(rng, n, r):
    """A Haar-distributed ``n x r`` matrix with orthonormal columns (QR of a Gaussian, sign-fixed)."""
    q, rr = np.linalg.qr(rng.standard_normal((n, r)))
    return q * np.sign(np.diag(rr))


def _sig(a, digits: int = 4) -> list:
    """Round to ``digits`` significant figures (keeps tiny values on log axes)."""
    a = np.asarray(a, dtype=float)
    return [float(f"{x:.{digits}g}") for x in a.ravel()]


def noisy_block_design(n: int, c: float, sigma2: float, k: int, lambdas=None, *, seed: int = 0) -> Design:
    """Draw the noisy block-diagonal design of Assumption 4.4.

    Parameters
    ----------
    n : int
        Rows (samples); ``k`` must divide ``n``.
    c : float
        Aspect ratio ``d/n > 0``; ``d = c n`` must be an integer divisible by ``k``.
    sigma2 : float
        Noise level; entries of ``E`` are ``N(0, sigma2/n)``.
    k : int
        Number of blocks.
    lambdas : array_like, shape (k, r), optional
        Singular values of the clean blocks, ``r = min(n/k, d/k)``; default
        ``block_spectra(k, r)`` (linearly spaced in [1, 2]).
    seed : int
    """
    n, c, k, m, di = check_shape(n, c, k)
    sigma2 = v.check_scalar(sigma2, "sigma2", lower=0.0)
    r = min(m, di)
    lam = block_spectra(k, r) if lambdas is None else v.check_array(lambdas, "lambdas", shape=(k, r), lower=0.0)
    lam = -np.sort(-lam, axis=1)
    rng = np.random.default_rng(v.check_seed(seed))
    x = np.zeros((n, k * di))
    for i in range(k):
        p = _stiefel(rng, m, r)
        q = _stiefel(rng, di, r)
        x[i * m:(i + 1) * m, i * di:(i + 1) * di] = (p * lam[i]) @ q.T
    xbar = x + rng.normal(0.0, np.sqrt(sigma2 / n), size=x.shape)
    return Design(lam, xbar, x, k, m, di, sigma2, c)


def nonzero_singular_values(a) -> np.ndarray:
    """The ``min(rows, cols)`` largest singular values of ``a`` (descending), via the smaller Gram matrix."""
    a = v.check_array(a, "a", ndim=2)
    g = a @ a.T if a.shape[0] <= a.shape[1] else a.T @ a
    ev = np.linalg.eigvalsh(g)[::-1]
    return np.sqrt(np.clip(ev, 0.0, None))


def spike_map(lam2, sigma2: float, c: float) -> np.ndarray:
    """Spiked-model limit of a squared singular value (App. A.5 / Loubaton & Vallet).

    ``(s2 + lam2)(c s2 + lam2)/lam2`` above the threshold ``lam2 > sqrt(c) s2``, else the bulk
    edge ``s2 (1 + sqrt(c))^2``.  ``lam2`` may be an array (squared clean singular values).
    """
    lam2 = v.check_array(lam2, "lam2", lower=0.0)
    s2 = v.check_scalar(sigma2, "sigma2", lower=0.0)
    c = v.check_scalar(c, "c", lower=0.0, lower_inclusive=False)
    with np.errstate(divide="ignore", invalid="ignore"):
        spike = (s2 + lam2) * (c * s2 + lam2) / lam2
    return np.where(lam2 > np.sqrt(c) * s2, spike, s2 * (1.0 + np.sqrt(c)) ** 2)


def paper_rate(lam_max: float, lam_min: float, sigma2: float, c: float) -> float:
    """Theorem 5 as printed: ``1 - l1^2 (s2 + lm^2)(c s2 + lm^2) / (lm^2 (s2 + l1^2)(c s2 + l1^2))``."""
    l1 = v.check_scalar(lam_max, "lam_max", lower=0.0, lower_inclusive=False)
    lm = v.check_scalar(lam_min, "lam_min", lower=0.0, lower_inclusive=False)
    s2 = v.check_scalar(sigma2, "sigma2", lower=0.0)
    c = v.check_scalar(c, "c", lower=0.0, lower_inclusive=False)
    return float(1.0 - l1**2 * (s2 + lm**2) * (c * s2 + lm**2) / (lm**2 * (s2 + l1**2) * (c * s2 + l1**2)))


def predicted_rates(lambdas, sigma2: float, c: float, k: int | None = None) -> dict:
    """Predicted rates from the clean singular values.

    Returns
    -------
    dict
        ``paper_sparse`` (shape (k,)) and ``paper_dense``: Theorem 5 as printed (noise ``sigma2``
        for every block); ``spike_sparse`` (shape (k,)): the spike map with each block's actual
        noise level ``sigma2/k``; ``spike_dense``: the spike map of the dense design (noise
        ``sigma2``); ``smax2_*``/``smin2_*``: the predicted squared extreme singular values.
    """
    lam = v.check_array(lambdas, "lambdas", ndim=2, lower=0.0, lower_inclusive=False)
    kk = lam.shape[0] if k is None else v.check_int(k, "k", lower=1)
    lmax, lmin = lam.max(axis=1), lam.min(axis=1)
    paper_sparse = np.array([paper_rate(a, b, sigma2, c) for a, b in zip(lmax, lmin)])
    paper_dense = paper_rate(lmax.max(), lmin.min(), sigma2, c)
    s2b = sigma2 / kk
    smax2_s = spike_map(lmax**2, s2b, c)
    smin2_s = spike_map(lmin**2, s2b, c)
    smax2_d = float(spike_map(np.array(lmax.max() ** 2), sigma2, c))
    smin2_d = float(spike_map(np.array(lmin.min() ** 2), sigma2, c))
    return {
        "paper_sparse": paper_sparse, "paper_dense": float(paper_dense),
        "spike_sparse": 1.0 - smin2_s / smax2_s, "spike_dense": 1.0 - smin2_d / smax2_d,
        "smax2_sparse": smax2_s, "smin2_sparse": smin2_s, "smax2_dense": smax2_d, "smin2_dense": smin2_d,
    }


def measured_rates(design: Design) -> dict:
    """``1 - s_min^2/s_max^2`` of the actual noisy matrices (``s_min``: smallest non-zero).

    Returns ``dense`` (float), ``sparse`` (shape (k,)), and the extreme squared singular values
    ``smax2_dense``, ``smin2_dense``, ``smax2_sparse``, ``smin2_sparse`` (shape (k,)).
    """
    sd = nonzero_singular_values(design.xbar)
    blocks = [nonzero_singular_values(design.block(i)) for i in range(design.k)]
    smax2_s = np.array([b[0] ** 2 for b in blocks])
    smin2_s = np.array([b[-1] ** 2 for b in blocks])
    return {"dense": float(1 - sd[-1] ** 2 / sd[0] ** 2), "sparse": 1 - smin2_s / smax2_s,
            "smax2_dense": float(sd[0] ** 2), "smin2_dense": float(sd[-1] ** 2),
            "smax2_sparse": smax2_s, "smin2_sparse": smin2_s}


def gradient_descent(a, y, steps: int, *, step: float | None = None) -> dict:
    """Run GD on ``1/2 ||a beta - y||^2`` from ``beta = 0``.

    Parameters
    ----------
    a : array_like, shape (n, d)
    y : array_like, shape (n,)
    steps : int
        Iterations ``T``.
    step : float, optional
        Step size; default ``1 / s_max(a)^2`` (App. A.5).

    Returns
    -------
    dict
        ``residual`` (shape (T+1,)): ``||a beta_t - y - (projection of -y off the range)||``, i.e.
        the reducible part of the residual; ``error`` (shape (T+1,)): ``||beta_t - a^+ y||``;
        ``beta`` (shape (d,)): the last iterate.
    """
    a = v.check_array(a, "a", ndim=2)
    y = v.check_array(y, "y", shape=(a.shape[0],))
    steps = v.check_int(steps, "steps", lower=1)
    if step is None:
        step = 1.0 / nonzero_singular_values(a)[0] ** 2
    step = v.check_scalar(step, "step", lower=0.0, lower_inclusive=False)
    beta_star, *_ = np.linalg.lstsq(a, y, rcond=None)
    fit = a @ beta_star
    beta = np.zeros(a.shape[1])
    res = np.empty(steps + 1)
    err = np.empty(steps + 1)
    r = -fit.copy()  # a beta - fit, with beta = 0
    for t in range(steps + 1):
        res[t] = np.linalg.norm(r)
        err[t] = np.linalg.norm(beta - beta_star)
        if t == steps:
            break
        g = a.T @ r
        beta -= step * g
        r -= step * (a @ g)
    return {"residual": res, "error": err, "beta": beta}


def contraction(residual, *, window: int = 5, floor: float = 1e-11) -> float:
    """Measured per-iteration contraction of a GD residual sequence.

    The successive ratios ``r_{t+1}/r_t`` of a GD residual increase monotonically towards the
    slowest factor ``1 - s_min^2/s_max^2``; the estimate is their geometric mean over the last
    ``window`` iterations whose residual is still above ``floor * r_0`` (the round-off floor).
    """
    r = v.check_array(residual, "residual", ndim=1, lower=0.0)
    window = v.check_int(window, "window", lower=1)
    floor = v.check_scalar(floor, "floor", lower=0.0)
    ok = np.flatnonzero(r > floor * r[0])
    if ok.size < window + 1 or r[0] == 0:
        raise ValueError(f"residual must have at least window+1={window + 1} iterations above the round-off floor")
    last = ok[-1]
    return float((r[last] / r[last - window]) ** (1.0 / window))


# ------------------------------------------------------------------------------ chapter helpers
def rate_table(n: int, c: float, sigma2: float, k: int = 4, *, lo: float = 1.0, hi: float = 2.0,
               spread: float = 1.0, seed: int = 0) -> dict:
    """Measured and predicted rates and extreme singular values for one design (flat dict of floats).

    ``c`` is snapped to the nearest value with an integer block width ``d_i = round(c n/k)`` (so a
    live slider may pass any ``c > 0``); the returned ``"c"`` is the value used.
    """
    n = v.check_int(n, "n", lower=1)
    k = v.check_int(k, "k", lower=1)
    c = v.check_scalar(c, "c", lower=0.0, lower_inclusive=False)
    if n % k == 0:
        c = max(1, round(c * n / k)) * k / n
    n, c, k, m, di = check_shape(n, c, k)
    lam = block_spectra(k, min(m, di), lo=lo, hi=hi, spread=spread)
    des = noisy_block_design(n, c, sigma2, k, lam, seed=seed)
    me, pr = measured_rates(des), predicted_rates(lam, sigma2, c, k)
    return {
        "n": n, "c": c, "sigma2": float(sigma2), "spread": float(spread),
        "measured dense": me["dense"], "measured sparse max": float(me["sparse"].max()),
        "measured sparse min": float(me["sparse"].min()),
        "paper dense": pr["paper_dense"], "paper sparse max": float(pr["paper_sparse"].max()),
        "spike dense": pr["spike_dense"], "spike sparse max (σ²/k)": float(pr["spike_sparse"].max()),
        "s_max² dense": me["smax2_dense"], "s_max² dense pred": pr["smax2_dense"],
        "s_min² dense": me["smin2_dense"], "s_min² dense pred": pr["smin2_dense"],
        "s_max² block0": float(me["smax2_sparse"][0]), "s_max² block0 pred": float(pr["smax2_sparse"][0]),
        "s_min² block0": float(me["smin2_sparse"][0]), "s_min² block0 pred": float(pr["smin2_sparse"][0]),
    }


def rates_vs_n_traces(sigma2: float = 0.5, c: float = 2.0, *, ns=(64, 128, 256, 512), k: int = 4,
                      spread: float = 1.0, seed: int = 0) -> list:
    """Plotly traces: measured vs predicted GD rates against ``n`` (for the static sliders)."""
    import plotly.graph_objects as go

    rows = [rate_table(int(n), c, sigma2, k, spread=spread, seed=seed) for n in ns]
    x = np.array(ns, dtype=float)
    col = lambda key: np.round([r[key] for r in rows], 4)  # noqa: E731
    return [
        go.Scatter(x=x, y=col("measured dense"), name="measured dense", mode="lines+markers", line=dict(color="#1f77b4")),
        go.Scatter(x=x, y=col("measured sparse max"), name="measured sparse (slowest block)", mode="lines+markers",
                   line=dict(color="#d62728")),
        go.Scatter(x=x, y=col("paper dense"), name="Thm 5 printed, dense", mode="lines",
                   line=dict(color="#1f77b4", dash="dash")),
        go.Scatter(x=x, y=col("paper sparse max"), name="Thm 5 printed, sparse", mode="lines",
                   line=dict(color="#d62728", dash="dash")),
        go.Scatter(x=x, y=col("spike sparse max (σ²/k)"), name="spike map, sparse with σ²/k", mode="lines",
                   line=dict(color="#d62728", dash="dot")),
    ]


def rates_vs_sigma2_traces(spread: float = 1.0, *, sigma2s=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0), n: int = 256,
                           c: float = 2.0, k: int = 4, seed: int = 0) -> list:
    """Plotly traces: rates against ``sigma2`` at fixed ``n``, ``c`` for block-spectrum spread ``spread``."""
    import plotly.graph_objects as go

    rows = [rate_table(n, c, s2, k, spread=spread, seed=seed) for s2 in sigma2s]
    x = np.array(sigma2s, dtype=float)
    col = lambda key: np.round([r[key] for r in rows], 4)  # noqa: E731
    return [
        go.Scatter(x=x, y=col("measured dense"), name="measured dense", mode="lines+markers", line=dict(color="#1f77b4")),
        go.Scatter(x=x, y=col("measured sparse max"), name="measured sparse, slowest block", mode="lines+markers",
                   line=dict(color="#d62728")),
        go.Scatter(x=x, y=col("measured sparse min"), name="measured sparse, fastest block", mode="lines+markers",
                   line=dict(color="#ff9896")),
        go.Scatter(x=x, y=col("paper dense"), name="Thm 5 printed, dense", mode="lines",
                   line=dict(color="#1f77b4", dash="dash")),
        go.Scatter(x=x, y=col("paper sparse max"), name="Thm 5 printed, sparse (slowest)", mode="lines",
                   line=dict(color="#d62728", dash="dash")),
    ]


def singular_value_traces(sigma2: float = 0.5, c: float = 2.0, *, n: int = 512, k: int = 4, spread: float = 3.0,
                          seed: int = 0) -> list:
    """Plotly traces: measured squared singular values of each noisy block against the clean ones,
    with the spike map at the blocks' true noise level ``sigma2/k`` and at the paper's ``sigma2``."""
    import plotly.graph_objects as go

    n, c, k, m, di = check_shape(n, c, k)
    lam = block_spectra(k, min(m, di), spread=spread)
    des = noisy_block_design(n, c, sigma2, k, lam, seed=seed)
    x2 = (lam**2).ravel()
    meas = np.concatenate([nonzero_singular_values(des.block(i)) ** 2 for i in range(k)])
    grid = np.linspace(x2.min(), x2.max(), 60)
    return [
        go.Scatter(x=np.round(x2, 4), y=np.round(meas, 4), name="measured s² of X̄_i (sorted, matched by rank)",
                   mode="markers", marker=dict(size=4, color="#444")),
        go.Scatter(x=np.round(grid, 4), y=np.round(spike_map(grid, sigma2 / k, c), 4),
                   name="spike map, block noise σ²/k", mode="lines", line=dict(color="#2ca02c")),
        go.Scatter(x=np.round(grid, 4), y=np.round(spike_map(grid, sigma2, c), 4),
                   name="spike map with σ² (as in Thm 5)", mode="lines", line=dict(color="#d62728", dash="dash")),
        go.Scatter(x=np.round(grid, 4), y=np.round(grid, 4), name="no noise (s² = λ²)", mode="lines",
                   line=dict(color="gray", dash="dot")),
    ]


def gd_curves(n: int = 256, c: float = 2.0, sigma2: float = 0.5, k: int = 4, *, spread: float = 1.0,
              steps: int = 300, seed: int = 0) -> dict:
    """GD on the paper's targets ``y = X beta*`` (clean), dense vs each sparse block.

    Each estimator uses its own step ``1/s_max^2``.  Returns ``t`` (shape (steps+1,)),
    ``dense`` and ``sparse`` (relative distance ``||beta_t - beta_hat|| / ||beta_hat||`` to its own
    least-squares limit; sparse: the blocks' errors combined in quadrature), and ``rates``
    (:func:`measured_rates`).
    """
    n, c, k, m, di = check_shape(n, c, k)
    lam = block_spectra(k, min(m, di), spread=spread)
    des = noisy_block_design(n, c, sigma2, k, lam, seed=seed)
    beta = np.random.default_rng(seed + 1).standard_normal(des.d)
    y = des.x @ beta
    g = gradient_descent(des.xbar, y, steps)
    dense = g["error"] / g["error"][0]
    errs = []
    for i in range(k):
        gi = gradient_descent(des.block(i), y[i * m:(i + 1) * m], steps)
        errs.append(gi["error"])
    sp = np.sqrt(np.sum(np.square(errs), axis=0))
    return {"t": np.arange(steps + 1), "dense": dense, "sparse": sp / sp[0], "rates": measured_rates(des)}


def gd_traces(sigma2: float = 0.5, spread: float = 1.0, *, n: int = 256, c: float = 2.0, steps: int = 200,
              seed: int = 0) -> list:
    """Plotly traces of :func:`gd_curves` (log-scale errors every 5 iterations) with the rate lines."""
    import plotly.graph_objects as go

    g = gd_curves(n, c, sigma2, spread=spread, steps=steps, seed=seed)
    t = g["t"][::5]
    rd = g["rates"]["dense"]
    rs = float(g["rates"]["sparse"].max())
    fmt = lambda a: _sig(np.maximum(a, 1e-16))  # noqa: E731
    return [
        go.Scatter(x=t, y=fmt(g["dense"][::5]), name="dense GD", mode="lines", line=dict(color="#1f77b4")),
        go.Scatter(x=t, y=fmt(g["sparse"][::5]), name="sparse GD (all experts)", mode="lines", line=dict(color="#d62728")),
        go.Scatter(x=t, y=fmt(rd ** t.astype(float)), name="(1 − s_min²/s_max²)^t dense", mode="lines",
                   line=dict(color="#1f77b4", dash="dot")),
        go.Scatter(x=t, y=fmt(rs ** t.astype(float)), name="(1 − s_min²/s_max²)^t slowest block", mode="lines",
                   line=dict(color="#d62728", dash="dot")),
    ]


def spiked_rates(n: int = 512, c: float = 2.0, sigma2: float = 0.5, k: int = 4, *, spikes=(3.0, 2.5),
                 seed: int = 0) -> dict:
    """The low-rank (spiked) regime where Loubaton & Vallet applies, outside Assumption 4.4 iii.

    Each clean block has the few singular values ``spikes`` and (numerically) zero elsewhere.  The
    largest singular value follows the spike map; the smallest non-zero one is the lower bulk edge
    ``s^2 (sqrt(c) - 1)^2`` (``c > 1``), with ``s^2 = sigma2/k`` for a block and ``sigma2`` for the dense design.
    """
    n, c, k, m, di = check_shape(n, c, k)
    r = min(m, di)
    spikes = v.check_array(spikes, "spikes", ndim=1, lower=0.0, lower_inclusive=False)
    if spikes.size > r:
        raise ValueError(f"spikes must have at most r={r} entries")
    lam = np.full((k, r), 1e-9)
    lam[:, :spikes.size] = spikes
    me = measured_rates(noisy_block_design(n, c, sigma2, k, lam, seed=seed))
    lmax2 = float(spikes.max() ** 2)
    edge = (np.sqrt(c) - 1.0) ** 2 if c > 1 else (1.0 - np.sqrt(c)) ** 2
    pred = {}
    for name, s2 in (("dense", sigma2), ("sparse", sigma2 / k)):
        smax2 = float(spike_map(np.array(lmax2), s2, c))
        pred[name] = {"smax2": smax2, "smin2": s2 * edge, "rate": 1.0 - s2 * edge / smax2}
    return {"measured": me, "predicted": pred}
