"""MoEfication: balanced experts, routers, exactness at K = E, the smoke experiment and resume."""

import json
import shutil

import numpy as np
import pytest
import torch

from moe_companion.heavy import moefication as mf

torch.set_num_threads(1)


def _ffn(d=12, d_ff=24, seed=0, bias=True):
    g = torch.Generator().manual_seed(seed)
    w_in = torch.randn(d_ff, d, generator=g)
    w_out = torch.randn(d, d_ff, generator=g)
    b_in = torch.randn(d_ff, generator=g) if bias else None
    b_out = torch.randn(d, generator=g) if bias else None
    return w_in, b_in, w_out, b_out


def _dense(x, w_in, b_in, w_out, b_out, act, keep=None):
    """Independent reference: dense FFN in the ORIGINAL neuron order, neurons outside ``keep`` zeroed."""
    z = x.double() @ w_in.double().T + (0 if b_in is None else b_in.double())
    h = act(z)
    if keep is not None:
        h = h * keep.double()
    return h @ w_out.double().T + (0 if b_out is None else b_out.double())


# ------------------------------------------------------------------ balanced k-means
def test_balanced_kmeans_equal_sizes_and_planted_clusters():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(6, 5)) * 10
    truth = rng.permutation(np.repeat(np.arange(6), 8))
    x = centers[truth] + rng.normal(size=(48, 5)) * 0.1
    lab = mf.balanced_kmeans(x, 6, n_iter=20, seed=1)
    assert np.all(np.bincount(lab, minlength=6) == 8)
    # same partition as the planted one (up to relabelling)
    pairs = {(int(a), int(b)) for a, b in zip(truth, lab)}
    assert len(pairs) == 6
    assert np.array_equal(mf.balanced_kmeans(x, 6, n_iter=20, seed=1), lab)


def test_balanced_kmeans_is_balanced_where_plain_kmeans_is_not():
    rng = np.random.default_rng(1)
    x = np.vstack([rng.normal(size=(40, 4)), rng.normal(size=(8, 4)) + 6])  # 40 vs 8 points
    lab = mf.balanced_kmeans(x, 4, seed=0)
    assert np.all(np.bincount(lab, minlength=4) == 12)


def test_cluster_sizes_on_real_shapes():
    w = torch.randn(96, 8)
    lab = mf.balanced_kmeans(w.numpy(), 12, n_iter=3)
    assert sorted(np.bincount(lab).tolist()) == [8] * 12


# ------------------------------------------------------------------ MoEFFN
@pytest.mark.parametrize("act_name", ["relu", "gelu"])
def test_k_equals_e_reproduces_dense(act_name):
    act = {"relu": torch.relu, "gelu": torch.nn.functional.gelu}[act_name]
    w_in, b_in, w_out, b_out = _ffn()
    labels = np.random.default_rng(0).permutation(np.repeat(np.arange(6), 4))
    moe = mf.MoEFFN(w_in, b_in, w_out, b_out, act, labels, k=6)
    x = torch.randn(3, 5, 12)
    ref = _dense(x.reshape(-1, 12), w_in, b_in, w_out, b_out, act).reshape(3, 5, 12)
    assert torch.allclose(moe(x).double(), ref, atol=1e-5)
    moe.router = "mlp"
    moe.mlp_router = mf.MLPRouter(moe.centroids())
    assert torch.allclose(moe(x).double(), ref, atol=1e-5)


@pytest.mark.parametrize("act_name", ["relu", "gelu"])
def test_ground_truth_router_selects_topk_by_definition(act_name):
    act = {"relu": torch.relu, "gelu": torch.nn.functional.gelu}[act_name]
    w_in, b_in, w_out, b_out = _ffn(seed=2)
    labels = np.random.default_rng(3).permutation(np.repeat(np.arange(6), 4))
    moe = mf.MoEFFN(w_in, b_in, w_out, b_out, act, labels, k=2)
    x = torch.randn(40, 12)
    y = moe(x)
    # independent: per-expert sums of post-activation values in the original neuron order
    h = act(x.double() @ w_in.double().T + b_in.double()).numpy()
    scores = np.stack([h[:, labels == e].sum(1) for e in range(6)], axis=1)
    top = np.argsort(-scores, axis=1)[:, :2]
    for t in range(40):
        assert set(moe.last_selection[t].tolist()) == set(top[t].tolist())
    keep = torch.as_tensor(np.stack([np.isin(labels, top[t]) for t in range(40)]))
    assert torch.allclose(y.double(), _dense(x, w_in, b_in, w_out, b_out, act, keep), atol=1e-5)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("chunk", [128, 3])
