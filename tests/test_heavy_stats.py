"""The crossed bootstrap of the heavy chapters, checked against explicit resampling by indexing."""

import numpy as np
import pytest

from moe_companion.heavy.stats import crossed_bootstrap, mean_difference


def test_matches_explicit_index_resampling():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 2, (5, 300)), rng.integers(0, 2, (5, 300))
    c = rng.integers(0, 2, 300)  # a seed-independent array (a clean run)
    est, lo, hi = crossed_bootstrap([a, b, c], lambda x, y, z: (z - x) - (z - y), n_boot=3000, seed=1)
    assert est == pytest.approx(b.mean() - a.mean())
    r = np.random.default_rng(2)
    reps = []
    for _ in range(3000):
        si, ei = r.integers(0, 5, 5), r.integers(0, 300, 300)
        reps.append(b[np.ix_(si, ei)].mean() - a[np.ix_(si, ei)].mean())
    ref = np.quantile(reps, [0.025, 0.975])
    assert lo == pytest.approx(ref[0], abs=0.006) and hi == pytest.approx(ref[1], abs=0.006)


def test_interval_covers_a_known_difference():
    rng = np.random.default_rng(3)
    hits = 0
    for _ in range(60):
        a = rng.binomial(1, 0.7, (5, 400))
        b = rng.binomial(1, 0.6, (5, 400))
        _, lo, hi = mean_difference(a, b, n_boot=400, seed=rng)
        hits += lo <= 0.1 <= hi
    assert hits >= 50


def test_bad_shapes_name_the_array():
    with pytest.raises(ValueError, match=r"arrays\[1\]"):
        crossed_bootstrap([np.zeros((3, 4)), np.zeros((2, 4))], lambda x, y: x - y)
    with pytest.raises(ValueError, match="n_boot"):
        crossed_bootstrap([np.zeros((3, 4))], lambda x: x, n_boot=1)
