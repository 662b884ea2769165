"""Iso-parameter MoE vs dense pretraining (moe_companion.heavy.pretraining) and its smoke chapter."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from moe_companion.heavy import pretraining as pt
from moe_companion.heavy import runner
from moe_companion.heavy.store import ResultStore

torch.set_num_threads(1)

TINY = pt.LMConfig(
    vocab_size=256,
    seq_len=16,
    n_layers=2,
    hidden=16,
    n_heads=2,
    ffn="moe",
    n_routed=4,
    n_shared=1,
    expert_d_ff=8,
    top_k=2,
    aux_alpha=0.01,
)


def _numel(module) -> int:
    return sum(p.numel() for p in module.parameters())


# ------------------------------------------------------------------ parameter counts
@pytest.mark.parametrize(
    "config",
    [
        TINY,
        TINY.replace(n_shared=0, top_k=1),
        TINY.replace(n_routed=8, n_shared=2, top_k=3, expert_d_ff=5, hidden=12, n_heads=3),
        TINY.replace(ffn="dense", d_ff=37),
    ],
)
def test_counts_match_the_built_model(config):
    model = pt.build_model(config, seed=0)
    counts = pt.count_parameters(config)
    assert counts["total"] == _numel(model)
    if config.ffn == "moe":
        # active = everything except the routed experts outside the top-k (counted independently)
        idle = (config.n_routed - config.top_k) * _numel(model.blocks[0].ffn.experts[0]) * config.n_layers
        assert counts["active"] == _numel(model) - idle
        assert counts["router"] == sum(_numel(b.ffn.router) for b in model.blocks)
    else:
        assert counts["active"] == counts["total"]


def test_matched_dense_models_have_the_claimed_budgets():
    for moe in (TINY, pt.moe_config_from(pt.PROFILES["cpu"], 256), pt.moe_config_from(pt.PROFILES["paper"], 6400)):
        variants = pt.variant_configs(moe)
        c = {k: pt.count_parameters(cfg) for k, cfg in variants.items()}
        slack = 1.5 * moe.hidden * moe.n_layers  # one unit of d_ff per layer
        assert abs(c["dense_total"]["total"] - c["moe"]["total"]) <= slack
        assert abs(c["dense_active"]["total"] - c["moe"]["active"]) <= slack
        assert c["dense_active"]["total"] < c["dense_total"]["total"]
        if moe is TINY:
            for name in ("dense_total", "dense_active"):
                assert _numel(pt.build_model(variants[name])) == c[name]["total"]
        # FFN share active in the MoE: (top_k + shared) / (routed + shared)
        assert c["moe"]["ffn_active"] / c["moe"]["ffn_total"] == pytest.approx(
            (moe.top_k + moe.n_shared) / (moe.n_routed + moe.n_shared)
        )
    paper = pt.moe_config_from(pt.PROFILES["paper"], 6400)
    assert (paper.n_layers, paper.hidden, paper.n_routed, paper.n_shared, paper.top_k, paper.aux_alpha) == (
        8,
        512,
        4,
        1,
        2,
        0.01,
    )


# ------------------------------------------------------------------ config validation
@pytest.mark.parametrize(
    "changes, match",
    [
        (dict(top_k=5), "top_k must be <= n_routed"),
        (dict(hidden=18, n_heads=4), "hidden must be divisible by n_heads"),
        (dict(ffn="sparse"), "ffn"),
        (dict(n_routed=0), "n_routed"),
        (dict(aux_alpha=-0.1), "aux_alpha"),
        (dict(top_k=0), "top_k"),
    ],
)
def test_bad_configs_raise_clear_errors(changes, match):
    with pytest.raises(ValueError, match=match):
        TINY.replace(**changes)


def test_check_params_rejects_bad_profiles_before_any_training():
    p = dict(pt.PROFILES["smoke"])
    for key, bad, match in [
        ("top_k", 9, "top_k must be <= n_routed"),
        ("n_heads", 3, "divisible by n_heads"),
        ("seeds", [], "seeds"),
        ("variants", ["moe", "wide"], "variants"),
        ("lr", 0.0, "lr"),
        ("steps", 0, "steps"),
    ]:
        with pytest.raises(ValueError, match=match):
            pt.check_params({**p, key: bad})
    for prof in ("cpu", "paper", "smoke"):
        pt.check_params(pt.PROFILES[prof])
    assert runner.load_profiles("moe_companion.heavy.pretraining") == pt.PROFILES
    with pytest.raises(ValueError, match="top_k"):
        runner.resolve_params("moe_pretraining", "smoke", {"top_k": 7})


# ------------------------------------------------------------------ routing and the auxiliary loss
def _aux_numpy(probs: np.ndarray, k: int, alpha: float) -> float:
    T, E = probs.shape
    top = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    f = np.bincount(top.ravel(), minlength=E) / (T * k)
    return alpha * E * float(f @ probs.mean(0))


def test_aux_loss_matches_an_independent_computation():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((50, 6))
    probs = torch.softmax(torch.tensor(logits), dim=-1)
    top_i = probs.topk(2, dim=-1).indices
    aux, load = pt.load_balancing_loss(probs, top_i, 6, 0.01)
    assert float(aux) == pytest.approx(_aux_numpy(probs.numpy(), 2, 0.01), rel=1e-12)
    assert float(load.sum()) == pytest.approx(1.0)


def test_uniform_routing_minimises_the_aux_loss():
    E, alpha = 4, 0.01
    # uniform router probabilities: exactly alpha, whatever the (tie-broken) top-k choice
    probs = torch.full((32, E), 1.0 / E, dtype=torch.float64)
    aux, _ = pt.load_balancing_loss(probs, probs.topk(2, dim=-1).indices, E, alpha)
    assert float(aux) == pytest.approx(alpha, rel=1e-12)
    # sharp (near one-hot) routing with any load f: alpha * E * sum f^2 >= alpha, equality iff balanced
    rng = np.random.default_rng(1)
    values = []
    for trial in range(200):
        f = rng.dirichlet(np.ones(E) * (0.3 if trial % 2 else 3.0))
        counts = rng.multinomial(400, f)
        assign = np.repeat(np.arange(E), counts)
        logits = torch.full((assign.size, E), -30.0, dtype=torch.float64)
        logits[torch.arange(assign.size), torch.tensor(assign)] = 30.0
        p = torch.softmax(logits, -1)
        aux, _ = pt.load_balancing_loss(p, p.topk(1, dim=-1).indices, E, alpha)
        values.append(float(aux))
        assert float(aux) >= alpha * (1 - 1e-9)
    balanced = np.repeat(np.arange(E), 100)
    logits = torch.full((400, E), -30.0, dtype=torch.float64)
    logits[torch.arange(400), torch.tensor(balanced)] = 30.0
    p = torch.softmax(logits, -1)
    aux, _ = pt.load_balancing_loss(p, p.topk(1, dim=-1).indices, E, alpha)
    assert float(aux) == pytest.approx(alpha, rel=1e-9) and min(values) > alpha * 1.0001


def test_moe_ffn_equals_a_per_token_loop():
    cfg = TINY.replace(n_layers=1)
    model = pt.build_model(cfg, seed=3).double()
    ffn = model.blocks[0].ffn
    x = torch.randn(2, 5, cfg.hidden, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    out, _, load = ffn(x)
    flat = x.reshape(-1, cfg.hidden)
    ref = torch.zeros_like(flat)
    for t in range(flat.shape[0]):
        probs = torch.softmax(ffn.router.weight @ flat[t], 0)
        top = torch.argsort(probs, descending=True)[: cfg.top_k]
        weights = probs[top] / probs[top].sum()
        for w, e in zip(weights, top):
            ref[t] += w * ffn.experts[int(e)](flat[t : t + 1])[0]
        for s in ffn.shared:
            ref[t] += s(flat[t : t + 1])[0]
    torch.testing.assert_close(out.reshape(-1, cfg.hidden), ref, rtol=1e-10, atol=1e-12)
    assert load.shape == (cfg.n_routed,)


def test_model_is_causal():
    model = pt.build_model(TINY, seed=0)
    a = torch.randint(0, 256, (1, 12), generator=torch.Generator().manual_seed(0))
    b = a.clone()
    b[0, 8:] = (b[0, 8:] + 1) % 256
    la = model(a)[0]
    lb = model(b)[0]
    torch.testing.assert_close(la[0, :8], lb[0, :8])
    assert not torch.allclose(la[0, 8:], lb[0, 8:])
    with pytest.raises(ValueError, match="seq_len"):
        model(torch.zeros(1, 17, dtype=torch.long))


# ------------------------------------------------------------------ training
def _tokens(n_chars=30_000):
    toks, vocab = pt.encode_text(pt.load_corpus("pydoc", n_chars), "bytes")
    assert vocab == 256 and toks.max() < 256
    split = int(0.9 * toks.size)
    return toks[:split], toks[split:]


def _train(cfg, seed=0, steps=40):
    tr, va = _tokens()
    return pt.train_lm(
        cfg, tr, va, steps=steps, batch_size=8, lr=3e-3, eval_every=10, eval_batches=2, seed=seed, torch_threads=1
    )


def test_loss_decreases_on_a_tiny_run():
    for cfg in (TINY, pt.matched_dense(TINY, "active")):
        res = _train(cfg)
        assert res["steps"] == [10, 20, 30, 40] and res["tokens"][-1] == 40 * 8 * 16
        assert res["val_loss"][0] < math.log(256)
        assert res["val_loss"][-1] < res["val_loss"][0] - 0.3
        assert res["train_loss"][-1] < res["train_loss"][0]
    assert len(res["load"][0]) == 0  # dense: no routing


def test_seeded_runs_are_bit_identical_and_seeds_differ():
    a, b, c = _train(TINY, 0, 12), _train(TINY, 0, 12), _train(TINY, 1, 12)
    for r in (a, b, c):
        r.pop("seconds")
    assert a == b
    assert a["val_loss"] != c["val_loss"]
    load = np.array(a["load"])  # (evals, layers, experts)
    assert load.shape == (2, TINY.n_layers, TINY.n_routed)
    np.testing.assert_allclose(load.sum(-1), 1.0)


def test_train_lm_validates_inputs():
    tr, va = _tokens(5_000)
    with pytest.raises(ValueError, match="val_tokens"):
        pt.train_lm(TINY, tr, va[:10], steps=1, batch_size=1, lr=1e-3)
    with pytest.raises(ValueError, match="train_tokens"):
        pt.train_lm(TINY.replace(vocab_size=50), tr, va, steps=1, batch_size=1, lr=1e-3)
    with pytest.raises(ValueError, match="lr"):
        pt.train_lm(TINY, tr, va, steps=1, batch_size=1, lr=-1.0)


def test_load_corpus_pydoc_and_a_fake_hub_dataset():
    text = pt.load_corpus("pydoc", 2_000)
    assert len(text) == 2_000 and "the" in text
    calls = []

    def fake_load_dataset(*args, split):
        calls.append((args, split))
        return {"text": ["Hello world. ", "", "Second line here. "] * 100}

    text = pt.load_corpus("hf:wikitext:wikitext-103-raw-v1", 500, load_dataset=fake_load_dataset)
    assert calls == [(("wikitext", "wikitext-103-raw-v1"), "train")] and len(text) == 500
    with pytest.raises(ValueError, match="corpus"):
        pt.load_corpus("somewhere", 500)


def test_hf_tokenization_in_newline_chunks_equals_one_call(monkeypatch):
    from transformers import AutoTokenizer

    from moe_companion.heavy.data import minilm_path

    text = pt.load_corpus("pydoc", 20_000).replace(". ", ".\n")
    tok = AutoTokenizer.from_pretrained(minilm_path())
    whole = np.asarray(tok(text, add_special_tokens=False, verbose=False)["input_ids"])
    monkeypatch.setattr(pt, "_TOKENIZE_CHUNK", 3_000)
    ids, vocab = pt.encode_text(text, str(minilm_path()))
    assert vocab == len(tok)
    np.testing.assert_array_equal(ids, whole)


def test_run_experiment_resumes_identically_and_figures_build(tmp_path):
    p = {**pt.PROFILES["smoke"], "steps": 4, "eval_every": 2}
    full = pt.run_experiment(p, ResultStore(tmp_path / "a.jsonl"), progress=False).data
    lines = (tmp_path / "a.jsonl").read_text().splitlines()
    assert len(lines) == 3
    (tmp_path / "b.jsonl").write_text(lines[0] + "\n")
    resumed = pt.run_experiment(p, ResultStore(tmp_path / "b.jsonl"), progress=False).data
    rows = pt.summarize(full)
    for res in (full, resumed):
        for runs in res["runs"].values():
            for r in runs:
                r["seconds"] = 0.0
    assert resumed == full
    assert [r["variant"] for r in rows] == list(pt.VARIANTS)
    # per-window losses average to the recorded validation loss; compare() is their paired difference
    for runs in full["runs"].values():
        assert np.mean(runs[0]["val_loss_windows"]) == pytest.approx(runs[0]["val_loss"][-1], rel=1e-6)
    cmp = pt.compare(full, "dense_active")
    direct = full["runs"]["dense_active"][0]["val_loss"][-1] - full["runs"]["moe"][0]["val_loss"][-1]
    assert cmp["diff"] == pytest.approx(direct, rel=1e-5) and cmp["lo"] <= cmp["diff"] <= cmp["hi"]
    with pytest.raises(ValueError, match="variant"):
        pt.compare(full, "wide")
    back = pt.load_result(p, tmp_path / "a.jsonl")
    assert back["runs"]["moe"][0]["val_loss"] == full["runs"]["moe"][0]["val_loss"]


def test_active_share_recount_against_built_models():
    """(top_k + shared) / (routed + shared), checked against the parameters a built MoE actually uses."""
    for routed, shared, k in ((4, 1, 2), (4, 1, 1), (5, 0, 2), (8, 2, 3)):
        c = pt.LMConfig(n_routed=routed, n_shared=shared, top_k=k)
        counts = pt.count_parameters(c)
        assert pt.active_ffn_share(routed, shared, k) == pytest.approx(counts["ffn_active"] / counts["ffn_total"])
    assert pt.active_ffn_share(4, 1, 2) == pytest.approx(0.6)
    with pytest.raises(ValueError, match="top_k"):
        pt.active_ffn_share(4, 1, 5)


@pytest.mark.heavy
def test_chapter_runs_in_smoke_profile(smoke_chapter):
    _, out = smoke_chapter("moe_pretraining")
    assert len(ResultStore(out / "results" / "moe_pretraining-smoke.jsonl")) == 3