def test_grouped_kernel_matches_masked_reference(bias, chunk):
    w_in, b_in, w_out, b_out = _ffn(d=16, d_ff=48, seed=4, bias=bias)
    labels = np.repeat(np.arange(8), 6)
    moe = mf.MoEFFN(w_in, b_in, w_out, b_out, torch.nn.functional.gelu, labels, k=3, router="mlp")
    moe.chunk_rows = chunk
    x = torch.randn(50, 16)
    idx = torch.stack([torch.randperm(8)[:3] for _ in range(50)])
    keep = torch.as_tensor(np.stack([np.isin(labels, idx[t].numpy()) for t in range(50)]))
    ref = _dense(x, w_in, b_in, w_out, b_out, torch.nn.functional.gelu, keep)
    assert torch.allclose(moe.grouped_forward(x, idx).double(), ref, atol=1e-5)
    assert torch.allclose(moe.masked_forward(x, idx).double(), ref, atol=1e-5)


def test_mlp_router_learns_the_ground_truth_selection():
    torch.manual_seed(0)
    w_in, b_in, w_out, b_out = _ffn(d=16, d_ff=64, seed=5)
    labels = mf.balanced_kmeans((w_in / w_in.norm(dim=1, keepdim=True)).numpy(), 8, seed=0)
    moe = mf.MoEFFN(w_in, b_in, w_out, b_out, torch.relu, labels, k=2, router="mlp")
    x = torch.randn(3000, 16)
    mf.train_mlp_router(moe, x[:2500], epochs=15, seed=0)
    gt = mf.topk_experts(mf.expert_scores(moe.hidden(x[2500:]), 8), 2)
    pred = mf.topk_experts(moe.mlp_router(x[2500:]), 2)
    overlap = np.mean([len(set(a.tolist()) & set(b.tolist())) / 2 for a, b in zip(gt, pred)])
    assert overlap > 0.6  # chance level is K/E = 0.25


def test_bad_inputs_name_the_parameter():
    w_in, b_in, w_out, b_out = _ffn()
    labels = np.repeat(np.arange(6), 4)
    with pytest.raises(ValueError, match="k must be <= 6"):
        mf.MoEFFN(w_in, b_in, w_out, b_out, torch.relu, labels, k=7)
    with pytest.raises(ValueError, match="same size"):
        mf.MoEFFN(w_in, b_in, w_out, b_out, torch.relu, np.r_[np.zeros(5, int), np.ones(19, int)], k=1)
    with pytest.raises(ValueError, match="n_experts must divide d_ff = 24"):
        mf.balanced_kmeans(np.random.rand(24, 3), 5)
    with pytest.raises(ValueError, match="router"):
        mf.MoEFFN(w_in, b_in, w_out, b_out, torch.relu, labels, k=2, router="oracle")
    base = dict(mf.PROFILES["cpu"])
    with pytest.raises(ValueError, match=r"ks\[1\] must be <= 96"):
        mf.check_params({**base, "ks": [20, 120]})
    with pytest.raises(ValueError, match="n_experts must divide d_ff = 1536"):
        mf.check_params({**base, "n_experts": 100})
    with pytest.raises(ValueError, match=r"noise_types\[1\]"):
        mf.check_params({**base, "noise_types": ["word", "typo"]})
    with pytest.raises(ValueError, match="model"):
        mf.check_params({**base, "model": "gpt2"})


