"""Sample efficiency of the minimum-norm estimators (Section 4.5, App. A.6, Fig. 2, 3, 6, Table 1).

Maths and experiments only (the figures and findings are in :mod:`moe_companion.chapters.sample_efficiency`).

Estimators on a finite sample ``(Xbar, Y)`` of the block model (:func:`moe_companion.simulate.least_squares`):

* dense: ``beta_hat = Xbar^+ Y`` (all ``n`` rows, all ``d`` columns);
* sparse: for each expert ``beta_hat_i = Xbar_i^+ Y_i`` on the rows with ``z = i`` and the columns of
  block ``i`` (perfect routing); an expert without rows gets ``beta_hat_i = 0``.

Their test risks are exact quadratic forms (:func:`moe_companion.theory.risk_of_coefficients`, no test
sampling), and the excess risk subtracts each estimator's own Bayes risk (Theorem 2,
:func:`moe_companion.theory.risk_dense` / :func:`~moe_companion.theory.risk_sparse`).

Exact facts used on the page.  For expert ``i`` the pair ``(xbar_{S_i}, y)`` is jointly Gaussian, so
``y = xbar_{S_i}^T b_i + eps`` with ``b_i`` the Bayes sparse block and ``eps ~ N(0, R_i)``
*independent* of ``xbar_{S_i}`` (``R_i``: :func:`moe_companion.theory.sparse_block_risks`).
OLS on ``n_i >= d_i + 2`` rows therefore has expected excess risk exactly
``R_i d_i / (n_i - d_i - 1)`` (inverse-Wishart mean), which is infinite for ``n_i = d_i, d_i + 1``
(and, for ``d_i = 1``, for ``n_i = 1, 2``): the mean over training sets is unbounded whenever such
counts have positive probability, so medians are reported beside means.  For large ``n`` both
estimators' excess risks decay like ``1/n`` (not ``1/n^2``): the sparse constant is
``sum_i R_i d_i`` and the dense one the sandwich ``tr(A^{-1} B)`` of misspecified least squares.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla
from scipy import stats

from . import _validate as v
from . import theory
from .model import BlockModel, check_model
from .simulate import min_norm

__all__ = [
    "MAX_ELEMENTS",
    "excess_curves",
    "sparse_expected_excess",
    "asymptotic_constants",
    "FORMS",
    "fit_form",
    "fit_table",
    "paper_table1",
    "fig6_model",
    "fig3_model",
    "case_study_excess",
    "mean_interval",
    "paired_log_ratio",
    "bootstrap_interval",
    "a61_bias_terms",
    "variance_terms",
]

#: Largest design (rows x columns, or training sets x rows) one call may draw: 5·10^7 floats = 400 MB.
MAX_ELEMENTS = 50_000_000


def _check_size(rows: int, cols: int, what: str) -> None:
    v.check_size(rows, cols, what, limit=MAX_ELEMENTS)


def _blocks(model: BlockModel, beta: np.ndarray) -> list[np.ndarray]:
    return [beta[model.block_slice(i)] for i in range(model.k)]


class _Accumulator:
    """Running Gram matrices of nested prefixes of one sample (so a whole n-grid costs one pass)."""

    def __init__(self, d: int):
        self.g = np.zeros((d, d))
        self.r = np.zeros(d)
        self.rows: list[np.ndarray] = []
        self.ys: list[np.ndarray] = []

    def add(self, a: np.ndarray, y: np.ndarray) -> None:
        self.g += a.T @ a
        self.r += a.T @ y
        self.rows.append(a)
        self.ys.append(y)

    def solve(self) -> np.ndarray:
        d = self.g.shape[0]
        a = np.concatenate(self.rows) if self.rows else np.zeros((0, d))
        n = a.shape[0]
        if n == 0:
            return np.zeros(d)
        if n >= d + 2:
            try:
                return sla.cho_solve(sla.cho_factor(self.g, check_finite=False), self.r, check_finite=False)
            except np.linalg.LinAlgError:
                pass
        return min_norm(a, np.concatenate(self.ys))


def excess_curves(model: BlockModel, ns, *, runs: int = 4, seed=0, sparse_only: bool = False) -> dict:
    """Exact excess risks of the dense and sparse minimum-norm estimators along an ``n`` grid.

    Each run draws one sample of ``max(ns)`` rows and evaluates the estimators on its nested prefixes of
    sizes ``ns`` (like one growing data set per run). ``seed``: int, None or a numpy Generator (one stream
    for all runs). ``max(ns) * d`` may not exceed :data:`MAX_ELEMENTS`.

    Returns
    -------
    dict
        ``n`` (shape (m,)); ``dense``, ``sparse`` (excess risks, shape (runs, m); ``dense`` is nan if
        ``sparse_only``); ``risk_dense``, ``risk_sparse`` (total test risks, same shapes);
        ``min_count`` (smallest expert count ``min_i n_i``, shape (runs, m));
        ``sparse_expected`` (the exact conditional mean excess given the counts, shape (runs, m),
        ``inf`` where some ``n_i`` is ``d_i`` or ``d_i + 1`` (or 1, 2 when ``d_i = 1``), nan where
        some ``n_i < d_i`` (no closed form used)); ``bayes`` (``{"dense", "sparse"}`` Theorem 2 risks).
    """
    model = check_model(model)
    ns = np.array(sorted({v.check_int(n, "n", lower=1) for n in np.atleast_1d(ns)}))
    runs = v.check_int(runs, "runs", lower=1)
    rng = v.check_random_state(seed)
    _check_size(int(ns[-1]), model.d, "excess_curves(ns)")
    bayes = {"dense": float(theory.risk_dense(model)), "sparse": float(theory.risk_sparse(model))}
    shape = (runs, ns.size)
    out = {key: np.full(shape, np.nan) for key in ("dense", "sparse", "risk_dense", "risk_sparse", "sparse_expected")}
    out["min_count"] = np.zeros(shape, dtype=int)
    for r in range(runs):
        s = model.sample(int(ns[-1]), seed=rng)
        dense_acc = None if sparse_only else _Accumulator(model.d)
        block_acc = [_Accumulator(di) for di in model.dims]
        start = 0
        for j, n in enumerate(ns):
            xb, y, z = s.xbar[start:n], s.y[start:n], s.z[start:n]
            if dense_acc is not None:
                dense_acc.add(xb, y)
            for i in range(model.k):
                rows = z == i
                if rows.any():
                    block_acc[i].add(xb[rows][:, model.block_slice(i)], y[rows])
            start = n
            counts = np.bincount(s.z[:n], minlength=model.k)
            out["min_count"][r, j] = counts.min()
            out["risk_sparse"][r, j] = theory.risk_of_coefficients(model, [acc.solve() for acc in block_acc], "sparse")
            out["sparse"][r, j] = out["risk_sparse"][r, j] - bayes["sparse"]
            out["sparse_expected"][r, j] = sparse_expected_excess(model, counts)
            if dense_acc is not None:
                out["risk_dense"][r, j] = theory.risk_of_coefficients(model, _blocks(model, dense_acc.solve()), "dense")
                out["dense"][r, j] = out["risk_dense"][r, j] - bayes["dense"]
    out["n"] = ns
    out["bayes"] = bayes
    return out


def sparse_expected_excess(model: BlockModel, counts) -> float:
    """Exact mean excess risk of the sparse OLS experts given the expert counts ``n_i``.

    ``sum_i p_i R_i d_i / (n_i - d_i - 1)`` when every ``n_i >= d_i + 2`` (``R_i`` from
    :func:`moe_companion.theory.sparse_block_risks`); ``inf`` when some ``n_i`` is in
    ``{d_i - 1, d_i, d_i + 1}`` (``{1, 2}`` for ``d_i = 1``: the inverse-Wishart moment diverges);
    otherwise ``nan`` when some ``n_i <= d_i - 2`` (including ``n_i = 0``; not covered by this formula).
    """
    model = check_model(model)
    counts = np.asarray(counts)
    if counts.shape != (model.k,) or not np.issubdtype(counts.dtype, np.integer) or np.any(counts < 0):
        raise ValueError(f"counts must be k={model.k} non-negative integers")
    dims = np.array(model.dims)
    if np.any((counts >= np.maximum(dims - 1, 1)) & (counts <= dims + 1)):
        return float("inf")
    if np.any(counts < dims + 2):
        return float("nan")
    per = theory.sparse_block_risks(model)
    return float(np.sum(model.p * per * dims / (counts - dims - 1)))


def asymptotic_constants(model: BlockModel) -> dict:
    """Large-``n`` constants ``a`` in ``excess ~ a / n`` for both estimators.

    ``sparse = sum_i R_i d_i`` (exact OLS mean with ``n_i ~ n p_i``).  ``dense = tr(A^{-1} B)``
    with ``A = E[xbar xbar^T] = blockdiag(p_i Sigma_i) + sigma^2 I`` and
    ``B = E[xbar xbar^T eps^2] = sum_i p_i (C^{(i)} v_i + 2 u_i u_i^T)`` (Isserlis, per class: ``eps`` is the
    residual of the Bayes dense estimator, ``v_i = E_i eps^2``, ``u_i = E_i[xbar eps]``).
    """
    model = check_model(model)
    dims = np.array(model.dims)
    sparse = float(np.sum(theory.sparse_block_risks(model) * dims))
    bd = theory.bayes_dense(model)
    b = np.concatenate(bd)
    s2 = model.sigma2
    d = model.d
    a = s2 * np.eye(d)
    bmat = np.zeros((d, d))
    for i in range(model.k):
        sl = model.block_slice(i)
        a[sl, sl] += model.p[i] * model.covariances[i]
    for i in range(model.k):
        sl = model.block_slice(i)
        diff = model.betas[i] - bd[i]
        v_i = diff @ model.covariances[i] @ diff + s2 * b @ b
        u = -s2 * b
        u[sl] += model.covariances[i] @ diff
        c_i = s2 * np.eye(d)
        c_i[sl, sl] += model.covariances[i]
        bmat += model.p[i] * (c_i * v_i + 2.0 * np.outer(u, u))
    dense = float(np.trace(np.linalg.solve(a, bmat)))
    return {"sparse": sparse, "dense": dense}


# ------------------------------------------------------------------------------------ fits
#: name -> basis functions of n; the fitted curve is sum_j coef_j * basis_j(n).
FORMS = {
    "a/n²": (lambda n: n**-2.0,),
    "a/n": (lambda n: n**-1.0,),
    "a/n² + b/n": (lambda n: n**-2.0, lambda n: n**-1.0),
}


def fit_form(n, y, form: str) -> dict:
    """Least-squares fit of ``y`` against ``n`` in *relative* error (``min sum ((y - f)/y)^2``).

    Parameters
    ----------
    n, y : array_like, shape (m,)
        Sample sizes and positive excess risks (non-finite or non-positive points are dropped).
    form : {"a/n²", "a/n", "a/n² + b/n", "power"}
        ``"power"`` fits ``C n^(-alpha)`` by linear regression of ``log y`` on ``log n``.

    Returns
    -------
    dict
        ``coef`` (tuple: ``(a,)``, ``(a, b)`` or ``(C, alpha)``), ``rel_rmse`` (root mean squared
        relative residual), ``m`` (points used).
    """
    v.check_choice(form, "form", tuple(FORMS) + ("power",))
    n = v.check_array(n, "n", ndim=1)
    y = np.asarray(y, dtype=float)
    if y.shape != n.shape:
        raise ValueError(f"y must have the shape of n {n.shape}, got {y.shape}")
    ok = np.isfinite(y) & (y > 0) & (n > 0)
    n, y = n[ok], y[ok]
    need = 2 if form in ("power", "a/n² + b/n") else 1
    if n.size < need:
        raise ValueError(f"y must have at least {need} finite positive points to fit {form!r}, got {n.size}")
    if form == "power":
        slope, icpt = np.polyfit(np.log(n), np.log(y), 1)
        coef = (float(np.exp(icpt)), float(-slope))
        fitted = coef[0] * n ** (-coef[1])
    else:
        basis = np.column_stack([f(n) for f in FORMS[form]])
        sol, *_ = np.linalg.lstsq(basis / y[:, None], np.ones(n.size), rcond=None)
        coef = tuple(float(c) for c in sol)
        fitted = basis @ sol
    return {"coef": coef, "rel_rmse": float(np.sqrt(np.mean(((y - fitted) / y) ** 2))), "m": int(n.size)}


def fit_table(n, curves: dict, windows) -> list[dict]:
    """Fit every form to every curve over every window ``(n_lo, n_hi)``: one row per combination
    (``window``, ``curve``, ``form``, ``coef`` (tuple), ``rel_rmse``, ``points``)."""
    n = v.check_array(n, "n", ndim=1)
    rows = []
    for lo, hi in windows:
        sel = (n >= lo) & (n <= hi)
        for name, y in curves.items():
            y = np.asarray(y, dtype=float)
            for form in ("a/n²", "a/n² + b/n", "a/n", "power"):
                try:
                    f = fit_form(n[sel], y[sel], form)
                except ValueError:
                    continue
                rows.append(
                    {
                        "window": (lo, hi),
                        "curve": name,
                        "form": form,
                        "coef": f["coef"],
                        "rel_rmse": f["rel_rmse"],
                        "points": f["m"],
                    }
                )
    return rows


def paper_table1() -> list[dict]:
    """Table 1 of the paper (App. A.6.3), as printed: dense ``a/n²`` and sparse ``a/n² - b/n`` per run, and
    the ``n = a/b`` beyond which the printed sparse fit is negative."""
    dense = [2.67e3, 4.86e3, 2.92e3, 5.64e3]
    sparse = [(3.94e3, 13.76), (5.24e3, 19.10), (5.51e3, 11.10), (11.7e3, 70.85)]
    return [
        {"run": r + 1, "dense_a": d, "sparse_a": s[0], "sparse_b": s[1], "negative_beyond": s[0] / s[1]}
        for r, (d, s) in enumerate(zip(dense, sparse))
    ]


def fig6_model(seed: int = 0, *, d: int = 100, lam2: float = 8.0, sigma2: float = 1.0) -> BlockModel:
    """Fig. 6 / Table 1 setting: ``d = k`` one-dimensional experts, ``x ~ N(0, lam2)``, noise ``sigma2``,
    ``beta_i* ~ N(0, 1/d)`` (so ``||beta*||^2 ~ 1``) drawn with ``seed`` (one seed per run), uniform ``p``."""
    d = v.check_int(d, "d", lower=1)
    return BlockModel.isotropic([1] * d, lam2, sigma2=sigma2, beta_scale=1.0 / np.sqrt(d), seed=seed)


def fig3_model(seed: int = 0, *, p: int = 900, k: int = 12, rho: float = 0.5, sigma2: float = 1.0) -> BlockModel:
    """Fig. 3 setting: ``p`` features in ``k`` equal Toeplitz blocks (``rho^|a-b|``), ``beta_i* ~
    N(0, I/d_i)``, uniform ``p_i``.  ``k`` must divide ``p``."""
    p = v.check_int(p, "p", lower=1)
    k = v.check_int(k, "k", lower=1)
    if p % k:
        raise ValueError(f"k must divide p (equal blocks), got p={p}, k={k}")
    return BlockModel.toeplitz(k, p // k, rho, sigma2=sigma2, seed=seed)


# ----------------------------------------------------------------------------------- App. A.6.3
def case_study_excess(
    n, *, lam2: float = 8.0, sigma2: float = 1.0, beta: float = 1.0, reps: int = 20000, seed=0
) -> list[dict]:
    """App. A.6.3's one-dimensional expert: the paper's delta-method excess risk, the exact mean and Monte Carlo.

    ``x ~ N(0, lam2)``, ``xbar = x + e`` with ``e ~ N(0, sigma2)``, ``y = beta x``, OLS on ``n`` rows.
    Paper: ``beta^2 lam2 sigma2^2 / (n (lam2 + sigma2)^2)``.  Exact: ``R / (n - 2)`` with the Bayes risk
    ``R = beta^2 lam2 sigma2 / (lam2 + sigma2)`` (finite for ``n >= 3``).  Monte Carlo: mean and standard
    error of the exact excess ``(lam2 + sigma2)(beta_hat - beta_B)^2`` over ``reps`` training sets.

    Returns one dict per ``n``: ``n``, ``paper``, ``exact``, ``mc``, ``mc_se``.
    """
    lam2 = v.check_scalar(lam2, "lam2", lower=0.0, lower_inclusive=False)
    sigma2 = v.check_scalar(sigma2, "sigma2", lower=0.0)
    beta = v.check_scalar(beta, "beta")
    reps = v.check_int(reps, "reps", lower=2)
    ns = [v.check_int(nn, "n", lower=3) for nn in np.atleast_1d(n)]
    for nn in ns:
        _check_size(reps, nn, "case_study_excess(reps, n)")
    rng = v.check_random_state(seed)
    r_bayes = beta**2 * lam2 * sigma2 / (lam2 + sigma2)
    beta_b = beta * lam2 / (lam2 + sigma2)
    rows = []
    for nn in ns:
        x = rng.normal(0.0, np.sqrt(lam2), size=(reps, nn))
        xb = x + rng.normal(0.0, np.sqrt(sigma2), size=(reps, nn))
        bh = beta * np.einsum("ij,ij->i", xb, x) / np.einsum("ij,ij->i", xb, xb)
        ex = (lam2 + sigma2) * (bh - beta_b) ** 2
        rows.append(
            {
                "n": nn,
                "paper": beta**2 * lam2 * sigma2**2 / (nn * (lam2 + sigma2) ** 2),
                "exact": r_bayes / (nn - 2),
                "mc": float(ex.mean()),
                "mc_se": float(ex.std(ddof=1) / np.sqrt(reps)),
            }
        )
    return rows


# ---------------------------------------------------------------------------------- statistics
def mean_interval(x, *, level: float = 0.95) -> dict:
    """Mean of ``x`` (shape (runs,)) with its standard error and Student-t interval: ``mean``, ``se``, ``lo``,
    ``hi``, ``runs``."""
    x = v.check_array(x, "x", ndim=1)
    if x.size < 2:
        raise ValueError(f"x must hold at least 2 values, got {x.size}")
    mean, se = float(x.mean()), float(x.std(ddof=1) / np.sqrt(x.size))
    t = float(stats.t.ppf(0.5 + level / 2, x.size - 1))
    return {"mean": mean, "se": se, "lo": mean - t * se, "hi": mean + t * se, "runs": int(x.size)}


def paired_log_ratio(a, b, *, level: float = 0.95) -> dict:
    """Mean over runs of ``log(a / b)`` (paired: run ``r`` of ``a`` and of ``b`` share their sample), with
    its standard error and a Student-t interval; shape (runs,) or (runs, m) (one result per column).

    ``> 0`` means ``a`` is larger. Returns ``mean``, ``se``, ``lo``, ``hi`` (floats or arrays) and ``runs``.
    """
    a = v.check_array(a, "a", ndim=(1, 2), lower=0.0, lower_inclusive=False)
    b = v.check_array(b, "b", shape=a.shape, lower=0.0, lower_inclusive=False)
    runs = a.shape[0]
    if runs < 2:
        raise ValueError(f"a must hold at least 2 runs (rows), got {runs}")
    d = np.log(a) - np.log(b)
    mean = d.mean(axis=0)
    se = d.std(axis=0, ddof=1) / np.sqrt(runs)
    t = float(stats.t.ppf(0.5 + level / 2, runs - 1))
    out = {"mean": mean, "se": se, "lo": mean - t * se, "hi": mean + t * se}
    if a.ndim == 1:
        out = {k: float(x) for k, x in out.items()}
    out["runs"] = runs
    return out


def bootstrap_interval(x, statistic, *, reps: int = 2000, level: float = 0.95, seed=0) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic(sample)`` over resamples (with replacement) of ``x``
    (shape (runs,)): ``(lo, hi)`` at ``level``."""
    x = v.check_array(x, "x", ndim=1)
    if x.size < 2:
        raise ValueError(f"x must hold at least 2 values, got {x.size}")
    reps = v.check_int(reps, "reps", lower=10)
    rng = v.check_random_state(seed)
    idx = rng.integers(0, x.size, size=(reps, x.size))
    boot = np.array([statistic(x[i]) for i in idx])
    return float(np.quantile(boot, 0.5 - level / 2)), float(np.quantile(boot, 0.5 + level / 2))


