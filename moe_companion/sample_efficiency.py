"""Sample efficiency of the minimum-norm estimators (Section 4.5, App. A.6, Fig. 2, 3, 6, Table 1).

Estimators on a finite sample ``(Xbar, Y)`` of the block model:

* dense: ``beta_hat = Xbar^+ Y`` (all ``n`` rows, all ``d`` columns);
* sparse: for each expert ``beta_hat_i = Xbar_i^+ Y_i`` on the rows with ``z = i`` and the columns of
  block ``i`` (perfect routing); an expert without rows gets ``beta_hat_i = 0``.

Their test risks are exact quadratic forms (no test sampling):

``R_dense(b)  = sum_i p_i (b_i - beta_i*)^T Sigma_i (b_i - beta_i*) + sigma^2 ||b||^2``
``R_sparse(b) = sum_i p_i [(b_i - beta_i*)^T Sigma_i (b_i - beta_i*) + sigma^2 ||b_i||^2]``

and the excess risk subtracts each estimator's own Bayes risk (Theorem 2).

Exact facts used on the page.  For expert ``i`` the pair ``(xbar_{S_i}, y)`` is jointly Gaussian, so
``y = xbar_{S_i}^T b_i + eps`` with ``b_i`` the Bayes sparse block and ``eps ~ N(0, R_i)``
*independent* of ``xbar_{S_i}`` (``R_i = sigma^2 beta_i*^T Sigma_i (Sigma_i + sigma^2 I)^{-1} beta_i*``).
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

from . import _validate as v
from .model import BlockModel, check_model
from .simulate import least_squares, min_norm

__all__ = [
    "min_norm",
    "risk_dense",
    "risk_sparse",
    "bayes_risks",
    "fit_estimators",
    "excess_curves",
    "sampled_risk",
    "sparse_expected_excess",
    "asymptotic_constants",
    "FORMS",
    "fit_form",
    "fit_table",
    "paper_table1",
    "fig6_model",
    "fig3_model",
    "log_grid",
    "run_traces",
    "median_traces",
    "sigma_traces",
    "crossover_rows",
    "case_study_excess",
]


def _quad_err(model: BlockModel, blocks) -> np.ndarray:
    """``(b_i - beta_i*)^T Sigma_i (b_i - beta_i*)`` per block, shape (k,)."""
    return np.array([(b - bs) @ c @ (b - bs) for b, bs, c in zip(blocks, model.betas, model.covariances)])


def risk_dense(model: BlockModel, beta) -> float:
    """Exact test risk of a dense estimator ``beta`` (shape (d,)) under the model's noise."""
    model = check_model(model)
    beta = v.check_array(beta, "beta", shape=(model.d,))
    blocks = [beta[model.block_slice(i)] for i in range(model.k)]
    return float(model.p @ _quad_err(model, blocks) + model.sigma2 * beta @ beta)


def risk_sparse(model: BlockModel, betas) -> float:
    """Exact test risk of sparse experts ``betas`` (k arrays of shapes (d_i,)) with perfect routing."""
    model = check_model(model)
    betas = [v.check_array(b, f"betas[{i}]", shape=(di,)) for i, (b, di) in enumerate(zip(betas, model.dims))]
    if len(betas) != model.k:
        raise ValueError(f"betas must list k={model.k} vectors, got {len(betas)}")
    norms = np.array([b @ b for b in betas])
    return float(model.p @ (_quad_err(model, betas) + model.sigma2 * norms))


def bayes_risks(model: BlockModel) -> dict:
    """Theorem 2: ``sparse``/``dense`` Bayes risks and the per-block sparse risks ``R_i`` (shape (k,))."""
    model = check_model(model)
    s2 = model.sigma2
    per = np.array([s2 * np.sum(lam * b**2 / (lam + s2)) for (lam, _), b in zip(model.eigh, model.beta_eigen)])
    dense = sum(p * s2 * np.sum(lam * b**2 / (p * lam + s2)) for p, (lam, _), b in zip(model.p, model.eigh, model.beta_eigen))
    return {"sparse": float(model.p @ per), "dense": float(dense), "per_block": per}