def test_profiles_share_keys_and_validate():
    keys = set(mf.PROFILES["cpu"])
    for prof in mf.PROFILES.values():
        assert set(prof) == keys
        mf.check_params(prof)


# ------------------------------------------------------------------ models
def _tiny_bert():
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        hidden_act="gelu",
    )
    return BertModel(cfg).eval()


def test_moefy_bert_in_place_k_equals_e_is_dense():
    model = _tiny_bert()
    ids = torch.randint(0, 50, (3, 7))
    with torch.no_grad():
        ref = model(input_ids=ids).last_hidden_state
    labels = mf.cluster_model(model, 4, n_iter=5)
    assert len(labels) == 2 and all(np.all(np.bincount(v) == 8) for v in labels.values())
    moes = mf.moefy(model, labels, k=4)
    assert len(moes) == 2 and all(isinstance(m.activation, torch.nn.Module) for m in moes)
    with torch.no_grad():
        out = model(input_ids=ids).last_hidden_state
        assert torch.allclose(out, ref, atol=1e-5)
        mf.set_k(model, 1)
        assert not torch.allclose(model(input_ids=ids).last_hidden_state, ref, atol=1e-3)
    with pytest.raises(ValueError, match="already MoEfied"):
        mf.moefy(model, labels, k=4)


def test_moefy_tiny_t5_paper_path_k_equals_e_is_dense():
    from moe_companion.heavy.data import load_sentiment_tweets

    split = load_sentiment_tweets(60, 8)
    model, tok = mf.load_tiny_t5(split.train_texts, seed=0)
    clf = mf.T5PromptClassifier(model, tok, max_length=32, batch_size=4)
    enc = tok(
        ["sst2 sentence: " + t for t in split.test_texts],
        padding=True,
        return_tensors="pt",
        return_token_type_ids=False,
    )
    dec = torch.zeros((8, 1), dtype=torch.long)
    with torch.no_grad():
        ref = model(**enc, decoder_input_ids=dec).logits
    pred0 = clf.predict(split.test_texts)
    labels = mf.cluster_model(model, 8, n_iter=4)
    assert len(labels) == 4  # 2 encoder + 2 decoder FFNs
    mf.moefy(model, labels, k=8)
    with torch.no_grad():
        assert torch.allclose(model(**enc, decoder_input_ids=dec).logits, ref, atol=1e-5)
    assert np.array_equal(clf.predict(split.test_texts), pred0)


