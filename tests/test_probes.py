"""MoE linear probes vs dense Lasso (moe_companion.heavy.probes) and its smoke chapter."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import Lasso
from sklearn.metrics import adjusted_rand_score

from moe_companion.heavy import probes as pr
from moe_companion.heavy import runner
from moe_companion.heavy.store import ResultStore


def _modular_data(n=1200, E=4, dim=12, seed=0, noise_other=1.0):
    """Block data: input i lives in block z_i (offset +1.5), other blocks are N(0, noise_other) clutter.

    The label is sign(beta_z . x_z) with a different beta per block (centred so the offset is harmless).
    """
    rng = np.random.default_rng(seed)
    z = rng.integers(0, E, n)
    x = noise_other * rng.standard_normal((n, E * dim))
    betas = rng.standard_normal((E, dim))
    betas -= betas.mean(1, keepdims=True)
    y = np.empty(n, dtype=int)
    for i in range(n):
        sl = slice(z[i] * dim, (z[i] + 1) * dim)
        sig = rng.standard_normal(dim)
        x[i, sl] = 1.5 + sig
        y[i] = int(betas[z[i]] @ sig > 0)
    return x, y, z


# ------------------------------------------------------------------ Lasso
def test_lasso_path_matches_sklearn_lasso():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 15))
    y3 = np.digitize(x[:, 0] + 0.5 * x[:, 1] + rng.standard_normal(300), [-0.7, 0.7])
    for C, y in ((2, (y3 > 0).astype(int)), (3, y3)):
        alphas = [0.05, 0.002, 0.01]
        fits = pr.lasso_path_fit(x, y, C, alphas)
        for a, (coef, icpt) in zip(alphas, fits):
            ref = Lasso(alpha=a, tol=1e-10, max_iter=100_000).fit(x, np.eye(C)[y])
            np.testing.assert_allclose(coef, ref.coef_, atol=2e-4)
            np.testing.assert_allclose(icpt, ref.intercept_, atol=2e-4)


def test_parameter_counts_match_the_stored_arrays():
    x, y, _ = _modular_data(n=400)
    d = x.shape[1]
    dense = pr.LassoProbe(0.01, 2).fit(x, y)
    assert dense.n_parameters == dense.coef_.size + dense.intercept_.size == d * 2 + 2
    for E in (2, 4, 5):
        moe = pr.MoEProbe(E, 0.01, 2, seed=0).fit(x, y)
        stored = sum(c.size + b.size for _, c, b in moe.experts_)
        assert moe.n_parameters == stored == d * 2 + E * 2
        # same weights as the dense probe; the MoE has E - 1 extra bias vectors
        assert moe.n_parameters - dense.n_parameters == (E - 1) * 2
        cols = np.concatenate([c for c, _, _ in moe.experts_])
        assert np.array_equal(np.sort(cols), np.arange(d))  # feature blocks partition the features


# ------------------------------------------------------------------ blocks, routing, noise
def test_feature_blocks_recover_planted_blocks_with_balanced_sizes():
    x, _, _ = _modular_data(n=800, E=4, dim=10)
    labels = pr.feature_blocks(x, 4, seed=0)
    truth = np.repeat(np.arange(4), 10)
    assert adjusted_rand_score(truth, labels) == pytest.approx(1.0)
    assert sorted(np.bincount(labels)) == [10, 10, 10, 10]
    uneven = pr.feature_blocks(x[:, :38], 4, seed=0)
    assert sorted(np.bincount(uneven)) == [9, 9, 10, 10]
    with pytest.raises(ValueError, match="n_blocks"):
        pr.feature_blocks(x, 0)


def test_route_picks_the_block_with_the_largest_mean():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((50, 9))
    blocks = rng.permutation(np.repeat(np.arange(3), 3))
    got = pr.route(x, blocks, 3)
    for i in range(50):
        means = [x[i, blocks == e].mean() for e in range(3)]
        assert got[i] == int(np.argmax(means))
    xm, _, z = _modular_data(n=300, E=3, dim=8)
    assert np.mean(pr.route(xm, np.repeat(np.arange(3), 8), 3) == z) > 0.95
    with pytest.raises(ValueError, match="blocks"):
        pr.route(x, blocks[:5], 3)


def test_noise_and_standardisation():
    rng = np.random.default_rng(0)
    x = 3.0 + 2.0 * rng.standard_normal((4000, 5))
    xz, other = pr.standardize(x, x[:10])
    np.testing.assert_allclose(xz.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(xz.std(0), 1, atol=1e-12)
    np.testing.assert_allclose(other, xz[:10])
    noisy = pr.add_noise(xz, 0.5, np.random.default_rng(1))
    assert np.std(noisy - xz) == pytest.approx(0.5, rel=0.02)
    assert np.array_equal(pr.add_noise(xz, 0.0, np.random.default_rng(1)), xz)
    with pytest.raises(ValueError, match="sigma"):
        pr.add_noise(xz, -1.0, np.random.default_rng(1))


def test_moe_beats_dense_on_modular_data_with_clutter_noise():
    """The paper's mechanism: inactive blocks carry only noise; the routed expert ignores them."""
    x, y, _ = _modular_data(n=3000, E=4, dim=10, noise_other=1.5, seed=3)
    xtr, ytr, xte, yte = x[:2000], y[:2000], x[2000:], y[2000:]
    dense = pr.LassoProbe(0.003, 2).fit(xtr, ytr)
    moe = pr.MoEProbe(4, 0.003, 2, seed=0).fit(xtr, ytr)
    acc_d = np.mean(dense.predict(xte) == yte)
    acc_m = np.mean(moe.predict(xte) == yte)
    assert acc_m > acc_d + 0.1, (acc_d, acc_m)


