"""Modular structure of MLP input activations (paper Sec. 5, Fig. 1, App. B.1, Figs. 7-10), with numbers.

Pipeline for one unit (model, projection, allocation, layer, sparsity, token sample), following App. B.1:

1. **TEAL pruning** -- per-projection magnitude thresholds are calibrated once per (model, layer) on a
   separate token stream (:mod:`moe_companion.heavy.teal`: ``uniform`` or ``greedy`` allocation; the
   ``gate`` and ``up`` projections of a Llama MLP get separate sparsifiers) and the analysed projection's
   input ``X`` (tokens x features) is pruned at its own threshold.
2. **Percentile ranks** -- every entry is replaced by the percentile rank of ``|x|`` among all tokens
   *of its feature* (0 = smallest, 1 = largest; pruned entries are 0).
3. **Feature blocks** -- cosine similarity between the feature columns of ``|X|`` is the affinity of a
   spectral clustering (scikit-learn, ``affinity="precomputed"``) into ``n_blocks`` blocks.
4. **Token assignment** -- each token goes to the block on whose features its mean percentile rank is
   highest; features and tokens are reordered block by block.
5. **A number** -- the *diagonal enrichment* ``E`` = mean percentile rank inside the diagonal blocks /
   mean percentile rank overall (``E = 1``: no block structure).

Steps 3-4 optimise the picture, so structureless data scores ``E > 1`` too.  Three nulls, each run
through the same steps on the same token sample:

* ``shuffle`` -- every feature column permuted independently over tokens (each feature keeps its values
  and sparsity; all co-activation is destroyed);
* ``partition`` -- the model's own matrix with the feature blocks replaced by a random partition of the
  same sizes (tokens re-assigned by step 4): what the token assignment alone achieves;
* ``spectrum`` -- a Gaussian-copula surrogate that keeps every feature's marginal exactly and the
  eigenvalue spectrum of the features' normal-score correlation, with the eigenvectors replaced by a
  Haar-random rotation (:func:`spectrum_null`): co-activation of the same strength, not aligned with
  the neurons.  Block structure *in the neuron basis* is what this null removes.

Each (model, projection, allocation, layer, sparsity) is measured on ``n_samples`` disjoint token
samples; differences ``E - E_null`` are paired by sample and summarised with a t interval over samples
(:func:`sample_interval`).
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _validate as v

__all__ = [
    "EXPERIMENT",
    "NULLS",
    "PROFILES",
    "ModularStructure",
    "analyse_unit",
    "assign_tokens",
    "check_params",
    "cluster_features",
    "contrast",
    "diagonal_enrichment",
    "downsample",
    "feature_affinity",
    "map_layers",
    "modular_structure",
    "partition_null",
    "percentile_ranks",
    "run_experiment",
    "sample_interval",
    "select",
    "shuffle_columns",
    "spectrum_null",
    "stored_records",
]


#: Part of every unit key: bump it when the numerical pipeline changes, so stored units are recomputed.
ANALYSIS_VERSION = 2

#: The nulls every unit runs (see the module docstring).
NULLS = ("shuffle", "partition", "spectrum")

#: The chapter's parameters in each profile (same keys; see the chapter for their meaning).
#: ``layers`` / ``second_layers``: the paper's layers 0, 16, 31 of 32 mapped by relative depth
#: (:func:`map_layers`) to MiniLM's 6 and SmolLM2's 30 layers in the cpu profile.
PROFILES = {
    "cpu": {
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "second_model": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "gate_model": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "text": "pydoc",
        "seq_len": 128,
        "n_tokens": 768,
        "n_samples": 5,
        "n_calib_tokens": 2048,
        "layers": [0, 3, 5],
        "second_layers": [0, 15, 29],
        "gate_layers": [0],
        "sparsities": [0.0, 0.4, 0.7],
        "heatmap_sparsities": [0.0, 0.4, 0.7],
        "allocations": ["uniform", "greedy"],
        "n_blocks": 20,
        "heatmap_cells": 64,
        "threshold_method": "histogram",
        "greedy_step": 0.05,
        "batch_size": 8,
        "seed": 0,
    },
    "paper": {
        "model": "meta-llama/Llama-2-7b-hf",
        "second_model": "meta-llama/Llama-3.1-8B",
        "gate_model": "meta-llama/Llama-2-7b-hf",
        "text": "wikitext-2-raw-v1",
        "seq_len": 1024,
        "n_tokens": 4096,
        "n_samples": 10,
        "n_calib_tokens": 16384,
        "layers": [0, 2, 16, 31],
        "second_layers": [0, 16, 31],
        "gate_layers": [0],
        "sparsities": [0.0, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
        "heatmap_sparsities": [0.0, 0.4, 0.7],
        "allocations": ["uniform", "greedy"],
        "n_blocks": 20,
        "heatmap_cells": 96,
        "threshold_method": "histogram",
        "greedy_step": 0.05,
        "batch_size": 1,
        "seed": 0,
    },
    "smoke": {
        "model": "tiny-random-llama",
        "second_model": "tiny-random-llama",
        "gate_model": "tiny-random-llama",
        "text": "pydoc",
        "seq_len": 32,
        "n_tokens": 64,
        "n_samples": 2,
        "n_calib_tokens": 128,
        "layers": [0, 1],
        "second_layers": [1],
        "gate_layers": [0],
        "sparsities": [0.0, 0.7],
        "heatmap_sparsities": [0.0, 0.7],
        "allocations": ["uniform", "greedy"],
        "n_blocks": 4,
        "heatmap_cells": 16,
        "threshold_method": "histogram",
        "greedy_step": 0.1,
        "batch_size": 4,
        "seed": 0,
    },
}


def map_layers(paper_layers: Sequence[int], n_layers: int, paper_n_layers: int = 32) -> list[int]:
    """Map layer indices of a ``paper_n_layers``-layer model to ``n_layers`` layers by relative depth.

    ``round(l * (n_layers - 1) / (paper_n_layers - 1))``: first to first, last to last
    (0, 16, 31 of 32 -> 0, 3, 5 of 6 and 0, 15, 29 of 30).
    """
    n_layers = v.check_int(n_layers, "n_layers", lower=1)
    paper_n_layers = v.check_int(paper_n_layers, "paper_n_layers", lower=2)
    out = []
    for i, layer in enumerate(paper_layers):
        layer = v.check_int(layer, f"paper_layers[{i}]", lower=0, upper=paper_n_layers - 1)
        out.append(int(np.floor(layer * (n_layers - 1) / (paper_n_layers - 1) + 0.5)))
    return out


def check_params(params: Mapping[str, Any]) -> dict:
    """Validate the chapter's parameters (called by the runner before any model is loaded)."""
    from .registry import DATASETS, get_model

    p = v.check_keys(params, PROFILES["cpu"])
    specs = {}
    for name in ("model", "second_model", "gate_model"):
        spec = get_model(p[name])
        if spec.family not in ("llama", "bert"):
            raise ValueError(f"{name} must be a Llama- or BERT-style model, got {p[name]!r} ({spec.family})")
        p[name] = spec.name
        specs[name] = spec
    if p["gate_model"] not in (p["model"], p["second_model"]):
        raise ValueError(
            f"gate_model must be model or second_model ({p['model']!r}, {p['second_model']!r}), got {p['gate_model']!r}"
        )
    if p["gate_layers"] and specs["gate_model"].family != "llama":
        raise ValueError(
            f"gate_model must have a gated (Llama-style) MLP when gate_layers is not empty, "
            f"got {p['gate_model']!r} ({specs['gate_model'].family})"
        )
    v.check_choice(p["text"], "text", ("pydoc", "wikitext-2-raw-v1"))
    p["seq_len"] = v.check_int(p["seq_len"], "seq_len", lower=2)
    for name in ("n_tokens", "n_calib_tokens"):
        p[name] = v.check_int(p[name], name, lower=p["seq_len"])
        if p[name] % p["seq_len"]:
            raise ValueError(f"{name} must be a multiple of seq_len={p['seq_len']}, got {p[name]}")
    p["n_samples"] = v.check_int(p["n_samples"], "n_samples", lower=2)
    for name, model in (("layers", "model"), ("second_layers", "second_model"), ("gate_layers", "gate_model")):
        if name != "gate_layers" and not p[name]:
            raise ValueError(f"{name} must not be empty")
        p[name] = [v.check_int(x, f"{name}[{i}]", lower=0) for i, x in enumerate(p[name])]
        if len(set(p[name])) != len(p[name]):
            raise ValueError(f"{name} must not repeat, got {p[name]}")
        for i, layer in enumerate(p[name]):
            if layer >= specs[model].n_layers:
                raise ValueError(
                    f"{name}[{i}] must be < {specs[model].n_layers} (the layers of {specs[model].name}), got {layer}"
                )
    if p["text"] == "pydoc":  # a token is at least one character: an upper bound known before tokenizing
        n_chars = DATASETS["pydoc"].splits["chars"]
        total = p["n_samples"] * p["n_tokens"] + p["n_calib_tokens"]
        if total > n_chars:
            raise ValueError(
                f"n_samples * n_tokens + n_calib_tokens must be <= {n_chars} (characters of the "
                f"pydoc text), got {total} (n_samples={p['n_samples']}, n_tokens={p['n_tokens']}, "
                f"n_calib_tokens={p['n_calib_tokens']})"
            )
    for name in ("sparsities", "heatmap_sparsities"):
        if not p[name]:
            raise ValueError(f"{name} must not be empty")
        p[name] = [v.check_scalar(s, f"{name}[{i}]", lower=0.0, upper=0.95) for i, s in enumerate(p[name])]
    extra = sorted(set(p["heatmap_sparsities"]) - set(p["sparsities"]))
    if extra:
        raise ValueError(f"heatmap_sparsities must be among sparsities, not {extra}")
    if not p["allocations"] or len(set(p["allocations"])) != len(p["allocations"]):
        raise ValueError(f"allocations must be a non-empty list without repeats, got {p['allocations']}")
    for i, a in enumerate(p["allocations"]):
        v.check_choice(a, f"allocations[{i}]", ("uniform", "greedy"))
    p["n_blocks"] = v.check_int(p["n_blocks"], "n_blocks", lower=2)
    if p["n_blocks"] > p["n_tokens"]:
        raise ValueError(f"n_blocks must be <= n_tokens={p['n_tokens']}, got {p['n_blocks']}")
    p["heatmap_cells"] = v.check_int(p["heatmap_cells"], "heatmap_cells", lower=4, upper=256)
    v.check_choice(p["threshold_method"], "threshold_method", ("exact", "histogram"))
    p["greedy_step"] = v.check_scalar(p["greedy_step"], "greedy_step", lower=0.0, upper=0.5, lower_inclusive=False)
    p["batch_size"] = v.check_int(p["batch_size"], "batch_size", lower=1)
    p["seed"] = v.check_seed(p["seed"])
    return p


