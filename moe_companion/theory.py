"""Closed forms of the paper (Eq. 3, Theorems 2-4), evaluated in each block's eigenbasis.

Every risk in Theorems 2-4 is a weighted sum, over the eigen-directions of the blocks, of scalar
functions of one eigenvalue ``lam`` of ``Sigma_i``, the squared coordinate ``b^2`` of ``beta_i*``
along it, ``p_i``, ``sigma^2`` (and ``sigma_o^2``, ``eta``).  With ``Sigma_i = U_i diag(lam) U_i^T``
and ``b = U_i^T beta_i*`` the Bayes coefficients along each direction are

* dense:  ``w = p_i lam / (p_i lam + sigma^2)``   (times ``b``)
* sparse: ``v = lam / (lam + sigma^2)``           (times ``b``)

so a whole curve over a grid of ``sigma^2``, ``sigma_o^2`` or ``p`` is one broadcast numpy
expression (:func:`risk_grid`).  The ``*_direct`` functions evaluate the same quantities with the
matrix formulas as printed (inverses of ``p_i Sigma_i + sigma^2 I``), one grid point at a time; the
tests check that both agree to 1e-10.

Conventions
-----------
* Test-time noise (Theorem 3): ``sigma_o2`` *replaces* the training noise at test time: the
  estimators are the Bayes estimators for the training noise ``sigma^2 = model.sigma2``, and the test
  input is ``x + e'`` with ``e' ~ N(0, sigma_o^2 I_d)``.  This is what the printed formula means (its
  extra term carries ``sigma_o^2 - sigma^2`` and vanishes at ``sigma_o^2 = sigma^2``); an *additive*
  reading (test noise ``sigma^2 + sigma_o^2``) is ``risk_dense(model, model.sigma2 + s)``.
* Mis-routing (Theorem 4): the readings of the perturbed input and of the target are documented in
  :data:`READINGS` and :func:`misrouting_risk`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import _validate as v
from .model import BlockModel, check_model

__all__ = [
    "READINGS",
    "Reading",
    "bayes_dense",
    "bayes_sparse",
    "crossover_sigma_o2",
    "direction_threshold",
    "misrouting_risk",
    "misrouting_risk_direct",
    "paper_condition",
    "paper_misrouting_risk",
    "paper_misrouting_risk_direct",
    "proof_first_line_dense",
    "risk_dense",
    "risk_dense_direct",
    "risk_grid",
    "risk_of_coefficients",
    "risk_sparse",
    "risk_sparse_direct",
    "shrinkage_ratios",
    "sparse_wins_direction",
    "sparse_block_risks",
]


# ----------------------------------------------------------------------------- Eq. (3)
def bayes_dense(model: BlockModel) -> list[np.ndarray]:
    """Blocks of the Bayes-optimal dense estimator (Eq. 3).

    ``beta_dense_i = p_i (p_i Sigma_i + sigma^2 I)^{-1} Sigma_i beta_i*``, returned as a list of
    k arrays of shapes (d_i,).  Computed as ``U_i diag(p_i lam / (p_i lam + sigma^2)) U_i^T beta_i*``.
    """
    model = check_model(model)
    out = []
    for p, (lam, u), b in zip(model.p, model.eigh, model.beta_eigen):
        out.append(u @ (p * lam / (p * lam + model.sigma2) * b))
    return out


def bayes_sparse(model: BlockModel) -> list[np.ndarray]:
    """Blocks of the Bayes-optimal sparse (per-expert) estimators (Eq. 3).

    ``beta_sparse_i = (Sigma_i + sigma^2 I)^{-1} Sigma_i beta_i*``, shapes (d_i,).
    """
    model = check_model(model)
    return [u @ (lam / (lam + model.sigma2) * b) for (lam, u), b in zip(model.eigh, model.beta_eigen)]


# ----------------------------------------------------------------------------- helpers
def shrinkage_ratios(model: BlockModel, coefficients=None) -> dict[str, np.ndarray]:
    """``||beta_hat_i|| / ||beta_i*||`` per block (1 = no shrinkage), shape (k,) per estimator.

    Without ``coefficients``: the Bayes estimators of Eq. (3), ``{"dense": ..., "sparse": ...}``. With
    ``coefficients = (dense (d,), sparse [k arrays (d_i,)])`` (e.g. least-squares fits): those instead.
    """
    model = check_model(model)
    norms = np.array([np.linalg.norm(b) for b in model.betas])
    if np.any(norms == 0):
        raise ValueError("betas must be non-zero in every block to define a shrinkage ratio")
    if coefficients is None:
        dense, sparse = bayes_dense(model), bayes_sparse(model)
    else:
        full, sparse = coefficients
        full = v.check_array(full, "coefficients[0]", shape=(model.d,))
        dense = [full[model.block_slice(i)] for i in range(model.k)]
        if len(sparse) != model.k:
            raise ValueError(f"coefficients[1] must list k={model.k} experts, got {len(sparse)}")
    return {
        "dense": np.array([np.linalg.norm(b) for b in dense]) / norms,
        "sparse": np.array([np.linalg.norm(b) for b in sparse]) / norms,
    }


def _spectrum(model: BlockModel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All eigen-directions flattened: ``lam`` (D,), ``b2`` (D,), block index ``blk`` (D,)."""
    lam = np.concatenate([e[0] for e in model.eigh])
    b2 = np.concatenate(model.beta_eigen) ** 2
    blk = np.repeat(np.arange(model.k), model.dims)
    return lam, b2, blk


