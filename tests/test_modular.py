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
    b0 = ro[tok_e[0] : tok_e[1], feat_e[0] : feat_e[1]].mean()
    off = ro[tok_e[0] : tok_e[1], feat_e[1] :].mean()
    assert b0 > off + 0.1


def test_check_params_names_the_parameter():
    p = dict(modular.PROFILES["cpu"])
    for key, bad, match in [
        ("n_blocks", 1, "n_blocks"),
        ("sparsities", [0.5, 1.0], r"sparsities\[1\]"),
        ("heatmap_sparsities", [0.3], "heatmap_sparsities"),
        ("n_tokens", 1000, "n_tokens"),
        ("text", "c4", "text"),
        ("layers", [], "layers"),
        ("layers", [6], r"layers\[0\]"),
        ("second_layers", [30], "second_layers"),
        ("n_samples", 1, "n_samples"),
        ("allocations", ["uniform", "uniform"], "allocations"),
        ("allocations", ["random"], r"allocations\[0\]"),
        ("greedy_step", 0.0, "greedy_step"),
        ("gate_model", "sentence-transformers/all-MiniLM-L6-v2", "gate_model"),
    ]:
        with pytest.raises(ValueError, match=match):
            modular.check_params({**p, key: bad})
    for prof in ("cpu", "paper", "smoke"):
        modular.check_params(modular.PROFILES[prof])


def test_map_layers_by_relative_depth():
    assert modular.map_layers([0, 16, 31], 6) == [0, 3, 5]
    assert modular.map_layers([0, 16, 31], 30) == [0, 15, 29]
    assert modular.map_layers([0, 16, 31], 32) == [0, 16, 31]
    assert modular.PROFILES["cpu"]["layers"] == modular.map_layers([0, 16, 31], 6)
    assert modular.PROFILES["cpu"]["second_layers"] == modular.map_layers([0, 16, 31], 30)
    with pytest.raises(ValueError, match="paper_layers"):
        modular.map_layers([32], 6)


def test_spectrum_null_keeps_marginals_and_spectrum_but_not_the_blocks():
    from scipy.special import ndtri
    from scipy.stats import rankdata

    x, _, fg = planted(n_tokens=3000, n_features=60, k=6, seed=3)
    x = np.abs(x)  # skewed, non-Gaussian marginals
    null = modular.spectrum_null(x, seed=0)
    np.testing.assert_array_equal(np.sort(null, axis=0), np.sort(x, axis=0))  # every marginal exactly

    def spectrum(a):
        z = ndtri((rankdata(a, axis=0) - 0.5) / a.shape[0])  # normal scores via scipy, not the module's ranks
        return np.sort(np.linalg.eigvalsh(np.corrcoef(z, rowvar=False)))[::-1]

    s0, s1 = spectrum(x), spectrum(null)
    assert s0[0] > 1.5 * s0[-1]  # the planted data has a non-trivial spectrum
    np.testing.assert_allclose(s1[:5], s0[:5], rtol=0.2)  # the five planted directions keep their strength
    same = fg[:, None] == fg[None, :]
    c0, c1 = np.corrcoef(x, rowvar=False), np.corrcoef(null, rowvar=False)
    off = ~np.eye(len(fg), dtype=bool)
    assert c0[same & off].mean() > 0.1 and abs(c1[same & off].mean() - c1[~same].mean()) < 0.03  # blocks gone
    e_model = modular.modular_structure(x, 6, 0).enrichment
    e_null = modular.modular_structure(null, 6, 0).enrichment
    assert e_model > e_null + 0.2
    a = modular.spectrum_null(x, seed=5)
    np.testing.assert_array_equal(a, modular.spectrum_null(x, seed=5))
    with pytest.raises(ValueError, match="x"):
        modular.spectrum_null(x[:2])


def test_partition_null_keeps_block_sizes_and_scores_below_the_clustering():
    x, _, _ = planted(seed=4)
    st = modular.modular_structure(x, 6, 0)
    vals = [modular.partition_null(st.ranks, st.feature_labels, 6, seed=s) for s in range(5)]
    assert max(vals) < st.enrichment - 0.2
    assert all(v > 0.95 for v in vals)  # the token assignment alone still scores about 1 or more


