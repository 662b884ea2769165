"""Monte Carlo vs closed forms (within 3 standard errors) on seeded random models, per theorem."""

import numpy as np
import pytest

from moe_companion import BlockModel, simulate, theory
from moe_companion.model import random_model

N = 60_000
SEEDS = range(5)


def _within(mc, exact, n_se=3.0):
    mean, se = mc
    assert se > 0
    assert abs(mean - exact) <= n_se * se, f"MC {mean:.6g} ± {se:.3g} vs closed form {exact:.6g}"


@pytest.mark.parametrize("seed", SEEDS)
def test_theorem2_monte_carlo(seed):
    m = random_model(seed)
    _within(simulate.risk(m, "dense", N, seed), theory.risk_dense(m))
    _within(simulate.risk(m, "sparse", N, seed + 50), theory.risk_sparse(m))


@pytest.mark.parametrize("seed", SEEDS)
def test_theorem3_monte_carlo_replace_semantics(seed):
    """Test noise sigma_o^2 replaces sigma^2: the printed formulas match; the additive reading does not."""
    m = random_model(seed)
    so2 = 3.0 * m.sigma2 + 0.5
    for est, f in (("dense", theory.risk_dense), ("sparse", theory.risk_sparse)):
        mc = simulate.risk(m, est, N, seed + 1000, sigma_o2=so2)
        _within(mc, f(m, so2))
        assert abs(mc[0] - f(m, m.sigma2 + so2)) > 5 * mc[1]


@pytest.mark.parametrize("seed", SEEDS)
def test_theorem3_gap_monte_carlo(seed):
    m = random_model(seed)
    so2 = 10.0 * m.sigma2
    _within(simulate.risk_gap(m, N, seed, sigma_o2=so2), theory.risk_sparse(m, so2) - theory.risk_dense(m, so2))


def test_counterexample_gap_sign_is_resolved_by_simulation():
    p = np.r_[0.8, np.full(15, 0.2 / 15)]
    m = BlockModel.from_spectra([np.geomspace(1, 1.2, 4)] * 16, p=p, sigma2=0.24, seed=0)
    mean, se = simulate.risk_gap(m, 40_000, 1, sigma_o2=24.0)
    assert mean - 3 * se > 0  # sparse is worse although the paper's sufficient condition holds
    _within((mean, se), theory.risk_sparse(m, 24.0) - theory.risk_dense(m, 24.0))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("reading", sorted(theory.READINGS))
def test_theorem4_monte_carlo_each_reading(seed, reading):
    m = random_model(seed)
    j = m.k - 1
    eta = 1.0 + seed * 0.5
    dense_mc, sparse_mc = simulate.misrouting_risk(m, 0, j, eta, reading, N, seed)
    dense, sparse = theory.misrouting_risk(m, 0, j, eta, reading)
    _within(dense_mc, dense)
    _within(sparse_mc, sparse)


@pytest.mark.parametrize("seed", SEEDS)
def test_printed_theorem4_matches_no_reading(seed):
    m = random_model(seed)
    j = m.k - 1
    dense_p, sparse_p = theory.paper_misrouting_risk(m, 0, j, 2.0)
    for reading in theory.READINGS:
        (dm, dse), (sm, sse) = simulate.misrouting_risk(m, 0, j, 2.0, reading, N, seed)
        assert abs(dm - dense_p) > 5 * dse or abs(sm - sparse_p) > 5 * sse


@pytest.mark.parametrize("est", ["dense", "sparse"])
def test_least_squares_fits_approach_bayes_risk(est):
    m = random_model(1, k=3)
    bayes = theory.risk_dense(m) if est == "dense" else theory.risk_sparse(m)
    small = simulate.fitted_risk(m, est, 60, 8, 0)[0]
    big_mean, _ = simulate.fitted_risk(m, est, 20_000, 4, 0)
    assert small > big_mean >= bayes * (1 - 1e-12)
    assert big_mean - bayes < 0.02 * bayes


def test_same_seed_same_numbers_and_different_seed_differs():
    m = random_model(2)
    assert simulate.risk(m, "dense", 1000, 3) == simulate.risk(m, "dense", 1000, 3)
    assert simulate.risk(m, "dense", 1000, 3) != simulate.risk(m, "dense", 1000, 4)
    a = simulate.misrouting_risk(m, 0, 1, 2.0, "A", 1000, 3)
    assert a == simulate.misrouting_risk(m, 0, 1, 2.0, "A", 1000, 3)


def test_bad_inputs_raise_clear_errors():
    m = random_model(0, k=3)
    with pytest.raises(ValueError, match="n_samples"):
        simulate.risk(m, "dense", 1, 0)
    with pytest.raises(ValueError, match="estimator"):
        simulate.risk(m, "moe", 10, 0)
    with pytest.raises(ValueError, match="sigma_o2"):
        simulate.risk(m, "dense", 10, 0, sigma_o2=-1.0)
    with pytest.raises(ValueError, match="seed"):
        simulate.risk(m, "dense", 10, -1)
    with pytest.raises(ValueError, match="j must differ"):
        simulate.misrouting_risk(m, 2, 2, 2.0, "A", 10, 0)
    with pytest.raises(ValueError, match="j must be"):
        simulate.misrouting_risk(m, 0, 5, 2.0, "A", 10, 0)
    with pytest.raises(ValueError, match="eta"):
        simulate.misrouting_risk(m, 0, 1, 0.0, "A", 10, 0)
    with pytest.raises(ValueError, match="n_samples"):
        simulate.misrouting_risk(m, 0, 1, 2.0, "A", 1, 0)
    with pytest.raises(ValueError, match="reading"):
        simulate.misrouting_risk(m, 0, 1, 2.0, "F", 10, 0)
    with pytest.raises(ValueError, match="n_reps"):
        simulate.fitted_risk(m, "dense", 10, 1, 0)
    with pytest.raises(ValueError, match="n_samples"):
        simulate.risk_gap(m, 0, 0)


def test_reading_none_and_huge_n_are_clear_errors():
    m = random_model(0)
    with pytest.raises(ValueError, match="reading must be one of"):
        simulate.misrouting_risk(m, 0, 1, 2.0, None, 100, 0)
    with pytest.raises(ValueError, match="n is too large"):
        simulate.misrouting_risk(m, 0, 1, 2.0, "A", 10**12, 0)
    with pytest.raises(ValueError, match="n is too large"):
        simulate.risk(m, "dense", 10**12, 0)


def test_check_rows_reports_closed_form_and_z():
    rows = simulate.check_rows([random_model(0)], 20_000, sigma_o2_factor=2.0, seed=3)
    assert [r["estimator"] for r in rows] == ["dense", "sparse"]
    for r in rows:
        assert r["z"] == pytest.approx((r["mc"] - r["closed"]) / r["se"])
        assert abs(r["z"]) < 5 and abs(r["z_additive"]) > abs(r["z"])