def fit_estimators(model: BlockModel, xbar, y, z) -> tuple[np.ndarray, list[np.ndarray]]:
    """Dense and sparse minimum-norm estimators on one sample (:func:`moe_companion.simulate.least_squares`)."""
    return least_squares(model, xbar, y, z)


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


def excess_curves(model: BlockModel, ns, *, runs: int = 4, seed: int = 0, sparse_only: bool = False) -> dict:
    """Exact excess risks of the dense and sparse minimum-norm estimators along an ``n`` grid.

    Each run draws one sample of ``max(ns)`` rows (seed ``seed + run``) and evaluates the estimators
    on its nested prefixes of sizes ``ns`` (like one growing data set per run).

    Returns
    -------
    dict
        ``n`` (shape (m,)); ``dense``, ``sparse`` (excess risks, shape (runs, m); ``dense`` is nan if
        ``sparse_only``); ``risk_dense``, ``risk_sparse`` (total test risks, same shapes);
        ``min_count`` (smallest expert count ``min_i n_i``, shape (runs, m));
        ``sparse_expected`` (the exact conditional mean excess given the counts, shape (runs, m),
        ``inf`` where some ``n_i`` is ``d_i`` or ``d_i + 1`` (or 1, 2 when ``d_i = 1``), nan where
        some ``n_i < d_i`` (no closed form used)); ``bayes`` (:func:`bayes_risks`).
    """
    model = check_model(model)
    ns = np.array(sorted({v.check_int(n, "n", lower=1) for n in np.atleast_1d(ns)}))
    runs = v.check_int(runs, "runs", lower=1)
    seed = v.check_seed(seed)
    br = bayes_risks(model)
    shape = (runs, ns.size)
    out = {key: np.full(shape, np.nan) for key in ("dense", "sparse", "risk_dense", "risk_sparse", "sparse_expected")}
    out["min_count"] = np.zeros(shape, dtype=int)
    for r in range(runs):
        s = model.sample(int(ns[-1]), seed=seed + r)
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
            bs = [acc.solve() for acc in block_acc]
            out["risk_sparse"][r, j] = risk_sparse(model, bs)
            out["sparse"][r, j] = out["risk_sparse"][r, j] - br["sparse"]
            out["sparse_expected"][r, j] = sparse_expected_excess(model, counts)
            if dense_acc is not None:
                out["risk_dense"][r, j] = risk_dense(model, dense_acc.solve())
                out["dense"][r, j] = out["risk_dense"][r, j] - br["dense"]
    out["n"] = ns
    out["bayes"] = br
    return out


