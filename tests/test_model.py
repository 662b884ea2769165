"""BlockModel: validation (one error per bad input, naming the parameter), constructors, sampling."""

from __future__ import annotations

import numpy as np
import pytest

from moe_companion import BlockModel

GOOD_P = [0.5, 0.5]
GOOD_COVS = [np.eye(2), 2 * np.eye(3)]
GOOD_BETAS = [np.ones(2), np.ones(3)]

BAD_INPUTS = [
    # (p, covariances, betas, sigma2, error type, message fragment)
    ([0.6, 0.6], GOOD_COVS, GOOD_BETAS, 1.0, ValueError, "p must sum to 1"),
    ([1.0, 0.0], GOOD_COVS, GOOD_BETAS, 1.0, ValueError, "p must be on the simplex"),
    ([1.5, -0.5], GOOD_COVS, GOOD_BETAS, 1.0, ValueError, "p must be on the simplex"),
    ([[0.5, 0.5]], GOOD_COVS, GOOD_BETAS, 1.0, ValueError, "p must have 1 dimension"),
    ([np.nan, 0.5], GOOD_COVS, GOOD_BETAS, 1.0, ValueError, "p must contain only finite"),
    ([], [], [], 1.0, ValueError, "p must have at least one entry"),
    (GOOD_P, [np.eye(2)], GOOD_BETAS, 1.0, ValueError, "covariances must have one matrix per expert"),
    (GOOD_P, GOOD_COVS, [np.ones(2)], 1.0, ValueError, "betas must have one vector per expert"),
    (
        GOOD_P,
        [np.array([[1.0, 0.5], [0.0, 1.0]]), GOOD_COVS[1]],
        GOOD_BETAS,
        1.0,
        ValueError,
        r"covariances\[0\] must be symmetric",
    ),
    (
        GOOD_P,
        [np.array([[1.0, 2.0], [2.0, 1.0]]), GOOD_COVS[1]],
        GOOD_BETAS,
        1.0,
        ValueError,
        r"covariances\[0\] must be positive definite",
    ),
    (
        GOOD_P,
        [np.zeros((2, 2)), GOOD_COVS[1]],
        GOOD_BETAS,
        1.0,
        ValueError,
        r"covariances\[0\] must be positive definite",
    ),
    (
        GOOD_P,
        [np.ones((2, 3)), GOOD_COVS[1]],
        GOOD_BETAS,
        1.0,
        ValueError,
        r"covariances\[0\] must be a non-empty square",
    ),
    (
        GOOD_P,
        [np.array([[np.inf, 0], [0, 1.0]]), GOOD_COVS[1]],
        GOOD_BETAS,
        1.0,
        ValueError,
        r"covariances\[0\] must contain only finite",
    ),
    (GOOD_P, GOOD_COVS, [np.ones(3), np.ones(3)], 1.0, ValueError, r"betas\[0\] must have shape \(2\)"),
    (
        GOOD_P,
        GOOD_COVS,
        [np.ones(2), np.array([1.0, np.nan, 0.0])],
        1.0,
        ValueError,
        r"betas\[1\] must contain only finite",
    ),
    (GOOD_P, GOOD_COVS, GOOD_BETAS, -1.0, ValueError, "sigma2 must be >= 0, got -1"),
    (GOOD_P, GOOD_COVS, GOOD_BETAS, float("nan"), ValueError, "sigma2 must be finite"),
    (GOOD_P, GOOD_COVS, GOOD_BETAS, "1", TypeError, "sigma2 must be a real number"),
    (GOOD_P, GOOD_COVS, GOOD_BETAS, True, TypeError, "sigma2 must be a real number"),
    (GOOD_P, np.eye(2), GOOD_BETAS, 1.0, ValueError, "covariances must be a sequence of k matrices"),
    (GOOD_P, GOOD_COVS, np.ones(5), 1.0, ValueError, "betas must be a sequence of k vectors"),
]


