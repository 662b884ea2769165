"""Theorem 1: routing reduces to classification (Section 4.1, Appendix A.7).

Three routers are compared on the block model of :mod:`moe_companion.model`:

* ``"printed"``  -- the QDA rule exactly as printed in App. A.7: per-block sample covariance
  ``C_hat_i = X_{i,S_i}^T X_{i,S_i} / n_i`` of the block's *own* features and the score
  ``g_i(x) = -1/2 log|C_hat_i| - 1/2 x_{S_i}^T C_hat_i^{-1} x_{S_i}``.
* ``"corrected"`` -- the same plug-in covariances inside the Bayes rule derived below (it uses the
  known ``sigma^2`` that App. A.7 assumes but the printed score never uses).
* ``"bayes"``    -- the Bayes-optimal rule with the true covariances.

Derivation of the Bayes rule.  Given ``z = i`` the observed features are
``xbar ~ N(0, C^{(i)})`` with ``C^{(i)} = blockdiag(sigma^2 I, ..., Sigma_i + sigma^2 I, ..., sigma^2 I)``
(all ``d`` features: the inactive blocks carry pure noise).  With ``C_i = Sigma_i + sigma^2 I``,

``log p(xbar | z=i) = const - 1/2 log|C_i| - 1/2 x_{S_i}^T C_i^{-1} x_{S_i}
+ 1/2 d_i log sigma^2 + 1/2 ||x_{S_i}||^2 / sigma^2``

(the terms common to every class are dropped), so the Bayes router maximises
``log p_i`` plus that expression.  The printed score lacks ``+ 1/2 ||x_{S_i}||^2 / sigma^2 +
1/2 d_i log sigma^2``: it never weighs the evidence that the *other* blocks are noise only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _validate as v
from .model import BlockModel, check_model

__all__ = [
    "ROUTER_KINDS",
    "MAX_TEST_ELEMENTS",
    "QDARouter",
    "balanced_counts",
    "sample_balanced",
    "fit_router",
    "bayes_router",
    "sklearn_qda",
    "accuracy_curve",
    "routed_risk",
    "router_model",
    "loglog_slope",
    "excess_curve",
    "routing_risk_rows",
    "printed_rule_true_covariances",
    "misrouting_cost",
    "posterior_moe_risk",
    "route_probabilities",
]

ROUTER_KINDS = ("printed", "corrected", "bayes")
#: Largest sample (rows x d features) one call draws: 2**27 float64 = 1 GiB.
MAX_TEST_ELEMENTS = 2**27


def _check_rows(n: int, d: int, name: str) -> int:
    """``n`` as an int >= 1 whose ``n x d`` float64 sample stays under :data:`MAX_TEST_ELEMENTS`."""
    return v.check_size(v.check_int(n, name, lower=1), d, name, limit=MAX_TEST_ELEMENTS)


@dataclass(frozen=True)
class QDARouter:
    """A fitted block-QDA router.

    Attributes
    ----------
    kind : {"printed", "corrected", "bayes"}
        Which score is used (see the module docstring).
    offsets : ndarray of int, shape (k + 1,)
        Block boundaries in the feature vector.
    covs : tuple of k arrays, shapes (d_i, d_i)
        Covariances of each block's own features under its own class (``C_hat_i`` or ``C_i``).
    log_prior : ndarray, shape (k,)
        ``log p_i`` (zeros for ``"printed"``, which has no prior term).
    sigma2 : float
        Noise variance used by ``"corrected"``/``"bayes"`` (ignored by ``"printed"``).
    """

    kind: str
    offsets: np.ndarray
    covs: tuple
    log_prior: np.ndarray
    sigma2: float

    @property
    def k(self) -> int:
        """Number of experts."""
        return len(self.covs)

    def scores(self, x) -> np.ndarray:
        """Discriminant scores, shape (m, k), for test points ``x`` of shape (m, d)."""
        x = v.check_array(x, "x", ndim=2)
        d = int(self.offsets[-1])
        if x.shape[1] != d:
            raise ValueError(f"x must have d={d} columns, got {x.shape[1]}")
        out = np.empty((x.shape[0], self.k))
        for i, c in enumerate(self.covs):
            xs = x[:, self.offsets[i] : self.offsets[i + 1]]
            chol = np.linalg.cholesky(c)
            w = np.linalg.solve(chol, xs.T)  # (d_i, m)
            quad = np.einsum("ij,ij->j", w, w)
            logdet = 2.0 * np.log(np.diag(chol)).sum()
            s = -0.5 * logdet - 0.5 * quad
            if self.kind != "printed":
                if self.sigma2 > 0:
                    s = s + 0.5 * xs.shape[1] * np.log(self.sigma2) + 0.5 * np.einsum("ij,ij->i", xs, xs) / self.sigma2
                else:  # noiseless: the active block is the only non-zero one
                    s = np.where(np.einsum("ij,ij->i", xs, xs) > 0, np.inf, -np.inf)
                s = s + self.log_prior[i]
            out[:, i] = s
        return out

    def predict(self, x) -> np.ndarray:
        """Routed expert ``argmax_i score_i(x)`` for each row of ``x``, shape (m,)."""
        return np.argmax(self.scores(x), axis=1)


def balanced_counts(n: int, p) -> np.ndarray:
    """Per-expert sample counts ``n_i`` (sum ``n``) closest to ``n p_i`` (largest remainders).

    The paper assumes a balanced loading ``n_i ~ n p_i`` (App. A.7); training sets are drawn with
    these exact counts so that accuracy curves are not dominated by random class sizes.
    """
    n = v.check_int(n, "n", lower=1)
    p = v.check_probabilities(p, "p")
    raw = n * p
    counts = np.floor(raw).astype(int)
    rest = n - counts.sum()
    counts[np.argsort(-(raw - counts), kind="stable")[:rest]] += 1
    return counts


def sample_balanced(model: BlockModel, n: int, seed=0) -> tuple[np.ndarray, np.ndarray]:
    """A training set with exactly :func:`balanced_counts` rows per expert.

    Returns
    -------
    xbar : ndarray, shape (n, d)
        Noisy features.
    z : ndarray of int, shape (n,)
        Expert labels (sorted by expert).
    """
    model = check_model(model)
    n = _check_rows(n, model.d, "n")
    counts = balanced_counts(n, model.p)
    rng = v.check_random_state(seed)
    z = np.repeat(np.arange(model.k), counts)
    x = np.zeros((n, model.d))
    start = 0
    for i, ni in enumerate(counts):
        if ni:
            x[start : start + ni, model.block_slice(i)] = model.sample_block(i, int(ni), rng)
        start += ni
    xbar = x + rng.normal(0.0, np.sqrt(model.sigma2), size=x.shape)
    return xbar, z


def fit_router(kind: str, xbar, z, dims, sigma2: float | None = None) -> QDARouter:
    """Fit a plug-in router from labelled training data.

    Parameters
    ----------
    kind : {"printed", "corrected"}
        ``"printed"``: App. A.7 as written.  ``"corrected"``: the same ``C_hat_i`` in the Bayes
        rule, with empirical priors ``n_i / n`` and the known ``sigma2``.
    xbar : array_like, shape (n, d)
        Noisy training features.
    z : array_like of int, shape (n,)
        Expert labels in ``0..k-1``.
    dims : sequence of int
        Block dimensions ``d_i`` (``sum = d``).
    sigma2 : float, optional
        Feature-noise variance (required for ``"corrected"``).

    Raises
    ------
    ValueError
        If a block has ``n_i <= d_i`` training rows (``C_hat_i`` would be singular).
    """
    v.check_choice(kind, "kind", ("printed", "corrected"))
    dims = [v.check_int(di, f"dims[{i}]", lower=1) for i, di in enumerate(dims)]
    xbar = v.check_array(xbar, "xbar", ndim=2)
    offsets = np.concatenate([[0], np.cumsum(dims)]).astype(int)
    if xbar.shape[1] != offsets[-1]:
        raise ValueError(f"xbar must have sum(dims)={offsets[-1]} columns, got {xbar.shape[1]}")
    z = np.asarray(z)
    if z.shape != (xbar.shape[0],) or not np.issubdtype(z.dtype, np.integer):
        raise ValueError(f"z must be an integer vector of length n={xbar.shape[0]}")
    k = len(dims)
    if z.size and (z.min() < 0 or z.max() >= k):
        raise ValueError(f"z must take values in 0..{k - 1}")
    if kind == "corrected":
        if sigma2 is None:
            raise ValueError("sigma2 is required for the corrected router")
        sigma2 = v.check_scalar(sigma2, "sigma2", lower=0.0)
    covs = []
    counts = np.bincount(z, minlength=k)
    for i in range(k):
        if counts[i] <= dims[i]:
            raise ValueError(
                f"n too small: block {i} has n_i={counts[i]} training rows, needs n_i > d_i={dims[i]} "
                "for an invertible sample covariance"
            )
        xs = xbar[z == i, offsets[i] : offsets[i + 1]]
        covs.append(xs.T @ xs / counts[i])
    log_prior = np.log(counts / counts.sum()) if kind == "corrected" else np.zeros(k)
    return QDARouter(kind, offsets, tuple(covs), log_prior, float(sigma2 or 0.0))


def bayes_router(model: BlockModel) -> QDARouter:
    """The Bayes-optimal router of ``model`` (true ``C_i = Sigma_i + sigma^2 I`` and priors)."""
    model = check_model(model)
    covs = tuple(c + model.sigma2 * np.eye(c.shape[0]) for c in model.covariances)
    return QDARouter("bayes", model.offsets.copy(), covs, np.log(model.p), model.sigma2)


def sklearn_qda(xbar, z):
    """scikit-learn's ``QuadraticDiscriminantAnalysis`` on all ``d`` features (library cross-check).

    It estimates a mean and a full ``d x d`` covariance per class, so it needs ``n_i > d``.
    """
    from sklearn.discriminant_analysis import QuadraticDiscriminantAnalysis

    xbar = v.check_array(xbar, "xbar", ndim=2)
    z = np.asarray(z)
    counts = np.bincount(z)
    if counts.min() <= xbar.shape[1]:
        raise ValueError(
            f"n too small for sklearn QDA: smallest class has {counts.min()} rows, needs > d={xbar.shape[1]}"
        )
    return QuadraticDiscriminantAnalysis(solver="eigen").fit(xbar, z)


def accuracy_curve(
    model: BlockModel, ns, *, n_test: int = 20000, reps: int = 3, seed=0, with_sklearn: bool = True
) -> dict:
    """Routing accuracy of every router against the training size ``n``.

    All routers are scored on one common test set of ``n_test`` draws from ``model`` (common random
    numbers), so differences to the Bayes router have small Monte Carlo error.

    Parameters
    ----------
    model : BlockModel
    ns : sequence of int
        Training sizes (balanced loading).  Routers that cannot be fitted at some ``n``
        (``n_i <= d_i``; ``n_i <= d`` for sklearn) get ``nan`` there.
    n_test : int
        Test draws for the Monte Carlo accuracies.
    reps : int
        Independent training sets per ``n`` (their accuracies are averaged).
    seed : int, None or numpy Generator
        The test set is drawn first, then the training sets in order (one stream).

    Returns
    -------
    dict
        ``n`` (shape (m,)); ``bayes`` and ``bayes_se`` (scalars: Monte Carlo accuracy and its
        standard error); for each of ``printed``, ``corrected``, ``sklearn``: mean accuracy over reps,
        shape (m,); ``<kind>_se``: standard error over the reps (nan for one rep); ``<kind>_reps``: the
        accuracies of every training set, shape (m, reps).
    """
    model = check_model(model)
    ns = np.array([_check_rows(n, model.d, "n") for n in np.atleast_1d(ns)])
    n_test = _check_rows(n_test, model.d, "n_test")
    reps = v.check_int(reps, "reps", lower=1)
    rng = v.check_random_state(seed)
    test = model.sample(n_test, seed=rng)
    hit_bayes = bayes_router(model).predict(test.xbar) == test.z
    acc_b = hit_bayes.mean()
    out = {"n": ns, "bayes": float(acc_b), "bayes_se": float(np.sqrt(acc_b * (1 - acc_b) / n_test))}
    kinds = ("printed", "corrected") + (("sklearn",) if with_sklearn else ())
    acc = {kname: np.full((ns.size, reps), np.nan) for kname in kinds}
    for a, n in enumerate(ns):
        for r in range(reps):
            xb, z = sample_balanced(model, int(n), seed=rng)
            counts = np.bincount(z, minlength=model.k)
            if np.all(counts > np.array(model.dims)):
                for kname in ("printed", "corrected"):
                    router = fit_router(kname, xb, z, model.dims, model.sigma2)
                    acc[kname][a, r] = np.mean(router.predict(test.xbar) == test.z)
            if with_sklearn and counts.min() > model.d:
                acc["sklearn"][a, r] = np.mean(sklearn_qda(xb, z).predict(test.xbar) == test.z)
    for kname in kinds:
        out[kname] = acc[kname].mean(axis=1)
        out[f"{kname}_reps"] = acc[kname]
        out[f"{kname}_se"] = acc[kname].std(axis=1, ddof=1) / np.sqrt(reps) if reps > 1 else np.full(ns.size, np.nan)
    return out


def routed_risk(
    model: BlockModel, router: QDARouter, experts=None, *, n_test: int = 20000, seed=0, with_reference: bool = False
) -> dict:
    """Test risk of the sparse MoE when a (possibly imperfect) router picks the expert.

    Each test point ``xbar`` is sent to expert ``j = router.predict(xbar)`` which predicts
    ``xbar_{S_j}^T beta_j``; the squared error against ``y = x^T beta*`` is averaged (Monte Carlo).

    Parameters
    ----------
    model : BlockModel
    router : QDARouter
    experts : sequence of k arrays, shapes (d_i,), optional
        Expert parameters; default: the Bayes sparse experts of Eq. (3).
    n_test : int
    seed : int, None or numpy Generator
    with_reference : bool
        Also score, on the same test points, the Bayes dense estimator and the sparse experts with the
        *true* label (oracle routing): keys ``dense_risk``, ``dense_risk_se``, ``oracle_risk``,
        ``oracle_risk_se`` (Monte Carlo checks of Theorem 2's closed forms) and ``paired_se`` (s.e. of the
        paired difference routed − dense).

    Returns
    -------
    dict
        ``risk`` and ``risk_se`` (Monte Carlo mean and standard error of the squared error),
        ``error_rate`` (fraction mis-routed), ``correct_part`` and ``misrouted_part`` (the two
        contributions to ``risk``: mean over all points of the squared error times the indicator of
        correct / wrong routing), ``confusion`` (k x k, row i = P(routed j | z = i)).
    """
    from .theory import bayes_sparse

    model = check_model(model)
    if not isinstance(router, QDARouter):
        raise TypeError(
            f"router must be a fitted QDARouter (e.g. router.bayes_router(model) or "
            f"router.fit_router(...)), got {router!r}"
        )
    if int(router.offsets[-1]) != model.d or router.k != model.k:
        raise ValueError(
            f"router must route the model's k={model.k} blocks of d={model.d} features, "
            f"got one for k={router.k}, d={int(router.offsets[-1])}"
        )
    if experts is None:
        experts = bayes_sparse(model)
    if len(experts) != model.k:
        raise ValueError(f"experts must list k={model.k} vectors, got {len(experts)}")
    experts = [v.check_array(b, f"experts[{i}]", shape=(di,)) for i, (b, di) in enumerate(zip(experts, model.dims))]
    n_test = _check_rows(n_test, model.d, "n_test")
    test = model.sample(n_test, seed=v.check_random_state(seed))
    route = router.predict(test.xbar)
    preds = np.column_stack([test.xbar[:, model.block_slice(j)] @ experts[j] for j in range(model.k)])
    err2 = (preds[np.arange(n_test), route] - test.y) ** 2
    wrong = route != test.z
    conf = np.zeros((model.k, model.k))
    np.add.at(conf, (test.z, route), 1.0)
    conf /= np.maximum(conf.sum(axis=1, keepdims=True), 1.0)
    se = lambda a: float(a.std(ddof=1) / np.sqrt(n_test)) if n_test > 1 else float("nan")  # noqa: E731
    out = {
        "risk": float(err2.mean()),
        "risk_se": se(err2),
        "error_rate": float(wrong.mean()),
        "correct_part": float((err2 * ~wrong).mean()),
        "misrouted_part": float((err2 * wrong).mean()),
        "confusion": conf,
    }
    if with_reference:
        from .theory import bayes_dense

        dense2 = (test.xbar @ np.concatenate(bayes_dense(model)) - test.y) ** 2
        oracle2 = (preds[np.arange(n_test), test.z] - test.y) ** 2
        out.update(
            dense_risk=float(dense2.mean()),
            dense_risk_se=se(dense2),
            oracle_risk=float(oracle2.mean()),
            oracle_risk_se=se(oracle2),
            paired_se=se(err2 - dense2),
        )
    return out


# ------------------------------------------------------------------ experiments behind the chapter
def router_model(k: int = 4, block_dim: int = 8, sigma2: float = 1.0, alpha: float = 0.0, *, seed=0) -> BlockModel:
    """Block model used by the router chapter: block spectra ``lam_j ∝ j^(-alpha)``, mean 1.

    ``alpha = 0`` gives ``Sigma_i = I``; larger ``alpha`` concentrates the block's variance in
    fewer directions (same trace ``d_i``).  Each block is rotated by its own Haar rotation.
    """
    k = v.check_int(k, "k", lower=1)
    block_dim = v.check_int(block_dim, "block_dim", lower=1)
    alpha = v.check_scalar(alpha, "alpha", lower=0.0)
    sigma2 = v.check_scalar(sigma2, "sigma2", lower=0.0)
    lam = np.arange(1, block_dim + 1, dtype=float) ** (-alpha)
    lam *= block_dim / lam.sum()
    return BlockModel.from_spectra([lam] * k, sigma2=sigma2, seed=seed)


def loglog_slope(n, y) -> float:
    """Least-squares slope of ``log y`` against ``log n`` over the finite, positive points."""
    n = v.check_array(n, "n", ndim=1)
    y = np.asarray(y, dtype=float)
    ok = np.isfinite(y) & (y > 0) & (n > 0)
    if ok.sum() < 2:
        raise ValueError("y must have at least two finite positive values to fit a slope")
    return float(np.polyfit(np.log(n[ok]), np.log(y[ok]), 1)[0])


def excess_curve(model: BlockModel, ns, *, n_test: int = 40000, reps: int = 4, seed=0) -> dict:
    """Excess misclassification risk ``R - R*`` of the corrected and printed routers vs ``n``.

    Returns ``n``, ``corrected``, ``printed`` (mean excess over ``reps`` training sets, on a common
    test set), their standard errors over the reps (``corrected_se``, ``printed_se``; the common test set's
    own error is shared by every ``n``), the per-training-set excess ``corrected_reps``/``printed_reps`` (shape
    (reps, m)), ``bayes`` and the log-log slope ``slope_corrected``.
    """
    out = accuracy_curve(model, ns, n_test=n_test, reps=reps, seed=seed, with_sklearn=False)
    exc_c = out["bayes"] - out["corrected"]
    exc_p = out["bayes"] - out["printed"]
    return {
        "n": out["n"],
        "corrected": exc_c,
        "printed": exc_p,
        "bayes": out["bayes"],
        "corrected_se": out["corrected_se"],
        "printed_se": out["printed_se"],
        "corrected_reps": out["bayes"] - out["corrected_reps"].T,
        "printed_reps": out["bayes"] - out["printed_reps"].T,
        "slope_corrected": loglog_slope(out["n"], exc_c),
    }


def routing_risk_rows(
    sigma2s, *, n: int = 640, k: int = 4, block_dim: int = 8, alpha: float = 0.0, n_test: int = 20000, seed=0
) -> list[dict]:
    """Risk of the routed sparse MoE (Bayes sparse experts) for each router, beside Theorem 2.

    One row per ``sigma2`` (plain keys): ``risk_dense``, ``risk_sparse`` (Theorem 2 closed forms: no routing /
    perfect routing, :func:`moe_companion.theory.risk_dense` / ``risk_sparse``); ``mc_dense``, ``mc_oracle``
    and their ``_se`` (Monte Carlo checks of those closed forms on the Bayes router's test set); and for each
    router ``r`` in ``bayes``, ``corrected``, ``printed`` (plug-in routers fitted on ``n`` balanced samples):
    ``r_risk``, ``r_risk_se``, ``r_misrouted``, ``r_error_rate``.  The Bayes router's row also has
    ``bayes_paired_se`` (s.e. of routed − dense on common points), ``bayes_cost`` (measured cost per mis-route)
    and ``thm4_cost`` (:func:`misrouting_cost`).  One ``seed`` stream: model, training set, test sets.
    """
    from .theory import risk_dense, risk_sparse

    n = v.check_int(n, "n", lower=1)
    rng = v.check_random_state(seed)
    rows = []
    for s2 in np.atleast_1d(sigma2s):
        model = router_model(k, block_dim, float(s2), alpha, seed=0)
        xb, z = sample_balanced(model, n, seed=rng)
        routers = {
            "bayes": bayes_router(model),
            "corrected": fit_router("corrected", xb, z, model.dims, model.sigma2),
            "printed": fit_router("printed", xb, z, model.dims),
        }
        row = {"sigma2": float(s2), "risk_dense": float(risk_dense(model)), "risk_sparse": float(risk_sparse(model))}
        test_seed = int(rng.integers(2**63))
        for name, rt in routers.items():
            res = routed_risk(model, rt, n_test=n_test, seed=test_seed, with_reference=name == "bayes")
            row[f"{name}_risk"] = res["risk"]
            row[f"{name}_risk_se"] = res["risk_se"]
            row[f"{name}_misrouted"] = res["misrouted_part"]
            row[f"{name}_error_rate"] = res["error_rate"]
            if name == "bayes":
                row.update(
                    mc_dense=res["dense_risk"],
                    mc_dense_se=res["dense_risk_se"],
                    mc_oracle=res["oracle_risk"],
                    mc_oracle_se=res["oracle_risk_se"],
                    bayes_paired_se=res["paired_se"],
                    bayes_cost=res["misrouted_part"] / max(res["error_rate"], 1e-300),
                    thm4_cost=misrouting_cost(model, res["confusion"]),
                )
        rows.append(row)
    return rows


def misrouting_cost(model: BlockModel, confusion) -> float:
    """Average Theorem 4 cost of one mis-routed sample, weighted by a router's confusion matrix.

    Uses :func:`moe_companion.theory.misrouting_risk` (sparse estimator, reading A) in the limit
    ``eta -> 0``: block ``j`` then carries noise only, which is how a mis-route caused by feature noise
    (no adversarial perturbation) looks *before* conditioning on the router's decision.  Returns
    ``sum_{i != j} p_i P(j|i) cost_ij / sum_{i != j} p_i P(j|i)`` (nan if the router never errs).
    """
    from .theory import misrouting_risk

    model = check_model(model)
    conf = v.check_array(confusion, "confusion", shape=(model.k, model.k), lower=0.0)
    num = den = 0.0
    for i in range(model.k):
        for j in range(model.k):
            if i != j and conf[i, j] > 0:
                w = model.p[i] * conf[i, j]
                num += w * float(misrouting_risk(model, i, j, 1e-9, "A")[1])
                den += w
    return num / den if den > 0 else float("nan")


def printed_rule_true_covariances(model: BlockModel) -> QDARouter:
    """The App. A.7 score evaluated with the *true* ``C_i = Sigma_i + sigma^2 I`` (its n -> infinity limit)."""
    b = bayes_router(model)
    return QDARouter("printed", b.offsets, b.covs, np.zeros(model.k), model.sigma2)


from .posterior import posterior_moe_risk, route_probabilities  # noqa: E402,F401