# ------------------------------------------------------------------------------- App. A.6.1 and A.6.2
def a61_bias_terms(model: BlockModel, n: int, seed=0) -> dict:
    """App. A.6.1 on one training sample: the dense estimator's true bias term and the paper's expression.

    True: ``(beta_hat - beta*)^T Sigma (beta_hat - beta*)`` with ``Sigma = E[x x^T] = blockdiag(p_i Sigma_i)``
    and ``beta_hat = Xbar^+ Y``. Paper: the same quadratic form of ``-(Xbar^T Xbar)^+ Xbar^T E beta*``, which
    equals ``beta_hat - beta*`` only when ``Xbar`` has full column rank (``n >= d``); for ``n < d`` the
    minimum-norm fit also misses ``-(I - P) beta*`` (``P`` the projection on ``Xbar``'s row space).
    Returns ``true``, ``paper`` and ``rank``.
    """
    model = check_model(model)
    n = v.check_int(n, "n", lower=1)
    _check_size(n, model.d, "a61_bias_terms(n)")
    s = model.sample(n, seed=v.check_random_state(seed))
    beta = model.beta
    e = s.xbar - s.x
    pinv = np.linalg.pinv(s.xbar)
    diff_true = pinv @ s.y - beta
    diff_paper = -(pinv @ (e @ beta))
    weights = [model.p[i] * model.covariances[i] for i in range(model.k)]

    def quad(dv):
        return float(sum(b @ w @ b for b, w in zip(_blocks(model, dv), weights)))

    return {"true": quad(diff_true), "paper": quad(diff_paper), "rank": int(np.linalg.matrix_rank(s.xbar))}


