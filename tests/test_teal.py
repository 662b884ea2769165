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


def test_distribution_is_calibrated_once_and_inverts():
    from moe_companion.heavy.teal import Distribution

    x = _acts(3000, 16, 4)
    for method in ("exact", "histogram"):
        d = Distribution(x, method=method)
        for s in (0.2, 0.5, 0.8):
            t = d.threshold(s)
            assert t == pytest.approx(fit_threshold(x, s, method=method))
            assert d.sparsity(t) == pytest.approx(s, abs=2e-3)
            assert np.mean(np.abs(x) <= t) == pytest.approx(s, abs=2e-3)  # numpy, not the object
    with pytest.raises(ValueError, match="threshold"):
        Distribution(x).sparsity(-1.0)


def test_mlp_parts_of_the_found_blocks_reproduce_the_mlp_llama_and_bert():
    import torch
    from transformers import BertConfig, BertModel

    from moe_companion.heavy.activations import capture_mlp_inputs
    from moe_companion.heavy.ffn import find_ffns
    from moe_companion.heavy.teal import MLPParts

    model, acts = _llama_and_acts()
    parts = MLPParts.of(find_ffns(model)[1])
    x = torch.from_numpy(acts[1])
    with torch.no_grad():
        np.testing.assert_allclose(parts.forward(x)[0].numpy(), model.model.layers[1].mlp(x).numpy(), atol=1e-6)
    mlp = model.model.layers[1].mlp
    assert parts.names == ("gate", "up", "down")
    assert parts.weights == {
        "gate": mlp.gate_proj.weight.numel(),
        "up": mlp.up_proj.weight.numel(),
        "down": mlp.down_proj.weight.numel(),
    }
    torch.manual_seed(0)
    bert = BertModel(
        BertConfig(vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2)
    ).eval()
    ids = torch.from_numpy(np.random.default_rng(0).integers(0, 50, (2, 8)))
    bx = torch.from_numpy(capture_mlp_inputs(bert, ids, progress=False)[0])
    bp = MLPParts.of(find_ffns(bert)[0])
    layer = bert.encoder.layer[0]
    with torch.no_grad():
        manual = layer.output.dense(layer.intermediate(bx))
        np.testing.assert_allclose(bp.forward(bx)[0].numpy(), manual.numpy(), atol=1e-6)
    assert bp.names == ("up", "down")


def _manual_error(mlp, x, t):
    """Mean token L2 error of the MLP output with each projection's input cut at t[name] (written out)."""
    import torch

    def cut(z, th):
        return z * (z.abs() > th)

    with torch.no_grad():
        y = mlp.down_proj(mlp.act_fn(mlp.gate_proj(x)) * mlp.up_proj(x))
        h = mlp.act_fn(mlp.gate_proj(cut(x, t["gate"]))) * mlp.up_proj(cut(x, t["up"]))
        ys = mlp.down_proj(cut(h, t["down"]))
        return float(torch.linalg.vector_norm(ys - y, dim=-1).mean())


def test_uniform_shares_gate_up_threshold_and_greedy_walk_is_teal_argmin():
    import torch

    from moe_companion.heavy.teal import allocation_sparsities, calibrate

    model, acts = _llama_and_acts()
    thr = calibrate(model, 0, acts[0], method="exact")
    assert thr.distributions["gate"] is not thr.distributions["up"]  # one sparsifier per projection
    u = thr.uniform(0.5)
    assert u["gate"] == u["up"] != u["down"]  # same input tensor -> same threshold at the same sparsity
    lookup = thr.calibrate_greedy(0.7, step=0.1)
    assert lookup.rows[0] == (0.0, 0.0, 0.0) and lookup.effective[-1] >= 0.7 - 1e-9
    mlp, x = model.model.layers[0].mlp, torch.from_numpy(acts[0])
    w = np.array([thr.parts.weights[n] for n in lookup.names], float)
    w /= w.sum()
    steps = 0.1 * w.mean() / w
    for prev, row in zip(lookup.rows, lookup.rows[1:]):
        raised = np.flatnonzero(np.array(row) > np.array(prev) + 1e-12)
        assert raised.size == 1  # one projection per step, by its own step
        assert row[raised[0]] - prev[raised[0]] == pytest.approx(steps[raised[0]])
        errs = []  # the chosen raise is the argmin of the independently computed errors
        for i in range(3):
            trial = np.array(prev)
            trial[i] += steps[i]
            t = {n: thr.distributions[n].threshold(s) for n, s in zip(lookup.names, trial)}
            errs.append(_manual_error(mlp, x, t))
        assert errs[raised[0]] == pytest.approx(min(errs), rel=1e-5)
    s = allocation_sparsities(thr, "greedy", 0.5, step=0.1)
    assert float(w @ np.array([s[n] for n in lookup.names])) >= 0.5 - 1e-9
    t = thr.thresholds(s)
    for n in ("gate", "up"):  # realised sparsity of each projection's input at its own threshold
        assert realised_sparsity(acts[0], t[n]) == pytest.approx(s[n], abs=0.01)
    with pytest.raises(ValueError, match="target"):
        lookup.sparsities(0.99)
    with pytest.raises(ValueError, match="layer"):
        calibrate(model, 5, acts[0])
    with pytest.raises(ValueError, match="allocation"):
        allocation_sparsities(thr, "random", 0.5)