def sparse_expected_excess(model: BlockModel, counts) -> float:
    """Exact mean excess risk of the sparse OLS experts given the expert counts ``n_i``.

    ``sum_i p_i R_i d_i / (n_i - d_i - 1)`` when every ``n_i >= d_i + 2`` (``R_i`` from
    :func:`bayes_risks`); ``inf`` when some ``n_i`` is in ``{d_i - 1, d_i, d_i + 1}`` (``{1, 2}`` for
    ``d_i = 1``: the inverse-Wishart moment diverges); otherwise ``nan`` when some ``n_i <= d_i - 2``
    (including ``n_i = 0``; not covered by this formula).
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
    per = bayes_risks(model)["per_block"]
    return float(np.sum(model.p * per * dims / (counts - dims - 1)))


def sampled_risk(model: BlockModel, *, dense=None, sparse=None, n_test: int = 100000, seed: int = 0) -> tuple[float, float]:
    """Monte Carlo test risk ``(mean, standard error)`` of a dense vector or of sparse experts.

    Exactly one of ``dense`` (shape (d,)) and ``sparse`` (k arrays) must be given.  Used to check
    the exact quadratic forms.
    """
    model = check_model(model)
    if (dense is None) == (sparse is None):
        raise ValueError("give exactly one of dense= and sparse=")
    s = model.sample(v.check_int(n_test, "n_test", lower=2), seed=v.check_seed(seed))
    if dense is not None:
        pred = s.xbar @ v.check_array(dense, "dense", shape=(model.d,))
    else:
        pred = np.empty(s.y.size)
        for i in range(model.k):
            rows = s.z == i
            pred[rows] = s.xbar[rows][:, model.block_slice(i)] @ sparse[i]
    e2 = (pred - s.y) ** 2
    return float(e2.mean()), float(e2.std(ddof=1) / np.sqrt(e2.size))


def asymptotic_constants(model: BlockModel) -> dict:
    """Large-``n`` constants ``a`` in ``excess ~ a / n`` for both estimators.

    ``sparse = sum_i R_i d_i`` (exact OLS mean with ``n_i ~ n p_i``).  ``dense = tr(A^{-1} B)``
    with ``A = E[xbar xbar^T] = blockdiag(p_i Sigma_i) + sigma^2 I`` and
    ``B = E[xbar xbar^T eps^2] = sum_i p_i (C^{(i)} v_i + 2 u_i u_i^T)`` (Isserlis, per class: ``eps`` is the
    residual of the Bayes dense estimator, ``v_i = E_i eps^2``, ``u_i = E_i[xbar eps]``).
    """
    from .theory import bayes_dense

    model = check_model(model)
    br = bayes_risks(model)
    dims = np.array(model.dims)
    sparse = float(np.sum(br["per_block"] * dims))
    bd = bayes_dense(model)
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
    "a/n²": (lambda n: n ** -2.0,),
    "a/n": (lambda n: n ** -1.0,),
    "a/n² + b/n": (lambda n: n ** -2.0, lambda n: n ** -1.0),
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
    """Fit every form to every curve over every window ``(n_lo, n_hi)``: one row per combination."""
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
                rows.append({"window": f"[{lo:g}, {hi:g}]", "curve": name, "form": form,
                             "coef": ", ".join(f"{c:.4g}" for c in f["coef"]), "rel. RMSE": f["rel_rmse"],
                             "points": f["m"]})
    return rows


def paper_table1() -> list[dict]:
    """Table 1 of the paper (App. A.6.3): fitted dense ``a/n²`` and sparse ``a/n² - b/n`` per run."""
    dense = [2.67e3, 4.86e3, 2.92e3, 5.64e3]
    sparse = [(3.94e3, -13.76), (5.24e3, -19.10), (5.51e3, -11.10), (11.7e3, -70.85)]
    return [{"run": r + 1, "dense a": d, "sparse a": s[0], "sparse b": s[1], "sparse fit < 0 beyond n =": -s[0] / s[1]}
            for r, (d, s) in enumerate(zip(dense, sparse))]


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


# ------------------------------------------------------------------------------ chapter helpers
def _sig(a, digits: int = 4) -> list:
    """Round to ``digits`` significant figures; non-finite values become ``None`` (gaps in plots)."""
    a = np.asarray(a, dtype=float).ravel()
    return [float(f"{x:.{digits}g}") if np.isfinite(x) else None for x in a]


def log_grid(lo: int, hi: int, num: int) -> np.ndarray:
    """About ``num`` distinct integers log-spaced in ``[lo, hi]``."""
    lo = v.check_int(lo, "lo", lower=1)
    hi = v.check_int(hi, "hi", lower=lo)
    num = v.check_int(num, "num", lower=2)
    return np.unique(np.round(np.logspace(np.log10(lo), np.log10(hi), num)).astype(int))


def run_traces(curves: dict, run: int, *, window=(1000, np.inf), model: BlockModel | None = None) -> list:
    """Plotly traces for one run of :func:`excess_curves`: both excess risks, the paper's fitted forms
    over ``window`` (dense ``a/n²``, sparse ``a/n² + b/n``) and, if ``model`` is given, the ``a/n``
    asymptotes of :func:`asymptotic_constants`."""
    import plotly.graph_objects as go

    n = curves["n"].astype(float)
    r = v.check_int(run, "run", lower=0, upper=curves["dense"].shape[0] - 1)
    sel = (n >= window[0]) & (n <= window[1])
    fd = fit_form(n[sel], curves["dense"][r, sel], "a/n²")["coef"]
    fs = fit_form(n[sel], curves["sparse"][r, sel], "a/n² + b/n")["coef"]
    traces = [
        go.Scatter(x=n, y=_sig(curves["dense"][r]), name="dense (exact excess risk)", mode="markers",
                   marker=dict(symbol="square", color="#1f77b4")),
        go.Scatter(x=n, y=_sig(curves["sparse"][r]), name="sparse (exact excess risk)", mode="markers",
                   marker=dict(symbol="circle", color="#d62728")),
        go.Scatter(x=n[sel], y=_sig(fd[0] / n[sel] ** 2), name=f"paper form a/n², a={fd[0]:.3g}", mode="lines",
                   line=dict(color="#1f77b4", dash="dash")),
        go.Scatter(x=n[sel], y=_sig(fs[0] / n[sel] ** 2 + fs[1] / n[sel]),
                   name=f"paper form a/n² + b/n, a={fs[0]:.3g}, b={fs[1]:.3g}", mode="lines",
                   line=dict(color="#d62728", dash="dash")),
    ]
    if model is not None:
        traces += _asymptotic_traces(model, n)
    return traces


def _asymptotic_traces(model: BlockModel, n: np.ndarray) -> list:
    """The large-n theory lines ``c/n`` of :func:`asymptotic_constants`, dense and sparse."""
    import plotly.graph_objects as go

    ac = asymptotic_constants(model)
    return [go.Scatter(x=n, y=_sig(ac[name] / n), name=f"theory {name} {ac[name]:.3g}/n", mode="lines",
                       line=dict(color=color, dash="dot"))
            for name, color in (("dense", "#1f77b4"), ("sparse", "#d62728"))]


def median_traces(curves: dict, *, model: BlockModel | None = None, what: str = "excess") -> list:
    """Plotly traces: median (markers) and mean (lines) over runs of the dense and sparse curves.

    ``what = "excess"`` plots excess risks, ``"risk"`` the total test risks with the Bayes risks.
    """
    import plotly.graph_objects as go

    v.check_choice(what, "what", ("excess", "risk"))
    n = curves["n"].astype(float)
    kd, ks = ("dense", "sparse") if what == "excess" else ("risk_dense", "risk_sparse")
    with np.errstate(invalid="ignore"):
        traces = [
            go.Scatter(x=n, y=_sig(np.median(curves[kd], axis=0)), name="dense, median over runs",
                       mode="lines+markers", marker=dict(symbol="square"), line=dict(color="#1f77b4")),
            go.Scatter(x=n, y=_sig(np.median(curves[ks], axis=0)), name="sparse, median over runs",
                       mode="lines+markers", line=dict(color="#d62728")),
            go.Scatter(x=n, y=_sig(np.mean(curves[kd], axis=0)), name="dense, mean over runs", mode="lines",
                       line=dict(color="#1f77b4", dash="dash")),
            go.Scatter(x=n, y=_sig(np.mean(curves[ks], axis=0)), name="sparse, mean over runs", mode="lines",
                       line=dict(color="#d62728", dash="dash")),
        ]
    if what == "risk":
        b = curves["bayes"]
        traces += [
            go.Scatter(x=n, y=_sig(np.full(n.size, b["dense"])), name="dense Bayes risk (Thm 2)", mode="lines",
                       line=dict(color="#1f77b4", dash="dot")),
            go.Scatter(x=n, y=_sig(np.full(n.size, b["sparse"])), name="sparse Bayes risk (Thm 2)", mode="lines",
                       line=dict(color="#d62728", dash="dot")),
        ]
    elif model is not None:
        traces += _asymptotic_traces(model, n)
    return traces


def sigma_traces(sigma2: float = 1.0, *, ns=None, runs: int = 3, seed: int = 0) -> list:
    """Plotly traces for the Fig. 6 setting at noise ``sigma2``: medians over ``runs`` and the ``a/n`` theory."""
    ns = log_grid(50, 10000, 14) if ns is None else ns
    models = [fig6_model(seed + r, sigma2=float(sigma2)) for r in range(runs)]
    parts = [excess_curves(m, ns, runs=1, seed=seed + 100 + r) for r, m in enumerate(models)]
    curves = {key: np.concatenate([p[key] for p in parts]) for key in ("dense", "sparse")}
    curves["n"] = parts[0]["n"]
    return median_traces(curves, model=models[0])


def crossover_rows(curves: dict, label: str) -> list[dict]:
    """Per ``n``: median excess and total risk of both estimators and which is lower."""
    rows = []
    for j, n in enumerate(curves["n"]):
        md, ms = np.median(curves["dense"][:, j]), np.median(curves["sparse"][:, j])
        rd, rs = np.median(curves["risk_dense"][:, j]), np.median(curves["risk_sparse"][:, j])
        rows.append({"setting": label, "n": int(n), "median excess dense": md, "median excess sparse": ms,
                     "lower excess": "sparse" if ms < md else "dense",
                     "median risk dense": rd, "median risk sparse": rs,
                     "lower risk": "sparse" if rs < rd else "dense"})
    return rows


def case_study_excess(n, *, lam2: float = 8.0, sigma2: float = 1.0, beta: float = 1.0, reps: int = 20000,
                      seed: int = 0) -> list[dict]:
    """App. A.6.3's one-dimensional expert: the paper's delta-method excess risk, the exact mean and Monte Carlo.

    ``x ~ N(0, lam2)``, ``xbar = x + e`` with ``e ~ N(0, sigma2)``, ``y = beta x``, OLS on ``n`` rows.
    Paper: ``beta^2 lam2 sigma2^2 / (n (lam2 + sigma2)^2)``.  Exact: ``R / (n - 2)`` with the Bayes risk
    ``R = beta^2 lam2 sigma2 / (lam2 + sigma2)`` (finite for ``n >= 3``).  Monte Carlo: mean and standard
    error of the exact excess ``(lam2 + sigma2)(beta_hat - beta_B)^2`` over ``reps`` training sets.
    """
    lam2 = v.check_scalar(lam2, "lam2", lower=0.0, lower_inclusive=False)
    sigma2 = v.check_scalar(sigma2, "sigma2", lower=0.0)
    beta = v.check_scalar(beta, "beta")
    reps = v.check_int(reps, "reps", lower=2)
    rng = np.random.default_rng(v.check_seed(seed))
    r_bayes = beta**2 * lam2 * sigma2 / (lam2 + sigma2)
    beta_b = beta * lam2 / (lam2 + sigma2)
    rows = []
    for nn in np.atleast_1d(n):
        nn = v.check_int(nn, "n", lower=3)
        x = rng.normal(0.0, np.sqrt(lam2), size=(reps, nn))
        xb = x + rng.normal(0.0, np.sqrt(sigma2), size=(reps, nn))
        bh = beta * np.einsum("ij,ij->i", xb, x) / np.einsum("ij,ij->i", xb, xb)
        ex = (lam2 + sigma2) * (bh - beta_b) ** 2
        rows.append({"n": nn, "paper (A.6.3)": beta**2 * lam2 * sigma2**2 / (nn * (lam2 + sigma2) ** 2),
                     "exact R/(n-2)": r_bayes / (nn - 2), "Monte Carlo": float(ex.mean()),
                     "MC SE": float(ex.std(ddof=1) / np.sqrt(reps))})
    return rows