def variance_terms(model: BlockModel, n_i, *, reps: int = 100, seed=0) -> dict:
    """App. A.6.2 for expert 0 of ``model`` on exactly ``n_i`` of its rows: the true variance term and the
    paper's expression, by Monte Carlo over ``reps`` training sets per ``n_i``.

    With ``X_i`` the clean and ``Xbar_i = X_i + E_i`` the noisy rows and ``beta_hat_i = Xbar_i^+ X_i beta_i*``:

    * ``true``: ``sigma^2 ||beta_hat_i||^2`` (the variance term ``E_e (e^T beta_hat)^2`` of A.6);
    * ``step1``: ``sigma^2 tr[X_i^T (Xbar_i Xbar_i^T)^+ X_i]`` (A.6.2 after replacing ``beta* beta*^T`` by I);
    * ``paper``: ``sigma^2 tr[Xbar_i^T (Xbar_i Xbar_i^T)^+ Xbar_i]`` (after also writing the noisy matrix
      for the clean one, A.6.2's ``sum_r (lam_r + sigma^2) z_r^T (Xbar Xbar^T)^+ z_r``), which is
      ``sigma^2 rank(Xbar_i)`` on every sample; ``rank_dev`` is the largest ``|paper / sigma^2 - rank|``;
    * ``exact``: the closed-form mean of ``true`` for ``n_i >= d_i + 2``,
      ``sigma^2 (||b_i||^2 + R_i tr((Sigma_i + sigma^2 I)^{-1}) / (n_i - d_i - 1))`` (``b_i`` the Bayes sparse
      block, ``R_i`` its risk; inverse-Wishart mean), nan below; ``limit``: ``sigma^2 ||b_i||^2``.

    Each of ``true``, ``step1``, ``paper`` is a dict of arrays ``mean`` and ``se`` over ``n_i``.
    """
    model = check_model(model)
    ns = np.array([v.check_int(nn, "n_i", lower=1) for nn in np.atleast_1d(n_i)])
    reps = v.check_int(reps, "reps", lower=2)
    for nn in ns:
        _check_size(int(nn), model.dims[0], "variance_terms(n_i)")
    rng = v.check_random_state(seed)
    s2, d0, beta0 = model.sigma2, model.dims[0], model.betas[0]
    b0 = theory.bayes_sparse(model)[0]
    r0 = float(theory.sparse_block_risks(model)[0])
    tr_inv = float(np.trace(np.linalg.inv(model.covariances[0] + s2 * np.eye(d0))))
    vals = {key: np.zeros((ns.size, reps)) for key in ("true", "step1", "paper")}
    rank_dev = 0.0
    for j, nn in enumerate(ns):
        for r in range(reps):
            x = model.sample_block(0, int(nn), rng)
            xb = x + rng.normal(0.0, np.sqrt(s2), size=x.shape)
            u, sv, vt = np.linalg.svd(xb, full_matrices=False)
            keep = sv > sv[0] * max(xb.shape) * np.finfo(float).eps
            ur, svr = u[:, keep], sv[keep]
            bh = vt[keep].T @ ((ur.T @ (x @ beta0)) / svr)  # minimum-norm fit Xbar^+ y
            vals["true"][j, r] = s2 * bh @ bh
            vals["step1"][j, r] = s2 * np.sum(((ur.T @ x) / svr[:, None]) ** 2)
            vals["paper"][j, r] = s2 * np.sum(((ur.T @ xb) / svr[:, None]) ** 2)
            rank_dev = max(rank_dev, abs(vals["paper"][j, r] / s2 - keep.sum()) if s2 > 0 else 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        exact = np.where(ns >= d0 + 2, s2 * (b0 @ b0 + r0 * tr_inv / (ns - d0 - 1.0)), np.nan)
    out = {key: {"mean": a.mean(axis=1), "se": a.std(axis=1, ddof=1) / np.sqrt(reps)} for key, a in vals.items()}
    out.update(
        {
            "n_i": ns,
            "exact": exact,
            "limit": float(s2 * b0 @ b0),
            "rank_dev": float(rank_dev),
            "d_i": int(d0),
            "reps": reps,
        }
    )
    return out