def test_select_alpha_prefers_the_best_validation_accuracy():
    x, y, _ = _modular_data(n=600)
    probes = pr.LassoProbe.fit_path(x[:400], y[:400], 2, [1.0, 0.001])
    _, alpha, acc = pr.select_alpha(probes, x[400:], y[400:])
    accs = {p.alpha: np.mean(p.predict(x[400:]) == y[400:]) for p in probes}
    assert acc == max(accs.values()) and alpha == max(a for a, v in accs.items() if v == acc)


# ------------------------------------------------------------------ units and summaries
def _pool(seed=0):
    x, y, _ = _modular_data(n=700, E=3, dim=6, seed=seed)
    return pr.ActivationPool(x[:500], y[:500], x[500:], y[500:], 2)


def test_probe_unit_is_deterministic_and_pairs_the_noise():
    pool = _pool()
    kw = dict(n_train=350, seed=1, alphas=[0.003, 0.03])
    a = pr.probe_unit(pool, kind="moe", n_experts=3, sigma=0.5, noise_in_training=True, **kw)
    b = pr.probe_unit(pool, kind="moe", n_experts=3, sigma=0.5, noise_in_training=True, **kw)
    assert a == b and 0 < a["routing_flip"] < 1
    clean = pr.probe_unit(pool, kind="moe", n_experts=3, sigma=0.0, noise_in_training=False, **kw)
    assert clean["routing_flip"] == 0.0
    # at sigma = 0 the noise condition is irrelevant
    assert clean == pr.probe_unit(pool, kind="moe", n_experts=3, sigma=0.0, noise_in_training=True, **kw)
    d = pr.probe_unit(pool, kind="dense", sigma=2.0, noise_in_training=False, **kw)
    assert d["n_parameters"] == 18 * 2 + 2 and 0 <= d["accuracy"] <= 1
    with pytest.raises(ValueError, match="n_train"):
        pr.probe_unit(pool, kind="dense", n_train=500, sigma=0.0, seed=0, noise_in_training=False, alphas=[0.01])


def test_run_experiment_resumes_and_summarize_computes_drops(tmp_path):
    p = {
        **pr.PROFILES["smoke"],
        "n_train": 300,
        "n_val": 200,
        "n_test": 200,
        "seeds": [0, 1],
        "sigmas": [1.0],
        "n_experts": [3],
        "noise_in_training": [False],
    }
    pools = {"tweets": _pool()}
    rows = pr.run_experiment(p, ResultStore(tmp_path / "a.jsonl"), pools=pools, progress=False).data
    assert len(rows) == 2 * 2 * 2  # sigma in {0, 1} x seeds x {dense, moe}
    lines = (tmp_path / "a.jsonl").read_text().splitlines()
    (tmp_path / "b.jsonl").write_text("\n".join(lines[:3]) + "\n" + lines[3][:30])
    again = pr.run_experiment(p, ResultStore(tmp_path / "b.jsonl"), pools=pools, progress=False).data
    assert again == rows
    table = pr.summarize(rows, task="tweets", noise_in_training=False, n_experts=3)
    get = {(r["probe"], r["sigma"], r["seed"]): r["accuracy"] for r in rows}
    drop_d = np.mean([get[("dense", 0.0, s)] - get[("dense", 1.0, s)] for s in (0, 1)])
    drop_m = np.mean([get[("moe", 0.0, s)] - get[("moe", 1.0, s)] for s in (0, 1)])
    assert table[1]["dense_drop"] == pytest.approx(drop_d, abs=1e-4)
    assert table[1]["moe_drop"] == pytest.approx(drop_m, abs=1e-4)
    assert table[1]["drop_reduction"] == pytest.approx(1 - drop_m / drop_d, abs=2e-3)
    assert table[1]["d_drop"] == pytest.approx(drop_d - drop_m, abs=1e-9)
    assert table[1]["d_drop_lo"] <= table[1]["d_drop"] <= table[1]["d_drop_hi"]
    # per-example correctness agrees with the stored accuracy; one setting: the pooled value is that setting's
    assert all(np.mean([int(c) for c in r["correct"]]) == pytest.approx(r["accuracy"]) for r in rows)
    pooled = pr.pooled_difference(rows, task="tweets", noise_in_training=False, what="drop")
    assert pooled["d"] == pytest.approx(table[1]["d_drop"]) and pooled["n_settings"] == 1
    assert pr.load_rows(p, tmp_path / "a.jsonl") == rows


