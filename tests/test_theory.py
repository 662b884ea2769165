"""Closed forms of Theorems 2-4: eigenbasis vs matrix formulas, vectorisation, properties, findings."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moe_companion import BlockModel, theory
from moe_companion.model import random_model

SEEDS = range(8)


# ------------------------------------------------------------------------------ Theorem 2 / 3
@pytest.mark.parametrize("seed", SEEDS)
def test_eigenbasis_matches_printed_matrix_formulas(seed):
    m = random_model(seed)
    assert theory.risk_dense(m) == pytest.approx(theory.risk_dense_direct(m), rel=1e-10, abs=1e-12)
    assert theory.risk_sparse(m) == pytest.approx(theory.risk_sparse_direct(m), rel=1e-10, abs=1e-12)
    for so2 in (0.0, 0.3, m.sigma2, 4.0):
        assert theory.risk_dense(m, so2) == pytest.approx(theory.risk_dense_direct(m, so2), rel=1e-10, abs=1e-12)
        assert theory.risk_sparse(m, so2) == pytest.approx(theory.risk_sparse_direct(m, so2), rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_closed_forms_equal_risk_of_bayes_coefficients(seed):
    """Independent route: plug Eq. (3) coefficients into the generic risk of linear coefficients."""
    m = random_model(seed)
    for so2 in (None, 0.0, 2.5):
        rd = theory.risk_of_coefficients(m, theory.bayes_dense(m), "dense", so2)
        rs = theory.risk_of_coefficients(m, theory.bayes_sparse(m), "sparse", so2)
        assert theory.risk_dense(m, so2) == pytest.approx(rd, rel=1e-10)
        assert theory.risk_sparse(m, so2) == pytest.approx(rs, rel=1e-10)


@pytest.mark.parametrize("seed", SEEDS)
def test_bayes_estimators_minimise_the_risk(seed):
    """Eq. (3) is the minimiser: random perturbations of the coefficients only increase the risk."""
    m = random_model(seed)
    rng = np.random.default_rng(seed + 100)
    for est, coefs in (("dense", theory.bayes_dense(m)), ("sparse", theory.bayes_sparse(m))):
        base = theory.risk_of_coefficients(m, coefs, est)
        for _ in range(5):
            pert = [c + 0.05 * rng.standard_normal(c.shape) for c in coefs]
            assert theory.risk_of_coefficients(m, pert, est) > base


def test_vectorised_equals_scalar_loop():
    m = random_model(3)
    so2 = np.linspace(0.0, 5.0, 37)
    dense, sparse = theory.risk_grid(m, sigma_o2=so2)
    assert dense.shape == so2.shape
    np.testing.assert_array_equal(dense, [theory.risk_dense(m, s) for s in so2])
    np.testing.assert_array_equal(sparse, [theory.risk_sparse(m, s) for s in so2])
    grid = so2.reshape(37, 1) * np.ones((1, 3))
    assert theory.risk_dense(m, grid).shape == (37, 3)
    np.testing.assert_array_equal(theory.risk_dense(m, grid)[:, 1], dense)


def test_grid_over_sigma2_and_p_matches_replaced_models():
    m = random_model(4, k=3)
    s2 = np.geomspace(0.01, 10.0, 25)
    dense, sparse = theory.risk_grid(m, sigma2=s2)
    for g, s in enumerate(s2):
        mm = m.replace(sigma2=float(s))
        assert dense[g] == pytest.approx(theory.risk_dense_direct(mm), rel=1e-10)
        assert sparse[g] == pytest.approx(theory.risk_sparse_direct(mm), rel=1e-10)
    p1 = np.linspace(0.05, 0.9, 9)
    P = np.column_stack([p1, (1 - p1) / 2, (1 - p1) / 2])
    dense, sparse = theory.risk_grid(m, p=P, sigma_o2=1.7)
    for g in range(p1.size):
        mm = m.replace(p=P[g])
        assert dense[g] == pytest.approx(theory.risk_dense_direct(mm, 1.7), rel=1e-10)
        assert sparse[g] == pytest.approx(theory.risk_sparse_direct(mm, 1.7), rel=1e-10)


def test_theorem3_reduces_to_theorem2_at_sigma_o2_equal_sigma2():
    m = random_model(5)
    assert theory.risk_dense(m, m.sigma2) == pytest.approx(theory.risk_dense(m), rel=1e-13)
    assert theory.risk_sparse(m, m.sigma2) == pytest.approx(theory.risk_sparse(m), rel=1e-13)


# ------------------------------------------------------------------------------ Theorem 3 crossover
def _one_direction_model(lam, p, s2):
    """Only one direction carries signal: block 0 is 1-D with eigenvalue lam, beta_0 = 1, beta_1 = 0."""
    return BlockModel([p, 1 - p], [np.array([[lam]]), np.eye(1)], [np.ones(1), np.zeros(1)], s2)


def test_direction_threshold_formula_on_known_values():
    # sigma^2 = 1, p = 0.05, lam = 4: tau = (1.05*4 + 2) / (1 - 0.05*16) = 6.2 / 0.2 = 31
    assert theory.direction_threshold(4.0, 0.05, 1.0) == pytest.approx(31.0)
    assert theory.direction_threshold(4.0, 1 / 16, 1.0) == np.inf  # p lam^2 = sigma^4: boundary
    assert theory.direction_threshold(4.0, 1.0, 1.0) == np.inf


def test_paper_sufficient_condition_fails_on_slider_counterexample():
    """k = 16, p_1 = 0.8 (rest uniform), spectra in [1, 1.2], sigma^2 = 0.24: lambda_min > 4 sigma^2."""
    p = np.r_[0.8, np.full(15, 0.2 / 15)]
    m = BlockModel.from_spectra([np.geomspace(1, 1.2, 4)] * 16, p=p, sigma2=0.24, seed=0)
    so2 = 100 * 0.24
    assert theory.paper_condition(m, so2)
    assert theory.risk_sparse(m, so2) > theory.risk_dense(m, so2) * 1.1
    t = theory.crossover_sigma_o2(m)
    assert 0.24 < t < so2
    assert theory.risk_sparse(m, 0.999 * t) < theory.risk_dense(m, 0.999 * t)
    assert theory.risk_sparse(m, 1.001 * t) > theory.risk_dense(m, 1.001 * t)


def test_paper_condition_is_sufficient_when_every_p_is_at_least_one_sixteenth():
    rng = np.random.default_rng(0)
    for seed in range(20):
        k = int(rng.integers(2, 17))
        p = np.full(k, 1.0 / k)
        s2 = float(rng.uniform(0.01, 1.0))
        spectra = [rng.uniform(4.0001 * s2, 20 * s2, size=3) for _ in range(k)]
        m = BlockModel.from_spectra(spectra, p=p, sigma2=s2, seed=seed)
        assert theory.crossover_sigma_o2(m) == np.inf


small_floats = st.floats(min_value=0.02, max_value=20.0, allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(
    lam=small_floats,
    p=st.floats(min_value=0.01, max_value=0.99),
    s2=st.floats(min_value=0.02, max_value=5.0),
    so2=st.floats(min_value=0.0, max_value=500.0),
)
def test_exact_direction_condition_agrees_with_brute_force(lam, p, s2, so2):
    m = _one_direction_model(lam, p, s2)
    dense, sparse = theory.risk_dense(m, so2), theory.risk_sparse(m, so2)
    if abs(dense - sparse) <= 1e-9 * max(dense, 1e-300):
        return  # on the boundary: either answer is right up to rounding
    assert theory.sparse_wins_direction(lam, p, s2, so2) == (sparse <= dense)


@st.composite
def models(draw):
    k = draw(st.integers(1, 4))
    dims = [draw(st.integers(1, 3)) for _ in range(k)]
    spectra = [[draw(small_floats) for _ in range(d)] for d in dims]
    w = np.array([draw(st.floats(0.05, 1.0)) for _ in range(k)])
    s2 = draw(st.floats(min_value=0.0, max_value=5.0))
    seed = draw(st.integers(0, 2**16))
    return BlockModel.from_spectra(spectra, p=w / w.sum(), sigma2=s2, seed=seed)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(m=models())
def test_theorem2_sparse_never_worse(m):
    assert theory.risk_sparse(m) <= theory.risk_dense(m) * (1 + 1e-12) + 1e-15


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(m=models(), so2=st.floats(0.0, 100.0), eta=st.floats(0.01, 10.0))
def test_derived_risks_are_nonnegative(m, so2, eta):
    assert theory.risk_dense(m, so2) >= 0 and theory.risk_sparse(m, so2) >= 0
    if m.k >= 2:
        for r in theory.READINGS:
            dense, sparse = theory.misrouting_risk(m, 0, m.k - 1, eta, r)
            assert dense >= 0 and sparse >= 0


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(m=models(), frac=st.floats(0.0, 1.0))
def test_total_crossover_agrees_with_brute_force(m, frac):
    t = theory.crossover_sigma_o2(m)
    grid = np.geomspace(1e-3, 1e4, 60) * max(m.sigma2, 1e-3)
    dense, sparse = theory.risk_grid(m, sigma_o2=grid)
    scale = np.maximum(np.abs(dense), 1e-300)
    clear = np.abs(sparse - dense) > 1e-9 * scale
    predicted = grid <= t
    np.testing.assert_array_equal((sparse <= dense)[clear], predicted[clear])


# ------------------------------------------------------------------------------ Theorem 4
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("reading", sorted(theory.READINGS))
def test_misrouting_eigen_vs_direct(seed, reading):
    m = random_model(seed)
    for eta in (0.5, 1.0, 2.5):
        got = theory.misrouting_risk(m, 0, 1, eta, reading)
        want = theory.misrouting_risk_direct(m, 0, 1, eta, reading)
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(
        theory.paper_misrouting_risk(m, 1, 0, 2.0),
        theory.paper_misrouting_risk_direct(m, 1, 0, 2.0),
        rtol=1e-10,
        atol=1e-12,
    )


def test_misrouting_vectorised_over_eta():
    m = random_model(2, k=4)
    eta = np.linspace(0.5, 4, 11)
    for reading in theory.READINGS:
        dense, sparse = theory.misrouting_risk(m, 2, 0, eta, reading)
        for g, e in enumerate(eta):
            assert (dense[g], sparse[g]) == pytest.approx(theory.misrouting_risk(m, 2, 0, float(e), reading), rel=1e-14)
    dense, sparse = theory.paper_misrouting_risk(m, 2, 0, eta)
    assert dense.shape == sparse.shape == eta.shape


@pytest.mark.parametrize("seed", SEEDS)
def test_printed_sparse_is_reading_B_minus_target_variance(seed):
    """Finding: printed sparse = E[(mis-routed output)^2] under reading B, missing beta_i^T Sigma_i beta_i."""
    m = random_model(seed)
    _, sparse_b = theory.misrouting_risk(m, 0, 1, 2.0, "B")
    _, printed = theory.paper_misrouting_risk(m, 0, 1, 2.0)
    target_var = float(m.betas[0] @ m.covariances[0] @ m.betas[0])
    assert sparse_b - printed == pytest.approx(target_var, rel=1e-10)


def test_printed_dense_can_be_negative():
    """A model on which the printed Theorem 4 dense 'risk' is negative (k = 2, eta = 1.5)."""
    m = BlockModel.isotropic([4, 4], 1.0, p=[0.5, 0.5], sigma2=0.5, seed=0)
    m = m.replace(betas=[m.betas[0], 0.2 * m.betas[1]])
    dense, _ = theory.paper_misrouting_risk(m, 0, 1, 1.5)
    assert dense < 0
    assert all(d > 0 for d in (theory.misrouting_risk(m, 0, 1, 1.5, r)[0] for r in theory.READINGS))


# ------------------------------------------------------------------------------ bad input
def test_bad_inputs_raise_clear_errors():
    m = random_model(0, k=3)
    with pytest.raises(ValueError, match="sigma_o2"):
        theory.risk_dense(m, -1.0)
    with pytest.raises(ValueError, match="sigma_o2"):
        theory.risk_sparse(m, np.array([1.0, -0.5]))
    with pytest.raises(ValueError, match="sigma2"):
        theory.risk_grid(m, sigma2=[-1.0])
    with pytest.raises(ValueError, match="p"):
        theory.risk_grid(m, p=[0.5, 0.5])
    with pytest.raises(ValueError, match="j must differ"):
        theory.misrouting_risk(m, 1, 1, 2.0)
    with pytest.raises(ValueError, match="i must be"):
        theory.misrouting_risk(m, 3, 1, 2.0)
    with pytest.raises(ValueError, match="j must be"):
        theory.paper_misrouting_risk(m, 0, -1, 2.0)
    with pytest.raises(ValueError, match="eta"):
        theory.misrouting_risk(m, 0, 1, 0.0)
    with pytest.raises(ValueError, match="eta"):
        theory.paper_misrouting_risk(m, 0, 1, -2.0)
    with pytest.raises(ValueError, match="reading"):
        theory.misrouting_risk(m, 0, 1, 2.0, reading="Z")
    with pytest.raises(ValueError, match="estimator"):
        theory.risk_of_coefficients(m, theory.bayes_dense(m), "moe")
    with pytest.raises(TypeError, match="model"):
        theory.risk_dense("not a model")
    with pytest.raises(ValueError, match="p must be <= 1"):
        theory.direction_threshold(1.0, 1.5, 1.0)


@pytest.mark.parametrize("seed", SEEDS)
def test_first_line_of_appendix_a4_is_reading_A(seed):
    """Appendix A.4's first line (before the faulty simplification) is the reading-A dense risk."""
    m = random_model(seed)
    i, j, eta = 0, m.k - 1, 1.7
    s2 = m.sigma2
    bd = theory.bayes_dense(m)
    cov_i, cov_j, b_i = m.covariances[i], m.covariances[j], m.betas[i]
    first_line = (
        b_i @ cov_i @ b_i
        + bd[i] @ cov_i @ bd[i]
        + eta**2 * bd[j] @ cov_j @ bd[j]
        + s2 * sum(c @ c for c in bd)
        - 2 * bd[i] @ cov_i @ b_i
    )
    assert theory.misrouting_risk(m, i, j, eta, "A")[0] == pytest.approx(first_line, rel=1e-10)
    assert theory.paper_misrouting_risk(m, i, j, eta)[0] != pytest.approx(first_line, rel=1e-3)


