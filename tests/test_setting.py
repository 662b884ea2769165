"""Eq. (3) estimators and the setting chapter's figure, checked against independent computations."""

from __future__ import annotations

import numpy as np
import pytest

from moe_companion import BlockModel, simulate
from moe_companion.chapters import setting as chapter
from moe_companion.model import with_p1
from moe_companion.theory import bayes_dense, bayes_sparse, shrinkage_ratios


def _direct(model):
    """Eq. (3) by solving the normal equations of the full d x d problem (no block structure used)."""
    d = model.d
    second_moment = model.sigma2 * np.eye(d)
    cross = np.zeros(d)
    for i in range(model.k):
        sl = model.block_slice(i)
        second_moment[sl, sl] += model.p[i] * model.covariances[i]
        cross[sl] = model.p[i] * model.covariances[i] @ model.betas[i]
    dense = np.linalg.solve(second_moment, cross)
    sparse = [
        np.linalg.solve(c + model.sigma2 * np.eye(c.shape[0]), c @ b) for c, b in zip(model.covariances, model.betas)
    ]
    return [dense[model.block_slice(i)] for i in range(model.k)], sparse


@pytest.mark.parametrize("seed", range(5))
def test_eigenbasis_estimators_equal_the_normal_equations(seed):
    rng = np.random.default_rng(seed)
    spectra = [rng.uniform(0.1, 5.0, size=rng.integers(1, 6)) for _ in range(rng.integers(1, 5))]
    p = rng.dirichlet(np.ones(len(spectra)))
    m = BlockModel.from_spectra(spectra, p=p, sigma2=rng.uniform(0.01, 3.0), seed=seed)
    dense, sparse = _direct(m)
    for a, b in zip(bayes_dense(m), dense):
        np.testing.assert_allclose(a, b, atol=1e-10)
    for a, b in zip(bayes_sparse(m), sparse):
        np.testing.assert_allclose(a, b, atol=1e-10)


def test_least_squares_converges_to_eq3():
    m = BlockModel.toeplitz(k=3, block_dim=3, rho=0.4, p=[0.2, 0.3, 0.5], sigma2=0.7, seed=1)
    s = m.sample(400_000, seed=2)
    full, sparse = simulate.least_squares(m, s.xbar, s.y, s.z)
    dense = [full[m.block_slice(i)] for i in range(m.k)]
    for a, b in zip(dense, bayes_dense(m)):
        np.testing.assert_allclose(a, b, atol=0.02)
    for a, b in zip(sparse, bayes_sparse(m)):
        np.testing.assert_allclose(a, b, atol=0.02)


def test_shrinkage_is_stronger_for_dense_and_rare_experts():
    m = with_p1(BlockModel.toeplitz(k=4, block_dim=4, rho=0.5, sigma2=0.5, seed=0), 0.1)
    r = shrinkage_ratios(m)
    assert np.all(r["dense"] < r["sparse"])
    assert np.all(r["sparse"] < 1)


def test_with_p1_and_figure_inputs():
    m = BlockModel.toeplitz(k=4, block_dim=2, seed=0)
    np.testing.assert_allclose(with_p1(m, 0.4).p, [0.4, 0.2, 0.2, 0.2])
    with pytest.raises(ValueError, match="p1 must be < 1"):
        with_p1(m, 1.0)
    with pytest.raises(ValueError, match="p1 must be > 0"):
        with_p1(m, 0.0)
    with pytest.raises(ValueError, match="n must be >= 2"):
        chapter.fitted_ratios(m, n=1)
    with pytest.raises(ValueError, match="leaves expert"):
        chapter.fitted_ratios(m, n=5)


def test_figure_and_explorer_use_the_same_builder():
    m = BlockModel.toeplitz(k=3, block_dim=3, rho=0.3, seed=0)
    grid = {"sigma2": [0.1, 1.0], "p1": [0.2, 0.5]}
    spec = chapter.FigureSpec(lambda sigma2, p1: chapter.shrinkage_traces(sigma2, p1, model=m, n_mc=2000), grid)
    fig = spec.static()
    assert len(fig.data) == 2 * 4 and len(fig.layout.sliders) == 2
    box = spec.live()
    box.sliders["sigma2"].value = 0.55
    box.sliders["p1"].value = 0.35
    want = chapter.shrinkage_traces(0.55, 0.35, model=m, n_mc=2000)
    for got, w in zip(box.figure.data, want):
        np.testing.assert_allclose(got.y, w.y)