def test_check_params_names_the_parameter():
    p = dict(pr.PROFILES["smoke"])
    for key, bad, match in [
        ("sigmas", [-1.0], "sigmas"),
        ("n_experts", [1], "n_experts"),
        ("tasks", ["imdb"], "tasks"),
        ("seeds", [], "seeds"),
        ("lasso_alphas", [0.0], "lasso_alphas"),
        ("n_train", 2, "n_train"),
    ]:
        with pytest.raises(ValueError, match=match):
            pr.check_params({**p, key: bad})
    for prof in ("cpu", "paper", "smoke"):
        pr.check_params(pr.PROFILES[prof])
    assert runner.load_profiles("moe_companion.heavy.probes") == pr.PROFILES
    with pytest.raises(ValueError, match="n_experts"):
        runner.resolve_params("linear_probes", "smoke", {"n_experts": [1]})


# ------------------------------------------------------------------ encoders and paper-profile loaders
def test_tiny_t5_encoder_mean_pools_without_padding_leaks():
    import torch
    from transformers import AutoTokenizer

    from moe_companion.heavy.data import minilm_path

    torch.set_num_threads(1)
    tok = AutoTokenizer.from_pretrained(minilm_path())
    model = pr.tiny_t5_encoder(len(tok), seed=0)
    texts = ["a short one", "a much longer sentence with quite a few more words in it", "mid size text here"]
    batched = pr.encode_texts(texts, model, tok, kind="t5", batch_size=3, max_length=32)
    assert batched.shape == (3, 32)
    for i, t in enumerate(texts):
        alone = pr.encode_texts([t], model, tok, kind="t5", batch_size=1, max_length=32)
        np.testing.assert_allclose(alone[0], batched[i], rtol=1e-4, atol=1e-5)
    # mean over the last hidden state, computed by hand
    enc = tok(texts[0], return_tensors="pt", return_token_type_ids=False)
    with torch.no_grad():
        hs = model(**enc).last_hidden_state[0]
    np.testing.assert_allclose(batched[0], hs.mean(0).numpy(), rtol=1e-4, atol=1e-5)
    first = pr.encode_texts(texts, model, tok, kind="t5", layer=0, batch_size=2, max_length=32)
    assert not np.allclose(first, batched)


def test_load_task_with_a_fake_hub():
    import datasets

    def fake_load_dataset(*args, split):
        n = 40
        if args == ("glue", "mnli"):
            return datasets.Dataset.from_dict(
                {
                    "premise": [f"p{i}" for i in range(n)],
                    "hypothesis": [f"h{i}" for i in range(n)],
                    "label": [-1 if i % 5 == 0 else i % 3 for i in range(n)],
                }
            )
        return datasets.Dataset.from_dict({"sentence": [f"s{i}" for i in range(n)], "label": [i % 2 for i in range(n)]})

    pt, py, tt, ty = pr.load_task("mnli", 20, 10, seed=0, load_dataset=fake_load_dataset)
    assert len(pt) == 20 and len(tt) == 10 and py.min() >= 0 and ty.min() >= 0
    assert all(" </s> " in t for t in pt)
    i = int(pt[0].split()[0][1:])
    assert pt[0] == f"p{i} </s> h{i}" and py[0] == i % 3
    pt, py, _, _ = pr.load_task("sst2", 15, 5, seed=0, load_dataset=fake_load_dataset)
    assert [int(t[1:]) % 2 for t in pt] == py.tolist()


def test_load_task_tweets_is_binary_and_balanced():
    pt, py, tt, _ = pr.load_task("tweets", 40, 20)
    assert len(pt) == 40 and len(tt) == 20 and set(py) == {0, 1} and py.sum() == 20
    assert not set(pt) & set(tt)


@pytest.mark.heavy
def test_chapter_runs_in_smoke_profile(smoke_chapter):
    _, out = smoke_chapter("linear_probes")
    p = pr.PROFILES["smoke"]
    n_units = len(p["noise_in_training"]) * (len(p["sigmas"]) + 1) * len(p["seeds"]) * (1 + len(p["n_experts"]))
    assert len(ResultStore(out / "results" / "linear_probes-smoke.jsonl")) == n_units


def test_build_pool_caches_activations_losslessly(tmp_path):
    p = {**pr.PROFILES["smoke"], "n_train": 20, "n_val": 10, "n_test": 10}
    cache = tmp_path / "acts.npz"
    first = pr.build_pool("tweets", p, cache_path=cache)
    again = pr.build_pool("tweets", p, cache_path=cache)
    assert not first.from_cache and again.from_cache
    assert first.pool_x.shape == (30, 32) and first.test_x.shape == (10, 32)
    for name in ("pool_x", "pool_y", "test_x", "test_y"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    other = pr.build_pool("tweets", {**p, "layer": 0}, cache_path=cache)  # different identity: recomputed
    assert not other.from_cache and not np.allclose(other.pool_x, first.pool_x)
