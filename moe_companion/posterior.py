"""The posterior-gated MoE and the Bayes router's actual decisions under Theorem 4's perturbation.

Posterior-gated MoE (issue item A4)
    Given the label ``z = i`` the pair ``(xbar_i, y)`` is jointly Gaussian, so ``E[y | xbar, z = i]`` is the
    Eq. (3) sparse expert ``i`` applied to block ``i`` of ``xbar``. Without the label, the best predictor of
    ``y`` in squared error is the conditional mean

        ``E[y | xbar] = sum_i P(z = i | xbar) * xbar_{S_i}^T beta_sparse_i``,

    with ``P(z = i | xbar)`` the posterior of the Bayes router (:func:`moe_companion.router.bayes_router`,
    a softmax of its scores). It is the Bayes-optimal predictor among *all* functions of ``xbar``; the dense
    estimator of Eq. (3) is optimal only among *linear* ones, and the hard-routed MoE (top-1 of the same
    posterior) is a third, in between. Its risk has no closed form; :func:`compare_predictors` estimates
    all four risks on common draws (paired differences with standard errors).

Theorem 4's premise (issue item B1)
    :func:`route_probabilities` sends the perturbed input of Theorem 4 (block ``i`` a clean draw ``x_i``,
    block ``j`` ``eta x_j``, other blocks zero, plus ``N(0, sigma^2 I)`` on all coordinates) through the
    Bayes router and counts where it goes. :func:`misrouting_mixture` rewrites the mis-routed MoE's risk
    as the mixture over the router's actual decision, ``sum_r P(route r) E[err^2 | route r]``.

No plotting here (domain module).
"""

from __future__ import annotations

import numpy as np

from . import _validate as v
from . import simulate, theory
from .model import BlockModel, check_model

__all__ = [
    "compare_predictors",
    "misrouting_mixture",
    "posterior_moe_risk",
    "posterior_predict",
    "posterior_weights",
    "route_probabilities",
]

#: Rows per batch: keeps every intermediate array near 16 MB whatever ``n`` is.
_BATCH_ELEMENTS = 2_000_000