@pytest.mark.parametrize("p, covs, betas, sigma2, exc, match", BAD_INPUTS)
def test_bad_inputs_raise_clear_errors(p, covs, betas, sigma2, exc, match):
    with pytest.raises(exc, match=match):
        BlockModel(p, covs, betas, sigma2)


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: BlockModel.toeplitz(k=0, block_dim=3), ValueError, "k must be >= 1"),
        (lambda: BlockModel.toeplitz(k=2, block_dim=0), ValueError, "block_dim must be >= 1"),
        (lambda: BlockModel.toeplitz(k=2, block_dim=3, rho=1.0), ValueError, "rho must be < 1"),
        (lambda: BlockModel.toeplitz(k=2.0, block_dim=3), TypeError, "k must be an integer"),
        (lambda: BlockModel.isotropic([2, 3], variances=[1.0, -1.0]), ValueError, "variances must be > 0"),
        (
            lambda: BlockModel.isotropic([2, 3], variances=[1.0, 1.0, 1.0]),
            ValueError,
            "variances must be a scalar or have one",
        ),
        (lambda: BlockModel.from_spectra([[1.0, 0.0]]), ValueError, r"spectra\[0\] must be > 0"),
        (lambda: BlockModel.toeplitz(2, 3).sample(0), ValueError, "n must be >= 1"),
        (lambda: BlockModel.toeplitz(2, 3).sample(5, seed=-1), ValueError, "seed must be >= 0"),
        (lambda: BlockModel.toeplitz(2, 3).sample(5, sigma2=-0.1), ValueError, "sigma2 must be >= 0"),
        (lambda: BlockModel.toeplitz(2, 3).block_slice(2), ValueError, "i must be <= 1"),
    ],
)
def test_bad_constructor_and_sampler_inputs(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_constructors_build_what_they_say():
    m = BlockModel.toeplitz(k=3, block_dim=4, rho=0.5, sigma2=0.3, seed=2)
    assert m.k == 3 and m.dims == (4, 4, 4) and m.d == 12 and np.allclose(m.p, 1 / 3)
    assert m.covariances[0][0, 3] == pytest.approx(0.5**3)
    iso = BlockModel.isotropic([2, 5], variances=[1.0, 3.0], p=[0.2, 0.8])
    assert np.allclose(iso.covariances[1], 3 * np.eye(5))
    spec = BlockModel.from_spectra([[1.0, 2.0, 5.0], [0.5, 4.0]], seed=1)
    for lam_true, (lam, _) in zip([[1.0, 2.0, 5.0], [0.5, 4.0]], spec.eigh):
        np.testing.assert_allclose(lam, lam_true, atol=1e-12)


def test_eigen_cache_reconstructs_covariance_and_beta():
    m = BlockModel.from_spectra([[0.3, 1.0, 7.0]], seed=3)
    lam, u = m.eigh[0]
    np.testing.assert_allclose((u * lam) @ u.T, m.covariances[0], atol=1e-12)
    np.testing.assert_allclose(u @ m.beta_eigen[0], m.betas[0], atol=1e-12)
    assert m.eigh is m.eigh  # cached


def test_sampling_matches_the_model():
    m = BlockModel.toeplitz(k=2, block_dim=3, rho=0.6, p=[0.3, 0.7], sigma2=0.25, seed=0)
    s = m.sample(200_000, seed=4)
    assert abs((s.z == 0).mean() - 0.3) < 0.005
    rows = s.z == 1
    block = s.x[rows][:, m.block_slice(1)]
    np.testing.assert_allclose(np.cov(block.T), m.covariances[1], atol=0.02)
    assert np.all(s.x[rows][:, m.block_slice(0)] == 0)
    assert abs((s.xbar - s.x).var() - 0.25) < 0.005
    np.testing.assert_allclose(s.y, s.x @ m.beta)


def test_same_seed_same_numbers():
    m = BlockModel.toeplitz(2, 3, seed=5)
    a, b = m.sample(50, seed=9), m.sample(50, seed=9)
    np.testing.assert_array_equal(a.xbar, b.xbar)
    assert not np.array_equal(a.xbar, m.sample(50, seed=10).xbar)
    assert BlockModel.toeplitz(2, 3, seed=5).betas[0].tolist() == m.betas[0].tolist()


def test_parameters_are_read_only_and_replace_revalidates():
    m = BlockModel.toeplitz(2, 3)
    with pytest.raises(ValueError):
        m.p[0] = 0.9
    assert m.replace(sigma2=2.0).sigma2 == 2.0
    with pytest.raises(ValueError, match="sigma2 must be >= 0"):
        m.replace(sigma2=-2.0)


@pytest.mark.parametrize("bad", [None, "model", np.eye(2)])
def test_functions_taking_a_model_name_the_parameter(bad):
    from moe_companion import router, sample_efficiency, simulate, theory

    for call in (
        lambda: theory.risk_dense(bad),
        lambda: sample_efficiency.asymptotic_constants(bad),
        lambda: simulate.risk(bad, "dense", 10, seed=0),
        lambda: router.bayes_router(bad),
    ):
        with pytest.raises(TypeError, match="model must be a BlockModel"):
            call()


@pytest.mark.parametrize(
    "p, covs, betas, exc, match",
    [
        (["0.5", "0.5"], GOOD_COVS, GOOD_BETAS, TypeError, "p must be an array of real numbers"),
        ([True, False], GOOD_COVS, GOOD_BETAS, TypeError, "p must be an array of real numbers"),
        (np.array([0.5, "0.5"], dtype=object), GOOD_COVS, GOOD_BETAS, TypeError, "p must be an array of real numbers"),
        (GOOD_P, [[["1", "0"], ["0", "1"]], GOOD_COVS[1]], GOOD_BETAS, TypeError, r"covariances\[0\] must be an array"),
        (GOOD_P, GOOD_COVS, [np.ones(2), [True, True, True]], TypeError, r"betas\[1\] must be an array"),
        (GOOD_P, [*GOOD_COVS, np.eye(2)], GOOD_BETAS, ValueError, "covariances must have one matrix per expert"),
        (GOOD_P, GOOD_COVS, [*GOOD_BETAS, np.ones(2)], ValueError, "betas must have one vector per expert"),
    ],
)
def test_strings_bools_and_extra_experts_are_refused(p, covs, betas, exc, match):
    with pytest.raises(exc, match=match):
        BlockModel(p, covs, betas, 1.0)


def test_spd_test_is_relative_to_the_matrix_scale():
    tiny = BlockModel([0.5, 0.5], [1e-12 * np.eye(2), 1e-12 * np.eye(3)], GOOD_BETAS, 1e-13)
    assert tiny.eigh[0][0][0] == pytest.approx(1e-12)
    huge = BlockModel([0.5, 0.5], [1e300 * np.eye(2), np.eye(3)], GOOD_BETAS, 1.0)
    assert np.isfinite(huge.eigh[0][0]).all()
    near_singular = np.diag([1.0, 1e-13])  # ill-conditioned relative to its own scale: refused
    with pytest.raises(ValueError, match=r"covariances\[0\] must be positive definite"):
        BlockModel(GOOD_P, [near_singular, GOOD_COVS[1]], GOOD_BETAS, 1.0)


def test_huge_n_is_refused_before_allocating():
    m = BlockModel.toeplitz(4, 8)
    with pytest.raises(ValueError, match="n is too large"):
        m.sample(10**12)
