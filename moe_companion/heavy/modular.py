"""Modular structure of MLP input activations (paper Sec. 5, Fig. 1, App. B.1), with a number.

Pipeline for one (layer, sparsity) unit, following App. B.1:

1. **TEAL pruning** -- a per-layer magnitude threshold for the target sparsity is calibrated on a
   separate token stream (:mod:`moe_companion.heavy.teal`, uniform allocation) and applied to the
   analysed activations ``X`` (tokens x features).
2. **Percentile ranks** -- every entry is replaced by the percentile rank of ``|x|`` among all
   tokens *of its feature* (0 = smallest, 1 = largest; pruned entries are 0).  This is what the
   heatmaps show: raw magnitudes are dominated by a few outlier features.
3. **Feature blocks** -- cosine similarity between the feature columns of ``|X|`` is the affinity
   of a spectral clustering (scikit-learn, ``affinity="precomputed"``) into ``n_blocks`` blocks.
4. **Token assignment** -- each token goes to the block on whose features its mean percentile
   rank is highest; features and tokens are reordered block by block (blocks by decreasing
   feature count), so block ``i``'s features and tokens form the ``i``-th diagonal block.
5. **A number** -- the *diagonal enrichment* ``E`` = mean percentile rank inside the diagonal
   blocks / mean percentile rank overall (the share of rank mass inside the blocks divided by
   their share of the area).  ``E = 1`` means no block structure.  Because steps 3-4 optimise the
   picture, even structureless data gives ``E > 1``; the baseline ``E0`` runs the *same* pipeline
   on the pruned matrix with every feature column permuted independently over tokens (same
   per-feature distributions and sparsity, co-activation destroyed).

Every unit is seeded from its key and stored in a :class:`~moe_companion.heavy.store.ResultStore`,
so a killed run resumes where it stopped and ends with identical numbers.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _validate as v

__all__ = [
    "EXPERIMENT",
    "PROFILES",
    "ModularStructure",
    "analyse_unit",
    "assign_tokens",
    "check_params",
    "cluster_features",
    "diagonal_enrichment",
    "downsample",
    "excess_ratio",
    "feature_affinity",
    "heatmap_figure",
    "modular_structure",
    "percentile_ranks",
    "ratio_pivot",
    "results_table",
    "run_experiment",
    "score_figure",
    "shuffle_columns",
    "summary",
]

#: Modules whose source is part of the runner's cache hash.
CACHE_DEPENDS = ["moe_companion.heavy.activations", "moe_companion.heavy.teal"]

#: Part of every unit key: bump it when the numerical pipeline changes, so stored units are recomputed.
ANALYSIS_VERSION = 1

#: The chapter's parameters in each profile (same keys; see the chapter for their meaning).
PROFILES = {
    "cpu": {
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "text": "pydoc",
        "seq_len": 256,
        "n_tokens": 2048,
        "n_calib_tokens": 4096,
        "layers": [0, 1, 2, 3, 4, 5],
        "projection": "up_proj",
        "sparsities": [0.0, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
        "heatmap_sparsities": [0.0, 0.4, 0.7],
        "n_blocks": 20,
        "n_shuffles": 2,
        "heatmap_cells": 96,
        "threshold_method": "histogram",
        "allocation": "uniform",
        "batch_size": 8,
        "seed": 0,
    },
    "paper": {
        "model": "meta-llama/Llama-2-7b-hf",
        "text": "wikitext-2-raw-v1",
        "seq_len": 1024,
        "n_tokens": 4096,
        "n_calib_tokens": 16384,
        "layers": [0, 2, 16, 31],
        "projection": "up_proj",
        "sparsities": [0.0, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
        "heatmap_sparsities": [0.0, 0.4, 0.7],
        "n_blocks": 20,
        "n_shuffles": 3,
        "heatmap_cells": 96,
        "threshold_method": "histogram",
        "allocation": "uniform",
        "batch_size": 1,
        "seed": 0,
    },
    "smoke": {
        "model": "tiny-random-llama",
        "text": "pydoc",
        "seq_len": 64,
        "n_tokens": 256,
        "n_calib_tokens": 256,
        "layers": [0, 1],
        "projection": "up_proj",
        "sparsities": [0.0, 0.4, 0.7],
        "heatmap_sparsities": [0.0, 0.7],
        "n_blocks": 4,
        "n_shuffles": 1,
        "heatmap_cells": 32,
        "threshold_method": "histogram",
        "allocation": "uniform",
        "batch_size": 4,
        "seed": 0,
    },
}


def check_params(params: Mapping[str, Any]) -> dict:
    """Validate the chapter's parameters (called by the runner before any model is loaded)."""
    from .registry import DATASETS, get_model

    p = v.check_keys(params, PROFILES["cpu"])
    spec = get_model(p["model"])
    if spec.family not in ("llama", "bert"):
        raise ValueError(f"model must be a Llama- or BERT-style model, got {p['model']!r} ({spec.family})")
    v.check_choice(p["text"], "text", ("pydoc", "wikitext-2-raw-v1"))
    p["seq_len"] = v.check_int(p["seq_len"], "seq_len", lower=2)
    for name in ("n_tokens", "n_calib_tokens"):
        p[name] = v.check_int(p[name], name, lower=p["seq_len"])
        if p[name] % p["seq_len"]:
            raise ValueError(f"{name} must be a multiple of seq_len={p['seq_len']}, got {p[name]}")
    if not p["layers"]:
        raise ValueError("layers must not be empty")
    p["layers"] = [v.check_int(x, f"layers[{i}]", lower=0) for i, x in enumerate(p["layers"])]
    if len(set(p["layers"])) != len(p["layers"]):
        raise ValueError(f"layers must not repeat, got {p['layers']}")
    for i, layer in enumerate(p["layers"]):
        if layer >= spec.n_layers:
            raise ValueError(f"layers[{i}] must be < {spec.n_layers} (the layers of {spec.name}), got {layer}")
    if p["text"] == "pydoc":  # a token is at least one character: an upper bound known before tokenizing
        n_chars = DATASETS["pydoc"].splits["chars"]
        total = p["n_tokens"] + p["n_calib_tokens"]
        if total > n_chars:
            raise ValueError(f"n_tokens + n_calib_tokens must be <= {n_chars} (characters of the pydoc text), "
                             f"got n_tokens={p['n_tokens']} + n_calib_tokens={p['n_calib_tokens']} = {total}")
    v.check_choice(p["projection"], "projection", ("up_proj", "gate_proj"))
    for name in ("sparsities", "heatmap_sparsities"):
        if not p[name]:
            raise ValueError(f"{name} must not be empty")
        p[name] = [v.check_scalar(s, f"{name}[{i}]", lower=0.0, upper=1.0, upper_inclusive=False)
                   for i, s in enumerate(p[name])]
    extra = sorted(set(p["heatmap_sparsities"]) - set(p["sparsities"]))
    if extra:
        raise ValueError(f"heatmap_sparsities must be among sparsities, not {extra}")
    p["n_blocks"] = v.check_int(p["n_blocks"], "n_blocks", lower=2)
    if p["n_blocks"] > p["n_tokens"]:
        raise ValueError(f"n_blocks must be <= n_tokens={p['n_tokens']}, got {p['n_blocks']}")
    p["n_shuffles"] = v.check_int(p["n_shuffles"], "n_shuffles", lower=1)
    p["heatmap_cells"] = v.check_int(p["heatmap_cells"], "heatmap_cells", lower=4, upper=256)
    v.check_choice(p["threshold_method"], "threshold_method", ("exact", "histogram"))
    v.check_choice(p["allocation"], "allocation", ("uniform", "greedy"))
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
        labels = SpectralClustering(n_clusters=n_blocks, affinity="precomputed", assign_labels="cluster_qr",
                                    random_state=v.check_seed(seed)).fit_predict(aff + 1e-9)
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
    return ModularStructure(ranks, flab, tlab, forder, torder,
                            diagonal_enrichment(ranks, flab, tlab, n_blocks), n_blocks)


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


