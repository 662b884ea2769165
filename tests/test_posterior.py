"""The posterior-gated MoE and the Bayes router's choices under Theorem 4's perturbation, checked against
independent computations: scipy's multivariate normal densities (brute-force Bayes classifier), numerical
integration in one-dimensional blocks, the ordering of the four predictors and the noiseless limit."""

import numpy as np
import pytest
from scipy import integrate, stats

from moe_companion import posterior, router, simulate, theory
from moe_companion.model import BlockModel, random_model


def _full_covariances(model):
    """Class-conditional covariances of xbar over all d coordinates: blockdiag(s2 I, ..., Sigma_i + s2 I, ...)."""
    out = []
    for i in range(model.k):
        c = model.sigma2 * np.eye(model.d)
        sl = model.block_slice(i)
        c[sl, sl] += model.covariances[i]
        out.append(c)
    return out


def _brute_force_posterior(model, xbar):
    logs = np.column_stack(
        [
            np.log(model.p[i]) + stats.multivariate_normal(np.zeros(model.d), c).logpdf(xbar)
            for i, c in enumerate(_full_covariances(model))
        ]
    )
    logs -= logs.max(axis=1, keepdims=True)
    w = np.exp(logs)
    return w / w.sum(axis=1, keepdims=True)


def test_public_api_is_reexported_by_router():
    assert router.posterior_moe_risk is posterior.posterior_moe_risk
    assert router.route_probabilities is posterior.route_probabilities
    assert {"posterior_moe_risk", "route_probabilities"} <= set(router.__all__)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_posterior_weights_equal_a_brute_force_bayes_classifier(seed):
    m = random_model(seed)
    s = m.sample(300, seed)
    np.testing.assert_allclose(posterior.posterior_weights(m, s.xbar), _brute_force_posterior(m, s.xbar), atol=1e-9)


def test_route_probabilities_match_a_brute_force_classifier_on_the_same_draws():
    m = random_model(3, k=3)
    xbar, _ = simulate.misrouting_input(m, 0, 2, 1.7, "A", 4000, 5)
    brute = np.argmax(_brute_force_posterior(m, xbar), axis=1)
    p_j, p_i = posterior.route_probabilities(m, 0, 2, 1.7, n=4000, seed=5)
    assert p_j == pytest.approx(np.mean(brute == 2))
    assert p_i == pytest.approx(np.mean(brute == 0))


@pytest.mark.parametrize("eta, p0", [(1.0, 0.5), (2.0, 0.7), (0.6, 0.3)])
def test_route_probabilities_equal_numerical_integration_in_one_dimension(eta, p0):
    """k = 2 one-dimensional blocks: the router picks j iff a quadratic inequality holds; integrate it."""
    lam0, lam1, s2 = 1.3, 0.8, 0.4
    m = BlockModel([p0, 1 - p0], [np.array([[lam0]]), np.array([[lam1]])], [np.ones(1), np.ones(1)], s2)
    v0, v1 = lam0 + s2, eta**2 * lam1 + s2  # variances of the two observed coordinates
    c0, c1 = lam0 + s2, lam1 + s2  # the router's class covariances of each block

    # log-score difference (j minus i) = A + 0.5 x1^2 (1/s2 - 1/c1) - 0.5 x0^2 (1/s2 - 1/c0)
    a = np.log((1 - p0) / p0) - 0.5 * np.log(c1) + 0.5 * np.log(c0)
    k0, k1 = 0.5 * (1 / s2 - 1 / c0), 0.5 * (1 / s2 - 1 / c1)

    def p_j_given_x0(x0):  # P(k1 x1^2 > k0 x0^2 - a) over x1 ~ N(0, v1)
        t = (k0 * x0**2 - a) / k1
        return 1.0 if t <= 0 else 2 * stats.norm.sf(np.sqrt(t / v1))

    exact, _ = integrate.quad(lambda x0: p_j_given_x0(x0) * stats.norm.pdf(x0, scale=np.sqrt(v0)), -12, 12, limit=200)
    p_j, p_i = router.route_probabilities(m, 0, 1, eta, n=200_000, seed=1)
    assert p_j + p_i == pytest.approx(1.0)
    assert abs(p_j - exact) < 4 * np.sqrt(exact * (1 - exact) / 200_000) + 1e-4


