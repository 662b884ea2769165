"""Tests for moe_companion.convergence (Theorem 5)."""

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from moe_companion import convergence as C

threadpool_limits(1)


@pytest.mark.parametrize("c,sigma2", [(2.0, 0.5), (1.5, 1.0), (3.0, 0.25)])
def test_measured_gd_contraction_equals_condition_rate(c, sigma2):
    des = C.noisy_block_design(80, c, sigma2, 4, seed=1)
    rng = np.random.default_rng(0)
    for a in [des.xbar] + [des.block(i) for i in range(4)]:
        s = np.linalg.svd(a, compute_uv=False)
        s = s[s > 1e-10 * s[0]]
        want = 1 - s[-1] ** 2 / s[0] ** 2
        got = C.contraction(C.gradient_descent(a, rng.standard_normal(a.shape[0]), 4000)["residual"])
        assert got == pytest.approx(want, abs=1e-2)


def test_gd_converges_to_min_norm_solution():
    des = C.noisy_block_design(40, 2.0, 0.5, 2, seed=2)
    y = np.random.default_rng(1).standard_normal(40)
    g = C.gradient_descent(des.xbar, y, 3000)
    np.testing.assert_allclose(g["beta"], np.linalg.pinv(des.xbar) @ y, atol=1e-6)
    assert g["error"][-1] < 1e-6 * g["error"][0]


def test_nonzero_singular_values_match_svd():
    a = np.random.default_rng(3).standard_normal((7, 12))
    np.testing.assert_allclose(C.nonzero_singular_values(a), np.linalg.svd(a, compute_uv=False), atol=1e-10)
    np.testing.assert_allclose(C.nonzero_singular_values(a.T), np.linalg.svd(a, compute_uv=False), atol=1e-10)


def test_design_blocks_have_prescribed_clean_singular_values():
    lam = C.block_spectra(3, 10, lo=1.0, hi=2.0, spread=2.0)
    des = C.noisy_block_design(30, 2.0, 0.0, 3, lam, seed=0)
    for i in range(3):
        np.testing.assert_allclose(C.nonzero_singular_values(des.block(i)), lam[i], atol=1e-10)
    # noiseless: nothing off the diagonal blocks
    assert np.abs(des.xbar - des.x).max() == 0.0


def test_paper_rate_is_one_minus_spike_ratio_above_threshold():
    s2, c, l1, lm = 0.5, 2.0, 2.0, 1.0
    f = lambda x: (s2 + x) * (c * s2 + x) / x  # noqa: E731
    assert C.paper_rate(l1, lm, s2, c) == pytest.approx(1 - f(lm**2) / f(l1**2))
    # the spike map switches to the bulk edge below sqrt(c) sigma^2
    assert C.spike_map(np.array(0.5), 1.0, 4.0) == pytest.approx(9.0)
    assert C.spike_map(np.array(4.0), 1.0, 4.0) == pytest.approx(5 * 8 / 4)
    # the printed formula has no threshold: it goes negative where the map is not monotone
    assert C.paper_rate(2.0, 1.0, 2.0, 2.0) < 0


def test_spike_map_predicts_isolated_spike_and_bulk_edge():
    sp = C.spiked_rates(800, 2.0, 0.5, 4, spikes=(3.0,), seed=1)
    for name, key in (("dense", "smax2_dense"), ("sparse", "smax2_sparse")):
        meas = np.max(sp["measured"][key])
        assert meas == pytest.approx(sp["predicted"][name]["smax2"], rel=0.05)
    assert np.median(sp["measured"]["smin2_sparse"]) == pytest.approx(sp["predicted"]["sparse"]["smin2"], rel=0.25)


