"""Modular-structure pipeline (moe_companion.heavy.modular) and its chapter in the smoke profile."""
from __future__ import annotations


import numpy as np
import pytest

from moe_companion.heavy import modular, runner
from moe_companion.heavy.store import ResultStore


def planted(n_tokens=600, n_features=120, k=6, seed=0, signal=3.0):
    """Tokens of group g are large on the features of group g (plus noise), then shuffled."""
    rng = np.random.default_rng(seed)
    tg = rng.integers(0, k, n_tokens)
    fg = np.repeat(np.arange(k), n_features // k)
    x = rng.normal(size=(n_tokens, n_features))
    x += signal * (tg[:, None] == fg[None, :]) * rng.choice([-1, 1], size=(n_tokens, n_features))
    perm = rng.permutation(n_features)
    return x[:, perm], tg, fg[perm]


def test_percentile_ranks_against_scipy_rankdata():
    from scipy.stats import rankdata

    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 7))
    x[rng.random(x.shape) < 0.3] = 0.0
    r = modular.percentile_ranks(x)
    ref = (rankdata(np.abs(x), axis=0, method="ordinal") - 1) / 49
    ref[x == 0] = 0
    np.testing.assert_allclose(r, ref, atol=1e-6)


def test_affinity_is_cosine_of_magnitudes():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 5))
    x[:, 4] = 0.0
    aff = modular.feature_affinity(x)
    a = np.abs(x)
    c01 = a[:, 0] @ a[:, 1] / np.linalg.norm(a[:, 0]) / np.linalg.norm(a[:, 1])
    assert aff[0, 1] == pytest.approx(c01) and np.allclose(aff, aff.T)
    assert aff[4, 4] == 1.0 and np.all(aff[4, :4] == 0.0)


def test_planted_blocks_are_recovered_and_score_far_above_shuffled():
    x, tg, fg = planted()
    st = modular.modular_structure(x, n_blocks=6, seed=0)
    # the clustering recovers the planted feature groups (up to relabelling)
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(fg, st.feature_labels) > 0.95
    assert adjusted_rand_score(tg, st.token_labels) > 0.9
    rng = np.random.default_rng(0)
    base = [modular.modular_structure(modular.shuffle_columns(x, rng), 6, 0).enrichment for _ in range(3)]
    assert st.enrichment > 1.6 and max(base) < 1.25
    assert (st.enrichment - 1) > 3.5 * (max(base) - 1)  # the excess ratio (E-1)/(E0-1) > 3.5
    # an independent computation of E on the planted (true) assignment
    r = modular.percentile_ranks(x)
    inside = r[tg[:, None] == fg[None, :]].mean()
    assert modular.diagonal_enrichment(r, fg, tg, 6) == pytest.approx(inside / r.mean())


def test_pure_noise_scores_like_its_baseline():
    x = np.random.default_rng(3).normal(size=(400, 60))
    e = modular.modular_structure(x, 5, 0).enrichment
    rng = np.random.default_rng(1)
    b = np.mean([modular.modular_structure(modular.shuffle_columns(x, rng), 5, 0).enrichment for _ in range(3)])
    assert abs((e - 1) / (b - 1) - 1) < 0.25


def test_shuffle_columns_keeps_each_feature_and_downsample_means():
    x = np.arange(20.0).reshape(5, 4)
    s = modular.shuffle_columns(x, np.random.default_rng(0))
    np.testing.assert_array_equal(np.sort(s, axis=0), x)
    m = np.arange(16.0).reshape(4, 4)
    np.testing.assert_allclose(modular.downsample(m, 2, 2), [[2.5, 4.5], [10.5, 12.5]])


def test_reordering_puts_blocks_on_the_diagonal():
    x, tg, fg = planted(seed=4)
    st = modular.modular_structure(x, 6, 0)
    tok_e, feat_e = st.edges()
    ro = st.reordered()
    assert tok_e[-1] == x.shape[0] and feat_e[-1] == x.shape[1]
    assert list(np.bincount(st.feature_labels)) == sorted(np.bincount(st.feature_labels), reverse=True)
    b0 = ro[tok_e[0]:tok_e[1], feat_e[0]:feat_e[1]].mean()
    off = ro[tok_e[0]:tok_e[1], feat_e[1]:].mean()
    assert b0 > off + 0.1


def test_check_params_names_the_parameter():
    p = dict(modular.PROFILES["cpu"])
    for key, bad, match in [("n_blocks", 1, "n_blocks"), ("sparsities", [0.5, 1.0], r"sparsities\[1\]"),
                            ("heatmap_sparsities", [0.3], "heatmap_sparsities"), ("n_tokens", 1000, "n_tokens"),
                            ("text", "c4", "text"), ("layers", [], "layers")]:
        with pytest.raises(ValueError, match=match):
            modular.check_params({**p, key: bad})
    for prof in ("cpu", "paper", "smoke"):
        modular.check_params(modular.PROFILES[prof])


def test_run_experiment_smoke_resumes_identically(tmp_path):
    p = {**modular.PROFILES["smoke"], "sparsities": [0.0, 0.7], "heatmap_sparsities": [0.7]}
    full = modular.run_experiment(p, tmp_path / "a.jsonl", progress=False, threads=1).data
    lines = (tmp_path / "a.jsonl").read_text().splitlines()
    assert len(lines) == 4 and "heatmap" in full[1] and "heatmap" not in full[0]
    (tmp_path / "b.jsonl").write_text("\n".join(lines[:2]) + "\n" + lines[2][:40])  # killed mid-write
    resumed = modular.run_experiment(p, tmp_path / "b.jsonl", progress=False, threads=1).data
    assert resumed == full
    assert len(ResultStore(tmp_path / "b.jsonl")) == 4
    rec = full[1]
    assert rec["sparsity_realised"] == pytest.approx(0.7, abs=0.05)
    assert len(rec["heatmap"]) == p["heatmap_cells"] and max(map(max, rec["heatmap"])) <= 100
    fig = modular.score_figure(full)
    assert len(fig.data) == 2 * len(p["layers"])
    assert "Model's enrichment".lower() in modular.summary(full).lower()


@pytest.mark.heavy
def test_chapter_runs_in_smoke_profile(smoke_chapter):
    _, out = smoke_chapter("modular_structure")
    store = ResultStore(out / "results" / "modular_structure-smoke.jsonl")
    assert len(store) == len(modular.PROFILES["smoke"]["layers"]) * len(modular.PROFILES["smoke"]["sparsities"])
    # a second run is a cache hit
    again = runner.run_chapter("modular_structure", "smoke", output_dir=out, progress=False)
    assert again.status == "cached"


def test_greedy_allocation_runs_and_keeps_uniform_keys_apart(tmp_path):
    p = {**modular.PROFILES["smoke"], "layers": [0], "sparsities": [0.5], "heatmap_sparsities": [0.5],
         "allocation": "greedy"}
    rec = modular.run_experiment(p, tmp_path / "g.jsonl", progress=False, threads=1).data[0]
    g = rec["greedy"]
    assert g["block_sparsity"] == pytest.approx(0.5, abs=1e-6)
    assert rec["threshold"] == pytest.approx(g["t_in"], rel=1e-5)
    assert rec["sparsity_realised"] == pytest.approx(g["s_in"], abs=0.05)
    assert modular._unit_key(p, 0, 0.5)["allocation"] == "greedy"
    assert "allocation" not in modular._unit_key({**p, "allocation": "uniform"}, 0, 0.5)
