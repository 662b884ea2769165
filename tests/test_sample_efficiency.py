"""Tests for moe_companion.sample_efficiency (Section 4.5, App. A.6)."""
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from moe_companion import BlockModel
from moe_companion import sample_efficiency as S

threadpool_limits(1)


@pytest.mark.parametrize("n", [30, 200])
def test_exact_risk_matches_sampled_test_risk(n):
    m = S.fig3_model(0, p=24, k=3)
    s = m.sample(n, seed=1)
    bd, bs = S.fit_estimators(m, s.xbar, s.y, s.z)
    for exact, (mc, se) in [(S.risk_dense(m, bd), S.sampled_risk(m, dense=bd, n_test=200000, seed=3)),
                            (S.risk_sparse(m, bs), S.sampled_risk(m, sparse=bs, n_test=200000, seed=4))]:
        assert abs(exact - mc) < 3 * se


def test_bayes_risks_are_minimal_exact_risks():
    m = S.fig3_model(0, p=12, k=3, sigma2=0.5)
    from moe_companion.theory import bayes_dense, bayes_sparse
    br = S.bayes_risks(m)
    assert S.risk_sparse(m, bayes_sparse(m)) == pytest.approx(br["sparse"])
    assert S.risk_dense(m, np.concatenate(bayes_dense(m))) == pytest.approx(br["dense"])


@pytest.mark.parametrize("shape", [(5, 9), (9, 5), (6, 6)])
def test_min_norm_matches_pinv(shape):
    a = np.random.default_rng(0).standard_normal(shape)
    y = np.random.default_rng(1).standard_normal(shape[0])
    np.testing.assert_allclose(S.min_norm(a, y), np.linalg.pinv(a) @ y, atol=1e-8)
    assert np.all(S.min_norm(np.zeros((0, 3)), np.zeros(0)) == 0)


def test_nested_prefixes_equal_direct_fits():
    m = S.fig3_model(1, p=20, k=4)
    ns = [8, 25, 60]
    out = S.excess_curves(m, ns, runs=1, seed=7)
    s = m.sample(60, seed=7)
    for j, n in enumerate(ns):
        bd, bs = S.fit_estimators(m, s.xbar[:n], s.y[:n], s.z[:n])
        assert out["risk_dense"][0, j] == pytest.approx(S.risk_dense(m, bd), rel=1e-8)
        assert out["risk_sparse"][0, j] == pytest.approx(S.risk_sparse(m, bs), rel=1e-8)


def test_sparse_expected_excess_matches_monte_carlo():
    # one expert, d_i = 2, exactly n_i = 12 rows: E[excess] = R * 2 / (12 - 3)
    m = BlockModel.toeplitz(1, 2, 0.4, sigma2=0.8, seed=2)
    formula = S.sparse_expected_excess(m, np.array([12]))
    rb = S.bayes_risks(m)["sparse"]
    assert formula == pytest.approx(rb * 2 / 9)
    rng = np.random.default_rng(5)
    ex = []
    for _ in range(6000):
        x = m.sample_block(0, 12, rng)
        xb = x + rng.normal(0, np.sqrt(m.sigma2), x.shape)
        ex.append(S.risk_sparse(m, [S.min_norm(xb, x @ m.betas[0])]) - rb)
    ex = np.array(ex)
    assert abs(ex.mean() - formula) < 3 * ex.std(ddof=1) / np.sqrt(ex.size)
    assert S.sparse_expected_excess(m, np.array([2])) == np.inf
    assert S.sparse_expected_excess(m, np.array([3])) == np.inf


def test_dense_asymptotic_constant_matches_simulation():
    m = S.fig3_model(3, p=4, k=2, sigma2=0.5)
    a = S.asymptotic_constants(m)["dense"]
    n = 4000
    vals = []
    for r in range(300):
        s = m.sample(n, seed=r)
        vals.append(S.risk_dense(m, S.fit_estimators(m, s.xbar, s.y, s.z)[0]))
    ex = (np.array(vals) - S.bayes_risks(m)["dense"]) * n
    assert abs(ex.mean() - a) < 3 * ex.std(ddof=1) / np.sqrt(ex.size) + 0.05 * a


def test_curve_fits_recover_known_coefficients():
    n = np.geomspace(50, 50000, 30)
    f = S.fit_form(n, 3e3 / n**2 + 5.0 / n, "a/n² + b/n")
    np.testing.assert_allclose(f["coef"], (3e3, 5.0), rtol=1e-8)
    assert f["rel_rmse"] < 1e-10
    f = S.fit_form(n, 2.67e3 / n**2, "a/n²")
    assert f["coef"][0] == pytest.approx(2.67e3)
    f = S.fit_form(n, 7.0 * n**-1.3, "power")
    np.testing.assert_allclose(f["coef"], (7.0, 1.3), rtol=1e-8)
    f = S.fit_form(n, 40.0 / n, "a/n")
    assert f["coef"][0] == pytest.approx(40.0)
    # a wrong form leaves a visible residual
    assert S.fit_form(n, 40.0 / n, "a/n²")["rel_rmse"] > 0.5
    rows = S.fit_table(n, {"x": 40.0 / n}, [(50, 500), (500, 50000)])
    assert len(rows) == 8


def test_paper_table1_roots():
    rows = S.paper_table1()
    assert rows[0]["sparse fit < 0 beyond n ="] == pytest.approx(3.94e3 / 13.76)


def test_bad_inputs():
    with pytest.raises(ValueError, match="^n must be >= 1"):
        S.excess_curves(S.fig6_model(0, d=4), [0, 5])
    with pytest.raises(ValueError, match="^sigma2 must be >= 0"):
        S.fig6_model(0, sigma2=-1.0)
    with pytest.raises(ValueError, match="^k must divide p"):
        S.fig3_model(0, p=10, k=3)
    with pytest.raises(ValueError, match="^form"):
        S.fit_form([1, 2], [1, 2], "a/n³")
    with pytest.raises(ValueError, match="^counts"):
        S.sparse_expected_excess(S.fig6_model(0, d=3), np.array([1, 2]))
    with pytest.raises(ValueError, match="^d must be >= 1"):
        S.fig6_model(0, d=0)


def test_case_study_exact_mean_matches_monte_carlo_and_paper_is_nine_times_smaller():
    rows = S.case_study_excess([20, 200], lam2=8.0, sigma2=1.0, reps=20000, seed=3)
    for r in rows:
        assert abs(r["Monte Carlo"] - r["exact R/(n-2)"]) < 3 * r["MC SE"]
        ratio = r["exact R/(n-2)"] / r["paper (A.6.3)"]
        assert ratio == pytest.approx(9.0 * r["n"] / (r["n"] - 2))
    with pytest.raises(ValueError, match="^n must be >= 3"):
        S.case_study_excess([2])