def _batches(n: int, d: int):
    size = max(1, _BATCH_ELEMENTS // max(d, 1))
    start = 0
    while start < n:
        stop = min(n, start + size)
        yield stop - start
        start = stop


class _Moments:
    """Running sums for means and standard errors over batches."""

    def __init__(self, names):
        self.n = 0
        self.s = {k: 0.0 for k in names}
        self.q = {k: 0.0 for k in names}

    def add(self, **values):
        for k, x in values.items():
            self.s[k] += float(x.sum())
            self.q[k] += float((x * x).sum())
        self.n += next(iter(values.values())).size

    def mean_se(self, k) -> tuple[float, float]:
        m = self.s[k] / self.n
        var = max(self.q[k] / self.n - m * m, 0.0) * self.n / max(self.n - 1, 1)
        return float(m), float(np.sqrt(var / self.n))


def posterior_weights(model: BlockModel, xbar) -> np.ndarray:
    """``P(z = i | xbar)`` under the model (the Bayes router's posterior), shape (n, k); rows sum to 1."""
    from .router import bayes_router

    model = check_model(model)
    xbar = v.check_array(xbar, "xbar", ndim=2)
    scores = bayes_router(model).scores(xbar)
    if model.sigma2 == 0:  # noiseless: the active block is the only non-zero one
        out = np.zeros_like(scores)
        out[np.arange(scores.shape[0]), np.argmax(scores, axis=1)] = 1.0
        return out
    scores = scores - scores.max(axis=1, keepdims=True)
    w = np.exp(scores)
    return w / w.sum(axis=1, keepdims=True)


def _expert_outputs(model: BlockModel, xbar: np.ndarray) -> np.ndarray:
    sparse = theory.bayes_sparse(model)
    return np.column_stack([xbar[:, model.block_slice(r)] @ sparse[r] for r in range(model.k)])


def posterior_predict(model: BlockModel, xbar) -> np.ndarray:
    """The posterior-gated MoE's prediction ``E[y | xbar]``, shape (n,)."""
    model = check_model(model)
    xbar = v.check_array(xbar, "xbar", ndim=2)
    if xbar.shape[1] != model.d:
        raise ValueError(f"xbar must have d={model.d} columns, got {xbar.shape[1]}")
    return np.sum(posterior_weights(model, xbar) * _expert_outputs(model, xbar), axis=1)


PREDICTORS = ("dense", "oracle", "hard", "posterior")


def compare_predictors(model: BlockModel, *, n_test: int = 200_000, seed=0) -> dict:
    """Monte Carlo risks of four predictors on the same ``n_test`` draws, and their paired differences.

    ``dense``: Eq. (3) dense (best linear predictor); ``oracle``: Eq. (3) sparse experts with the true label
    (Theorem 2's MoE); ``hard``: the same experts behind the Bayes router's top-1 decision; ``posterior``:
    the posterior-gated MoE ``E[y | xbar]``.

    Returns
    -------
    dict
        ``{name: (mean, se)}`` for each predictor, and ``"dense-posterior"``, ``"hard-posterior"``,
        ``"posterior-oracle"``, ``"dense-hard"``: paired differences ``(mean, se)`` of the squared errors;
        ``"n_test"``.
    """
    model = check_model(model)
    n = v.check_int(n_test, "n_test", lower=2)
    v.check_size(n, model.d, "n_test", limit=10**10)  # batched: only the count is bounded
    rng = v.check_random_state(seed)
    dense_coef = np.concatenate(theory.bayes_dense(model))
    diffs = ("dense-posterior", "hard-posterior", "posterior-oracle", "dense-hard")
    acc = _Moments(PREDICTORS + diffs)
    for m in _batches(n, model.d):
        s = model.sample(m, rng)
        experts = _expert_outputs(model, s.xbar)
        post = posterior_weights(model, s.xbar)
        err = {
            "dense": (s.xbar @ dense_coef - s.y) ** 2,
            "oracle": (experts[np.arange(m), s.z] - s.y) ** 2,
            "hard": (experts[np.arange(m), np.argmax(post, axis=1)] - s.y) ** 2,
            "posterior": (np.sum(post * experts, axis=1) - s.y) ** 2,
        }
        acc.add(
            **err,
            **{
                "dense-posterior": err["dense"] - err["posterior"],
                "hard-posterior": err["hard"] - err["posterior"],
                "posterior-oracle": err["posterior"] - err["oracle"],
                "dense-hard": err["dense"] - err["hard"],
            },
        )
    out = {k: acc.mean_se(k) for k in PREDICTORS + diffs}
    out["n_test"] = n
    return out


def posterior_moe_risk(model: BlockModel, *, n_test: int = 200_000, seed=0) -> tuple[float, float]:
    """Monte Carlo risk of the posterior-gated MoE ``E[y | xbar]`` on ``model``: ``(risk, se)``."""
    return compare_predictors(model, n_test=n_test, seed=seed)["posterior"]


def route_probabilities(model: BlockModel, i: int, j: int, eta, *, n: int = 100_000, seed=0) -> tuple[float, float]:
    """How often the Bayes router sends Theorem 4's perturbed input to expert ``j`` and to expert ``i``.

    The input: block ``i`` a clean draw ``x_i``, block ``j`` ``eta x_j`` (``x_j`` an independent clean draw of
    block ``j``), other blocks zero, plus ``N(0, sigma^2 I_d)`` on all coordinates (reading A's input).

    Returns
    -------
    p_to_j, p_to_i : float
        Monte Carlo frequencies over ``n`` draws (binomial standard error ``sqrt(p (1 - p) / n)``).
    """
    from .router import bayes_router

    model = check_model(model)
    n = v.check_int(n, "n", lower=1)
    v.check_size(n, model.d, "n", limit=10**10)
    theory._check_misrouting(model, i, j, eta)
    if np.ndim(eta) != 0:
        raise ValueError(f"eta must be a scalar, got shape {np.shape(eta)}")
    rng = v.check_random_state(seed)
    router = bayes_router(model)
    to_j = to_i = 0
    for m in _batches(n, model.d):
        xbar, _ = simulate.misrouting_input(model, i, j, eta, "A", m, rng)
        route = router.predict(xbar)
        to_j += int(np.sum(route == j))
        to_i += int(np.sum(route == i))
    return to_j / n, to_i / n


def misrouting_mixture(model: BlockModel, i: int, j: int, eta, reading: str = "A", *, n: int = 200_000, seed=0) -> dict:
    """Theorem 4's risk for the MoE as a mixture over the Bayes router's actual decision.

    On ``n`` draws of :func:`moe_companion.simulate.misrouting_input` (``reading``), the Bayes router picks
    expert ``r`` for each input and expert ``r`` (Eq. 3 sparse) answers from block ``r``:
    ``R = sum_r P(route r) R_r`` with ``R_r = E[err^2 | route r]``.

    Returns
    -------
    dict
        ``p_route`` (k,), ``conditional`` (k,; ``nan`` where never routed), ``routed`` ``(mean, se)`` of the
        mixture, ``always_j`` ``(mean, se)`` (Theorem 4's assumption: expert ``j`` always), ``dense``
        ``(mean, se)``, ``routed-always_j`` and ``dense-routed`` paired differences ``(mean, se)``, ``n``.
    """
    from .router import bayes_router

    model = check_model(model)
    n = v.check_int(n, "n", lower=2)
    v.check_size(n, model.d, "n", limit=10**10)
    theory._check_misrouting(model, i, j, eta, reading, need_reading=True)
    rng = v.check_random_state(seed)
    router = bayes_router(model)
    dense_coef = np.concatenate(theory.bayes_dense(model))
    acc = _Moments(("routed", "always_j", "dense", "routed-always_j", "dense-routed"))
    counts = np.zeros(model.k)
    sums = np.zeros(model.k)
    for m in _batches(n, model.d):
        xbar, target = simulate.misrouting_input(model, i, j, eta, reading, m, rng)
        experts = _expert_outputs(model, xbar)
        route = router.predict(xbar)
        routed = (experts[np.arange(m), route] - target) ** 2
        always = (experts[:, j] - target) ** 2
        dense = (xbar @ dense_coef - target) ** 2
        acc.add(
            routed=routed,
            always_j=always,
            dense=dense,
            **{"routed-always_j": routed - always, "dense-routed": dense - routed},
        )
        counts += np.bincount(route, minlength=model.k)
        sums += np.bincount(route, weights=routed, minlength=model.k)
    with np.errstate(invalid="ignore", divide="ignore"):
        conditional = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    out = {k: acc.mean_se(k) for k in ("routed", "always_j", "dense", "routed-always_j", "dense-routed")}
    out.update(p_route=counts / n, conditional=conditional, n=n)
    return out