def _unit_seed(seed: int, layer: int, sparsity: float) -> int:
    return int(np.random.SeedSequence([seed, layer, int(round(sparsity * 10000))]).generate_state(1)[0])


def analyse_unit(x, calib, sparsity: float, *, n_blocks: int, n_shuffles: int, heatmap_cells: int | None,
                 threshold_method: str, seed: int, threshold: float | None = None) -> dict:
    """One (layer, sparsity) unit: threshold, pruning, structure, shuffled baseline (JSON-ready dict).

    Parameters
    ----------
    x : ndarray (n_tokens, d)
        Analysed activations of one layer.
    calib : ndarray (n_calib, d)
        Calibration activations of the same layer (threshold only).
    sparsity : float in [0, 1)
    heatmap_cells : int or None
        If given, the reordered percentile heatmap averaged to at most this many cells per axis,
        in integer percent, with the block edges in cell units.
    seed : int
        Unit seed (clustering and shuffles).
    threshold : float, optional
        Use this threshold instead of the uniform one calibrated for ``sparsity`` (greedy allocation).
    """
    from .teal import fit_threshold, prune

    thr = fit_threshold(calib, sparsity, method=threshold_method) if threshold is None else threshold
    xp = prune(x, thr)
    st = modular_structure(xp, n_blocks, seed)
    rng = np.random.default_rng(seed)
    base = [modular_structure(shuffle_columns(xp, rng), n_blocks, seed).enrichment for _ in range(n_shuffles)]
    tok_sizes = np.bincount(st.token_labels, minlength=n_blocks)
    out = {
        "threshold": float(thr),
        "sparsity_calib": float(np.mean(np.abs(calib) <= thr)),
        "sparsity_realised": float(np.mean(xp == 0)),
        "enrichment": round(float(st.enrichment), 6),
        "baseline": [round(float(b), 6) for b in base],
        "feature_block_sizes": np.bincount(st.feature_labels, minlength=n_blocks).tolist(),
        "token_block_sizes": tok_sizes.tolist(),
    }
    if heatmap_cells:
        z = downsample(st.reordered(), heatmap_cells, heatmap_cells)
        tok_e, feat_e = st.edges()
        out["heatmap"] = np.rint(100 * z).astype(int).tolist()
        out["token_edges"] = np.round(tok_e * z.shape[0] / xp.shape[0], 2).tolist()
        out["feature_edges"] = np.round(feat_e * z.shape[1] / xp.shape[1], 2).tolist()
    return out