# ------------------------------------------------------------------------------ the pipeline
def percentile_ranks(x) -> np.ndarray:
    """Per-feature percentile rank of ``|x|`` over tokens, in [0, 1]; exact zeros get 0.

    Parameters
    ----------
    x : array_like, shape (n_tokens, n_features)

    Returns
    -------
    ndarray, shape (n_tokens, n_features), float32
        ``r[t, f] = rank of |x[t, f]| among |x[:, f]| / (n_tokens - 1)``.
    """
    a = np.abs(v.check_array(x, "x", ndim=2))
    n = a.shape[0]
    if n < 2:
        raise ValueError(f"x must have at least 2 tokens (rows), got {n}")
    order = np.argsort(a, axis=0, kind="stable")
    ranks = np.empty(a.shape, dtype=np.float32)
    np.put_along_axis(ranks, order, (np.arange(n, dtype=np.float32) / (n - 1))[:, None], axis=0)
    ranks[a == 0] = 0.0
    return ranks


def feature_affinity(x) -> np.ndarray:
    """Cosine similarity between the feature columns of ``|x|`` (shape (d, d), in [0, 1], unit diagonal).

    An all-zero feature (fully pruned) has affinity 0 to every other feature.
    """
    a = np.abs(v.check_array(x, "x", ndim=2))
    norms = np.linalg.norm(a, axis=0)
    safe = np.where(norms > 0, norms, 1.0)
    u = a / safe
    aff = np.clip(u.T @ u, 0.0, 1.0)
    np.fill_diagonal(aff, 1.0)
    return aff


