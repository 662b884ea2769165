"""Tests for moe_companion.router (Theorem 1)."""

import numpy as np
import pytest
from scipy.stats import multivariate_normal
from threadpoolctl import threadpool_limits

from moe_companion import BlockModel, theory
from moe_companion import router as R

threadpool_limits(1)


def test_printed_score_hand_computed_1d():
    # two 1-D blocks; block-0 training features 1, -3 -> C0 = 5; block-1 features 2, -4 -> C1 = 10
    xbar = np.array([[1.0, 0.5], [-3.0, 1.0], [0.2, 2.0], [0.1, -4.0]])
    z = np.array([0, 0, 1, 1])
    r = R.fit_router("printed", xbar, z, [1, 1])
    np.testing.assert_allclose([r.covs[0][0, 0], r.covs[1][0, 0]], [5.0, 10.0])
    s = r.scores(np.array([[2.0, 1.0]]))[0]
    np.testing.assert_allclose(s, [-1.204719, -1.201293], atol=1e-6)  # -ln5/2 - 4/10, -ln10/2 - 1/20
    assert r.predict(np.array([[2.0, 1.0]]))[0] == 1


def test_printed_score_hand_computed_2d():
    # rows (1,0), (0,2), (1,1): C = [[2,1],[1,5]]/3, det 1, inverse [[5,-1],[-1,2]]/3
    xbar = np.array([[1.0, 0.0, 0.3], [0.0, 2.0, -0.2], [1.0, 1.0, 0.1], [0.0, 0.0, 1.0], [0.1, 0.1, 2.0]])
    z = np.array([0, 0, 0, 1, 1])
    r = R.fit_router("printed", xbar, z, [2, 1])
    np.testing.assert_allclose(r.covs[0], np.array([[2, 1], [1, 5]]) / 3)
    s = r.scores(np.array([[1.0, 1.0, 0.0]]))[0]
    assert s[0] == pytest.approx(-5.0 / 6.0, abs=1e-12)  # -0 - (5/3)/2
    c1 = (1.0 + 4.0) / 2
    assert s[1] == pytest.approx(-0.5 * np.log(c1), abs=1e-12)


def test_bayes_score_is_full_gaussian_loglik_up_to_a_constant():
    m = BlockModel.toeplitz(k=3, block_dim=2, rho=0.3, sigma2=0.7, p=[0.2, 0.3, 0.5], seed=1)
    x = m.sample(5, seed=2).xbar
    sc = R.bayes_router(m).scores(x)
    ll = np.empty_like(sc)
    for i in range(m.k):
        cov = m.sigma2 * np.eye(m.d)
        sl = m.block_slice(i)
        cov[sl, sl] += m.covariances[i]
        ll[:, i] = np.log(m.p[i]) + multivariate_normal(np.zeros(m.d), cov).logpdf(x)
    diff = sc - ll
    np.testing.assert_allclose(diff, diff[:, :1] * np.ones((1, m.k)), atol=1e-10)


def test_corrected_router_reaches_monte_carlo_bayes_accuracy():
    m = R.router_model(k=4, block_dim=4, sigma2=0.5, seed=3)
    out = R.accuracy_curve(m, [16000], n_test=40000, reps=1, seed=5, with_sklearn=False)
    assert abs(out["corrected"][0] - out["bayes"]) < 0.02
    assert out["printed"][0] < 0.25  # the printed rule is worse than chance here


def test_sklearn_qda_cross_check_agrees_with_bayes_at_large_n():
    m = R.router_model(k=3, block_dim=3, sigma2=0.25, seed=4)
    xb, z = R.sample_balanced(m, 12000, seed=1)
    test = m.sample(20000, seed=2)
    acc_sk = np.mean(R.sklearn_qda(xb, z).predict(test.xbar) == test.z)
    acc_b = np.mean(R.bayes_router(m).predict(test.xbar) == test.z)
    assert abs(acc_sk - acc_b) < 0.02


def test_printed_rule_with_true_covariances_is_still_wrong():
    m = R.router_model(k=4, block_dim=8, sigma2=1.0, seed=0)
    test = m.sample(20000, seed=3)
    acc = np.mean(R.printed_rule_true_covariances(m).predict(test.xbar) == test.z)
    assert acc < 0.1


def test_routed_risk_matches_theorem2_with_accurate_router():
    m = R.router_model(k=4, block_dim=8, sigma2=0.05, seed=0)
    res = R.routed_risk(m, R.bayes_router(m), n_test=40000, seed=1)
    rs = float(theory.risk_sparse(m))
    assert res["error_rate"] < 0.005
    assert abs(res["risk"] - rs) < 4 * res["risk_se"] + 0.005
    np.testing.assert_allclose(res["confusion"].sum(axis=1), 1.0)
    assert res["correct_part"] + res["misrouted_part"] == pytest.approx(res["risk"])