# ------------------------------------------------------------------------------ the experiment
def _unit_key(p: Mapping[str, Any], layer: int, sparsity: float) -> dict:
    keep = ("model", "text", "seq_len", "n_tokens", "n_calib_tokens", "projection", "n_blocks", "n_shuffles",
            "threshold_method", "seed")
    key = {"experiment": "modular_structure", "version": ANALYSIS_VERSION, **{k: p[k] for k in keep},
           "layer": int(layer),
           "sparsity": float(sparsity)}
    key["heatmap_cells"] = p["heatmap_cells"] if sparsity in p["heatmap_sparsities"] else None
    if p["allocation"] != "uniform":  # uniform keys stay as they were before greedy existed
        key["allocation"] = p["allocation"]
    return key


def _greedy_unit(model, layer, x, calib, s, p, key, seed) -> dict:
    from .teal import greedy_mlp_allocation

    alloc = greedy_mlp_allocation(model, layer, calib, s, method="exact")
    out = analyse_unit(x, calib, s, n_blocks=p["n_blocks"], n_shuffles=p["n_shuffles"],
                       heatmap_cells=key["heatmap_cells"], threshold_method=p["threshold_method"], seed=seed,
                       threshold=alloc["t_in"])
    out["greedy"] = {k: round(float(val), 6) for k, val in alloc.items()}
    return out


def _units(p: dict, ctx) -> list[dict]:
    return [_unit_key(p, layer, s) for layer in p["layers"] for s in p["sparsities"]]


