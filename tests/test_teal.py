"""TEAL-style thresholds and pruning (moe_companion.heavy.teal)."""
from __future__ import annotations

import numpy as np
import pytest

from moe_companion.heavy.teal import (
    fit_threshold,
    fit_thresholds,
    prune,
    realised_sparsity,
)


def _acts(n, d, seed):
    scale = np.random.default_rng(99).lognormal(0, 1, size=d)  # fixed per-feature scales (outlier features)
    x = np.random.default_rng(seed).standard_t(df=3, size=(n, d)) * scale  # heavy-tailed tokens
    x[:, 0] *= 300.0  # one massive-activation feature
    return x


@pytest.mark.parametrize("method", ["exact", "histogram"])
@pytest.mark.parametrize("sparsity", [0.1, 0.4, 0.5, 0.7, 0.9])
def test_threshold_gives_requested_sparsity(method, sparsity):
    calib, held_out = _acts(4000, 64, 0), _acts(4000, 64, 1)
    t = fit_threshold(calib, sparsity, method=method)
    assert abs(realised_sparsity(calib, t) - sparsity) <= 0.005
    assert abs(realised_sparsity(held_out, t) - sparsity) <= 0.005  # same distribution, fresh tokens
    pruned = prune(held_out, t)
    assert np.mean(pruned == 0) == pytest.approx(realised_sparsity(held_out, t))
    kept = pruned != 0
    np.testing.assert_array_equal(pruned[kept], held_out[kept])
    assert np.all(np.abs(held_out[~kept]) <= t) and np.all(np.abs(held_out[kept]) > t)


def test_histogram_agrees_with_exact_quantile():
    x = _acts(5000, 32, 2)
    for s in (0.3, 0.6, 0.8):
        a = np.sort(np.abs(x).ravel())
        exact = fit_threshold(x, s)
        assert exact == pytest.approx(np.quantile(a, s))
        hist = fit_threshold(x, s, method="histogram")
        # the two thresholds cut at most 0.1 % of entries apart
        assert abs(np.mean(a <= hist) - np.mean(a <= exact)) < 1e-3


def test_zero_sparsity_prunes_nothing_and_uniform_allocation():
    acts = {0: _acts(500, 8, 3), 3: 10 * _acts(500, 8, 3)}
    assert fit_threshold(acts[0], 0.0) == 0.0
    np.testing.assert_array_equal(prune(acts[0], 0.0), acts[0])
    th = fit_thresholds(acts, 0.5)
    assert set(th) == {0, 3} and th[3] == pytest.approx(10 * th[0])  # one threshold per layer
    for layer, t in th.items():
        assert realised_sparsity(acts[layer], t) == pytest.approx(0.5, abs=0.005)


def test_bad_inputs_are_named():
    x = _acts(10, 2, 0)
    with pytest.raises(ValueError, match="sparsity"):
        fit_threshold(x, 1.0)
    with pytest.raises(ValueError, match="sparsity"):
        fit_threshold(x, -0.1)
    with pytest.raises(ValueError, match="method"):
        fit_threshold(x, 0.5, method="greedy")
    with pytest.raises(ValueError, match="threshold"):
        prune(x, -1.0)
    with pytest.raises(ValueError, match="x must not be empty"):
        fit_threshold(np.zeros(0), 0.5)


# ------------------------------------------------------------------------------ greedy allocation
def _llama_and_acts(seed=0):
    import torch

    from moe_companion.heavy.activations import capture_mlp_inputs
    from moe_companion.heavy.data import tiny_random_llama

    torch.set_num_threads(1)
    model = tiny_random_llama(100, seed=seed)
    ids = torch.from_numpy(np.random.default_rng(seed).integers(0, 100, (4, 64)))
    return model, capture_mlp_inputs(model, ids, progress=False)


def test_mlp_parts_reproduce_the_mlp():
    import torch

    from moe_companion.heavy.teal import mlp_parts

    model, acts = _llama_and_acts()
    f_in, f_out, w_in, w_mid = mlp_parts(model, 1)
    x = torch.from_numpy(acts[1])
    with torch.no_grad():
        np.testing.assert_allclose(f_out(f_in(x)).numpy(), model.model.layers[1].mlp(x).numpy(), atol=1e-6)
    assert (w_in, w_mid) == (2 / 3, 1 / 3)


def test_greedy_meets_the_block_budget_and_beats_uniform_split():
    import torch

    from moe_companion.heavy.teal import greedy_mlp_allocation, mlp_parts

    model, acts = _llama_and_acts()
    x = torch.from_numpy(acts[0])
    f_in, f_out, *_ = mlp_parts(model, 0)
    prev = -1.0
    for target in (0.0, 0.3, 0.5, 0.7):
        g = greedy_mlp_allocation(model, 0, acts[0], target)
        assert g["block_sparsity"] == pytest.approx(target, abs=1e-9)
        assert 0 <= g["s_in"] < 1 and 0 <= g["s_mid"] < 1
        assert g["rel_error"] >= prev - 1e-12
        prev = g["rel_error"]
        # realised sparsity of the MLP input under the greedy threshold
        assert realised_sparsity(acts[0], g["t_in"]) == pytest.approx(g["s_in"], abs=0.005)
        if 0 < target <= 0.5:  # greedy is myopic; at moderate budgets it is not worse than s_in = s_mid
            with torch.no_grad():
                y = f_out(f_in(x))
                xs = torch.from_numpy(prune(acts[0], fit_threshold(acts[0], target)))
                h = f_in(xs)
                hd = f_in(x).abs().numpy()
                hs = torch.where(h.abs() > fit_threshold(hd, target), h, torch.zeros_like(h))
                uni = float(((f_out(hs) - y) ** 2).sum() / (y ** 2).sum())
            assert g["rel_error"] <= uni + 1e-6
    with pytest.raises(ValueError, match="target"):
        greedy_mlp_allocation(model, 0, acts[0], 1.0)
    with pytest.raises(ValueError, match="layer"):
        greedy_mlp_allocation(model, 5, acts[0], 0.5)