def test_posterior_risk_equals_numerical_integration_in_one_dimension():
    """k = 2 one-dimensional blocks: risk = E[y^2] - E[E[y|xbar]^2], the second term by 2-D quadrature."""
    lam, s2, p = np.array([1.5, 0.7]), 0.5, np.array([0.6, 0.4])
    m = BlockModel(p, [np.array([[lam[0]]]), np.array([[lam[1]]])], [np.array([1.0]), np.array([-0.8])], s2)
    b = np.array([1.0, -0.8])
    g = np.linspace(-9, 9, 721)
    x0, x1 = np.meshgrid(g, g, indexing="ij")
    var = [(lam[0] + s2, s2), (s2, lam[1] + s2)]  # per class: variances of (xbar_0, xbar_1)
    dens = [
        p[i] * stats.norm.pdf(x0, scale=np.sqrt(var[i][0])) * stats.norm.pdf(x1, scale=np.sqrt(var[i][1]))
        for i in range(2)
    ]
    mean = [lam[0] / (lam[0] + s2) * b[0] * x0, lam[1] / (lam[1] + s2) * b[1] * x1]  # E[y | xbar, z = i]
    total = dens[0] + dens[1]
    cond = (dens[0] * mean[0] + dens[1] * mean[1]) / total
    second = integrate.trapezoid(integrate.trapezoid(cond**2 * total, g, axis=1), g)
    exact = float(np.sum(p * lam * b**2)) - second
    risk, se = router.posterior_moe_risk(m, n_test=400_000, seed=3)
    assert abs(risk - exact) < 4 * se


@pytest.mark.parametrize("seed", [0, 4])
def test_posterior_is_between_oracle_and_the_label_free_predictors(seed):
    m = random_model(seed)
    c = posterior.compare_predictors(m, n_test=100_000, seed=seed)
    for key in ("dense-posterior", "hard-posterior", "posterior-oracle"):
        mean, se = c[key]
        assert mean > -3 * se, key  # E[y|xbar] is optimal without the label; the oracle knows the label
    # the closed forms agree with the Monte Carlo dense and oracle risks
    assert abs(c["dense"][0] - theory.risk_dense(m)) < 4 * c["dense"][1]
    assert abs(c["oracle"][0] - theory.risk_sparse(m)) < 4 * c["oracle"][1]


def test_posterior_tends_to_the_oracle_as_noise_vanishes():
    m = BlockModel.toeplitz(3, 4, 0.5, sigma2=1e-4, seed=2)
    risk, se = router.posterior_moe_risk(m, n_test=50_000, seed=0)
    assert risk == pytest.approx(theory.risk_sparse(m), rel=0.05, abs=5 * se)
    assert risk < 0.05 * theory.risk_dense(m.replace(sigma2=0.5))


def test_misrouting_mixture_decomposes_and_matches_theorem4_when_routing_is_forced():
    m = BlockModel.toeplitz(3, 3, 0.3, sigma2=0.2, seed=4)
    mix = posterior.misrouting_mixture(m, 0, 1, 6.0, "A", n=100_000, seed=2)
    assert mix["p_route"].sum() == pytest.approx(1.0)
    recombined = np.nansum(mix["p_route"] * mix["conditional"])
    assert recombined == pytest.approx(mix["routed"][0], rel=1e-10)
    dense, sparse = theory.misrouting_risk(m, 0, 1, 6.0, "A")
    assert abs(mix["always_j"][0] - sparse) < 4 * mix["always_j"][1]
    assert abs(mix["dense"][0] - dense) < 4 * mix["dense"][1]


def test_bad_inputs_raise_clear_errors():
    m = BlockModel.toeplitz(3, 2, sigma2=0.5)
    with pytest.raises(ValueError, match="j must differ from i"):
        router.route_probabilities(m, 1, 1, 2.0)
    with pytest.raises(ValueError, match="eta must be > 0"):
        router.route_probabilities(m, 0, 1, -1.0)
    with pytest.raises(ValueError, match="eta must be a scalar"):
        router.route_probabilities(m, 0, 1, [1.0, 2.0])
    with pytest.raises(ValueError, match="n_test must be >= 2"):
        router.posterior_moe_risk(m, n_test=1)
    with pytest.raises(TypeError, match="model must be a BlockModel"):
        router.posterior_moe_risk("m")
    with pytest.raises(ValueError, match="reading must be one of"):
        posterior.misrouting_mixture(m, 0, 1, 2.0, None)
    with pytest.raises(ValueError, match="n_test is too large"):
        router.posterior_moe_risk(m, n_test=10**12)
    with pytest.raises(ValueError, match="xbar must have d=6 columns"):
        posterior.posterior_predict(m, np.zeros((2, 5)))