def _activations(p: dict, ctx) -> dict:
    """Load the model once per context and capture the MLP inputs of every analysed layer."""
    import torch

    from .activations import capture_mlp_inputs
    from .data import load_text, token_stream
    from .device import select_device
    from .registry import load

    torch.set_num_threads(ctx.option("threads", 2))
    device, dtype = ctx.option("device") or select_device(verbose=ctx.progress)
    from .registry import get_model

    model, tokenizer = load(p["model"], head="causal_lm" if get_model(p["model"]).family == "llama" else "base",
                            device=device, dtype=dtype, seed=p["seed"])
    text = load_text(p["text"])
    ids = token_stream(tokenizer, text, p["n_calib_tokens"] + p["n_tokens"], p["seq_len"])
    n_cal_tok = (p["n_calib_tokens"] // p["seq_len"]) * p["seq_len"]
    acts = capture_mlp_inputs(model, ids, layers=sorted(p["layers"]), projection=p["projection"],
                              batch_size=p["batch_size"], progress=ctx.progress, desc="activations")
    return {"model": model if p["allocation"] == "greedy" else None,  # only greedy needs it later
            "calib": {i: a[:n_cal_tok] for i, a in acts.items()},
            "acts": {i: a[n_cal_tok:] for i, a in acts.items()}}


def _run_unit(p: dict, key: dict, ctx) -> dict:
    st = ctx.get("activations", lambda: _activations(p, ctx))
    layer, s = key["layer"], key["sparsity"]
    seed = _unit_seed(p["seed"], layer, s)
    if p["allocation"] == "greedy":
        return _greedy_unit(st["model"], layer, st["acts"][layer], st["calib"][layer], s, p, key, seed)
    return analyse_unit(st["acts"][layer], st["calib"][layer], s, n_blocks=p["n_blocks"],
                        n_shuffles=p["n_shuffles"], heatmap_cells=key["heatmap_cells"],
                        threshold_method=p["threshold_method"], seed=seed)


def _assemble(p: dict, pairs, ctx) -> list[dict]:
    return [{"layer": k["layer"], "sparsity": k["sparsity"], **val} for k, val in pairs]


def _describe(key: dict, val: dict) -> str:
    return f"E = {val['enrichment']:.3f}, E0 = {float(np.mean(val['baseline'])):.3f}"


def _experiment():
    from .contract import Experiment

    return Experiment("modular_structure", check_params, _units, _run_unit, _assemble, describe=_describe)


def run_experiment(params: Mapping[str, Any], store=None, *, progress: bool = True, ctx=None, **options):
    """Run (or resume) every (layer, sparsity) unit (the heavy-experiment contract).

    The model is loaded and the activations captured only if some unit is missing from the store.
    ``store``: a :class:`ResultStore` or its path; options: ``threads`` (torch threads, default 2),
    ``device`` (a ``(device, dtype)`` pair).

    Returns
    -------
    :class:`~moe_companion.heavy.contract.ExperimentResult` whose ``data`` is a list of
    ``{"layer", "sparsity", **unit value}`` in layer-major order.
    """
    from .contract import run_experiment as run

    return run(EXPERIMENT, params, store, progress=progress, ctx=ctx, **options)


def results_table(records: Sequence[Mapping[str, Any]]):
    """A pandas DataFrame: one row per unit with the enrichment, its baseline and their ratio."""
    import pandas as pd

    rows = []
    for r in records:
        b = np.asarray(r["baseline"], dtype=float)
        rows.append({"layer": r["layer"], "sparsity": r["sparsity"], "realised sparsity": r["sparsity_realised"],
                     "E (model)": r["enrichment"], "E0 (shuffled)": float(b.mean()),
                     "E0 sd": float(b.std(ddof=1)) if b.size > 1 else float("nan"),
                     "(E-1)/(E0-1)": (r["enrichment"] - 1) / (b.mean() - 1) if b.mean() > 1 else float("nan")})
    return pd.DataFrame(rows).round(3)


def excess_ratio(record: Mapping[str, Any]) -> float:
    """``(E - 1) / (E0 - 1)``: the model's excess enrichment over that of its shuffled baseline."""
    b = float(np.mean(record["baseline"]))
    return (record["enrichment"] - 1.0) / (b - 1.0) if b > 1.0 else float("nan")


def ratio_pivot(records: Sequence[Mapping[str, Any]]):
    """pandas table of :func:`excess_ratio`: one row per layer, one column per target sparsity."""
    import pandas as pd

    df = pd.DataFrame([{"layer": r["layer"], "sparsity": r["sparsity"], "ratio": excess_ratio(r)} for r in records])
    return df.pivot(index="layer", columns="sparsity", values="ratio").round(2)


def summary(records: Sequence[Mapping[str, Any]]) -> str:
    """Markdown sentences stating what the measured numbers say (used by the chapter)."""
    layers = sorted({r["layer"] for r in records})
    above = sum(r["enrichment"] > max(r["baseline"]) for r in records)
    piv = ratio_pivot(records)
    by_sparsity = piv.mean(axis=0)
    lo, hi = by_sparsity.index[0], by_sparsity.index[-1]
    peak = by_sparsity.idxmax()
    grows = [layer for layer in layers if piv.loc[layer, peak] > piv.loc[layer, lo]]
    by_layer = piv.mean(axis=1)
    best, worst = int(by_layer.idxmax()), int(by_layer.idxmin())
    trend = ", ".join(f"{by_sparsity[s]:.2f} at {s:g}" for s in by_sparsity.index)
    lines = [
        f"- The model's enrichment exceeds every shuffled baseline in **{above} of {len(records)}** "
        f"(layer, sparsity) units.",
        f"- Averaged over layers, the excess ratio (E − 1)/(E₀ − 1) is {trend}: highest at sparsity "
        f"**{peak:g}**, where it exceeds its value at {lo:g} in **{len(grows)} of {len(layers)}** layers"
        + (f" (at {hi:g}: {by_sparsity[hi]:.2f})." if peak != hi else "."),
        f"- Averaged over sparsities, the ratio is highest in layer **{best}** ({by_layer[best]:.2f}) and "
        f"lowest in layer **{worst}** ({by_layer[worst]:.2f}); by layer: "
        + ", ".join(f"{layer}: {by_layer[layer]:.2f}" for layer in layers) + ".",
    ]
    return "\n".join(lines)


# ------------------------------------------------------------------------------ figures
def _outline(edges_tok, edges_feat) -> tuple[list, list]:
    xs, ys = [], []
    for b in range(len(edges_tok) - 1):
        t0, t1 = edges_tok[b] - 0.5, edges_tok[b + 1] - 0.5
        f0, f1 = edges_feat[b] - 0.5, edges_feat[b + 1] - 0.5
        if t1 <= t0 or f1 <= f0:
            continue
        xs += [round(f0, 2), round(f1, 2), round(f1, 2), round(f0, 2), round(f0, 2), None]
        ys += [round(t0, 2), round(t0, 2), round(t1, 2), round(t1, 2), round(t0, 2), None]
    return xs, ys


def heatmap_figure(records: Sequence[Mapping[str, Any]], *, title: str = ""):
    """Percentile heatmaps with static sliders over layer and sparsity (plotly, via ``slider_figure``)."""
    import plotly.graph_objects as go

    from ..figures import slider_figure

    table = {(r["layer"], r["sparsity"]): r for r in records if "heatmap" in r}
    layers = sorted({k[0] for k in table})
    sps = sorted({k[1] for k in table})

    def traces(layer, sparsity):
        r = table[(int(round(layer)), min(sps, key=lambda s: abs(s - sparsity)))]
        xs, ys = _outline(r["token_edges"], r["feature_edges"])
        return [go.Heatmap(z=r["heatmap"], zmin=0, zmax=100, colorscale="Viridis",
                           colorbar=dict(title="percentile", len=0.6), hovertemplate="%{z}<extra></extra>"),
                go.Scatter(x=xs, y=ys, mode="lines", line=dict(color="white", width=1), hoverinfo="skip",
                           showlegend=False)]

    grid = {"layer": layers, "sparsity": sps} if len(layers) > 1 else {"sparsity": sps}
    if len(sps) < 2:
        raise ValueError("heatmap_figure needs at least two heatmap sparsities")
    fn = traces if len(layers) > 1 else (lambda sparsity: traces(layers[0], sparsity))
    labels = {k: k for k in grid}  # a single layer has no layer slider (and no label for it)
    return slider_figure(fn, grid, labels=labels, fmt="{:g}", layout=dict(
        title=title, xaxis=dict(title="features (reordered by block)", showticklabels=False),
        yaxis=dict(title="tokens (reordered by block)", autorange="reversed", showticklabels=False),
        height=780))


def score_figure(records: Sequence[Mapping[str, Any]], *, title: str = ""):
    """Diagonal enrichment E vs sparsity, one solid line per layer, its shuffled baseline dashed."""
    import plotly.graph_objects as go
    from plotly.colors import qualitative

    layers = sorted({r["layer"] for r in records})
    fig = go.Figure()
    for i, layer in enumerate(layers):
        rs = sorted((r for r in records if r["layer"] == layer), key=lambda r: r["sparsity"])
        col = qualitative.Plotly[i % len(qualitative.Plotly)]
        x = [r["sparsity"] for r in rs]
        fig.add_scatter(x=x, y=[round(r["enrichment"], 4) for r in rs], mode="lines+markers", name=f"layer {layer}",
                        line=dict(color=col), legendgroup=str(layer))
        fig.add_scatter(x=x, y=[round(float(np.mean(r["baseline"])), 4) for r in rs], mode="lines",
                        name=f"layer {layer}, shuffled", line=dict(color=col, dash="dot"), legendgroup=str(layer))
    fig.update_layout(title=title, xaxis_title="target sparsity (uniform TEAL threshold)",
                      yaxis_title="diagonal enrichment E", template="plotly_white", height=480,
                      legend=dict(groupclick="togglegroup"))
    return fig


#: The heavy-experiment contract of this chapter (see :mod:`moe_companion.heavy.contract`).
EXPERIMENT = _experiment()
