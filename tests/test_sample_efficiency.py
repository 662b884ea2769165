"""Tests for moe_companion.sample_efficiency (Section 4.5, App. A.6) and its chapter module."""

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from moe_companion import BlockModel, simulate, theory
from moe_companion import sample_efficiency as S

threadpool_limits(1)


def _blocks(m, beta):
    return [beta[m.block_slice(i)] for i in range(m.k)]


@pytest.mark.parametrize("n", [30, 200])
def test_exact_risk_of_fits_matches_monte_carlo_test_risk(n):
    m = S.fig3_model(0, p=24, k=3)
    s = m.sample(n, seed=1)
    dense, sparse = simulate.least_squares(m, s.xbar, s.y, s.z)
    for name, coefs in (("dense", _blocks(m, dense)), ("sparse", sparse)):
        exact = theory.risk_of_coefficients(m, coefs, name)
        mc, se = simulate.risk(m, name, 200_000, 3, coefficients=coefs)
        assert abs(exact - mc) < 3 * se


def test_simulate_risk_coefficients_option_defaults_to_bayes_and_checks_shapes():
    m = S.fig3_model(0, p=12, k=3, sigma2=0.5)
    assert simulate.risk(m, "sparse", 5000, 1) == simulate.risk(
        m, "sparse", 5000, 1, coefficients=theory.bayes_sparse(m)
    )
    with pytest.raises(ValueError, match="coefficients must have one block per expert"):
        simulate.risk(m, "dense", 100, 0, coefficients=[np.zeros(4)])
    with pytest.raises(ValueError, match=r"coefficients\[1\]"):
        simulate.risk(m, "dense", 100, 0, coefficients=[np.zeros(4), np.zeros(3), np.zeros(4)])


def test_sparse_block_risks_are_the_risks_of_the_bayes_experts():
    m = S.fig3_model(0, p=12, k=3, sigma2=0.5)
    per = theory.sparse_block_risks(m)
    assert m.p @ per == pytest.approx(theory.risk_sparse(m))
    # independent: the Monte Carlo residual variance of each Bayes expert on its own rows
    rng = np.random.default_rng(4)
    for i, b in enumerate(theory.bayes_sparse(m)):
        x = m.sample_block(i, 200_000, rng)
        r = (x + rng.normal(0, np.sqrt(m.sigma2), x.shape)) @ b - x @ m.betas[i]
        assert abs(np.mean(r**2) - per[i]) < 4 * np.std(r**2) / np.sqrt(r.size)


def test_least_squares_refuses_a_wrong_length_z():
    m = S.fig3_model(0, p=12, k=3)
    s = m.sample(20, seed=0)
    with pytest.raises(ValueError, match=r"^z must have shape \(20,\)"):
        simulate.least_squares(m, s.xbar, s.y, s.z[:-1])


def test_huge_n_is_refused_with_a_size_limit_before_any_work():
    with pytest.raises(ValueError, match="MAX_ELEMENTS"):
        S.excess_curves(S.fig3_model(0), [10, 10**9])
    with pytest.raises(ValueError, match="MAX_ELEMENTS"):
        S.case_study_excess([10**7], reps=20000)
    with pytest.raises(ValueError, match="MAX_ELEMENTS"):
        S.variance_terms(BlockModel.toeplitz(1, 20, 0.5), [10**8])


def test_nested_prefixes_equal_direct_fits():
    m = S.fig3_model(1, p=20, k=4)
    ns = [8, 25, 60]
    out = S.excess_curves(m, ns, runs=1, seed=7)
    s = m.sample(60, seed=np.random.default_rng(7))
    for j, n in enumerate(ns):
        dense, sparse = simulate.least_squares(m, s.xbar[:n], s.y[:n], s.z[:n])
        assert out["risk_dense"][0, j] == pytest.approx(
            theory.risk_of_coefficients(m, _blocks(m, dense), "dense"), rel=1e-8
        )
        assert out["risk_sparse"][0, j] == pytest.approx(theory.risk_of_coefficients(m, sparse, "sparse"), rel=1e-8)


def test_excess_curves_seed_conventions():
    m = S.fig6_model(0, d=5)
    a = S.excess_curves(m, [10, 40], runs=2, seed=3)
    b = S.excess_curves(m, [10, 40], runs=2, seed=np.random.default_rng(3))
    np.testing.assert_array_equal(a["dense"], b["dense"])
    c = S.excess_curves(m, [10, 40], runs=2, seed=4)
    assert not np.array_equal(a["dense"], c["dense"])


