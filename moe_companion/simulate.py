"""Monte Carlo counterparts of the closed forms in :mod:`moe_companion.theory`.

Every function is seeded (same seed => same numbers), vectorised over samples, and returns a mean
with its standard error (sample standard deviation / sqrt(n)), so that a page can draw error bars
over the closed-form curves and the tests can compare within a few standard errors.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla

from . import _validate as v
from . import theory
from .model import BlockModel, check_model

__all__ = [
    "check_rows",
    "fitted_coefficients",
    "fitted_risk",
    "least_squares",
    "min_norm",
    "misrouting_input",
    "misrouting_risk",
    "risk",
    "risk_gap",
]

_ESTIMATORS = ("dense", "sparse")


def _mean_se(sq: np.ndarray) -> tuple[float, float]:
    return float(sq.mean()), float(sq.std(ddof=1) / np.sqrt(sq.size))


def _predict(model: BlockModel, xbar: np.ndarray, z: np.ndarray, estimator: str, coefs) -> np.ndarray:
    """Predictions of dense coefficients (full ``xbar``) or routed sparse experts (block ``z`` only)."""
    if estimator == "dense":
        return xbar @ np.concatenate(coefs)
    pred = np.empty(xbar.shape[0])
    for i in range(model.k):
        rows = z == i
        pred[rows] = xbar[rows, model.block_slice(i)] @ coefs[i]
    return pred


def risk(
    model: BlockModel, estimator: str, n_samples: int, seed: int, sigma_o2=None, *, coefficients=None
) -> tuple[float, float]:
    """Monte Carlo risk of a Bayes estimator of Eq. (3) (Theorems 2 and 3).

    Draws ``n_samples`` test points from the model (expert ``z ~ p``, clean block ``x_z``, noise
    ``e ~ N(0, s I_d)`` with ``s = sigma_o2`` if given, else the training ``sigma^2``), predicts with
    the Bayes estimator for the *training* noise ``model.sigma2`` and averages the squared error
    against ``y = x_z^T beta_z*``.  The sparse estimator is routed perfectly (expert ``z`` sees block
    ``z`` of the noisy input); the dense one sees all ``d`` noisy coordinates.

    Parameters
    ----------
    model : BlockModel
    estimator : {"dense", "sparse"}
    n_samples : int
        Number of test draws, >= 2.
    seed : int
        Seed of the draws (>= 0).
    sigma_o2 : float, optional
        Test-time noise variance (>= 0), replacing ``sigma^2`` at test time.
    coefficients : sequence of k arrays, shapes (d_i,), optional
        Score these coefficients instead of the Bayes estimator (e.g. a finite-sample fit): the blocks
        of one dense ``d``-vector, or the k sparse experts. Monte Carlo twin of
        :func:`moe_companion.theory.risk_of_coefficients`.

    Returns
    -------
    mean, stderr : float
        Estimated risk and its standard error.
    """
    model = check_model(model)
    v.check_choice(estimator, "estimator", _ESTIMATORS)
    n = v.check_int(n_samples, "n_samples", lower=2)
    seed = v.check_seed(seed)
    so2 = None if sigma_o2 is None else v.check_scalar(sigma_o2, "sigma_o2", lower=0.0)
    if coefficients is None:
        coefs = theory.bayes_dense(model) if estimator == "dense" else theory.bayes_sparse(model)
    else:  # given coefficients (added by helper "se" for the sample-efficiency chapter)
        coefs = list(coefficients)
        if len(coefs) != model.k:
            raise ValueError(f"coefficients must have one block per expert (k={model.k}), got {len(coefs)}")
        coefs = [
            v.check_array(c, f"coefficients[{i}]", shape=(di,)) for i, (c, di) in enumerate(zip(coefs, model.dims))
        ]
    s = model.sample(n, seed, sigma2=so2)
    return _mean_se((_predict(model, s.xbar, s.z, estimator, coefs) - s.y) ** 2)


def risk_gap(model: BlockModel, n_samples: int, seed: int, sigma_o2=None) -> tuple[float, float]:
    """Paired Monte Carlo estimate of ``R_sparse - R_dense`` (same draws for both estimators).

    Same sampling as :func:`risk`; pairing cancels most of the sampling noise, so the sign of a
    small gap (the Theorem 3 crossover) can be resolved.  Returns ``(mean, stderr)``.
    """
    model = check_model(model)
    n = v.check_int(n_samples, "n_samples", lower=2)
    seed = v.check_seed(seed)
    so2 = None if sigma_o2 is None else v.check_scalar(sigma_o2, "sigma_o2", lower=0.0)
    s = model.sample(n, seed, sigma2=so2)
    dense = _predict(model, s.xbar, s.z, "dense", theory.bayes_dense(model))
    sparse = _predict(model, s.xbar, s.z, "sparse", theory.bayes_sparse(model))
    return _mean_se((sparse - s.y) ** 2 - (dense - s.y) ** 2)


def misrouting_input(
    model: BlockModel, i: int, j: int, eta: float, reading: str, n: int, seed=0
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` perturbed inputs of Theorem 4 under ``reading`` and their targets.

    Samples ``x_i ~ N(0, Sigma_i)``, ``x_j ~ N(0, Sigma_j)`` and ``e ~ N(0, sigma^2 I_d)``: block i carries
    ``x_i + e_i``, block j ``eta x_j + e_j`` (readings A, C) or ``eta (x_j + e_j)`` (B, D, E), every other
    block ``e_r`` (see :data:`moe_companion.theory.READINGS`); the target is
    ``a x_i^T beta_i* + g eta x_j^T beta_j*``. Returns ``(xbar (n, d), target (n,))``.
    """
    model, i, j, eta_arr = theory._check_misrouting(model, i, j, eta, reading, need_reading=True)
    if eta_arr.ndim != 0:
        raise ValueError(f"eta must be a scalar here, got shape {eta_arr.shape}")
    eta = float(eta_arr)
    n = v.check_size(v.check_int(n, "n", lower=1), model.d, "n")
    rng = v.check_random_state(seed)
    rd = theory.READINGS[reading]
    xi = model.sample_block(i, n, rng)
    xj = model.sample_block(j, n, rng)
    e = rng.normal(0.0, np.sqrt(model.sigma2), size=(n, model.d))
    si, sj = model.block_slice(i), model.block_slice(j)
    xbar = e
    xbar[:, si] += xi
    if rd.noise_scaled:
        xbar[:, sj] = eta * (xj + e[:, sj])
    else:
        xbar[:, sj] += eta * xj
    target = rd.a * (xi @ model.betas[i]) + rd.g * eta * (xj @ model.betas[j])
    return xbar, target