def cluster_features(affinity, n_blocks: int, seed: int = 0) -> np.ndarray:
    """Spectral clustering of a precomputed affinity into ``n_blocks`` labels (0..n_blocks-1).

    Labels are renumbered so that block 0 has the most features (ties: smallest first feature).
    """
    from sklearn.cluster import SpectralClustering

    aff = v.check_array(affinity, "affinity", ndim=2)
    n_blocks = v.check_int(n_blocks, "n_blocks", lower=2, upper=aff.shape[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "graph is not fully connected" at high sparsity
        labels = SpectralClustering(
            n_clusters=n_blocks, affinity="precomputed", assign_labels="cluster_qr", random_state=v.check_seed(seed)
        ).fit_predict(aff + 1e-9)
    return _relabel_by_size(labels, n_blocks)


def _relabel_by_size(labels, n_blocks):
    labels = np.asarray(labels)
    sizes = np.bincount(labels, minlength=n_blocks)
    first = np.array([np.flatnonzero(labels == b)[0] if sizes[b] else labels.size for b in range(n_blocks)])
    order = np.lexsort((first, -sizes))  # biggest block first
    new = np.empty(n_blocks, dtype=int)
    new[order] = np.arange(n_blocks)
    return new[labels]


def assign_tokens(ranks, feature_labels, n_blocks: int) -> np.ndarray:
    """Assign each token to the block where its mean percentile rank over the block's features is highest.

    Parameters
    ----------
    ranks : array_like, shape (n_tokens, n_features)
    feature_labels : array_like of int, shape (n_features,)

    Returns
    -------
    ndarray of int, shape (n_tokens,)
    """
    r = np.asarray(ranks, dtype=np.float64)
    lab = np.asarray(feature_labels, dtype=int)
    onehot = np.zeros((lab.size, n_blocks))
    onehot[np.arange(lab.size), lab] = 1.0
    counts = onehot.sum(axis=0)
    means = (r @ onehot) / np.where(counts > 0, counts, 1.0)
    means[:, counts == 0] = -np.inf
    return np.argmax(means, axis=1)


def diagonal_enrichment(ranks, feature_labels, token_labels, n_blocks: int) -> float:
    """Mean of ``ranks`` inside the diagonal blocks divided by its overall mean (1 = no structure)."""
    r = np.asarray(ranks, dtype=np.float64)
    f = np.zeros((r.shape[1], n_blocks))
    f[np.arange(r.shape[1]), np.asarray(feature_labels)] = 1.0
    t = np.zeros((r.shape[0], n_blocks))
    t[np.arange(r.shape[0]), np.asarray(token_labels)] = 1.0
    inside = float(np.trace(t.T @ r @ f))
    area = float(t.sum(axis=0) @ f.sum(axis=0))
    total = float(r.sum())
    if total == 0 or area == 0:
        return 1.0
    return (inside / area) / (total / r.size)


@dataclass(frozen=True)
class ModularStructure:
    """The outcome of the App. B.1 pipeline on one activation matrix.

    Attributes
    ----------
    ranks : ndarray (n_tokens, n_features)
        Percentile ranks (original order).
    feature_labels, token_labels : ndarray of int
        Block of each feature / token (block 0 = most features).
    feature_order, token_order : ndarray of int
        Permutations that put the blocks on the diagonal.
    enrichment : float
        :func:`diagonal_enrichment` of the assignment.
    """

    ranks: np.ndarray
    feature_labels: np.ndarray
    token_labels: np.ndarray
    feature_order: np.ndarray
    token_order: np.ndarray
    enrichment: float
    n_blocks: int

    def reordered(self) -> np.ndarray:
        """Percentile ranks with features and tokens reordered block by block."""
        return self.ranks[np.ix_(self.token_order, self.feature_order)]

    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """Cumulative block boundaries (token axis, feature axis), each of length ``n_blocks + 1``."""
        tok = np.concatenate([[0], np.cumsum(np.bincount(self.token_labels, minlength=self.n_blocks))])
        feat = np.concatenate([[0], np.cumsum(np.bincount(self.feature_labels, minlength=self.n_blocks))])
        return tok, feat


def modular_structure(x, n_blocks: int = 20, seed: int = 0) -> ModularStructure:
    """Run steps 2-5 of the module docstring on one (pruned) activation matrix ``x`` (tokens x features)."""
    x = v.check_array(x, "x", ndim=2)
    n_blocks = v.check_int(n_blocks, "n_blocks", lower=2)
    if n_blocks > min(x.shape):
        raise ValueError(f"n_blocks must be <= min(n_tokens, n_features) = {min(x.shape)}, got {n_blocks}")
    ranks = percentile_ranks(x)
    flab = cluster_features(feature_affinity(x), n_blocks, seed)
    tlab = assign_tokens(ranks, flab, n_blocks)
    forder = np.argsort(flab, kind="stable")
    torder = np.argsort(tlab, kind="stable")
    return ModularStructure(
        ranks, flab, tlab, forder, torder, diagonal_enrichment(ranks, flab, tlab, n_blocks), n_blocks
    )


def shuffle_columns(x, rng: np.random.Generator) -> np.ndarray:
    """Permute every column of ``x`` independently (keeps each feature's values, kills co-activation)."""
    x = np.asarray(x)
    idx = np.argsort(rng.random(x.shape), axis=0)
    return np.take_along_axis(x, idx, axis=0)


def downsample(matrix, rows: int, cols: int) -> np.ndarray:
    """Average ``matrix`` over a ``rows x cols`` grid of contiguous cells (for small heatmaps)."""
    m = np.asarray(matrix, dtype=np.float64)
    rows, cols = min(rows, m.shape[0]), min(cols, m.shape[1])
    r_edges = np.linspace(0, m.shape[0], rows + 1).round().astype(int)
    c_edges = np.linspace(0, m.shape[1], cols + 1).round().astype(int)
    csum = np.add.reduceat(np.add.reduceat(m, r_edges[:-1], axis=0), c_edges[:-1], axis=1)
    return csum / np.outer(np.diff(r_edges), np.diff(c_edges))


# ------------------------------------------------------------------------------ nulls
def spectrum_null(x, seed=None) -> np.ndarray:
    """Gaussian-copula surrogate of ``x`` (tokens x features): same marginals, same spectrum, random axes.

    The features' normal scores ``z = Phi^-1(rank / n)`` have correlation ``C = U diag(lam) U^T``; the
    surrogate draws Gaussian rows with covariance ``Q diag(lam) Q^T`` for a Haar-random orthogonal ``Q``
    and maps every column back onto the sorted values of the same column of ``x`` by rank.  Each
    feature's values are kept exactly (so its sparsity after pruning too); the spectrum of the
    normal-score correlation is kept up to the rescaling of the columns (and sampling noise); the
    alignment of the correlation's eigenvectors with the neurons -- what block structure in the
    neuron basis needs -- is destroyed.

    Parameters
    ----------
    x : array_like, shape (n_tokens, n_features)
    seed : int, None or numpy Generator
    """
    from scipy.special import ndtri

    from ..model import haar_orthogonal

    x = v.check_array(x, "x", ndim=2)
    n, d = x.shape
    if n < 3:
        raise ValueError(f"x must have at least 3 tokens (rows), got {n}")
    rng = v.check_random_state(seed)
    order = np.argsort(x, axis=0, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(n)[:, None], axis=0)
    z = ndtri((ranks + 0.5) / n)
    corr = np.corrcoef(z, rowvar=False) if d > 1 else np.ones((1, 1))
    lam = np.clip(np.linalg.eigvalsh(np.nan_to_num(corr)), 0.0, None)
    q = haar_orthogonal(d, seed=rng)
    g = rng.standard_normal((n, d)) @ (np.sqrt(lam)[:, None] * q.T)
    new_rank = np.argsort(np.argsort(g, axis=0, kind="stable"), axis=0, kind="stable")
    return np.take_along_axis(np.sort(x, axis=0), new_rank, axis=0)


def partition_null(ranks, feature_labels, n_blocks: int, seed=None) -> float:
    """Enrichment of a random feature partition with the sizes of ``feature_labels`` (tokens by step 4)."""
    rng = v.check_random_state(seed)
    lab = rng.permutation(np.asarray(feature_labels))
    return diagonal_enrichment(ranks, lab, assign_tokens(ranks, lab, n_blocks), n_blocks)


def analyse_unit(x, threshold: float, *, n_blocks: int, heatmap_cells: int | None, seed: int) -> dict:
    """One unit: prune ``x`` at ``threshold``, find its blocks, score it and its three nulls (JSON-ready dict).

    Parameters
    ----------
    x : ndarray (n_tokens, d)
        The analysed token sample of one projection's input (unpruned).
    threshold : float
        The projection's TEAL threshold.
    heatmap_cells : int or None
        If given, the reordered percentile heatmap averaged to at most this many cells per axis, in
        integer percent, with the block edges in cell units.
    seed : int
        Unit seed (clustering and nulls).
    """
    from .teal import prune

    xp = prune(x, threshold)
    st = modular_structure(xp, n_blocks, seed)
    rng = np.random.default_rng(seed)
    nulls = {
        "shuffle": modular_structure(shuffle_columns(xp, rng), n_blocks, seed).enrichment,
        "partition": partition_null(st.ranks, st.feature_labels, n_blocks, rng),
        "spectrum": modular_structure(prune(spectrum_null(x, rng), threshold), n_blocks, seed).enrichment,
    }
    out = {
        "threshold": float(threshold),
        "sparsity_realised": float(np.mean(xp == 0)),
        "enrichment": round(float(st.enrichment), 6),
        "null": {k: round(float(val), 6) for k, val in nulls.items()},
        "feature_block_sizes": np.bincount(st.feature_labels, minlength=n_blocks).tolist(),
        "token_block_sizes": np.bincount(st.token_labels, minlength=n_blocks).tolist(),
    }
    if heatmap_cells:
        z = downsample(st.reordered(), heatmap_cells, heatmap_cells)
        tok_e, feat_e = st.edges()
        out["heatmap"] = np.rint(100 * z).astype(int).tolist()
        out["token_edges"] = np.round(tok_e * z.shape[0] / xp.shape[0], 2).tolist()
        out["feature_edges"] = np.round(feat_e * z.shape[1] / xp.shape[1], 2).tolist()
    return out


# ------------------------------------------------------------------------------ the experiment
_SHARED = ("text", "seq_len", "n_tokens", "n_calib_tokens", "n_blocks", "threshold_method", "seed")


def _groups(p: Mapping[str, Any]) -> list[tuple[str, str, list, list]]:
    """(model, projection, layers, allocations): Figs. 7/10 (model), 8 (second model), 9 (gate, greedy)."""
    out = [
        (p["model"], "up", p["layers"], p["allocations"]),
        (p["second_model"], "up", p["second_layers"], p["allocations"]),
    ]
    if p["gate_layers"]:
        out.append((p["gate_model"], "gate", p["gate_layers"], ["greedy"]))
    return out


def _unit_key(p, model, projection, allocation, layer, sparsity, sample) -> dict:
    key = {
        "experiment": "modular_structure",
        "version": ANALYSIS_VERSION,
        "model": model,
        "projection": projection,
        "allocation": allocation,
        "layer": int(layer),
        "sparsity": float(sparsity),
        "sample": int(sample),
        **{k: p[k] for k in _SHARED},
    }
    if allocation == "greedy":
        key["greedy_step"] = p["greedy_step"]
    key["heatmap_cells"] = p["heatmap_cells"] if sample == 0 and sparsity in p["heatmap_sparsities"] else None
    return key


def _units(p: dict, ctx=None) -> list[dict]:
    from .store import canonical_key

    out, seen = [], set()
    for model, proj, layers, allocations in _groups(p):
        for layer in layers:
            for alloc in allocations:
                for s in p["sparsities"]:
                    for sample in range(p["n_samples"]):
                        key = _unit_key(p, model, proj, alloc, layer, s, sample)
                        ck = canonical_key(key)
                        if ck not in seen:
                            seen.add(ck)
                            out.append(key)
    return out


def _unit_seed(key: Mapping[str, Any]) -> int:
    text = "|".join(str(key[k]) for k in ("model", "projection", "allocation", "layer", "sparsity", "sample"))
    digest = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")
    return int(np.random.SeedSequence([key["seed"], digest]).generate_state(1)[0])


def _activations(p: dict, model_name: str, ctx) -> dict:
    """Load ``model_name`` once per context; capture the MLP inputs of every layer its units need."""
    import torch

    from .activations import capture_mlp_inputs
    from .data import load_text, token_stream
    from .device import select_device
    from .registry import get_model, load

    torch.set_num_threads(ctx.option("threads", 2))
    device, dtype = ctx.option("device") or select_device(verbose=ctx.progress)
    head = "causal_lm" if get_model(model_name).family == "llama" else "base"
    model, tokenizer = load(model_name, head=head, device=device, dtype=dtype, seed=p["seed"])
    ids = token_stream(
        tokenizer, load_text(p["text"]), p["n_calib_tokens"] + p["n_samples"] * p["n_tokens"], p["seq_len"]
    )
    layers = sorted({layer for m, _, ls, _ in _groups(p) if m == model_name for layer in ls})
    acts = capture_mlp_inputs(
        model,
        ids,
        layers=layers,
        projection="up_proj",
        batch_size=p["batch_size"],
        progress=ctx.progress,
        desc=f"activations ({model_name})",
    )
    n_cal = p["n_calib_tokens"]
    return {
        "model": model,
        "calib": {i: a[:n_cal] for i, a in acts.items()},
        "acts": {i: a[n_cal:] for i, a in acts.items()},
    }


def _thresholds(p: dict, model_name: str, layer: int, ctx):
    from .teal import calibrate

    st = ctx.get(f"activations:{model_name}", lambda: _activations(p, model_name, ctx))
    return ctx.get(
        f"thresholds:{model_name}:{layer}",
        lambda: calibrate(st["model"], layer, st["calib"][layer], method=p["threshold_method"]),
    )


def _run_unit(p: dict, key: dict, ctx) -> dict:
    from .teal import allocation_sparsities

    model_name, layer, s, sample = key["model"], key["layer"], key["sparsity"], key["sample"]
    thr = _thresholds(p, model_name, layer, ctx)
    if key["allocation"] == "greedy":  # one walk up to the largest sparsity, queried for every unit
        thr.calibrate_greedy(max(p["sparsities"]), step=p["greedy_step"])
    sps = allocation_sparsities(thr, key["allocation"], s, step=p["greedy_step"])
    t = thr.thresholds(sps)
    x = ctx.state[f"activations:{model_name}"]["acts"][layer]
    xs = x[sample * p["n_tokens"] : (sample + 1) * p["n_tokens"]]
    from threadpoolctl import threadpool_limits

    with threadpool_limits(ctx.option("blas_threads", 1)):  # small matrices: extra BLAS threads only contend
        out = analyse_unit(
            xs, t[key["projection"]], n_blocks=p["n_blocks"], heatmap_cells=key["heatmap_cells"], seed=_unit_seed(key)
        )
    w = np.array([thr.parts.weights[n] for n in thr.parts.names], dtype=float)
    out["sparsity_calib"] = round(float(thr.distributions[key["projection"]].sparsity(t[key["projection"]])), 6)
    out["projection_sparsities"] = {n: round(float(val), 6) for n, val in sps.items()}
    out["projection_thresholds"] = {n: float(val) for n, val in t.items()}
    out["block_sparsity"] = round(float(w @ np.array([sps[n] for n in thr.parts.names]) / w.sum()), 6)
    return out


def _assemble(p: dict, pairs, ctx) -> list[dict]:
    keep = ("model", "projection", "allocation", "layer", "sparsity", "sample")
    return [{**{k: key[k] for k in keep}, **val} for key, val in pairs]


def _describe(key: dict, val: dict) -> str:
    return "E = {:.3f}; nulls ".format(val["enrichment"]) + ", ".join(f"{k} {x:.3f}" for k, x in val["null"].items())


def _experiment():
    from .contract import Experiment

    return Experiment("modular_structure", check_params, _units, _run_unit, _assemble, describe=_describe)


def run_experiment(params: Mapping[str, Any], store=None, *, progress: bool = True, ctx=None, **options):
    """Run (or resume) every declared unit (the heavy-experiment contract).

    A model is loaded and its activations captured only if one of its units is missing from the store.
    ``store``: a :class:`ResultStore` or its path; options: ``threads`` (torch threads, default 2),
    ``device`` (a ``(device, dtype)`` pair).

    Returns
    -------
    :class:`~moe_companion.heavy.contract.ExperimentResult` whose ``data`` is a list of records
    ``{"model", "projection", "allocation", "layer", "sparsity", "sample", **unit value}``.
    """
    from .contract import run_experiment as run

    return run(EXPERIMENT, params, store, progress=progress, ctx=ctx, **options)


def stored_records(params: Mapping[str, Any], path) -> list[dict]:
    """The records of ``params`` read from the result store at ``path``, computing nothing.

    Raises ``FileNotFoundError`` if the store does not exist and ``ValueError`` naming the number of
    missing units if it is incomplete.
    """
    import os

    from .store import ResultStore

    if not os.path.isfile(path):
        raise FileNotFoundError(f"results_path {path} does not exist: run the chapter first")
    p = check_params(params)
    store = ResultStore(path)
    keys = _units(p)
    vals = [store.get(k) for k in keys]
    missing = sum(val is None for val in vals)
    if missing:
        raise ValueError(f"results_path {path} lacks {missing} of {len(keys)} units of these parameters")
    return _assemble(p, list(zip(keys, vals)), None)


# ------------------------------------------------------------------------------ statistics over token samples
def select(records: Sequence[Mapping[str, Any]], **where) -> list[Mapping[str, Any]]:
    """Records whose fields equal ``where`` (a list/tuple value: any of its entries)."""

    def ok(r):
        return all(r[k] in val if isinstance(val, (list, tuple, set)) else r[k] == val for k, val in where.items())

    return [r for r in records if ok(r)]


def per_sample(records: Sequence[Mapping[str, Any]], stat, **where) -> np.ndarray:
    """``stat(record)`` averaged over the selected units of each token sample (index = sample)."""
    rs = select(records, **where)
    if not rs:
        raise ValueError(f"no records match {where}")
    samples = sorted({r["sample"] for r in rs})
    return np.array([np.mean([stat(r) for r in rs if r["sample"] == s]) for s in samples])


def sample_interval(values, level: float = 0.95) -> dict:
    """Mean of per-sample values with its standard error and t interval (``n - 1`` degrees of freedom)."""
    from scipy.stats import t

    x = v.check_array(values, "values", ndim=1)
    if x.size < 2:
        raise ValueError(f"values must hold at least 2 samples, got {x.size}")
    level = v.check_scalar(level, "level", lower=0.0, upper=1.0, lower_inclusive=False, upper_inclusive=False)
    mean, se = float(x.mean()), float(x.std(ddof=1) / np.sqrt(x.size))
    q = float(t.ppf(0.5 + level / 2, x.size - 1))
    return {"mean": mean, "se": se, "lo": mean - q * se, "hi": mean + q * se, "n": int(x.size)}


def excess(null: str):
    """``record -> E - E_null`` for one of :data:`NULLS`."""
    v.check_choice(null, "null", NULLS)
    return lambda r: r["enrichment"] - r["null"][null]


def contrast(records: Sequence[Mapping[str, Any]], stat, *, minus: Mapping[str, Any] | None = None, **where) -> dict:
    """Interval over token samples of the mean ``stat`` of the units ``where`` (minus those of ``minus``).

    With ``minus`` the difference is paired by sample: ``mean_where(sample) - mean_minus(sample)``.
    """
    a = per_sample(records, stat, **where)
    if minus is not None:
        b = per_sample(records, stat, **{**where, **minus})
        if a.size != b.size:
            raise ValueError("the two groups must have the same token samples")
        a = a - b
    return sample_interval(a)


#: The heavy-experiment contract of this chapter (see :mod:`moe_companion.heavy.contract`).
EXPERIMENT = _experiment()