def test_sample_interval_is_scipy_t_interval_and_contrast_pairs_by_sample():
    from scipy import stats

    vals = np.array([0.3, 0.1, 0.25, 0.4, 0.2])
    out = modular.sample_interval(vals)
    lo, hi = stats.t.interval(0.95, len(vals) - 1, loc=vals.mean(), scale=stats.sem(vals))
    assert (out["lo"], out["hi"]) == (pytest.approx(lo), pytest.approx(hi))
    recs = [
        {"sample": s, "layer": layer, "enrichment": 1.0 + layer + 0.1 * s, "null": {"shuffle": 1.0}}
        for s in range(3)
        for layer in (0, 1)
    ]
    c = modular.contrast(recs, modular.excess("shuffle"), layer=1, minus={"layer": 0})
    assert c["mean"] == pytest.approx(1.0) and c["se"] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="values"):
        modular.sample_interval([1.0])
    with pytest.raises(ValueError, match="no records"):
        modular.per_sample(recs, modular.excess("shuffle"), layer=7)


def test_run_experiment_smoke_resumes_identically(tmp_path):
    p = {**modular.PROFILES["smoke"], "second_layers": [0], "gate_layers": []}
    n = len(modular._units(modular.check_params(p)))
    assert n == 2 * 2 * 2 * 2  # layers x allocations x sparsities x samples (second model = model here)
    full = modular.run_experiment(p, tmp_path / "a.jsonl", progress=False, threads=1).data
    lines = (tmp_path / "a.jsonl").read_text().splitlines()
    assert len(lines) == n
    (tmp_path / "b.jsonl").write_text("\n".join(lines[:5]) + "\n" + lines[5][:40])  # killed mid-write
    resumed = modular.run_experiment(p, tmp_path / "b.jsonl", progress=False, threads=1).data
    assert resumed == full
    assert modular.stored_records(p, tmp_path / "b.jsonl") == full
    rec = next(r for r in full if r["sparsity"] == 0.7 and r["sample"] == 0 and r["allocation"] == "uniform")
    assert rec["sparsity_realised"] == pytest.approx(0.7, abs=0.05)
    assert len(rec["heatmap"]) == p["heatmap_cells"] and max(map(max, rec["heatmap"])) <= 100
    assert set(rec["null"]) == set(modular.NULLS)
    assert "heatmap" not in next(r for r in full if r["sample"] == 1)
    g = next(r for r in full if r["sparsity"] == 0.7 and r["allocation"] == "greedy")
    assert g["block_sparsity"] >= 0.7 - 1e-9
    assert g["sparsity_realised"] == pytest.approx(g["projection_sparsities"]["up"], abs=0.08)
    from moe_companion.chapters import modular_structure as chapter

    pp = modular.check_params(p)
    specs = chapter.figures(full, pp)
    assert set(specs) == {"fig7", "fig8", "fig10", "excess"}  # no gate layers here: no Fig. 9
    for spec in specs.values():
        assert spec.caption and spec.static().data
    for table in (chapter.excess_table(full, pp), chapter.threshold_table(full, pp)):
        text = table.to_string()
        assert "nan" not in text.lower() and "-0.00" not in text and "−0.00" not in text
    with pytest.raises(ValueError, match="lacks"):
        modular.stored_records({**p, "n_samples": 3}, tmp_path / "b.jsonl")
    with pytest.raises(FileNotFoundError, match="results_path"):
        modular.stored_records(p, tmp_path / "none.jsonl")


@pytest.mark.heavy
def test_chapter_runs_in_smoke_profile(smoke_chapter):
    _, out = smoke_chapter("modular_structure")
    store = ResultStore(out / "results" / "modular_structure-smoke.jsonl")
    assert len(store) == len(modular._units(modular.check_params(modular.PROFILES["smoke"])))
    # a second run is a cache hit
    again = runner.run_chapter("modular_structure", "smoke", output_dir=out, progress=False)
    assert again.status == "cached"