def misrouting_risk(
    model: BlockModel, i: int, j: int, eta: float, reading: str, n_samples: int, seed: int
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Monte Carlo squared error under mis-routing (Theorem 4) for one reading.

    Draws :func:`misrouting_input` and scores the Bayes dense estimator on the whole input and expert
    ``j``'s sparse estimator on block j (the router is assumed to pick ``j``, as the theorem does). The
    same draws serve both estimators.

    Returns
    -------
    (dense_mean, dense_se), (sparse_mean, sparse_se)
    """
    n = v.check_int(n_samples, "n_samples", lower=2)
    xbar, target = misrouting_input(model, i, j, eta, reading, n, v.check_seed(seed))
    sj = model.block_slice(j)
    dense = xbar @ np.concatenate(theory.bayes_dense(model))
    sparse = xbar[:, sj] @ theory.bayes_sparse(model)[j]
    return _mean_se((dense - target) ** 2), _mean_se((sparse - target) ** 2)


def min_norm(a, y) -> np.ndarray:
    """Minimum-norm least-squares solution ``a^+ y``.

    Parameters
    ----------
    a : array_like, shape (n, d)
    y : array_like, shape (n,)

    Returns
    -------
    ndarray, shape (d,)
        ``(a^T a)^{-1} a^T y`` when ``n >= d``, ``a^T (a a^T)^{-1} y`` when ``n < d`` (Cholesky of the
        smaller Gram matrix; falls back to an SVD solve when that matrix is numerically singular).
        ``n = 0`` gives zeros.
    """
    a = v.check_array(a, "a", ndim=2)
    y = v.check_array(y, "y", shape=(a.shape[0],))
    n, d = a.shape
    if n == 0:
        return np.zeros(d)
    try:
        if n >= d:
            return sla.cho_solve(sla.cho_factor(a.T @ a, check_finite=False), a.T @ y, check_finite=False)
        return a.T @ sla.cho_solve(sla.cho_factor(a @ a.T, check_finite=False), y, check_finite=False)
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(a, y, rcond=None)[0]


def least_squares(model: BlockModel, xbar, y, z) -> tuple[np.ndarray, list[np.ndarray]]:
    """Dense and sparse minimum-norm least-squares fits on one sample (Section 3.2; Monte Carlo for Eq. 3).

    Dense: :func:`min_norm` of ``y`` on all ``d`` noisy features.  Sparse: for each expert, the same on
    its own rows (``z = i``) and its own noisy block; an expert with no rows gets zeros.

    Parameters
    ----------
    model : BlockModel
    xbar : array_like, shape (n, d)
    y : array_like, shape (n,)
    z : array_like of int, shape (n,)

    Returns
    -------
    dense : ndarray, shape (d,)
    sparse : list of k ndarrays, shapes (d_i,)
    """
    model = check_model(model)
    xbar = v.check_array(xbar, "xbar", ndim=2)
    if xbar.shape[1] != model.d:
        raise ValueError(f"xbar must have d={model.d} columns, got {xbar.shape[1]}")
    y = v.check_array(y, "y", shape=(xbar.shape[0],))
    z = np.asarray(z)
    if z.shape != (xbar.shape[0],):
        raise ValueError(f"z must have shape ({xbar.shape[0]},) like the rows of xbar, got {z.shape}")
    sparse = [min_norm(xbar[z == i][:, model.block_slice(i)], y[z == i]) for i in range(model.k)]
    return min_norm(xbar, y), sparse


def fitted_coefficients(model: BlockModel, estimator: str, n_train: int, seed) -> list[np.ndarray]:
    """Minimum-norm least-squares fits (:func:`least_squares`) on ``n_train`` fresh noisy training samples.

    Returns k coefficient blocks, shapes (d_i,): the dense fit split by block, or the k sparse experts.
    """
    model = check_model(model)
    v.check_choice(estimator, "estimator", _ESTIMATORS)
    n = v.check_int(n_train, "n_train", lower=1)
    s = model.sample(n, seed)
    dense, sparse = least_squares(model, s.xbar, s.y, s.z)
    if estimator == "dense":
        return [dense[model.block_slice(i)] for i in range(model.k)]
    return sparse


def fitted_risk(
    model: BlockModel, estimator: str, n_train: int, n_reps: int, seed: int, sigma_o2=None
) -> tuple[float, float]:
    """Exact test risk of least-squares fits, averaged over ``n_reps`` seeded training sets.

    Each repetition fits :func:`fitted_coefficients` on a fresh training set and evaluates its exact
    risk with :func:`moe_companion.theory.risk_of_coefficients` (test noise ``sigma_o2`` or
    ``sigma^2``).  As ``n_train`` grows the fits tend to the Bayes estimators of Eq. (3).

    Returns
    -------
    mean, stderr : float
        Mean over repetitions and its standard error (``n_reps >= 2``).
    """
    model = check_model(model)
    v.check_choice(estimator, "estimator", _ESTIMATORS)
    v.check_int(n_train, "n_train", lower=1)
    reps = v.check_int(n_reps, "n_reps", lower=2)
    seed = v.check_seed(seed)
    if sigma_o2 is not None:
        v.check_scalar(sigma_o2, "sigma_o2", lower=0.0)
    seeds = np.random.default_rng(seed).integers(0, 2**31, size=reps)
    vals = np.array(
        [
            theory.risk_of_coefficients(
                model, fitted_coefficients(model, estimator, n_train, int(s)), estimator, sigma_o2
            )
            for s in seeds
        ]
    )
    return _mean_se(vals)


def check_rows(models, n_samples: int = 200_000, sigma_o2_factor: float | None = None, seed: int = 1000) -> list[dict]:
    """Closed form vs Monte Carlo on each of ``models`` (Theorem 2, or Theorem 3 with
    ``sigma_o^2 = sigma_o2_factor * sigma^2``, where the rows also give the closed form under the *additive*
    reading, test noise ``sigma^2 + sigma_o^2``): one row per model and estimator, seeds ``seed + index``."""
    rows = []
    for idx, m in enumerate(models):
        m = check_model(m)
        so2 = None if sigma_o2_factor is None else sigma_o2_factor * m.sigma2
        for est, f in (("dense", theory.risk_dense), ("sparse", theory.risk_sparse)):
            mean, se = risk(m, est, n_samples, seed + idx, sigma_o2=so2)
            exact = f(m, so2)
            row = {
                "model": idx,
                "k": m.k,
                "sigma2": m.sigma2,
                "sigma_o2": m.sigma2 if so2 is None else so2,
                "estimator": est,
                "closed": exact,
                "mc": mean,
                "se": se,
                "z": (mean - exact) / se,
            }
            if so2 is not None:  # the other semantic: test noise sigma^2 + sigma_o^2
                row["additive"] = f(m, m.sigma2 + so2)
                row["z_additive"] = (mean - row["additive"]) / se
            rows.append(row)
    return rows