def test_sparse_expected_excess_matches_monte_carlo():
    # one expert, d_i = 2, exactly n_i = 12 rows: E[excess] = R * 2 / (12 - 3)
    m = BlockModel.toeplitz(1, 2, 0.4, sigma2=0.8, seed=2)
    formula = S.sparse_expected_excess(m, np.array([12]))
    rb = theory.risk_sparse(m)
    assert formula == pytest.approx(rb * 2 / 9)
    rng = np.random.default_rng(5)
    ex = []
    for _ in range(6000):
        x = m.sample_block(0, 12, rng)
        xb = x + rng.normal(0, np.sqrt(m.sigma2), x.shape)
        ex.append(theory.risk_of_coefficients(m, [simulate.min_norm(xb, x @ m.betas[0])], "sparse") - rb)
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
        dense, _ = simulate.least_squares(m, s.xbar, s.y, s.z)
        vals.append(theory.risk_of_coefficients(m, _blocks(m, dense), "dense"))
    ex = (np.array(vals) - theory.risk_dense(m)) * n
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
    assert rows[0]["negative_beyond"] == pytest.approx(3.94e3 / 13.76)
    a, b = 3.94e3, 13.76
    assert a / 287**2 - b / 287 < 0 < a / 286**2 - b / 286  # negative beyond n = a/b


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
    with pytest.raises(TypeError, match="model must be a BlockModel"):
        S.asymptotic_constants("model")
    with pytest.raises(ValueError, match="^a must hold at least 2 runs"):
        S.paired_log_ratio([1.0], [2.0])
    with pytest.raises(ValueError, match="^b must be > 0"):
        S.paired_log_ratio([1.0, 2.0], [1.0, -1.0])


def test_case_study_exact_mean_matches_monte_carlo_and_paper_is_nine_times_smaller():
    rows = S.case_study_excess([20, 200], lam2=8.0, sigma2=1.0, reps=20000, seed=3)
    for r in rows:
        assert abs(r["mc"] - r["exact"]) < 3 * r["mc_se"]
        assert r["exact"] / r["paper"] == pytest.approx(9.0 * r["n"] / (r["n"] - 2))
    with pytest.raises(ValueError, match="^n must be >= 3"):
        S.case_study_excess([2])


def test_paired_log_ratio_and_intervals_against_scipy():
    from scipy import stats

    rng = np.random.default_rng(0)
    a, b = rng.uniform(1, 2, 7), rng.uniform(1, 2, 7)
    out = S.paired_log_ratio(a, b)
    res = stats.ttest_1samp(np.log(a / b), 0.0).confidence_interval(0.95)
    assert (out["lo"], out["hi"]) == pytest.approx((res.low, res.high))
    mi = S.mean_interval(np.log(a / b))
    assert (mi["lo"], mi["hi"]) == pytest.approx((res.low, res.high))
    lo, hi = S.bootstrap_interval(np.log(a / b), np.mean, reps=4000, seed=1)
    assert lo < np.log(a / b).mean() < hi


def test_a61_bias_identity_exact_with_full_rank_and_off_without():
    m = S.fig3_model(0, p=40, k=4)
    over = S.a61_bias_terms(m, 120, seed=1)
    assert over["rank"] == 40 and over["paper"] == pytest.approx(over["true"], rel=1e-8)
    under = S.a61_bias_terms(m, 20, seed=1)
    assert under["rank"] == 20 and abs(under["paper"] - under["true"]) > 0.05 * under["true"]


def test_a62_variance_terms_independent_checks():
    m = BlockModel.toeplitz(1, 6, 0.5, sigma2=0.7, seed=3)
    out = S.variance_terms(m, [4, 30], reps=3000, seed=5)
    # the paper's final expression is sigma^2 rank(Xbar_i) on every sample
    np.testing.assert_allclose(out["paper"]["mean"], 0.7 * np.array([4, 6]), rtol=1e-10)
    # true variance term against a direct Monte Carlo with numpy's pinv (independent of the SVD code)
    rng = np.random.default_rng(9)
    vals = []
    for _ in range(3000):
        x = m.sample_block(0, 30, rng)
        bh = np.linalg.pinv(x + rng.normal(0, np.sqrt(0.7), x.shape)) @ (x @ m.betas[0])
        vals.append(0.7 * bh @ bh)
    vals = np.array(vals)
    se = np.hypot(vals.std() / np.sqrt(vals.size), out["true"]["se"][1])
    assert abs(vals.mean() - out["true"]["mean"][1]) < 4 * se
    # and the closed-form mean (n_i >= d_i + 2) within the Monte Carlo error
    assert abs(out["exact"][1] - vals.mean()) < 4 * vals.std() / np.sqrt(vals.size)
    assert np.isnan(out["exact"][0])


def test_chapter_module_has_no_plotly_free_domain_and_captions():
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(S))
    names = {
        a.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for a in node.names
    } | {(node.module or "").split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "plotly" not in names
    from moe_companion.chapters import sample_efficiency as C

    for name, spec in C.FIGURES.items():
        assert spec.caption, name
        lay = spec.layout
        for ax in [k for k in lay if k.startswith(("xaxis", "yaxis"))]:
            assert lay[ax]["title"]["text"], (name, ax)