def _nonneg(value, name: str) -> np.ndarray:
    """A finite float array (any shape, 0-d for scalars) with every entry >= 0."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a real number or an array of real numbers, got {value!r}")
    return v.check_array(value, name, lower=0.0)


def _out(arr: np.ndarray):
    """0-d arrays become Python floats; arrays stay arrays."""
    return float(arr) if np.ndim(arr) == 0 else arr


# ----------------------------------------------------------------------------- Theorems 2 and 3
def risk_grid(model: BlockModel, *, sigma2=None, sigma_o2=None, p=None) -> tuple:
    """Dense and sparse Bayes risks (Theorems 2 and 3) over a broadcast grid of parameters.

    The estimators are the Bayes estimators of Eq. (3) for training noise ``sigma2`` and
    probabilities ``p``; they are tested with input noise ``sigma_o2`` (Theorem 3, *replace*
    semantics) or, when ``sigma_o2`` is None, with the training noise (Theorem 2).

    Parameters
    ----------
    model : BlockModel
        Supplies the covariances and ``beta*`` (and the defaults for ``sigma2`` and ``p``).
    sigma2 : float or array_like, optional
        Training feature-noise variances (>= 0); default ``model.sigma2``.
    sigma_o2 : float or array_like, optional
        Test-time noise variances (>= 0); default: equal to ``sigma2`` (Theorem 2).
    p : array_like, shape (..., k), optional
        Expert probabilities, one simplex vector per grid point along the last axis.

    Returns
    -------
    dense, sparse : float or ndarray
        Risks with the broadcast shape of ``sigma2``, ``sigma_o2`` and ``p[..., 0]``
        (floats when everything is scalar).  Per direction (``lam``, ``b^2``, ``p_i``)::

            dense  = p_i b^2 lam (sigma^4 + p_i lam sigma_o^2) / (p_i lam + sigma^2)^2
            sparse = p_i b^2 lam (sigma^4 +     lam sigma_o^2) / (    lam + sigma^2)^2
    """
    model = check_model(model)
    s2 = np.asarray(model.sigma2) if sigma2 is None else _nonneg(sigma2, "sigma2")
    so2 = s2 if sigma_o2 is None else _nonneg(sigma_o2, "sigma_o2")
    if p is None:
        pk = model.p
    else:
        pk = v.check_array(p, "p", lower=0.0, lower_inclusive=False)
        if pk.ndim == 0 or pk.shape[-1] != model.k:
            raise ValueError(f"p must have k={model.k} entries along its last axis, got shape {pk.shape}")
        if np.any(np.abs(pk.sum(axis=-1) - 1.0) > 1e-9):
            raise ValueError("p must sum to 1 (be on the simplex) along its last axis")
    lam, b2, blk = _spectrum(model)
    pd = pk[..., blk]
    s2e = s2[..., None]
    so2e = so2[..., None]
    plam = pd * lam
    num = pd * b2 * lam
    # num (s^4 + a so2) / (a + s^2)^2 written with ratios in [0, 1] only: no overflow for huge sigma^2 or
    # eigenvalues (sigma^2 >= 1.4e154 or Sigma = 1e300 I would give inf/inf = nan otherwise)
    with np.errstate(invalid="ignore", divide="ignore"):
        dense = np.sum(num * _ratio2(s2e, plam, so2e), axis=-1)
        sparse = np.sum(num * _ratio2(s2e, lam + 0.0 * pd, so2e), axis=-1)
    return _out(dense), _out(sparse)


def _ratio2(s2, a, so2):
    """``(s2^2 + a so2) / (a + s2)^2`` computed from ratios (finite for any finite inputs; 0 where a = s2 = 0)."""
    tot = a + s2
    safe = np.where(tot > 0, tot, 1.0)
    q = s2 / safe
    return np.where(tot > 0, q * q + (a / safe) * (so2 / safe), 0.0)


def risk_dense(model: BlockModel, sigma_o2=None):
    """Risk of the Bayes dense estimator: Theorem 2 (``sigma_o2=None``) or Theorem 3.

    Parameters
    ----------
    model : BlockModel
    sigma_o2 : float or array_like, optional
        Test-time noise variance(s) ``sigma_o^2 >= 0`` replacing the training noise at test time.

    Returns
    -------
    float or ndarray
        Same shape as ``sigma_o2``.  Theorem 2:
        ``sum_i p_i sigma^2 beta_i*^T Sigma_i (p_i Sigma_i + sigma^2 I)^{-1} beta_i*``; Theorem 3 adds
        ``sum_i p_i^2 (sigma_o^2 - sigma^2) beta_i*^T Sigma_i (p_i Sigma_i + sigma^2 I)^{-2} Sigma_i beta_i*``.
    """
    return risk_grid(model, sigma_o2=sigma_o2)[0]


def risk_sparse(model: BlockModel, sigma_o2=None):
    """Risk of the Bayes sparse (perfectly routed MoE) estimators: Theorem 2 or Theorem 3.

    Same conventions as :func:`risk_dense`.  Theorem 2:
    ``sum_i p_i sigma^2 beta_i*^T Sigma_i (Sigma_i + sigma^2 I)^{-1} beta_i*``; Theorem 3 adds
    ``sum_i p_i (sigma_o^2 - sigma^2) beta_i*^T Sigma_i (Sigma_i + sigma^2 I)^{-2} Sigma_i beta_i*``.
    """
    return risk_grid(model, sigma_o2=sigma_o2)[1]


def risk_of_coefficients(model: BlockModel, coefficients, estimator: str, sigma_o2=None) -> float:
    """Exact test risk of *any* linear coefficients (e.g. a finite-sample least-squares fit).

    Parameters
    ----------
    coefficients : sequence of k arrays, shapes (d_i,)
        Dense: the blocks of one ``d``-vector.  Sparse: expert ``i``'s coefficients.
    estimator : {"dense", "sparse"}
    sigma_o2 : float, optional
        Test noise variance; default ``model.sigma2``.

    Returns
    -------
    float
        Dense: ``sum_i p_i (c_i - b_i)^T Sigma_i (c_i - b_i) + sigma_o^2 ||c||^2`` (noise on all d
        coordinates).  Sparse: ``sum_i p_i [(c_i - b_i)^T Sigma_i (c_i - b_i) + sigma_o^2 ||c_i||^2]``.
    """
    model = check_model(model)
    v.check_choice(estimator, "estimator", ("dense", "sparse"))
    so2 = model.sigma2 if sigma_o2 is None else v.check_scalar(sigma_o2, "sigma_o2", lower=0.0)
    coefs = list(coefficients)
    if len(coefs) != model.k:
        raise ValueError(f"coefficients must have one block per expert (k={model.k}), got {len(coefs)}")
    total = 0.0
    noise = 0.0
    for i, (c, cov, b) in enumerate(zip(coefs, model.covariances, model.betas)):
        c = v.check_array(c, f"coefficients[{i}]", shape=(b.size,))
        r = c - b
        total += model.p[i] * float(r @ cov @ r)
        noise += (1.0 if estimator == "dense" else model.p[i]) * float(c @ c)
    return total + so2 * noise


# ------------------------------------- per-block sparse Bayes risks (added by helper "se", sample-efficiency chapter)
def sparse_block_risks(model: BlockModel) -> np.ndarray:
    """Theorem 2's sparse risk of each expert on its own rows, shape (k,).

    ``R_i = sigma^2 beta_i*^T Sigma_i (Sigma_i + sigma^2 I)^{-1} beta_i*``, so that
    ``risk_sparse(model) == model.p @ sparse_block_risks(model)``. ``R_i`` is also the variance of the
    residual ``y - xbar_i^T beta_sparse_i`` given ``z = i`` (App. A.6: the sparse expert's noise level).
    """
    model = check_model(model)
    s2 = model.sigma2
    return np.array([s2 * float(np.sum(lam * b**2 / (lam + s2))) for (lam, _), b in zip(model.eigh, model.beta_eigen)])


def _direct(model: BlockModel, sigma_o2, dense: bool, sigma2=None) -> float:
    s2 = model.sigma2 if sigma2 is None else sigma2
    so2 = s2 if sigma_o2 is None else float(sigma_o2)
    out = 0.0
    for p, cov, b in zip(model.p, model.covariances, model.betas):
        eye = np.eye(cov.shape[0])
        a_inv = np.linalg.inv((p if dense else 1.0) * cov + s2 * eye)
        scale = p * p if dense else p
        out += p * s2 * b @ cov @ a_inv @ b + scale * (so2 - s2) * b @ cov @ a_inv @ a_inv @ cov @ b
    return float(out)


def risk_dense_direct(model: BlockModel, sigma_o2=None, *, sigma2=None) -> float:
    """Theorem 2/3 dense risk from the printed matrix formula (explicit inverses; scalars only).

    ``sigma2`` overrides the training noise of ``model`` (for curves over ``sigma^2``).
    """
    model = check_model(model)
    if sigma_o2 is not None:
        sigma_o2 = v.check_scalar(sigma_o2, "sigma_o2", lower=0.0)
    if sigma2 is not None:
        sigma2 = v.check_scalar(sigma2, "sigma2", lower=0.0)
    return _direct(model, sigma_o2, True, sigma2)


def risk_sparse_direct(model: BlockModel, sigma_o2=None, *, sigma2=None) -> float:
    """Theorem 2/3 sparse risk from the printed matrix formula (explicit inverses; scalars only).

    ``sigma2`` overrides the training noise of ``model`` (for curves over ``sigma^2``).
    """
    model = check_model(model)
    if sigma_o2 is not None:
        sigma_o2 = v.check_scalar(sigma_o2, "sigma_o2", lower=0.0)
    if sigma2 is not None:
        sigma2 = v.check_scalar(sigma2, "sigma2", lower=0.0)
    return _direct(model, sigma_o2, False, sigma2)


# ----------------------------------------------------------------------------- Theorem 3 crossover
def direction_threshold(lam, p, sigma2):
    """Test-noise level beyond which the dense estimator wins along one eigen-direction.

    Along a direction with eigenvalue ``lam`` of ``Sigma_i`` (any ``b != 0``), with ``p = p_i < 1``,
    the sparse risk is <= the dense one iff ::

        sigma_o^2 (sigma^4 - p lam^2) <= sigma^4 ((1 + p) lam + 2 sigma^2).

    Hence sparse wins for *every* ``sigma_o^2`` when ``p lam^2 >= sigma^4`` (``lam >= sigma^2/sqrt(p)``),
    and otherwise exactly when ``sigma_o^2 <= tau = sigma^4 ((1+p) lam + 2 sigma^2) / (sigma^4 - p lam^2)``.

    Parameters
    ----------
    lam, p, sigma2 : float or array_like (broadcast)
        Eigenvalue (> 0), probability in (0, 1], training noise variance (> 0).

    Returns
    -------
    float or ndarray
        ``tau`` (``inf`` where sparse always wins, including ``p = 1``).
    """
    lam = v.check_array(lam, "lam", lower=0.0, lower_inclusive=False)
    p = v.check_array(p, "p", lower=0.0, lower_inclusive=False)
    if np.any(p > 1):
        raise ValueError(f"p must be <= 1, got max {p.max():g}")
    s2 = v.check_array(sigma2, "sigma2", lower=0.0, lower_inclusive=False)
    r = lam / s2
    den = 1.0 - p * r * r  # (sigma^4 - p lam^2) / sigma^4, without forming sigma^4
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        tau = np.where((den > 0) & (p < 1), ((1 + p) * lam + 2 * s2) / np.where(den > 0, den, 1.0), np.inf)
    return _out(tau)


def sparse_wins_direction(lam, p, sigma2, sigma_o2):
    """Exact per-direction condition of Theorem 3: True where sparse risk <= dense risk.

    Equivalent to ``sigma_o2 <= direction_threshold(lam, p, sigma2)``; arguments broadcast.
    """
    so2 = _nonneg(sigma_o2, "sigma_o2")
    return np.asarray(so2 <= direction_threshold(lam, p, sigma2))[()]


def _slope_and_gap(model: BlockModel) -> tuple[float, float]:
    """``R_sparse - R_dense`` is affine in ``sigma_o^2``: return its slope and its value at ``sigma^2``."""
    lam, b2, blk = _spectrum(model)
    p = model.p[blk]
    s2 = model.sigma2
    v_, w_ = lam / (lam + s2), lam / (p * lam + s2)  # ratios: no overflow for huge lam or sigma^2
    slope = np.sum(p * b2 * (v_ * v_ - p * w_ * w_))
    gap = np.sum(p * b2 * lam * (s2 / (lam + s2) - s2 / (p * lam + s2)))
    return float(slope), float(gap)


def crossover_sigma_o2(model: BlockModel) -> float:
    """The test-noise level beyond which the dense estimator beats the sparse one (Theorem 3).

    ``R_sparse(s) - R_dense(s) = gap + slope (s - sigma^2)`` with ``gap <= 0`` (Theorem 2) and
    ``R_sparse <= R_dense`` at ``s = 0``.  Dense wins exactly for ``s > sigma^2 - gap / slope`` when
    ``slope > 0``; otherwise sparse wins for every ``s >= 0`` and ``inf`` is returned.
    """
    model = check_model(model)
    if model.sigma2 == 0:
        return float("inf")
    slope, gap = _slope_and_gap(model)
    if slope <= 0:
        return float("inf")
    return float(model.sigma2 - gap / slope)


def paper_condition(model: BlockModel, sigma_o2) -> bool:
    """The paper's sufficient condition: ``lambda_min(Sigma_i) > 4 sigma^2`` for all i and ``sigma_o^2 > sigma^2``."""
    model = check_model(model)
    so2 = v.check_scalar(sigma_o2, "sigma_o2", lower=0.0)
    lam_min = min(float(e[0][0]) for e in model.eigh)
    return bool(lam_min > 4 * model.sigma2 and so2 > model.sigma2)


# ----------------------------------------------------------------------------- Theorem 4
class Reading(NamedTuple):
    """One reading of Theorem 4's perturbed input and target.

    Block ``j`` of the test input is ``eta x_j + noise_scale * e_j`` with ``noise_scale`` = 1 or
    ``eta``; the target is ``a * x_i^T beta_i* + g * eta x_j^T beta_j*``.
    """

    noise_scaled: bool
    a: float
    g: float
    text: str


#: The readings of Theorem 4 (block i carries ``x_i + e_i``, other blocks ``e_r``, noise ``sigma^2``).
READINGS: dict[str, Reading] = {
    "A": Reading(False, 1.0, 0.0, "block j = eta x_j + e_j (noise not scaled); target x_i^T beta_i*"),
    "B": Reading(True, 1.0, 0.0, "block j = eta (x_j + e_j) (noise scaled); target x_i^T beta_i*"),
    "C": Reading(
        False, 1.0, 1.0, "block j = eta x_j + e_j; target x_i^T beta_i* + eta x_j^T beta_j* (clean composite)"
    ),
    "D": Reading(True, 1.0, 1.0, "block j = eta (x_j + e_j); target x_i^T beta_i* + eta x_j^T beta_j*"),
    "E": Reading(True, 0.0, 1.0, "block j = eta (x_j + e_j); target eta x_j^T beta_j* (the perturbation's label)"),
}


def _check_misrouting(model, i, j, eta, reading=None, *, need_reading=False):
    model = check_model(model)
    i = v.check_int(i, "i", lower=0, upper=model.k - 1)
    j = v.check_int(j, "j", lower=0, upper=model.k - 1)
    if i == j:
        raise ValueError(
            f"j must differ from i (mis-routing sends expert i's input to another expert), got i = j = {i}"
        )
    eta = v.check_array(eta, "eta", lower=0.0, lower_inclusive=False)
    if need_reading or reading is not None:
        v.check_choice(reading, "reading", tuple(READINGS))
    return model, i, j, eta


def misrouting_risk(model: BlockModel, i: int, j: int, eta, reading: str = "A") -> tuple:
    """Expected squared error under mis-routing (Theorem 4), derived from the model.

    An input of expert ``i`` (``x_i ~ N(0, Sigma_i)``) is perturbed by ``eta x_j``
    (``x_j ~ N(0, Sigma_j)`` independent) and the router sends it to expert ``j``.  Training-time
    Bayes estimators of Eq. (3) with noise ``sigma^2``; test noise ``e ~ N(0, sigma^2 I_d)``.
    The readings (see :data:`READINGS`):

    * ``"A"``: block j carries ``eta x_j + e_j``;   target ``x_i^T beta_i*``.
    * ``"B"``: block j carries ``eta (x_j + e_j)``; target ``x_i^T beta_i*``.
    * ``"C"``: block j carries ``eta x_j + e_j``;   target ``x_i^T beta_i* + eta x_j^T beta_j*``.
    * ``"D"``: block j carries ``eta (x_j + e_j)``; target ``x_i^T beta_i* + eta x_j^T beta_j*``.
    * ``"E"``: block j carries ``eta (x_j + e_j)``; target ``eta x_j^T beta_j*`` only.

    The dense estimator sees the whole input (block i ``x_i + e_i``, block j as above, other blocks
    ``e_r``); the sparse estimator is expert ``j`` applied to block j only.  With ``c`` the noise
    scale (1 or ``eta``) and target weights ``a``, ``g``::

        dense  = (bd_i - a b_i)^T S_i (bd_i - a b_i) + s2 ||bd_i||^2
                 + eta^2 (bd_j - g b_j)^T S_j (bd_j - g b_j) + c^2 s2 ||bd_j||^2 + s2 sum_{r != i,j} ||bd_r||^2
        sparse = a^2 b_i^T S_i b_i + eta^2 (bs_j - g b_j)^T S_j (bs_j - g b_j) + c^2 s2 ||bs_j||^2

    Parameters
    ----------
    model : BlockModel
    i, j : int
        True expert and selected (wrong) expert, ``0 <= i, j < k``, ``i != j``.
    eta : float or array_like
        Perturbation scale(s) ``> 0`` (the paper assumes ``eta > 1``).
    reading : {"A", "B", "C", "D", "E"}

    Returns
    -------
    dense, sparse : float or ndarray
        Expected squared errors, shape of ``eta``.
    """
    model, i, j, eta = _check_misrouting(model, i, j, eta, reading, need_reading=True)
    rd = READINGS[reading]
    s2 = model.sigma2
    c2 = eta * eta if rd.noise_scaled else np.ones_like(eta)
    e2 = eta * eta
    terms = {}
    for r in range(model.k):
        lam, _ = model.eigh[r]
        b2 = model.beta_eigen[r] ** 2
        w = model.p[r] * lam / (model.p[r] * lam + s2)
        vv = lam / (lam + s2)
        terms[r] = (lam, b2, w, vv)
    lam, b2, w, _ = terms[i]
    dense = np.sum(b2 * (lam * (w - rd.a) ** 2 + s2 * w * w)) + 0.0 * eta
    sparse = rd.a**2 * np.sum(b2 * lam) + 0.0 * eta
    lam, b2, w, vv = terms[j]
    dense = dense + e2 * np.sum(b2 * lam * (w - rd.g) ** 2) + c2 * s2 * np.sum(b2 * w * w)
    sparse = sparse + e2 * np.sum(b2 * lam * (vv - rd.g) ** 2) + c2 * s2 * np.sum(b2 * vv * vv)
    for r in range(model.k):
        if r not in (i, j):
            lam, b2, w, _ = terms[r]
            dense = dense + s2 * np.sum(b2 * w * w)
    return _out(dense), _out(sparse)


def misrouting_risk_direct(model: BlockModel, i: int, j: int, eta: float, reading: str = "A") -> tuple:
    """:func:`misrouting_risk` from matrix formulas (Eq. 3 coefficients, explicit products; scalar ``eta``)."""
    model, i, j, eta = _check_misrouting(model, i, j, eta, reading, need_reading=True)
    eta = float(eta)
    rd = READINGS[reading]
    s2 = model.sigma2
    c2 = eta * eta if rd.noise_scaled else 1.0
    bd = [
        p * np.linalg.solve(p * cov + s2 * np.eye(cov.shape[0]), cov @ b)
        for p, cov, b in zip(model.p, model.covariances, model.betas)
    ]
    cov_i, cov_j = model.covariances[i], model.covariances[j]
    b_i, b_j = model.betas[i], model.betas[j]
    bs_j = np.linalg.solve(cov_j + s2 * np.eye(cov_j.shape[0]), cov_j @ b_j)
    ri = bd[i] - rd.a * b_i
    rj = bd[j] - rd.g * b_j
    dense = ri @ cov_i @ ri + s2 * bd[i] @ bd[i] + eta**2 * rj @ cov_j @ rj + c2 * s2 * bd[j] @ bd[j]
    dense += s2 * sum(bd[r] @ bd[r] for r in range(model.k) if r not in (i, j))
    rs = bs_j - rd.g * b_j
    sparse = rd.a**2 * b_i @ cov_i @ b_i + eta**2 * rs @ cov_j @ rs + c2 * s2 * bs_j @ bs_j
    return float(dense), float(sparse)


def paper_misrouting_risk(model: BlockModel, i: int, j: int, eta) -> tuple:
    """Theorem 4 exactly as printed (eigenbasis evaluation).

    Dense::

        eta^2 p_j b_j^T S_j (p_j S_j + s2 I)^{-1} S_j b_j + s2 eta^2 (p_j^2 - p_j) b_j^T S_j (p_j S_j + s2 I)^{-2} S_j b_j
        - p_i b_i^T S_i (p_i S_i + s2 I)^{-1} S_i b_i + s2 sum_{r != i,j} p_r^2 b_r^T S_r (p_r S_r + s2 I)^{-2} S_r b_r

    Sparse: ``eta^2 b_j^T S_j (S_j + s2 I)^{-1} S_j b_j``.  Returns ``(dense, sparse)``, shape of ``eta``.
    """
    model, i, j, eta = _check_misrouting(model, i, j, eta)
    s2 = model.sigma2
    e2 = eta * eta

    def parts(r):
        lam, _ = model.eigh[r]
        return lam, model.beta_eigen[r] ** 2, model.p[r]

    lam, b2, p = parts(j)
    w = lam / (p * lam + s2)  # ratios keep every term finite for huge eigenvalues
    dense = e2 * np.sum(p * b2 * lam * w) + s2 * e2 * (p * p - p) * np.sum(b2 * w * w)
    sparse = e2 * np.sum(b2 * lam * (lam / (lam + s2)))
    lam, b2, p = parts(i)
    dense = dense - p * np.sum(b2 * lam * (lam / (p * lam + s2)))
    for r in range(model.k):
        if r not in (i, j):
            lam, b2, p = parts(r)
            w = lam / (p * lam + s2)
            dense = dense + s2 * p * p * np.sum(b2 * w * w)
    return _out(dense), _out(sparse + 0.0 * eta)


def paper_misrouting_risk_direct(model: BlockModel, i: int, j: int, eta: float) -> tuple:
    """:func:`paper_misrouting_risk` with the printed matrix inverses (scalar ``eta``)."""
    model, i, j, eta = _check_misrouting(model, i, j, eta)
    eta = float(eta)
    s2 = model.sigma2

    def quad(r, p, power):
        cov, b = model.covariances[r], model.betas[r]
        a_inv = np.linalg.inv(p * cov + s2 * np.eye(cov.shape[0]))
        mid = a_inv if power == 1 else a_inv @ a_inv
        return float(b @ cov @ mid @ cov @ b)

    pj, pi = model.p[j], model.p[i]
    dense = eta**2 * pj * quad(j, pj, 1) + s2 * eta**2 * (pj**2 - pj) * quad(j, pj, 2) - pi * quad(i, pi, 1)
    dense += s2 * sum(model.p[r] ** 2 * quad(r, model.p[r], 2) for r in range(model.k) if r not in (i, j))
    sparse = eta**2 * quad(j, 1.0, 1)
    return float(dense), float(sparse)


def proof_first_line_dense(model: BlockModel, i: int, j: int, eta) -> float:
    """The first line of the paper's proof of Theorem 4 (Appendix A.4), before its simplification.

    ``b_i^T S_i b_i + bd_i^T S_i bd_i + eta^2 bd_j^T S_j bd_j + s2 ||bd||^2 - 2 bd_i^T S_i b_i`` with
    ``bd`` the Bayes dense estimator of Eq. (3) (matrix products, scalar ``eta``). It equals reading A of
    :func:`misrouting_risk`, which is how the book tells which reading the proof computes.
    """
    model, i, j, eta = _check_misrouting(model, i, j, eta)
    if eta.ndim != 0:
        raise ValueError(f"eta must be a scalar here, got shape {eta.shape}")
    eta = float(eta)
    bd = bayes_dense(model)
    cov_i, cov_j, b_i = model.covariances[i], model.covariances[j], model.betas[i]
    return float(
        b_i @ cov_i @ b_i
        + bd[i] @ cov_i @ bd[i]
        + eta**2 * bd[j] @ cov_j @ bd[j]
        + model.sigma2 * sum(c @ c for c in bd)
        - 2 * bd[i] @ cov_i @ b_i
    )