def test_bad_inputs():
    with pytest.raises(ValueError, match="^n must be >= 1"):
        C.noisy_block_design(0, 2.0, 0.5, 4)
    with pytest.raises(ValueError, match="^c must be > 0"):
        C.noisy_block_design(40, 0.0, 0.5, 4)
    with pytest.raises(ValueError, match="^k must divide d"):
        C.noisy_block_design(8, 1.25, 0.5, 4)  # d = 10 is not divisible by k = 4
    with pytest.raises(ValueError, match="^sigma2 must be >= 0"):
        C.noisy_block_design(40, 2.0, -1.0, 4)
    with pytest.raises(ValueError, match="^k must divide n"):
        C.noisy_block_design(30, 2.0, 0.5, 4)
    with pytest.raises(ValueError, match="^c must make d"):
        C.noisy_block_design(40, 1.01, 0.5, 4)


def test_bad_inputs_issue14():
    with pytest.raises(ValueError, match="^residual must have at least window"):
        C.contraction([])
    with pytest.raises(ValueError, match="^residual must start above 0"):
        C.contraction(np.zeros(10))
    with pytest.raises(ValueError, match="^a must have at least one non-zero entry"):
        C.gradient_descent(np.zeros((4, 6)), np.ones(4), 10)
    with pytest.raises(ValueError, match="^n is too large"):
        C.noisy_block_design(10**6, 2.0, 0.5, 4)
    with pytest.raises(TypeError, match="^seed"):
        C.noisy_block_design(40, 2.0, 0.5, 4, seed="x")


def test_design_seed_accepts_generator():
    a = C.noisy_block_design(40, 2.0, 0.5, 4, seed=np.random.default_rng(1)).xbar
    b = C.noisy_block_design(40, 2.0, 0.5, 4, seed=np.random.default_rng(1)).xbar
    np.testing.assert_array_equal(a, b)


def test_info_plus_noise_edges_reduce_to_marchenko_pastur():
    # no signal: the limit is Marchenko-Pastur with edges s2 (sqrt(c) -+ 1)^2 (independent closed form)
    for s2, c in ((0.5, 2.0), (1.0, 4.0)):
        lo, hi = C.info_plus_noise_edges(np.zeros(8), s2, c)
        assert lo == pytest.approx(s2 * (np.sqrt(c) - 1) ** 2, rel=0.02)
        assert hi == pytest.approx(s2 * (np.sqrt(c) + 1) ** 2, rel=0.01)


def test_corrected_rate_matches_large_simulation():
    # independent check: the extreme singular values of one large noisy design (Monte Carlo)
    n, c, s2 = 1024, 2.0, 0.5
    r = C.rate_table(n, c, s2, seed=3)
    assert r["smin2_dense"] == pytest.approx(r["smin2_dense_ipn"], rel=0.06)
    assert r["smax2_dense"] == pytest.approx(r["smax2_dense_ipn"], rel=0.03)
    assert r["smin2_block0"] == pytest.approx(r["smin2_block0_ipn"], rel=0.08)
    assert r["measured_dense"] == pytest.approx(r["corrected_dense"], abs=0.01)
    assert r["measured_sparse_max"] == pytest.approx(r["corrected_sparse_max"], abs=0.015)
    # the printed Theorem 5 is far off in the same case
    assert abs(r["measured_dense"] - r["paper_dense"]) > 0.3


def test_hypothesis_counterexample_against_brute_force_grid():
    # brute force over allowed (lam_min <= lam_max, both > sqrt(c) sigma2): negative printed rates exist
    # exactly when sigma2 < c^(-1/2), and never go below the derived infimum
    for c in (1.5, 2.0, 4.0):
        for s2 in (0.05, 0.2, 0.6, 1.0, 2.0):
            lo = np.sqrt(c) * s2 * 1.0001
            grid = lo * np.geomspace(1, 20, 120)
            rates = np.array([C.paper_rate(l1, lm, s2, c) for i, lm in enumerate(grid) for l1 in grid[i:]])
            ex = C.hypothesis_counterexample(c, s2)
            assert ex["exists"] == bool(rates.min() < -1e-9)
            if ex["exists"]:
                assert rates.min() >= ex["infimum"] - 1e-9
                assert ex["rate"] < 0
            assert rates.max() < 1