def test_balanced_counts():
    c = R.balanced_counts(10, [0.5, 0.3, 0.2])
    assert c.sum() == 10 and list(c) == [5, 3, 2]
    assert R.balanced_counts(7, [1 / 3] * 3).sum() == 7


def test_loglog_slope_recovers_exponent():
    n = np.array([10.0, 100.0, 1000.0])
    assert R.loglog_slope(n, 3 * n**-1.5) == pytest.approx(-1.5)


def test_bad_inputs():
    m = R.router_model(k=2, block_dim=3, sigma2=1.0)
    xb, z = R.sample_balanced(m, 6, seed=0)
    with pytest.raises(ValueError, match="n too small"):
        R.fit_router("printed", xb, z, m.dims)
    with pytest.raises(ValueError, match="^n must be >= 1"):
        R.sample_balanced(m, 0)
    with pytest.raises(ValueError, match="sigma2"):
        R.router_model(sigma2=-1.0)
    with pytest.raises(ValueError, match="kind"):
        R.fit_router("lda", xb, z, m.dims)
    with pytest.raises(ValueError, match="sigma2"):
        R.fit_router("corrected", *R.sample_balanced(m, 40, seed=0), m.dims)
    with pytest.raises(ValueError, match="^n must be >= 1"):
        R.accuracy_curve(m, [0])
    with pytest.raises(ValueError, match="k"):
        R.router_model(k=0)


def test_routed_risk_reference_estimates_match_theorem2_closed_forms():
    # independent check of the Monte Carlo references the chapter overlays on Theorem 2's curves
    m = R.router_model(k=3, block_dim=4, sigma2=0.7, seed=2)
    res = R.routed_risk(m, R.bayes_router(m), n_test=60000, seed=4, with_reference=True)
    assert abs(res["dense_risk"] - float(theory.risk_dense(m))) < 4 * res["dense_risk_se"]
    assert abs(res["oracle_risk"] - float(theory.risk_sparse(m))) < 4 * res["oracle_risk_se"]


def test_seed_accepts_generator_and_is_reproducible():
    m = R.router_model(k=2, block_dim=3, sigma2=0.5)
    a = R.sample_balanced(m, 20, seed=np.random.default_rng(5))[0]
    b = R.sample_balanced(m, 20, seed=np.random.default_rng(5))[0]
    np.testing.assert_array_equal(a, b)
    out1 = R.accuracy_curve(m, [40], n_test=500, reps=2, seed=3, with_sklearn=False)
    out2 = R.accuracy_curve(m, [40], n_test=500, reps=2, seed=3, with_sklearn=False)
    np.testing.assert_array_equal(out1["corrected"], out2["corrected"])
    with pytest.raises(TypeError, match="^seed"):
        R.sample_balanced(m, 20, seed=np.random.RandomState(0))


def test_bad_inputs_issue14():
    m = R.router_model(k=2, block_dim=3, sigma2=1.0)
    with pytest.raises(TypeError, match="^router must be a fitted QDARouter"):
        R.routed_risk(m, "bayes")
    other = R.bayes_router(R.router_model(k=3, block_dim=3))
    with pytest.raises(ValueError, match="^router must route"):
        R.routed_risk(m, other)
    with pytest.raises(ValueError, match="^n_test is too large"):
        R.routed_risk(m, R.bayes_router(m), n_test=10**12)
    with pytest.raises(ValueError, match="^n is too large"):
        R.sample_balanced(m, 10**12)
    with pytest.raises(ValueError, match="^n_test is too large"):
        R.accuracy_curve(m, [40], n_test=10**12)
    with pytest.raises(ValueError, match="^experts must list"):
        R.routed_risk(m, R.bayes_router(m), experts=[np.zeros(3)])


def test_chapter_accuracy_traces_refuses_fractional_k():
    from moe_companion.chapters import theorem1_router as ch

    with pytest.raises(TypeError, match="^k must be an integer"):
        ch.accuracy_traces(1.0, 0.0, k=2.6)
    with pytest.raises(ValueError, match="^k must be >= 1"):
        ch.accuracy_traces(1.0, 0.0, k=0)
    with pytest.raises(ValueError, match="^sigma2 must be >= 0"):
        ch.accuracy_traces(-1.0, 0.0, k=2)