# ------------------------------------------------------------------ experiment (smoke) and resume
def test_smoke_experiment_and_resume_after_kill(tmp_path):
    params = dict(mf.PROFILES["smoke"])
    params.update(n_test=12, seeds=[0, 1], ks=[2, 6])
    full = tmp_path / "full.jsonl"
    res = mf.run_experiment(params, full, progress=False).data
    n_units = (1 + 2 * 2) * 3  # (clean + 2 noises x 2 seeds) x (dense + 2 K)
    assert len(res["units"]) == n_units
    assert all(0.0 <= u["acc"] <= 1.0 and len(u["correct"]) == 12 for u in res["units"])
    summary = mf.summarize(res)
    assert len(summary) == 2 * 3
    dense = summary[summary["dense"]]
    assert np.allclose(dense["d_noisy"], 0) and np.allclose(dense["d_gap"], 0)
    # the stored result reads back without computing, and the per-K difference matches a direct count
    back = mf.load_result(full, **params)
    assert back["units"] == res["units"] and back["swap_counts"] == res["swap_counts"]
    corr = {(u["noise"], u["seed"], u["k"]): np.array([int(c) for c in u["correct"]]) for u in res["units"]}
    row = summary[(summary["noise"] == "char") & (summary["k"] == 2)].iloc[0]
    direct = np.mean([corr[("char", s, 2)].mean() - corr[("char", s, 8)].mean() for s in (0, 1)])
    assert row["d_noisy"] == pytest.approx(direct)
    assert row["d_noisy_lo"] <= row["d_noisy"] <= row["d_noisy_hi"]
    with pytest.raises(LookupError, match="seed 2"):
        mf.load_result(full, **{**params, "seeds": [0, 1, 2]})
    with pytest.raises(LookupError, match="no unit"):
        mf.load_result(full, **{**params, "ks": [2, 4]})

    # a run killed mid-way: the first records survive, the last one is cut in the middle
    lines = full.read_text().splitlines(keepends=True)
    killed = tmp_path / "killed.jsonl"
    killed.write_text("".join(lines[:7]) + lines[7][: len(lines[7]) // 2])
    res2 = mf.run_experiment(params, killed, progress=False).data
    assert res2["units"] == res["units"]
    # the resumed file holds every unit exactly as the uninterrupted run
    recs = {
        json.dumps(json.loads(l)["key"], sort_keys=True): json.loads(l)["value"]
        for l in killed.read_text().splitlines()
        if l.strip().endswith("}")
    }
    ref = {json.dumps(json.loads(l)["key"], sort_keys=True): json.loads(l)["value"] for l in lines}
    assert recs == ref
    # finished units are not recomputed (a complete store needs no model)
    again = tmp_path / "again.jsonl"
    shutil.copy(full, again)
    assert mf.run_experiment(params, again, progress=False).data["units"] == res["units"]
    assert again.read_text() == full.read_text()


def test_smoke_mlp_router_end_to_end(tmp_path):
    params = dict(mf.PROFILES["smoke"])
    params.update(n_test=8, seeds=[0], ks=[2], noise_types=["char"], router="mlp", n_train=60)
    res = mf.run_experiment(params, tmp_path / "r.jsonl", progress=False).data
    assert len(res["units"]) == 2 * 2


@pytest.mark.heavy
def test_chapter_runs_in_smoke_profile(smoke_chapter):
    outputs, _ = smoke_chapter("moefication_noise")
    assert "smoke" in json.dumps(outputs)


def test_sentence_embedding_classifier_cpu_path():
    from transformers import AutoTokenizer, BertConfig, BertModel

    from moe_companion.heavy.data import load_sentiment_tweets, minilm_path

    tok = AutoTokenizer.from_pretrained(minilm_path())
    torch.manual_seed(0)
    model = BertModel(
        BertConfig(
            vocab_size=tok.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
        )
    ).eval()
    split = load_sentiment_tweets(40, 10)
    clf = mf.SentenceEmbeddingClassifier(model, tok, max_length=32, batch_size=7)
    emb = clf.embed(split.test_texts)
    assert emb.shape == (10, 16) and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    # embeddings do not depend on the batching / length sorting
    one = np.stack([clf.embed([t])[0] for t in split.test_texts])
    assert np.allclose(emb, one, atol=1e-5)
    state = clf.fit_head(split.train_texts, split.train_labels)
    assert set(state) == {"coef", "intercept", "C", "train_acc"}
    manual = (emb.astype(float) @ np.asarray(state["coef"]) + state["intercept"] > 0).astype(int)
    assert np.array_equal(clf.predict(split.test_texts), manual)


@pytest.mark.parametrize("kernel", ["auto", "grouped", "masked"])
@pytest.mark.parametrize("k", [2, 6])
def test_mlp_router_forward_selects_by_router_scores(kernel, k):
    w_in, b_in, w_out, b_out = _ffn(d=16, d_ff=48, seed=6)
    labels = np.repeat(np.arange(8), 6)
    moe = mf.MoEFFN(w_in, b_in, w_out, b_out, torch.relu, labels, k=k, router="mlp")
    moe.mlp_router = mf.MLPRouter(moe.centroids())
    moe.kernel = kernel
    x = torch.randn(30, 16)
    y = moe(x)
    logits = moe.mlp_router(x).detach().numpy()
    top = np.argsort(-logits, axis=1)[:, :k]
    keep = torch.as_tensor(np.stack([np.isin(labels, top[t]) for t in range(30)]))
    assert torch.allclose(y.double(), _dense(x, w_in, b_in, w_out, b_out, torch.relu, keep), atol=1e-5)