def test_dense_beats_sparse_under_misrouting_with_two_experts():
    """The paper's remark (only experts i and j): under readings A and B dense wins, for every eta."""
    for seed in range(10):
        m = random_model(seed, k=2)
        for reading in "AB":
            dense, sparse = theory.misrouting_risk(m, 0, 1, np.linspace(0.2, 6, 30), reading)
            assert np.all(dense <= sparse)


def test_huge_noise_and_eigenvalues_stay_finite_and_match_the_limits():
    from moe_companion import BlockModel

    b = [np.array([1.0, 2.0]), np.array([0.5, -1.0])]
    m = BlockModel([0.5, 0.5], [np.eye(2), np.eye(2)], b, 1.5e154)
    dense, sparse = theory.risk_dense(m), theory.risk_sparse(m)
    signal = 0.5 * sum(float(x @ x) for x in b)  # sigma^2 -> inf: both estimators shrink to 0, risk -> signal
    assert dense == pytest.approx(signal, rel=1e-9) and sparse == pytest.approx(signal, rel=1e-9)
    assert np.isfinite(theory.crossover_sigma_o2(m)) or theory.crossover_sigma_o2(m) == np.inf
    big = BlockModel([0.5, 0.5], [1e300 * np.eye(2), 1e300 * np.eye(2)], b, 1.0)
    # lambda -> inf per direction: dense p s2 lam b^2 / (p lam + s2) -> s2 b^2, sparse -> p s2 b^2 (s2 = 1)
    d_lim = sum(float(x @ x) for x in b)
    assert theory.risk_dense(big) == pytest.approx(d_lim, rel=1e-9)
    assert theory.risk_sparse(big) == pytest.approx(0.5 * sum(float(x @ x) for x in b), rel=1e-9)
    assert all(np.isfinite(theory.paper_misrouting_risk(big, 0, 1, 2.0)))
    assert np.isfinite(theory.direction_threshold(1.0, 0.5, 1e200))


@pytest.mark.parametrize("fn", [theory.misrouting_risk, theory.misrouting_risk_direct])
def test_reading_none_is_a_clear_error(fn):
    m = random_model(0)
    with pytest.raises(ValueError, match="reading must be one of"):
        fn(m, 0, 1, 2.0, None)


def test_proof_first_line_is_reading_a_and_refuses_arrays():
    m = random_model(1)
    assert theory.proof_first_line_dense(m, 0, 1, 1.3) == pytest.approx(theory.misrouting_risk(m, 0, 1, 1.3, "A")[0])
    with pytest.raises(ValueError, match="eta must be a scalar"):
        theory.proof_first_line_dense(m, 0, 1, [1.0, 2.0])
