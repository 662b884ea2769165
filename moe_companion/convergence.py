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
from functools import lru_cache

import numpy as np

from . import _validate as v
from .model import haar_orthogonal

__all__ = [
    "MAX_ELEMENTS",
    "Design",
    "check_shape",
    "block_spectra",
    "limit_spectra",
    "noisy_block_design",
    "nonzero_singular_values",
    "spike_map",
    "paper_rate",
    "predicted_rates",
    "measured_rates",
    "gradient_descent",
    "contraction",
    "rate_table",
    "rate_replicates",
    "gd_curves",
    "spiked_rates",
    "hypothesis_counterexample",
    "info_plus_noise_edges",
    "corrected_rates",
]

#: Largest design (entries of the dense ``n x d`` matrix) this module builds: 2**28 float64 = 2 GiB.
MAX_ELEMENTS = 2**28


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
        return self.xbar[i * self.m : (i + 1) * self.m, i * self.di : (i + 1) * self.di]


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
    v.check_size(n, d, "n", limit=MAX_ELEMENTS)  # the n x d design
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


def limit_spectra(k: int, *, lo: float = 1.0, hi: float = 2.0, spread: float = 1.0, atoms: int = 48) -> np.ndarray:
    """The ``n -> inf`` limit of :func:`block_spectra` (Assumption 4.4 ii) as ``atoms`` quantiles per block.

    Block ``i``'s singular values fill ``spread^(i/(k-1)) [lo, hi]`` uniformly; the atoms are the midpoint
    quantiles ``lo + (hi - lo)(j + 1/2)/atoms``, shape (k, atoms).
    """
    k = v.check_int(k, "k", lower=1)
    atoms = v.check_int(atoms, "atoms", lower=1)
    lo = v.check_scalar(lo, "lo", lower=0.0, lower_inclusive=False)
    hi = v.check_scalar(hi, "hi", lower=lo)
    spread = v.check_scalar(spread, "spread", lower=0.0, lower_inclusive=False)
    scale = spread ** (np.arange(k) / max(k - 1, 1))
    return scale[:, None] * (hi - (hi - lo) * (np.arange(atoms) + 0.5) / atoms)[None, :]


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
    seed : int, None or numpy Generator
    """
    n, c, k, m, di = check_shape(n, c, k)
    sigma2 = v.check_scalar(sigma2, "sigma2", lower=0.0)
    rng = v.check_random_state(seed)
    r = min(m, di)
    lam = block_spectra(k, r) if lambdas is None else v.check_array(lambdas, "lambdas", shape=(k, r), lower=0.0)
    lam = -np.sort(-lam, axis=1)
    x = np.zeros((n, k * di))
    for i in range(k):
        p = haar_orthogonal(m, r, seed=rng)
        q = haar_orthogonal(di, r, seed=rng)
        x[i * m : (i + 1) * m, i * di : (i + 1) * di] = (p * lam[i]) @ q.T
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
        "paper_sparse": paper_sparse,
        "paper_dense": float(paper_dense),
        "spike_sparse": 1.0 - smin2_s / smax2_s,
        "spike_dense": 1.0 - smin2_d / smax2_d,
        "smax2_sparse": smax2_s,
        "smin2_sparse": smin2_s,
        "smax2_dense": smax2_d,
        "smin2_dense": smin2_d,
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
    return {
        "dense": float(1 - sd[-1] ** 2 / sd[0] ** 2),
        "sparse": 1 - smin2_s / smax2_s,
        "smax2_dense": float(sd[0] ** 2),
        "smin2_dense": float(sd[-1] ** 2),
        "smax2_sparse": smax2_s,
        "smin2_sparse": smin2_s,
    }


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
    if a.size == 0 or not np.any(a):
        raise ValueError(
            f"a must have at least one non-zero entry (an all-zero design of shape {a.shape} has "
            "s_max = 0, so GD has nothing to fit and no step 1/s_max^2)"
        )
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
    if r.size < window + 1:
        raise ValueError(f"residual must have at least window+1={window + 1} entries, got {r.size}")
    if r[0] == 0:
        raise ValueError("residual must start above 0 (r_0 = 0: nothing to contract)")
    ok = np.flatnonzero(r > floor * r[0])
    if ok.size < window + 1:
        raise ValueError(f"residual must have at least window+1={window + 1} iterations above the round-off floor")
    last = ok[-1]
    return float((r[last] / r[last - window]) ** (1.0 / window))


# ------------------------------------------------------------------ experiments behind the chapter
MEASURED_KEYS = (
    "measured_dense",
    "measured_sparse_max",
    "measured_sparse_min",
    "smax2_dense",
    "smin2_dense",
    "smax2_block0",
    "smin2_block0",
)


def rate_table(
    n: int, c: float, sigma2: float, k: int = 4, *, lo: float = 1.0, hi: float = 2.0, spread: float = 1.0, seed=0
) -> dict:
    """Measured and predicted rates and extreme singular values for one design (flat dict of floats).

    ``c`` is snapped to the nearest value with an integer block width ``d_i = round(c n/k)`` (so a
    live slider may pass any ``c > 0``); the returned ``"c"`` is the value used.  Keys: ``measured_dense``,
    ``measured_sparse_max`` / ``_min`` (slowest / fastest block), ``paper_dense``, ``paper_sparse_max``
    (Theorem 5 as printed), ``spike_dense``, ``spike_sparse_max`` (spike map, blocks at their own noise level
    ``sigma2/k``), ``corrected_dense``, ``corrected_sparse_max`` (:func:`corrected_rates`), and the extreme
    squared singular values ``smax2_dense``, ``smin2_dense``, ``smax2_block0``, ``smin2_block0`` with their
    spike-map predictions (suffix ``_pred``) and information-plus-noise edges (suffix ``_ipn``).
    """
    n = v.check_int(n, "n", lower=1)
    k = v.check_int(k, "k", lower=1)
    c = v.check_scalar(c, "c", lower=0.0, lower_inclusive=False)
    if n % k == 0:
        c = max(1, round(c * n / k)) * k / n
    n, c, k, m, di = check_shape(n, c, k)
    sigma2 = v.check_scalar(sigma2, "sigma2", lower=0.0)
    lam = block_spectra(k, min(m, di), lo=lo, hi=hi, spread=spread)
    des = noisy_block_design(n, c, sigma2, k, lam, seed=seed)
    me, pr = measured_rates(des), predicted_rates(lam, sigma2, c, k)
    co = corrected_rates(limit_spectra(k, lo=lo, hi=hi, spread=spread), sigma2, c)
    return {
        "n": n,
        "c": c,
        "sigma2": sigma2,
        "spread": float(spread),
        "measured_dense": me["dense"],
        "measured_sparse_max": float(me["sparse"].max()),
        "measured_sparse_min": float(me["sparse"].min()),
        "paper_dense": pr["paper_dense"],
        "paper_sparse_max": float(pr["paper_sparse"].max()),
        "spike_dense": pr["spike_dense"],
        "spike_sparse_max": float(pr["spike_sparse"].max()),
        "corrected_dense": co["dense"],
        "corrected_sparse_max": float(np.max(co["sparse"])),
        "smax2_dense": me["smax2_dense"],
        "smax2_dense_pred": pr["smax2_dense"],
        "smin2_dense": me["smin2_dense"],
        "smin2_dense_pred": pr["smin2_dense"],
        "smax2_block0": float(me["smax2_sparse"][0]),
        "smax2_block0_pred": float(pr["smax2_sparse"][0]),
        "smin2_block0": float(me["smin2_sparse"][0]),
        "smin2_block0_pred": float(pr["smin2_sparse"][0]),
        "smax2_dense_ipn": co["smax2_dense"],
        "smin2_dense_ipn": co["smin2_dense"],
        "smax2_block0_ipn": float(co["smax2_sparse"][0]),
        "smin2_block0_ipn": float(co["smin2_sparse"][0]),
    }


def rate_replicates(
    n: int,
    c: float,
    sigma2: float,
    k: int = 4,
    *,
    spread: float = 1.0,
    lo: float = 1.0,
    hi: float = 2.0,
    reps: int = 4,
    seed=0,
) -> dict:
    """:func:`rate_table` over ``reps`` independent designs: the predictions (deterministic) and, for every
    key of :data:`MEASURED_KEYS`, the mean over designs and its standard error (key suffix ``_se``)."""
    reps = v.check_int(reps, "reps", lower=2)
    rng = v.check_random_state(seed)
    rows = [rate_table(n, c, sigma2, k, lo=lo, hi=hi, spread=spread, seed=rng) for _ in range(reps)]
    out = dict(rows[0])
    for key in MEASURED_KEYS:
        vals = np.array([r[key] for r in rows])
        out[key] = float(vals.mean())
        out[f"{key}_se"] = float(vals.std(ddof=1) / np.sqrt(reps))
    out["reps"] = reps
    return out


def gd_curves(
    n: int = 256, c: float = 2.0, sigma2: float = 0.5, k: int = 4, *, spread: float = 1.0, steps: int = 300, seed=0
) -> dict:
    """GD on the paper's targets ``y = X beta*`` (clean), dense vs each sparse block.

    Each estimator uses its own step ``1/s_max^2``.  Returns ``t`` (shape (steps+1,)),
    ``dense`` and ``sparse`` (relative distance ``||beta_t - beta_hat|| / ||beta_hat||`` to its own
    least-squares limit; sparse: the blocks' errors combined in quadrature), and ``rates``
    (:func:`measured_rates`).  ``beta* ~ N(0, I_d)`` is drawn after the design from the same ``seed`` stream.
    """
    n, c, k, m, di = check_shape(n, c, k)
    rng = v.check_random_state(seed)
    lam = block_spectra(k, min(m, di), spread=spread)
    des = noisy_block_design(n, c, sigma2, k, lam, seed=rng)
    beta = rng.standard_normal(des.d)
    y = des.x @ beta
    g = gradient_descent(des.xbar, y, steps)
    dense = g["error"] / g["error"][0]
    errs = []
    for i in range(k):
        gi = gradient_descent(des.block(i), y[i * m : (i + 1) * m], steps)
        errs.append(gi["error"])
    sp = np.sqrt(np.sum(np.square(errs), axis=0))
    return {"t": np.arange(steps + 1), "dense": dense, "sparse": sp / sp[0], "rates": measured_rates(des)}


def spiked_rates(n: int = 512, c: float = 2.0, sigma2: float = 0.5, k: int = 4, *, spikes=(3.0, 2.5), seed=0) -> dict:
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
    lam[:, : spikes.size] = spikes
    me = measured_rates(noisy_block_design(n, c, sigma2, k, lam, seed=seed))
    lmax2 = float(spikes.max() ** 2)
    edge = (np.sqrt(c) - 1.0) ** 2 if c > 1 else (1.0 - np.sqrt(c)) ** 2
    pred = {}
    for name, s2 in (("dense", sigma2), ("sparse", sigma2 / k)):
        smax2 = float(spike_map(np.array(lmax2), s2, c))
        pred[name] = {"smax2": smax2, "smin2": s2 * edge, "rate": 1.0 - s2 * edge / smax2}
    return {"measured": me, "predicted": pred}


# ------------------------------------------------------------- A5: the printed rate inside its hypothesis
def hypothesis_counterexample(c: float, sigma2: float, *, margin: float = 1e-3) -> dict:
    """Can Theorem 5's printed rate leave ``[0, 1)`` *inside* its printed hypothesis ``lambda > sqrt(c) sigma^2``?

    The printed rate is ``1 - f(lm^2)/f(l1^2)`` with ``f(x) = (s + x)(c s + x)/x``, ``s = sigma2``.  ``f`` falls
    on ``(0, sqrt(c) s)`` and rises after, with ``f > 0``.  The hypothesis ``lambda > sqrt(c) s`` means
    ``lambda^2 > c s^2``.  If ``c s^2 >= sqrt(c) s`` (i.e. ``s >= c^(-1/2)``) every allowed ``lambda^2`` lies on the
    rising branch, so ``lm <= l1`` gives ``0 <= rho < 1``: no counterexample.  If ``s < c^(-1/2)`` the interval
    ``(c s^2, sqrt(c) s)`` is allowed and lies on the falling branch; there ``rho < 0``, with infimum
    ``1 - f(c s^2)/f(sqrt(c) s) = 1 - (c s^2 + (1 + c) s + 1) / (s (1 + sqrt(c))^2)`` (not attained).

    Returns ``exists`` (bool), ``threshold`` (``c^(-1/2)``), ``infimum`` (nan if none exists) and, if one exists,
    a concrete example ``lam_min = (1 + margin) sqrt(c) s`` and ``lam_max = (sqrt(c) s)^(1/2)`` (the minimum of
    ``f``) with its printed ``rate``.
    """
    c = v.check_scalar(c, "c", lower=1.0, lower_inclusive=False)
    s = v.check_scalar(sigma2, "sigma2", lower=0.0, lower_inclusive=False)
    margin = v.check_scalar(margin, "margin", lower=0.0, lower_inclusive=False)
    threshold = 1.0 / np.sqrt(c)
    out = {
        "c": c,
        "sigma2": s,
        "threshold": float(threshold),
        "exists": bool(s < threshold),
        "infimum": float("nan"),
        "lam_min": float("nan"),
        "lam_max": float("nan"),
        "rate": float("nan"),
    }
    if s < threshold:
        out["infimum"] = float(1.0 - (c * s * s + (1.0 + c) * s + 1.0) / (s * (1.0 + np.sqrt(c)) ** 2))
        lam_min, lam_max = (1.0 + margin) * np.sqrt(c) * s, np.sqrt(np.sqrt(c) * s)
        if lam_min < lam_max:
            out.update(lam_min=float(lam_min), lam_max=float(lam_max), rate=paper_rate(lam_max, lam_min, s, c))
    return out


# ------------------------------------------------- B4: a corrected rate from the information-plus-noise law
def _ipn_stieltjes(x, lam2, s2, c) -> np.ndarray:
    """Stieltjes transform ``m(x + i0)`` of the limit spectrum of ``Xbar Xbar^T`` (Dozier & Silverstein 2007).

    ``Xbar = X + E`` has ``r`` rows and ``c r`` columns (``c > 1``), clean squared singular values ``lam2`` and
    noise entries of variance ``s2 / r``; then ``m = mean_t 1 / (t/a - a z + (c - 1) s2)`` with ``a = 1 + s2 m``.
    Solved by Newton's method, continued from ``Im z = 1`` down to ``1e-8`` on the branch with ``Im m > 0``.
    """
    t = np.asarray(lam2, dtype=float)[None, :]
    m = None
    for eta in (1.0, 0.3, 0.1, 0.03, 1e-2, 1e-3, 1e-4, 1e-6, 1e-8):
        z = x + 1j * eta
        m = -1.0 / z if m is None else m
        for _ in range(200):
            a = 1.0 + s2 * m[:, None]
            den = t / a - a * z[:, None] + (c - 1.0) * s2
            f = np.mean(1.0 / den, axis=1)
            df = np.mean((t * s2 / a**2 + s2 * z[:, None]) / den**2, axis=1)
            new = m - (m - f) / (1.0 - df)
            bad = ~(new.imag > 0) | ~np.isfinite(new)
            new[bad] = 0.5 * (m[bad] + f[bad])  # a damped fixed-point step keeps the physical branch
            done = np.max(np.abs(new - m)) < 1e-12
            m = new
            if done:
                break
    return m


def info_plus_noise_edges(lam2, sigma2: float, c: float, *, npts: int = 150) -> tuple[float, float]:
    """Edges ``(s_min^2, s_max^2)`` of the limit spectrum of ``Xbar Xbar^T`` for ``Xbar = X + E`` (c > 1).

    Same convention as :func:`spike_map`: ``X`` has ``r`` rows, ``c r`` columns and squared singular values
    ``lam2`` (all ``r`` of them: a full-rank signal, as in Assumption 4.4), ``E`` has entries of variance
    ``sigma2 / r``.  The edges are where the density ``Im m / pi`` of :func:`_ipn_stieltjes` becomes positive,
    located on a grid of ``npts`` points and refined 100-fold.  For ``lam2 = 0`` they are the
    Marchenko-Pastur edges ``sigma2 (sqrt(c) -+ 1)^2``.
    """
    lam2 = v.check_array(lam2, "lam2", ndim=1, lower=0.0)
    if lam2.size == 0:
        raise ValueError("lam2 must have at least one entry")
    s2 = v.check_scalar(sigma2, "sigma2", lower=0.0, lower_inclusive=False)
    c = v.check_scalar(c, "c", lower=1.0, lower_inclusive=False)
    npts = v.check_int(npts, "npts", lower=20)
    top = (np.sqrt(lam2.max()) + np.sqrt(s2) * (1.0 + np.sqrt(c))) ** 2 * 1.2
    x = np.linspace(top / npts / 10, top, npts)
    dens = _ipn_stieltjes(x, lam2, s2, c).imag / np.pi
    tol = 1e-6 * dens.max()
    ok = np.flatnonzero(dens > tol)
    left, right = int(ok[0]), int(ok[-1])
    xl = np.linspace(x[max(left - 1, 0)], x[left], 101)
    xr = np.linspace(x[right], x[min(right + 1, npts - 1)], 101)
    dl = _ipn_stieltjes(xl, lam2, s2, c).imag / np.pi
    dr = _ipn_stieltjes(xr, lam2, s2, c).imag / np.pi
    return float(xl[np.flatnonzero(dl > tol)[0]]), float(xr[np.flatnonzero(dr > tol)[-1]])


def corrected_rates(lambdas, sigma2: float, c: float, *, atoms: int = 64) -> dict:
    """GD rates ``1 - s_min^2/s_max^2`` from the information-plus-noise limit (a corrected Theorem 5, c > 1).

    A block ``Xbar_i`` (``n/k`` rows) has the clean spectrum ``lambdas[i]`` and per-row-normalised noise level
    ``sigma2/k``; the dense design (``n`` rows) has all blocks' spectra and noise level ``sigma2``.  Each block's
    limit spectrum is represented by ``atoms`` evenly spaced quantiles of its ``lambda^2`` (the ``n -> inf``
    limit of Assumption 4.4 ii, independent of the finite ``n``).  Returns ``dense``, ``sparse`` (shape (k,))
    and the edges ``smax2_dense``, ``smin2_dense``, ``smax2_sparse``, ``smin2_sparse``.  Every value is nan for
    ``c <= 1`` or ``sigma2 = 0`` (not covered here).
    """
    lam = v.check_array(lambdas, "lambdas", ndim=2, lower=0.0)
    s2 = v.check_scalar(sigma2, "sigma2", lower=0.0)
    c = v.check_scalar(c, "c", lower=0.0, lower_inclusive=False)
    atoms = v.check_int(atoms, "atoms", lower=1)
    if lam.size == 0:
        raise ValueError("lambdas must not be empty")
    out = _corrected(lam.tobytes(), lam.shape, s2, c, atoms)
    return {key: (val.copy() if isinstance(val, np.ndarray) else val) for key, val in out.items()}


@lru_cache(maxsize=256)
def _corrected(raw: bytes, shape, s2: float, c: float, atoms: int) -> dict:
    lam = np.frombuffer(raw).reshape(shape)
    k = lam.shape[0]
    if c <= 1 or s2 == 0:
        nan = np.full(k, np.nan)
        return {
            "dense": float("nan"),
            "sparse": nan,
            "smax2_dense": float("nan"),
            "smin2_dense": float("nan"),
            "smax2_sparse": nan,
            "smin2_sparse": nan,
        }
    q = (np.arange(atoms) + 0.5) / atoms
    h = [np.quantile(row**2, q) if row.size > atoms else row**2 for row in lam]
    seen: dict[bytes, tuple[float, float]] = {}
    blocks = []
    for hi in h:  # identical blocks are solved once
        key = hi.tobytes()
        if key not in seen:
            seen[key] = info_plus_noise_edges(hi, s2 / k, c)
        blocks.append(seen[key])
    lo_d, hi_d = info_plus_noise_edges(np.concatenate(h), s2, c)
    smin2_s = np.array([b[0] for b in blocks])
    smax2_s = np.array([b[1] for b in blocks])
    return {
        "dense": 1.0 - lo_d / hi_d,
        "sparse": 1.0 - smin2_s / smax2_s,
        "smax2_dense": hi_d,
        "smin2_dense": lo_d,
        "smax2_sparse": smax2_s,
        "smin2_sparse": smin2_s,
    }
